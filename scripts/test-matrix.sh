#!/usr/bin/env bash
# The version matrix: the test suite against each other Airflow 3 minor, one after the other
# (`make test` runs the locked default, 3.3.2).
#
# For each version (default: every lock in locks/ below; or the versions given as arguments):
#  * a virtualenv of its own in .venvs/airflow-<version> (gitignored), made with `uv venv` and
#    `uv pip install -c locks/airflow-<version>.txt -e '.[all,test]'`; skipped when neither the lock
#    nor pyproject.toml changed since the last install (a stamp holds their checksum);
#  * the suite with that venv's pytest on PYTEST_WORKERS pytest-xdist workers (default 2, a test
#    file per worker), `-m "not browser and not version_independent"`: unit, e2e
#    (`airflow dags test`) and integration tests. The integration tests exercise redis-py's retries
#    and connections, and redis-py differs here: the celery extra of Airflow 3.0 to 3.2 pins
#    redis-py 5.2.1 (kombu's cap), where constraints.txt has 8.x.
#    Left out, because nothing in them depends on the Airflow minor, and `make test` runs them:
#    the tests marked version_independent (the codec on plain types, keys, the decoder's fuzzing,
#    repository checks: every lock pins the same codec libraries), tests/test_benchmarks_smoke.py
#    (it exercises the benchmark programs, extra [bench], not the backend on this Airflow), the
#    UI plugin's browser test (marker browser; its unit tests run here), and the demo against a
#    Redis named in the environment (the embedded demo runs the same Airflow path on every leg;
#    where the URL comes from is [redis_xcom] url, which tests/test_config.py covers here).
#    The topology tests (marker topology: Redis Cluster, Sentinel, TLS, ACL, restricted servers) run
#    on 3.0 only: what they exercise is redis-py's, and 3.0, 3.1 and 3.2 all pin redis-py 5.2.1 (3.4
#    pins the 8.1.0 that `make test` runs them with).
#  * the tests of a real deployment (marker deployment), in the same run: on 3.4 (the newest:
#    attempts and loops as task instances of their own, the state store's async example) with the
#    LocalExecutor and the CeleryExecutor, on 3.0 (the oldest, redis-py 5.2.1) with the
#    LocalExecutor; `make test` runs both executors on 3.3.
# Legs are chosen by minor ("3.4" takes 3.4.0b2 now and 3.4.0 once its lock replaces the beta's).
# Every version runs even after one fails; a summary line per version follows, and the exit code
# is non-zero when any version failed.
#
# Usage: scripts/test-matrix.sh [version ...]      (MATRIX_PYTHON, default 3.11: the venvs' Python)
set -uo pipefail
cd "$(dirname "$0")/.."

# The Python whose uv makes the venvs (make passes .venv's: uv is installed there, never outside a venv).
UV_PYTHON=${UV_PYTHON:-.venv/bin/python}
MATRIX_PYTHON=${MATRIX_PYTHON:-3.11}  # the locks are compiled for 3.11 (scripts/make-locks.sh)
DEPLOYMENT_MINORS=" 3.0 3.4 "
CELERY_MINORS=" 3.4 "
TOPOLOGY_MINORS=" 3.0 "
PYTEST_WORKERS=${PYTEST_WORKERS:-2}
SUITE=(-n "$PYTEST_WORKERS" --dist loadfile --ignore=tests/test_benchmarks_smoke.py
  --deselect tests/test_cli.py::test_demo_against_a_real_redis_from_the_environment)

versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  # Every lock, oldest first.
  mapfile -t versions < <(ls locks/airflow-*.txt | sed 's|locks/airflow-||; s|\.txt$||' | sort -V)
fi

minor_of() { echo "$1" | cut -d. -f1,2; }

if ! "$UV_PYTHON" -m uv --version >/dev/null 2>&1; then
  echo "no uv in $UV_PYTHON: run make install first (make test-matrix does)" >&2
  exit 1
fi

now() { date +%s; }

# Make or refresh .venvs/airflow-<version>; prints what it did. Non-zero if it could not.
install_venv() {
  local version=$1 venv=.venvs/airflow-$1 lock=locks/airflow-$1.txt
  local stamp=$venv/.installed-matrix wanted
  if [ ! -f "$lock" ]; then
    echo "no lock $lock (scripts/make-locks.sh $version makes it)" >&2
    return 1
  fi
  wanted=$(cat "$lock" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -x "$venv/bin/pytest" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
    echo "up to date"
    return 0
  fi
  rm -f "$stamp"
  "$UV_PYTHON" -m uv venv --quiet --allow-existing --python "$MATRIX_PYTHON" "$venv" >&2 || return 1
  "$UV_PYTHON" -m uv pip install --quiet --python "$venv/bin/python" -c "$lock" -e '.[all,test]' >&2 ||
    return 1
  echo "$wanted" >"$stamp"
  echo "installed"
}

# pytest in one venv; its exit code (output to the terminal and to the venv's log of this step).
run_pytest() {
  local venv=$1 log=$2
  shift 2
  (
    # No Airflow settings from the caller's shell; an AIRFLOW_HOME per venv, so that the airflow.cfg
    # one Airflow version writes on first import is never read by another.
    # shellcheck disable=SC2046
    unset AIRFLOW_CONFIG $(compgen -e | grep '^AIRFLOW__')
    export AIRFLOW_HOME=$PWD/$venv/airflow-home
    mkdir -p "$AIRFLOW_HOME"
    exec "$venv/bin/pytest" "$@"
  ) 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

summary=()
failed=0
for version in "${versions[@]}"; do
  venv=.venvs/airflow-$version
  echo "=== Airflow $version: $venv"
  started=$(now)
  status=PASS
  step=$(now)
  if install=$(install_venv "$version"); then
    install="$install in $(($(now) - step))s"
    airflow_version=$("$venv/bin/python" -c 'import airflow; print(airflow.__version__)' 2>/dev/null)
    if [ "$airflow_version" != "$version" ]; then
      status=FAIL
      tests="not run: $venv has Airflow '${airflow_version:-none}', not $version"
    else
      step=$(now)
      # One pytest run per leg: the deployment tests (3.0 and 3.4) share the workers with the rest.
      markers="not browser and not version_independent"
      [[ $DEPLOYMENT_MINORS == *" $(minor_of "$version") "* ]] || markers="$markers and not deployment"
      [[ $TOPOLOGY_MINORS == *" $(minor_of "$version") "* ]] || markers="$markers and not topology"
      ignores=()
      [[ $CELERY_MINORS == *" $(minor_of "$version") "* ]] ||
        ignores=(--ignore=tests/deployment/test_celery_executor.py)
      run_pytest "$venv" "$venv/suite.log" -m "$markers" "${SUITE[@]}" "${ignores[@]}"
      rc=$?
      tests="suite exit $rc in $(($(now) - step))s (-m \"$markers\")"
      [ "$rc" -eq 0 ] || status=FAIL
    fi
  else
    status=FAIL
    install="install failed after $(($(now) - step))s"
    tests="not run"
  fi
  [ "$status" = PASS ] || failed=1
  summary+=("airflow $version: $status in $(($(now) - started))s (venv $install; $tests)")
done

echo "=== test-matrix summary"
printf '%s\n' "${summary[@]}"
exit "$failed"

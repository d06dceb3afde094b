#!/usr/bin/env bash
# Make the per-minor locks of the version matrix (`make test-matrix`): locks/airflow-<version>.txt.
#
# How they are made, in two steps per Airflow version:
#  1. Airflow's side as it was at that release: `uv pip compile` of
#     apache-airflow[celery,postgres]==<version> plus apache-airflow-providers-standard, with
#     --exclude-newer about a week after the release's upload to PyPI, written to
#     locks/upstream/airflow-<version>.txt. An unpinned resolve picks fastapi/cadwyn/starlette
#     releases newer than 3.0.6 and 3.2.2 were built for, and those break Airflow itself.
#        3.0.6 uploaded 2025-08-29 -> --exclude-newer 2025-09-05
#        3.1.8 uploaded 2026-03-11 -> --exclude-newer 2026-03-18
#        3.2.2 uploaded 2026-05-29 -> --exclude-newer 2026-06-05
#        3.4.0b2: the newest 3.4 on the registry; a prerelease, so resolved with --prerelease if-necessary-or-explicit (prereleases only where a pin names one)
#                 and cut off at OURS_EXCLUDE_NEWER. When 3.4.0 final is served, add it here with a
#                 date a week after its upload and drop the beta (the matrix takes every lock).
#  2. Our side on top: `uv pip compile pyproject.toml --extra all --extra test` constrained by that
#     file (-c), so everything Airflow's side pins (psycopg2-binary, the celery provider, pydantic,
#     pendulum, ...) keeps its release-week version and the rest is resolved for us, with
#     --exclude-newer $OURS_EXCLUDE_NEWER so that running this script again gives the same files.
#     Raise OURS_EXCLUDE_NEWER (and re-run) to take newer versions of our own dependencies.
# Python 3.11 throughout (--python-version), as for constraints.txt. constraints.txt, the lock of
# the default version (3.3.2) that `make install` uses, is not made here.
#
# Usage: scripts/make-locks.sh [version ...]     (default: every version below)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
PY_VERSION=3.11
OURS_EXCLUDE_NEWER=${OURS_EXCLUDE_NEWER:-2026-11-22T00:00:00Z}

# version -> the --exclude-newer of Airflow's side (about a week after the PyPI upload).
declare -A AIRFLOW_EXCLUDE_NEWER=(
  [3.0.6]=2025-09-05T00:00:00Z
  [3.1.8]=2026-03-18T00:00:00Z
  [3.2.2]=2026-06-05T00:00:00Z
  [3.4.0b2]=$OURS_EXCLUDE_NEWER
)

versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
  versions=(3.0.6 3.1.8 3.2.2 3.4.0b2)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p locks/upstream
for version in "${versions[@]}"; do
  cutoff=${AIRFLOW_EXCLUDE_NEWER[$version]:-}
  # A beta or release candidate needs prereleases allowed; a final release never takes one.
  prerelease=()
  [[ $version =~ (a|b|rc)[0-9]+$ ]] && prerelease=(--prerelease if-necessary-or-explicit)
  if [ -z "$cutoff" ]; then
    echo "make-locks: no --exclude-newer date for Airflow $version; add it to AIRFLOW_EXCLUDE_NEWER" >&2
    exit 2
  fi
  upstream=locks/upstream/airflow-$version.txt
  lock=locks/airflow-$version.txt
  echo "make-locks: $upstream (Airflow $version as of $cutoff)" >&2
  # The requirements come on stdin, so the file names no temporary path ("-r -").
  printf '%s\n' "apache-airflow[celery,postgres]==$version" apache-airflow-providers-standard |
    "$PYTHON" -m uv pip compile - --quiet --python-version "$PY_VERSION" \
      --exclude-newer "$cutoff" "${prerelease[@]}" --no-header -o "$work/upstream.txt"
  {
    echo "# Airflow $version's side as of $cutoff: made by scripts/make-locks.sh from"
    echo "#   apache-airflow[celery,postgres]==$version"
    echo "#   apache-airflow-providers-standard"
    echo "# with: uv pip compile --python-version $PY_VERSION --exclude-newer $cutoff"
    cat "$work/upstream.txt"
  } >"$upstream"
  echo "make-locks: $lock (our side, constrained by $upstream)" >&2
  "$PYTHON" -m uv pip compile pyproject.toml --quiet --extra all --extra test -c "$upstream" \
    --python-version "$PY_VERSION" --exclude-newer "$OURS_EXCLUDE_NEWER" "${prerelease[@]}" \
    --custom-compile-command "scripts/make-locks.sh $version" -o "$lock"
  installed=$(grep -E '^apache-airflow==' "$lock")
  if [ "$installed" != "apache-airflow==$version" ]; then
    echo "make-locks: $lock pins $installed, not apache-airflow==$version" >&2
    exit 1
  fi
done

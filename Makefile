# Each target sets itself up: a virtualenv in .venv with the project and what its target needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev
# pytest-xdist workers: the suite mostly waits on Airflow and server processes, so two share the
# 2-core CI machine well. A test file runs whole on one worker (--dist loadfile): its module fixtures
# (an api-server, a deployment) start once.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

.PHONY: demo test test-valkey test-matrix lint docs dist test-wheel bench bench-smoke fuzz install clean

$(STAMP): pyproject.toml constraints.txt
	./scripts/make-venv.sh $(PYTHON) $(VENV)
	$(BIN)/python -m uv pip install --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/redis-xcom demo

test: $(STAMP)
	./scripts/ensure-redis-server.sh
	./scripts/ensure-openssl.sh
	./scripts/ensure-postgresql.sh
	./scripts/ensure-chromium.sh
	$(PYTEST)

# The integration, reliability and topology tests (cluster, Sentinel, TLS, ACL, CONFIG-less) once more,
# every server of the suite a valkey-server (Valkey 8.0 from Debian's bookworm-backports), on the
# locked Airflow of `make test`. Left out: gc against Airflow's own DB (~200 s of `airflow dags test`;
# gc's Redis side is tests/test_ops_gc.py, which runs here).
test-valkey: $(STAMP)
	./scripts/ensure-valkey-server.sh
	./scripts/ensure-openssl.sh
	REDIS_XCOM_TEST_SERVER=valkey-server $(PYTEST) -m "(integration or topology) and not deployment and not browser" \
		--ignore=tests/test_ops_gc_airflow.py

# The suite against Airflow 3.0.6, 3.1.8, 3.2.2 and 3.4.0b2, each in its own .venvs/airflow-<version>
# installed from locks/airflow-<version>.txt (scripts/test-matrix.sh says what runs; make-locks.sh
# how the locks are made). `make test-matrix MATRIX=3.0.6` runs one version.
test-matrix: $(STAMP)
	./scripts/ensure-redis-server.sh
	./scripts/ensure-openssl.sh
	./scripts/ensure-postgresql.sh
	UV_PYTHON=$(BIN)/python PYTEST_WORKERS=$(PYTEST_WORKERS) ./scripts/test-matrix.sh $(MATRIX)

lint: $(STAMP)
	$(BIN)/ruff check redis_xcom tests benchmarks fuzz docs scripts
	$(BIN)/ruff format --check redis_xcom tests benchmarks fuzz scripts
	$(BIN)/mypy

# The documentation site (docs/, Sphinx): warnings are errors; linkcheck checks the links inside the
# site only (external ones are not fetched: CI has no internet). Output in docs/_build/html.
docs: $(STAMP)
	$(BIN)/sphinx-build -W -n --keep-going -q -b html docs docs/_build/html
	$(BIN)/sphinx-build -W -n --keep-going -q -b linkcheck docs docs/_build/linkcheck

# The sdist and the wheel in dist/, checked as PyPI would check them.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --installer uv --outdir dist .
	$(BIN)/twine check --strict dist/*

# The wheel installed (not editable) into a fresh virtualenv with the locked Airflow, and run from there.
test-wheel: $(STAMP)
	./scripts/ensure-redis-server.sh
	$(BIN)/python scripts/test-wheel.py

# The benchmarks start their own redis-server, PostgreSQL and moto (S3) on free loopback ports.
bench: $(STAMP)
	./scripts/ensure-redis-server.sh
	./scripts/ensure-postgresql.sh
	$(BIN)/python -m benchmarks

bench-smoke: $(STAMP)
	./scripts/ensure-redis-server.sh
	./scripts/ensure-postgresql.sh
	$(BIN)/python -m benchmarks --smoke

clean:
	rm -rf $(VENV) .venv-system .venvs .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build docs/_build

# The decoder under coverage-guided fuzzing (atheris) for FUZZ_SECONDS, keeping its corpus in
# .fuzz-corpus; CI runs it for 30 s (tests/test_fuzz_decode.py).
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	FUZZ_CORPUS=.fuzz-corpus $(BIN)/python fuzz/decode.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048

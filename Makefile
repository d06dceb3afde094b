# Each target sets itself up: a virtualenv in .venv with the project and what its target needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint bench bench-smoke install clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(PYTHON) -m uv venv --allow-existing --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip install --python $(BIN)/python -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/redis-xcom demo

test: $(STAMP)
	./scripts/ensure-redis-server.sh
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check redis_xcom tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --smoke

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

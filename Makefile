VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install test lint typecheck unit demo services clean

# A virtual environment with the project (editable); the dev group only where tests need it.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $@

install: $(VENV)/.installed-dev

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

## The README's test command: lint, types, then every test layer, with branch coverage.
## The coverage data lives in a directory of this run's own, removed afterwards.
test: install services lint typecheck
	data=$$(mktemp -d) && trap 'rm -rf "$$data"' EXIT && \
	COVERAGE_FILE="$$data/coverage" $(BIN)/pytest -q --cov --cov-report=term-missing:skip-covered

## The tests that need no service: no Postgres, no Redis (`-m "not services"`).
unit: install
	$(BIN)/pytest -q -m "not services"

## Set up and run the demo.
demo: $(VENV)/.installed
	$(BIN)/refract demo

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

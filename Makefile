# The two commands: `make dev` runs the service, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test lint bench clean

$(BIN)/tidings: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

dev: $(BIN)/tidings
	$(BIN)/tidings dev

lint: $(BIN)/tidings
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy tidings

test: lint
	$(BIN)/pytest

bench: $(BIN)/tidings
	$(BIN)/python bench/query_cost.py

clean:
	rm -rf $(VENV) .tidings

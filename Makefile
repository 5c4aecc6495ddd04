# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install dev lint bench clean

$(BIN)/keel: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

install: $(BIN)/keel

# The whole lifecycle on the embedded default (SQLite + a local object folder), narrated.
demo: install
	rm -rf demo && mkdir demo
	cd demo && ../$(BIN)/keel quickstart

$(VENV)/.dev: pyproject.toml $(BIN)/keel
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

dev: $(VENV)/.dev

test: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

bench: dev
	$(BIN)/python bench/versioning.py

clean:
	rm -rf $(VENV) demo build dist src/*.egg-info

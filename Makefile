# Two commands set everything up: `make demo` and `make test`.
# Both install exact versions, with hashes, from the locks in requirements/
# (`make lock` rewrites them from pyproject.toml; see requirements/lockfile.py).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
# uv lives beside the environment, not in it, so `uv pip sync` can make the
# environment exactly the lock without removing the tool doing it.
UV     := $(VENV)/uv/bin/uv
LOCKS  := requirements
.DEFAULT_GOAL := install
LATEST := .venv-latest
# --compile-bytecode: what pip does at install and uv does not. Without it every process
# compiles what it imports (pandas alone is seconds) when the environment forbids writing
# bytecode (PYTHONDONTWRITEBYTECODE, read-only installs), and `keel` starts slowly.
UVPIP   = $(UV) pip
COMPILE = --compile-bytecode
EDITABLE = --no-deps --build-constraints $(LOCKS)/build.lock -e .

.PHONY: demo test test-latest checks lock lock-check install dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(LOCKS)/tools.lock | $(BIN)/python
	rm -rf $(VENV)/uv
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
		--no-deps --target $(VENV)/uv -r $(LOCKS)/tools.lock
	@touch $@

# Before anything installs or runs: stop with one line when a lock no longer
# matches pyproject.toml or was edited by hand (`make lock` is the fix).
ifneq ($(if $(MAKECMDGOALS),$(filter demo install dev test bench,$(MAKECMDGOALS)),default),)
LOCK_PROBLEM := $(shell $(PYTHON) $(LOCKS)/lockfile.py check 2>&1 >/dev/null)
ifneq ($(LOCK_PROBLEM),)
$(error $(LOCK_PROBLEM))
endif
endif

lock-check:
	@$(PYTHON) $(LOCKS)/lockfile.py check

# keel's dependencies at the demo lock's versions (the same as the dev lock's), then keel.
$(VENV)/.demo: $(LOCKS)/demo.lock $(LOCKS)/build.lock pyproject.toml | $(UV)
	$(UVPIP) install --quiet --python $(BIN)/python --require-hashes $(COMPILE) -r $(LOCKS)/demo.lock
	$(UVPIP) install --quiet --python $(BIN)/python $(EDITABLE)
	@touch $@

install: $(VENV)/.demo

# The whole lifecycle on the embedded default (SQLite + a local object folder), narrated.
demo: install
	rm -rf demo && mkdir demo
	cd demo && ../$(BIN)/keel quickstart

# Exactly the dev lock (sync removes what it does not list), then keel. The dev
# lock holds the demo lock at the same versions, so the demo stays installed.
$(VENV)/.dev: $(LOCKS)/dev.lock $(LOCKS)/build.lock pyproject.toml | $(UV)
	$(UVPIP) sync --quiet --python $(BIN)/python --require-hashes $(COMPILE) $(LOCKS)/dev.lock
	$(UVPIP) install --quiet --python $(BIN)/python $(EDITABLE)
	@touch $@ $(VENV)/.demo

dev: $(VENV)/.dev

test: dev
	@$(MAKE) --no-print-directory checks BIN=$(BIN)

checks:
	$(BIN)/ruff check src tests bench $(LOCKS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n $(JOBS) -m "not serial"
	$(BIN)/python -m pytest -q -p no:xdist -m serial

# The tests against the newest versions the index serves, in a separate
# environment: where a new release's warnings and breakages show up first.
test-latest: $(UV)
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(UVPIP) install --quiet --python $(LATEST)/bin/python --upgrade $(COMPILE) -e '.[dev]'
	@$(MAKE) --no-print-directory checks BIN=$(LATEST)/bin

# Re-resolve every lock from pyproject.toml at the newest versions; KEEP=1
# keeps the current pins wherever they still fit (to add one dependency).
lock: $(UV)
	$(PYTHON) $(LOCKS)/lockfile.py lock --uv $(UV) $(if $(KEEP),--keep)

bench: dev
	$(BIN)/python bench/versioning.py

clean:
	rm -rf $(VENV) $(LATEST) demo build dist src/*.egg-info

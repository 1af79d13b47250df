# The README's commands.  Each target sets itself up: system packages (as root, or via
# sudo), a virtualenv in .venv with the pinned dependencies, then does its job.
SHELL := /bin/bash
PYTHON ?= $(shell bash infra/local/find-python.sh)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup system-packages demo test lint typecheck unit bench mutate clean

setup: system-packages $(STAMP)

system-packages:
	@bash infra/local/install-system-packages.sh

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "no Python 3.12+ found" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: setup lint typecheck
	@ARMIRROR_EXTRA_APT_PACKAGES=chromium bash infra/local/install-system-packages.sh
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: setup
	@bash infra/local/demo.sh

bench: setup
	@bash bench/run.sh

# Mutation testing of the core (slow: minutes for reference or rewrite, hours for every
# group on two cores); not part of `make test`. MUTATE_ARGS="--groups events" runs some.
# Verdicts carry over between runs through bench/mutate/history/ (--fresh: judge all).
mutate: setup
	$(BIN)/python bench/mutate/run.py $(MUTATE_ARGS)

clean:
	rm -rf $(VENV) .demo bench/.work .pytest_cache .mypy_cache .ruff_cache

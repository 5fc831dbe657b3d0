# The commands the README names. Each does its own set-up on a fresh machine.
SHELL := /bin/bash
VENV := .venv/bin
SRC := shared/src ops/src services/ingest-validator/src services/kpi-spark-runner/src services/dynamo-writer/src services/query-api/src cli/src devstack/src
PYTEST_ARGS ?=
ONLY ?=

.PHONY: setup run test check lint typecheck pytest bench bench-quick clean

setup:
	@scripts/setup.sh

run: setup
	$(VENV)/playcount up --demo

test:
	@scripts/setup.sh test
	$(MAKE) lint typecheck pytest

# the quick lane before a push: lint, types, the pure-function tests and one end-to-end smoke test
check:
	@scripts/setup.sh
	$(MAKE) lint typecheck
	$(VENV)/pytest -m "fast or smoke" $(PYTEST_ARGS)

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

typecheck:
	$(VENV)/mypy $(SRC)

pytest:
	$(VENV)/pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/python -m bench.run $(if $(ONLY),--only $(ONLY))

bench-quick: setup
	$(VENV)/python -m bench.run --quick $(if $(ONLY),--only $(ONLY))

clean:
	rm -rf .venv .venv-checkov .mypy_cache .ruff_cache .pytest_cache

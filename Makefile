# coldvault — see README.md. Every target sets itself up (idempotent).
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
BENCH_JSON ?= build/bench.json

.PHONY: setup demo test test-fast lint bench lab-up lab-down clean

setup:
	@./scripts/setup.sh

demo: setup
	$(PY) -m hardware_emulators.demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not lab and not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check coldvault appliance ceremony_scripts hardware_emulators benchmarks tests
	$(VENV)/bin/mypy coldvault

bench: setup
	$(PY) -m benchmarks --json $(BENCH_JSON)
	@echo "named figures: $(BENCH_JSON)"

lab-up: setup
	$(VENV)/bin/coldvault-lab up

lab-down:
	$(VENV)/bin/coldvault-lab down

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# coldvault — see README.md. Every target sets itself up (idempotent).
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast crash-test lint bench lab-up lab-down clean

setup:
	@./scripts/setup.sh

demo: setup
	$(PY) -m hardware_emulators.demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not lab and not slow" $(PYTEST_ARGS)

crash-test: setup
	CRASH_SESSIONS=$${CRASH_SESSIONS:-200} $(PY) -m pytest -s --timeout=0 -m crash tests/integrity/test_crash.py $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check coldvault appliance ceremony_scripts hardware_emulators benchmarks tests
	$(VENV)/bin/mypy coldvault

bench: setup
	$(PY) -m benchmarks

lab-up: setup
	$(VENV)/bin/coldvault-lab up

lab-down:
	$(VENV)/bin/coldvault-lab down

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

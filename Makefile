# coldvault — see README.md. Every target sets itself up (idempotent).
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# pytest-xdist workers for the test targets: each is a process with its own lab (SoftHSM
# tokens, pcscd, vpcd ports, card states); TEST_WORKERS=0 runs serially.  More workers than
# cores pays off while lab tests wait (pcscd polls, consoles driven by pexpect), but the suite
# is mostly CPU now: 2531 tests took 6.8 CPU-minutes (user+sys; 7.6 before the card timing
# and scheduling work), so 2 cores cannot finish it in much under 3.5 minutes.  The longest
# modules are handed out first (tests/conftest.py, LONG_MODULES); the runbooks keep one
# worker busy for about 2 minutes.
TEST_WORKERS ?= 4
BENCH_JSON ?= build/bench.json

.PHONY: setup demo test test-fast crash-test fuzz fuzz-seed lint bench lab-up lab-down clean

setup:
	@./scripts/setup.sh

demo: setup
	$(PY) -m hardware_emulators.demo

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -n $(TEST_WORKERS) -m "not lab and not slow" $(PYTEST_ARGS)

crash-test: setup
	CRASH_SESSIONS=$${CRASH_SESSIONS:-200} $(PY) -m pytest -s --timeout=0 -m crash tests/integrity/test_crash.py $(PYTEST_ARGS)

# every parser of untrusted input, FUZZ_SECONDS per target (make test runs a bounded subset:
# tests/fuzz/test_fuzz.py); prints executions per target and writes build/fuzz.json
fuzz: setup
	$(PY) -m tests.fuzz.run --seconds $${FUZZ_SECONDS:-60} --json build/fuzz.json $(FUZZ_TARGETS)

# rewrite the seed corpus (tests/fuzz/corpus/*/seed-*) from the vectors and test generators
fuzz-seed: setup
	$(PY) -m tests.fuzz.seed_corpus

lint: setup
	$(VENV)/bin/ruff check coldvault appliance ceremony_scripts hardware_emulators benchmarks tests
	$(VENV)/bin/mypy coldvault appliance ceremony_scripts hardware_emulators benchmarks

bench: setup
	$(PY) -m benchmarks --json $(BENCH_JSON)
	@echo "named figures: $(BENCH_JSON)"

lab-up: setup
	$(VENV)/bin/coldvault-lab up

lab-down:
	$(VENV)/bin/coldvault-lab down

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

"""Benchmarks: ``python -m benchmarks [name ...]`` (``make bench``).

Every module ``benchmarks/bench_<name>.py`` defines ``run() -> list[str]`` returning the
report lines; ``__main__`` discovers and runs them in name order and prints the reports.
Benchmarks use the emulated hardware and seeded data, so runs are comparable.
"""

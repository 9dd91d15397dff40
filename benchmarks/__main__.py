"""Run every ``benchmarks/bench_*.py`` module (or only those named) and print its report."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(here)])
        if info.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = discover()
    if {"-h", "--help"} & set(argv):
        print("usage: python -m benchmarks [NAME ...]\n\nRun every benchmark, or only those "
              f"named (with or without the bench_ prefix): {', '.join(names)}.\n"
              "See docs/benchmarks.md for what each measures and its environment variables.")
        return 0
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in argv]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    for name in wanted or names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name} ==")
        start = time.perf_counter()
        for line in module.run():
            print(line, flush=True)
        print(f"-- {name} took {time.perf_counter() - start:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

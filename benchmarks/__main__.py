"""Run every ``benchmarks/bench_*.py`` module (or only those named), print each report and
optionally write the named figures as JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import pkgutil
import sys
import time
from pathlib import Path

from benchmarks import FIGURES


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(here)])
        if info.name.startswith("bench_")
    )


def _parser(names: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every benchmark, or only those named (with or without the bench_ "
        f"prefix): {', '.join(names)}. See docs/benchmarks.md for what each measures and "
        "its environment variables.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="write the named figures (floats) to FILE")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (also COLDVAULT_BENCH_QUICK=1): proves every figure "
                        "is produced; the values are not comparable")
    return parser


def main(argv: list[str]) -> int:
    names = discover()
    args = _parser(names).parse_args(argv)
    quick = args.quick or os.environ.get("COLDVAULT_BENCH_QUICK", "") not in ("", "0")
    wanted = [a if a.startswith("bench_") else f"bench_{a}" for a in args.names]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    found: dict[str, float] = {}
    for name in wanted or names:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name} ==" + (" (quick)" if quick else ""))
        start = time.perf_counter()
        figures, lines = module.figures(quick)
        for line in lines:
            print(line, flush=True)
        print(f"-- {name} took {time.perf_counter() - start:.1f} s\n")
        found.update(figures)
    unnamed = sorted(set(found) - set(FIGURES))
    if unnamed:
        raise ValueError(f"benchmarks produced unnamed figures: {unnamed}")
    print("named figures:")
    for key in FIGURES:
        value = found.get(key)
        print(f"   {key:<30} " + ("not measured" if value is None else f"{value:.4g}"))
    if args.json is not None:
        figures = {k: float(found[k]) for k in FIGURES if k in found}
        bad = [k for k, v in figures.items() if not math.isfinite(v)]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"figures written to {args.json}")
        # a run of only some benchmarks writes only their figures
        missing = [] if wanted else [k for k in FIGURES if k not in figures]
        if missing or bad:
            print(f"missing: {', '.join(missing) or '-'}; not finite: {', '.join(bad) or '-'}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

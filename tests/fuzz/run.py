"""``make fuzz``: every target for a time budget, executions counted, a table and JSON.

    python -m tests.fuzz.run [--seconds S] [--json build/fuzz.json] [TARGET ...]

Each target first replays its corpus, then runs batches of mutated inputs (random seeds,
:func:`tests.fuzz.mutate.inputs`) until its time budget is spent. An input that escapes with
a non-domain error or blows the time or memory bound is written to
``build/fuzz-failures/<target>/<sha256>`` and the run exits 1; fix the parser, then keep the
input as ``tests/fuzz/corpus/<target>/regress-<what>``. Exit 0 when every target stayed clean.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings

from tests.fuzz.harness import MEMORY_LIMIT, TIME_LIMIT, Outcome, corpus, run_input
from tests.fuzz.mutate import inputs
from tests.fuzz.targets import TARGETS, Target

FAILURES = Path("build") / "fuzz-failures"
BATCH = 200


class _Stats:
    def __init__(self) -> None:
        self.execs = self.rejected = 0
        self.slowest = 0.0
        self.peak = 0
        self.failures: list[Outcome] = []

    def add(self, outcome: Outcome) -> None:
        self.execs += 1
        self.rejected += outcome.error is not None
        self.slowest = max(self.slowest, outcome.seconds)
        self.peak = max(self.peak, outcome.peak_bytes)
        if not outcome.ok:
            self.failures.append(outcome)


def fuzz_target(target: Target, seconds: float, rng: random.Random) -> _Stats:
    stats = _Stats()
    seeds = tuple(data for _f, data in corpus(target.name))
    for data in seeds:
        stats.add(run_input(target, data))
    deadline = time.monotonic() + seconds

    @settings(
        max_examples=BATCH, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(inputs(seeds))
    def batch(data: bytes) -> None:
        stats.add(run_input(target, data))

    while time.monotonic() < deadline and len(stats.failures) < 5:
        seed(rng.getrandbits(64))(batch)()
    return stats


def _save(outcome: Outcome) -> Path:
    folder = FAILURES / outcome.target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / outcome.digest
    path.write_bytes(outcome.data)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="budget per target")
    parser.add_argument("--json", type=Path, default=Path("build") / "fuzz.json")
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run")
    parser.add_argument("targets", nargs="*", choices=[[], *sorted(TARGETS)], default=[])
    args = parser.parse_args(argv)
    names = args.targets or sorted(TARGETS)
    run_seed = args.seed if args.seed is not None else random.SystemRandom().getrandbits(32)
    rng = random.Random(run_seed)
    rows, bad = [], 0
    out = sys.stdout
    out.write(f"fuzzing {len(names)} targets, {args.seconds:g} s each (seed {run_seed});"
              f" bounds per input: {TIME_LIMIT:g} s, {MEMORY_LIMIT // 2**20} MiB\n")  # fmt: skip
    out.write(f"{'target':16} {'execs':>8} {'execs/s':>8} {'rejected':>9} {'slowest':>9}"
              f" {'peak MiB':>9} {'corpus':>7}  failures\n")  # fmt: skip
    for name in names:
        start = time.monotonic()
        stats = fuzz_target(TARGETS[name], args.seconds, rng)
        elapsed = time.monotonic() - start
        saved = [str(_save(f)) for f in stats.failures]
        bad += len(saved)
        row = {
            "target": name, "what": TARGETS[name].what, "execs": stats.execs,
            "seconds": round(elapsed, 2), "execs_per_second": round(stats.execs / elapsed, 1),
            "rejected": stats.rejected, "slowest_input_seconds": round(stats.slowest, 4),
            "peak_bytes": stats.peak, "corpus": len(corpus(name)),
            "failures": [
                {"file": p, "problem": f.problem}
                for p, f in zip(saved, stats.failures, strict=True)
            ],
        }  # fmt: skip
        rows.append(row)
        out.write(
            f"{name:16} {stats.execs:8d} {row['execs_per_second']:8.1f} {stats.rejected:9d}"
            f" {stats.slowest:8.3f}s {stats.peak / 2**20:9.1f} {row['corpus']:7d}  {len(saved)}\n"
        )
        for path, f in zip(saved, stats.failures, strict=True):
            out.write(f"    {path}: {f.problem}\n")
        out.flush()
    total = sum(r["execs"] for r in rows)
    out.write(f"{'total':16} {total:8d}   failures: {bad}\n")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(
        {"seed": run_seed, "seconds_per_target": args.seconds, "time_limit": TIME_LIMIT,
         "memory_limit": MEMORY_LIMIT, "total_execs": total, "failures": bad, "targets": rows},
        indent=2,
    ) + "\n")  # fmt: skip
    out.write(f"wrote {args.json}\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

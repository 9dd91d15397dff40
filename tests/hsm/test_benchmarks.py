"""``python -m benchmarks --quick --json FILE`` writes every named figure as a finite float.

Only the presence and type of the figures are checked, never their values (timings are not
asserted in tests)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import FIGURES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.lab
@pytest.mark.slow
def test_quick_run_writes_every_named_figure(softhsm_lab, tmp_path: Path) -> None:
    out = tmp_path / "figures" / "bench.json"
    env = {**os.environ, "COLDVAULT_BENCH_DIR": str(tmp_path), "COLDVAULT_BENCH_QUICK": "1"}
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "benchmarks", "--json", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert set(figures) == set(FIGURES)
    for name, value in figures.items():
        assert isinstance(value, float) and math.isfinite(value), name
    assert f"figures written to {out}" in done.stdout


def test_only_named_benchmarks_run_and_unknown_names_are_refused() -> None:
    done = subprocess.run(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "benchmarks", "nonesuch"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 2 and "unknown benchmark(s): bench_nonesuch" in done.stdout

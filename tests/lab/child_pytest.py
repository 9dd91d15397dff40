"""Run a child pytest with the root lab fixtures on a generated test file (for the tests of
the test infrastructure itself: cleanup after a killed run, isolation between workers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: variables of this pytest process that must not leak into the child's own lab
_INHERITED = ("SOFTHSM2_CONF", "PCSCLITE_CSOCK_NAME", "PYTEST_ADDOPTS", "PYTEST_CURRENT_TEST")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _INHERITED and not k.startswith("PYTEST_XDIST")}
    env.update(extra)
    return env


def child_argv(test_file: Path, *options: str) -> list[str]:
    """``python -m pytest`` on ``test_file`` with tests/conftest.py as its only conftest and
    none of the project's pytest settings (so no -n, no timeouts) unless given here."""
    return [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
        "--rootdir", str(test_file.parent), "-c", os.devnull, *options, str(test_file),
    ]


def popen(test_file: Path, *options: str, **extra_env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        child_argv(test_file, *options), cwd=ROOT, env=child_env(**extra_env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )

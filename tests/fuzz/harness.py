"""Running one fuzz input: only domain errors may escape, and time and memory are bounded.

:func:`run_input` cuts the input to the target's size cap, runs the target under a watchdog
(:data:`TIME_LIMIT` seconds of wall time, enforced with ``SIGALRM``) and ``tracemalloc``
(:data:`MEMORY_LIMIT` bytes of peak Python allocation), and returns an :class:`Outcome`.
:func:`check_input` turns any non-domain exception, a blown time or memory bound into an
``AssertionError`` naming the target and the input, so a harness fails on it.
"""

from __future__ import annotations

import hashlib
import signal
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coldvault.errors import ColdvaultError
from tests.fuzz.targets import TARGETS, Target

CORPUS = Path(__file__).resolve().parent / "corpus"
#: Wall-clock seconds one input may take before it counts as a hang (a bound, not a speed
#: target: the slowest corpus input takes well under a second).
TIME_LIMIT = 20.0
#: Peak bytes one input may allocate (tracemalloc), far above what any valid request needs.
MEMORY_LIMIT = 64 * 1024 * 1024


class InputTimedOut(BaseException):
    """Raised by the watchdog; a BaseException so no parser's ``except Exception`` hides it."""


@dataclass(frozen=True)
class Outcome:
    target: str
    data: bytes
    error: BaseException | None  # None: parsed; a ColdvaultError: rejected cleanly
    seconds: float
    peak_bytes: int

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def problem(self) -> str | None:
        if isinstance(self.error, InputTimedOut):
            return f"took more than {TIME_LIMIT:.0f} s"
        if self.error is not None and not isinstance(self.error, ColdvaultError):
            return f"raised {type(self.error).__name__}: {self.error}"
        if self.peak_bytes > MEMORY_LIMIT:
            return f"allocated {self.peak_bytes:,} bytes at peak (limit {MEMORY_LIMIT:,})"
        return None

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    def expire(_signum: int, _frame: object) -> None:
        raise InputTimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_input(target: Target, data: bytes, *, trace_memory: bool = True) -> Outcome:
    data = data[: target.max_input]
    error: BaseException | None = None
    if trace_memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
    start = time.perf_counter()
    try:
        with _watchdog(TIME_LIMIT):
            target.run(data)
    except InputTimedOut as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - classifying every exception is the point
        error = exc
    seconds = time.perf_counter() - start
    peak = 0
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return Outcome(target.name, data, error, seconds, peak)


def check_input(name: str, data: bytes) -> Outcome:
    """Run ``data`` through target ``name``; fail (AssertionError) on anything but a clean
    parse or a domain error within the bounds."""
    outcome = run_input(TARGETS[name], data)
    assert outcome.ok, (
        f"fuzz target {name}: input {outcome.digest} ({len(outcome.data)} bytes,"
        f" {outcome.data[:80]!r}...) {outcome.problem}"
    )
    return outcome


def corpus(name: str) -> list[tuple[str, bytes]]:
    """The kept corpus of target ``name``: (file name, bytes), sorted by name."""
    folder = CORPUS / name
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]

"""The bounded fuzz run of ``make test``: every kept corpus input replayed, then a few dozen
mutated inputs per target (deterministic: ``derandomize``). Only domain errors may escape a
parser, within the time and memory bounds of :mod:`tests.fuzz.harness`. ``make fuzz`` runs
the same targets for longer (``python -m tests.fuzz.run``)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from coldvault.errors import ColdvaultError
from tests.fuzz.harness import (
    MEMORY_LIMIT,
    InputTimedOut,
    check_input,
    corpus,
    run_input,
)
from tests.fuzz.mutate import inputs
from tests.fuzz.targets import TARGETS, Target

EXAMPLES = 20
NAMES = sorted(TARGETS)


@pytest.mark.parametrize("name", NAMES)
def test_corpus_replays_cleanly(name: str) -> None:
    entries = corpus(name)
    assert entries, f"tests/fuzz/corpus/{name}/ is empty"
    for _file, data in entries:
        check_input(name, data)


@pytest.mark.parametrize("name", NAMES)
def test_mutated_inputs_raise_only_domain_errors(name: str) -> None:
    seeds = tuple(data for _f, data in corpus(name))

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(inputs(seeds))
    def run(data: bytes) -> None:
        check_input(name, data)

    run()


def test_every_seed_corpus_holds_a_valid_input_somewhere() -> None:
    """The corpus is worth mutating: for most targets at least one seed parses cleanly."""
    rejected_everything = [
        name for name in NAMES
        if all(run_input(TARGETS[name], d).error is not None for _f, d in corpus(name))
    ]  # fmt: skip
    # the approvals/backup-record seeds are well-formed files whose checks need state the
    # fuzzer does not have (a verified roster, a real backup), so they end in a domain error
    assert set(rejected_everything) <= {"backup-record"}, rejected_everything


# ------------------------------------------------------------------ the harness can fail


def _boom(exc: BaseException) -> Target:
    def run(_data: bytes) -> None:
        raise exc

    return Target("boom", run, "raises")


def test_a_non_domain_exception_fails_the_harness() -> None:
    outcome = run_input(_boom(IndexError("index out of range")), b"x")
    assert not outcome.ok and outcome.problem == "raised IndexError: index out of range"
    assert run_input(_boom(ColdvaultError("bad input")), b"x").ok


def test_a_hang_and_a_memory_blowup_fail_the_harness() -> None:
    assert run_input(_boom(InputTimedOut()), b"x").problem is not None

    def hog(_data: bytes) -> None:
        block = bytearray(MEMORY_LIMIT + 1)
        del block

    outcome = run_input(Target("hog", hog, "allocates"), b"x")
    assert outcome.peak_bytes > MEMORY_LIMIT
    assert outcome.problem is not None and outcome.problem.startswith("allocated")


def test_inputs_are_cut_to_the_targets_cap() -> None:
    seen: list[int] = []
    target = Target("len", lambda d: seen.append(len(d)), "length", max_input=10)
    run_input(target, b"y" * 100)
    assert seen == [10]

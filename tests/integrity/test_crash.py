"""Crash consistency: a signing session SIGKILLed at each durable step, then restarted.

After every kill: the appliance restarts cleanly (the trail verifies against the HSM anchor,
the ledger agrees with the trail, interrupted requests are settled); no response is stored
without its ``signature`` audit entry; no request has two signatures; and presenting the
request again gives the operator the response (re-shown if it was signed, signed afresh
with fresh approvals if it never was).

``make crash-test`` runs many sessions with exact and random kill points
(``CRASH_SESSIONS``, default 200 there); ``make test`` runs each exact point once, plus
four sessions (two exact, two at random times) as a bounded check of the long test.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from coldvault.records.responses import ResponseStore

from .conftest import World

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
POINTS = ("received", "approved", "signing-audited", "hsm-signed", "response-pending",
          "signature-audited", "response-committed", "ledger-signed", "shown")


def _run_child(world: World, *, seed: int, point: str | None = None,
               delay: float | None = None) -> int:
    spec = {"root": str(world.root), "module_path": world.module_path,
            "token_label": world.token_label, "descriptor": world.descriptor,
            "pay_to": world.pay_to, "amount": 1_000, "seed": seed, "point": point,
            "delay": delay}
    done = subprocess.run(  # noqa: S603 - our own test program
        [sys.executable, "-m", "tests.integrity.crash_child", json.dumps(spec)],
        cwd=ROOT, env=dict(os.environ, CRASH_HSM_PIN=world.user_pin), capture_output=True,
        text=True, timeout=120, check=False,
    )
    if done.returncode not in (0, -9):
        raise AssertionError(done.stderr[-3000:])
    return done.returncode


def _trail(world: World) -> list[dict]:
    if not world.trail.exists():
        return []
    return [json.loads(line) for line in world.trail.read_text().splitlines()]


def check_after_kill(world: World, seed: int) -> str:
    """The invariants after a kill; returns how the operator got the response."""
    request = world.request(1_000, seed)
    digest = __import__("hashlib").sha256(request.payload).hexdigest()
    with world.appliance() as app:
        app.start()  # restart is clean: anchor, trail, ledger and responses reconciled
        entries = _trail(world)
        signatures = Counter(e["fields"]["sha256"] for e in entries
                             if e["event"] == "signature")
        assert all(n == 1 for n in signatures.values()), "a request was signed twice"
        store = ResponseStore(world.state / "responses")
        assert store.pending() == [], "a pending response survived the restart"
        for stored in store.committed():
            assert stored in signatures, "a response exists without its audit record"
            response = store.get(stored)
            assert response is not None
            sha = [e["fields"]["response_sha256"] for e in entries
                   if e["event"] == "signature" and e["fields"]["sha256"] == stored]
            assert sha == [response.sha256]
        assert app.ledger is not None
        assert app.ledger.signed_digests() == set(signatures)
        was_signed = digest in signatures
        result = app.handle(request)  # the operator presents the request again
        app.show(result.frames)
        assert result.reshown == was_signed
    signatures = Counter(e["fields"]["sha256"] for e in _trail(world)
                         if e["event"] == "signature")
    assert signatures[digest] == 1
    return "reshown" if was_signed else "signed"


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_step(world: World, point: str) -> None:
    seed = 100 + POINTS.index(point)
    assert _run_child(world, seed=seed, point=point) == -9
    how = check_after_kill(world, seed)
    signed_before_kill = POINTS.index(point) >= POINTS.index("signature-audited")
    assert how == ("reshown" if signed_before_kill else "signed")


@pytest.mark.crash
def test_many_sessions_killed_at_exact_and_random_points(world: World) -> None:
    sessions = int(os.environ.get("CRASH_SESSIONS", "4"))
    rng = random.Random(int(os.environ.get("CRASH_SEED", "1")))  # noqa: S311 - test schedule
    outcomes: Counter[str] = Counter()
    for i in range(sessions):
        seed = 1_000 + i
        if i % 2 == 0:
            code = _run_child(world, seed=seed, point=POINTS[(i // 2) % len(POINTS)])
        else:
            code = _run_child(world, seed=seed, delay=rng.uniform(0.0, 0.35))
        outcomes["killed" if code == -9 else "completed"] += 1
        outcomes[check_after_kill(world, seed)] += 1
    print(f"crash test: {sessions} sessions, {outcomes['killed']} killed, "
          f"{outcomes['completed']} completed before the timer, 0 violations, "
          f"{outcomes['reshown']} responses re-shown, {outcomes['signed']} signed on retry, "
          "0 lost")
    assert outcomes["killed"] >= sessions // 2

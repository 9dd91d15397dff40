"""The three state attacks of an insider who can write to the state directory but does not
know the HSM PIN, on the real SoftHSM token: each is refused at start-up, with a reason."""

from __future__ import annotations

import sqlite3

import pytest

from coldvault.policy.errors import DailyLimitExceeded
from coldvault.quorum.documents import ConfigRollback
from coldvault.records.anchor import StateRollback
from coldvault.records.reconcile import LedgerDisagrees

from .conftest import World

pytestmark = pytest.mark.lab


def _events(world: World) -> list[str]:
    import json

    return [json.loads(line)["event"] for line in world.trail.read_text().splitlines()]


def test_zeroed_daily_totals_are_refused(world: World) -> None:
    result = world.sign(1_000_000, seed=1)
    assert result.response
    with pytest.raises(DailyLimitExceeded):
        world.sign(1_000_000, seed=2)  # over the per-day limit
    with sqlite3.connect(world.ledger) as db:
        db.execute("UPDATE daily_totals SET total = '0'")
    with world.appliance() as app, pytest.raises(LedgerDisagrees) as info:
        app.start()
    assert "total for acme-btc BTC is 0" in info.value.message
    assert _events(world)[-1] == "refusal"


def test_deleted_ledger_does_not_make_an_older_roster_acceptable(world: World) -> None:
    with world.appliance() as app:
        app.start()  # roster v2 is now in force, and anchored in the HSM
    world.ledger.unlink()
    with world.appliance(rosters=(1,)) as app, pytest.raises(ConfigRollback):
        app.start()
    assert _events(world)[-1] == "refusal"


def test_deleted_audit_trail_is_refused(world: World) -> None:
    with world.appliance() as app:
        app.start()
    world.trail.unlink()
    with world.appliance() as app, pytest.raises(StateRollback) as info:
        app.start()
    assert "audit.jsonl is missing" in info.value.message


def test_truncated_audit_trail_is_refused(world: World) -> None:
    world.sign(1_000_000, seed=3)
    lines = world.trail.read_bytes().splitlines(keepends=True)
    world.trail.write_bytes(b"".join(lines[:4]))  # a valid, shorter chain
    world.ledger.unlink()  # and the ledger's copy of the sealed-through mark with it
    with world.appliance() as app, pytest.raises(StateRollback) as info:
        app.start()
    assert "it has 4 entries but the HSM anchors entry" in info.value.message


def test_replaced_audit_trail_is_refused(world: World) -> None:
    """A trail as long as the anchored one but not the same (rewritten from scratch)."""
    with world.appliance() as app:
        app.start()
    original = world.trail.read_bytes()
    world.trail.unlink()
    world.ledger.unlink()
    from coldvault.records.audit import AuditLog

    with AuditLog(world.trail) as fake:
        for _ in range(len(original.splitlines()) + 2):
            fake.append("startup", {"forged": True})
    with world.appliance() as app, pytest.raises(StateRollback) as info:
        app.start()
    # unsealed forgeries fail the anchored seal mark; the anchored head would catch a
    # forgery sealed by some other key before that
    assert info.value.what == "audit trail"


def test_limits_come_from_the_trail_while_running(world: World) -> None:
    """Zeroing the SQLite totals under a running appliance re-opens nothing."""
    with world.appliance() as app:
        app.start()
        app.show(app.handle(world.request(1_000_000, seed=11)).frames)
        with sqlite3.connect(world.ledger) as db:
            db.execute("UPDATE daily_totals SET total = '0'")
        with pytest.raises(DailyLimitExceeded):
            app.handle(world.request(1_000_000, seed=12))


def test_resubmitted_signed_request_is_reshown_not_signed_again(world: World) -> None:
    first = world.sign(900_000, seed=21)
    assert first.audit_seq >= 0 and len(first.audit_head) == 64
    again = world.sign(900_000, seed=21)
    assert again.reshown and again.response == first.response
    assert (again.audit_seq, again.audit_head) == (first.audit_seq, first.audit_head)
    events = _events(world)
    assert events.count("signature") == 1 and events.count("reshown") == 1


def test_a_failing_display_never_says_nothing_was_signed(world: World) -> None:
    from appliance.session import SignedNotShown

    with world.appliance() as app:
        app.start()
        result = app.handle(world.request(800_000, seed=31))
        (world.root / "response").write_text("a file where the frames directory goes")
        with pytest.raises(SignedNotShown) as info:
            app.show(result.frames)
    assert "WAS signed" in info.value.message and "nothing was signed" not in info.value.message
    again = world.sign(800_000, seed=31)
    assert again.reshown and again.response == result.response

"""The three state attacks of an insider who can write to the state directory but does not
know the HSM PIN, on the real SoftHSM token: each is refused at start-up, with a reason."""

from __future__ import annotations

import json
import sqlite3

import pytest

from coldvault.errors import EXIT_INTERNAL, exit_status
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
    assert "Present the same request again to re-show the stored response" in info.value.message
    # not bad input (2), not a refusal (1): the work is done, the appliance's own step failed
    assert exit_status(info.value) == EXIT_INTERNAL
    again = world.sign(800_000, seed=31)
    assert again.reshown and again.response == result.response


def test_every_signed_response_carries_its_audit_head(world: World) -> None:
    """The signed PSBT holds the audit head it follows (its ``signing`` entry) in a global
    proprietary field; a re-shown response holds the same; the PSBT stays readable by an
    independent parser (embit), which keeps the field."""
    from embit.psbt import PSBT

    from coldvault.requests.bitcoin.request import AUDIT_KEY_DATA, audit_stamp_of

    first = world.sign(700_000, seed=41)
    stamp = audit_stamp_of(first.response)
    assert stamp is not None
    assert (stamp.seq, stamp.head.hex()) == (first.audit_seq, first.audit_head)
    trail = [json.loads(line) for line in world.trail.read_text().splitlines()]
    signing = [e for e in trail if e["event"] == "signing"][-1]
    assert (signing["seq"], signing["hash"]) == (first.audit_seq, first.audit_head)
    assert audit_stamp_of(world.sign(700_000, seed=41).response) == stamp  # re-shown
    parsed = PSBT.parse(first.response)
    key = b"\xfc" + AUDIT_KEY_DATA
    assert parsed.unknown[key] == stamp.seq.to_bytes(8, "big") + stamp.head

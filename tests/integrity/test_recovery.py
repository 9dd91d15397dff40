"""Recovery of the appliance's state directory on the real SoftHSM token:
``coldvault audit repair-tail`` (a torn last line moved aside, never deleted, after the rest
was checked against the HSM anchor) and ``coldvault state reset`` (a lost state directory
started again from the anchor and the signed documents, with the admin quorum)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.recovery import StateNotLost, StateReset, reset_state
from coldvault.ceremonies.params import CeremonyParams
from coldvault.config import load_config
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_REFUSED, ColdvaultError, QuorumError
from coldvault.quorum.approvals import Approval
from coldvault.quorum.errors import ThresholdNotMet
from coldvault.quorum.roster import Roster
from coldvault.records.audit import torn_aside_path, verify
from coldvault.records.errors import AuditMalformed
from coldvault.records.transcript import verify as transcript_verify
from tests.ceremony.support import ScriptedOperator
from tests.domain.cards import SoftCard

from .conftest import World

pytestmark = pytest.mark.lab

TORN = b'{"event":"signature","fields":{"sha256":"ab'  # a crash in the middle of an append


def _repair(world: World) -> tuple[int, dict]:
    args = ["audit", "repair-tail", "--config", str(world.config()), "--allow-emulated", "--json"]
    result = CliRunner().invoke(main, args, input=world.user_pin + "\n")
    return result.exit_code, json.loads(result.stdout)


def test_repair_tail_moves_the_torn_line_aside_and_records_it(world: World) -> None:
    world.sign(1_000, seed=41)
    code, intact = _repair(world)
    assert code == EXIT_REFUSED and intact["error"] == "audit-tail-intact"

    whole = world.trail.read_bytes()
    world.trail.write_bytes(whole + TORN)
    with pytest.raises(AuditMalformed), world.appliance() as app:
        app.start()  # a torn tail: the appliance stays down

    code, repaired = _repair(world)
    assert code == EXIT_DONE, repaired
    aside = torn_aside_path(world.trail, len(whole))
    assert repaired["moved_to"] == str(aside) and aside.read_bytes() == TORN  # never deleted
    assert repaired["torn_bytes"] == len(TORN)
    assert world.trail.read_bytes().startswith(whole)
    report = verify(world.trail, world.audit_public_key)
    lines = [json.loads(x) for x in world.trail.read_text().splitlines()]
    assert [e["event"] for e in lines[-2:]] == ["repair", "seal"]
    assert lines[-2]["fields"]["torn_bytes"] == len(TORN)
    assert lines[-2]["seq"] == repaired["repair_seq"] and report.unsealed == 0

    # the appliance starts again and signs
    assert world.sign(1_000, seed=42).review.fingerprint


def test_repair_tail_refuses_a_cut_trail(world: World) -> None:
    world.sign(1_000, seed=43)
    lines = world.trail.read_bytes().splitlines(keepends=True)
    cut = b"".join(lines[:-2]) + TORN  # the anchored shutdown and seal are gone
    world.trail.write_bytes(cut)
    code, refused = _repair(world)
    assert code == EXIT_BAD_INPUT and refused["error"] == "audit-truncated"  # the ledger's mark
    world.ledger.rename(world.root / "ledger-aside.sqlite3")
    code, refused = _repair(world)
    assert code == EXIT_BAD_INPUT and refused["error"] == "state-rollback"  # the HSM anchor
    assert world.trail.read_bytes() == cut  # nothing changed, nothing moved
    assert not list(world.state.glob("audit.jsonl.torn-*"))


# ------------------------------------------------------------------ coldvault state reset
class SoftAdminCards:
    """The admins' cards as software stand-ins (tests/domain/cards.py) signing the real
    state-reset token; ``reset_state`` checks every signature against the roster itself."""

    def __init__(self, cards: list[SoftCard]) -> None:
        self.cards = cards

    def admin_signatures(self, run: object, roster: Roster, data: bytes, *, what: str,
                         refuse: object = None) -> tuple[Approval, ...]:  # fmt: skip
        return tuple(
            Approval(c.serial, roster.holder(c.serial).holder,  # type: ignore[union-attr]
                     "hk", c.sign(data))
            for c in self.cards
        )  # fmt: skip


def _reset(world: World, cards: list[SoftCard], name: str) -> StateReset:
    op = ScriptedOperator((r"^Reset the appliance state as shown\?$", True))
    params = CeremonyParams(actor="Olga Operator", transcript=world.root / f"{name}.jsonl")
    return reset_state(load_config(world.config()), world.user_pin, op,
                       SoftAdminCards(cards),  # type: ignore[arg-type]
                       params=params, reason="disk failed", allow_emulated=True)  # fmt: skip


def test_state_reset_after_a_lost_state_directory(world: World) -> None:
    world.sign(1_000, seed=51)
    with pytest.raises(StateNotLost):  # nothing is lost: refused, nothing changed
        _reset(world, world.admins[:2], "intact")
    args = ["state", "reset", "--config", str(world.config()), "--allow-emulated", "--operator",
            "Olga Operator", "--reason", "disk failed", "--json"]
    result = CliRunner().invoke(main, args, input=world.user_pin + "\n")
    assert result.exit_code == EXIT_REFUSED
    assert json.loads(result.stdout)["error"] == "state-not-lost"

    lines = world.trail.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"seq":3', b'"seq":9')  # damaged beyond repair
    world.trail.write_bytes(b"".join(lines))
    damaged = world.trail.read_bytes()
    with pytest.raises(ColdvaultError), world.appliance() as app:
        app.start()

    # approver cards are not the admin quorum: refused before anything is moved
    with pytest.raises(QuorumError):
        _reset(world, world.approvers[:2], "approvers")
    with pytest.raises(ThresholdNotMet):
        _reset(world, world.admins[:1], "one-admin")
    assert world.trail.read_bytes() == damaged

    done = _reset(world, world.admins[:2], "reset")
    assert done.approved_by == (world.admins[0].serial, world.admins[1].serial)
    aside = Path(done.moved_to)
    assert (aside / "audit.jsonl").read_bytes() == damaged  # moved aside, never deleted
    report = verify(world.trail, world.audit_public_key)
    entries = [json.loads(x) for x in world.trail.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["state-reset", "seal"] and report.unsealed == 0
    reset = entries[0]["fields"]
    assert reset["previous_anchor_seq"] == done.previous_anchor_seq >= 0
    assert [a["card_serial"] for a in reset["approvals"]] == list(done.approved_by)
    assert transcript_verify(Path(done.transcript)).status == "completed"

    # the appliance starts on the new state and signs again
    assert world.sign(1_000, seed=52).review.fingerprint

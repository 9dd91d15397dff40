"""Recovery of the appliance's state directory from the command line, on the real SoftHSM
token: ``coldvault audit repair-tail`` (a torn last line moved aside, never deleted, after
the rest was checked against the HSM anchor)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from appliance.cli import main
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_REFUSED
from coldvault.records.audit import torn_aside_path, verify
from coldvault.records.errors import AuditMalformed

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

"""``coldvault audit verify`` against the HSM anchor and the ledger: an auditor detects a
truncated trail and a tampered ledger from the command line."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

from appliance.cli import main
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE

from .conftest import World

pytestmark = pytest.mark.lab


def _verify(world: World, *extra: str, trail: str | None = None) -> tuple[int, dict]:
    args = ["audit", "verify", trail or str(world.trail), "--audit-pubkey",
            world.audit_public_key.hex(), "--json", *extra]
    result = CliRunner().invoke(main, args, input=world.user_pin + "\n")
    return result.exit_code, json.loads(result.stdout)


def test_audit_verify_checks_the_anchor_and_the_ledger(world: World) -> None:
    world.sign(1_000, seed=41)
    anchor = ["--anchor-config", str(world.config()), "--allow-emulated"]
    code, report = _verify(world, "--ledger", str(world.ledger), *anchor)
    assert code == EXIT_DONE, report
    assert report["checked"][-1] == "the ledger agrees"
    assert report["checked"][0].startswith("anchored through entry")

    # cut the last entries (the shutdown and its seal): the file alone still verifies,
    # checked against the anchor it does not
    lines = world.trail.read_text().splitlines(keepends=True)
    assert '"event":"seal"' in lines[-1]
    cut = world.root / "cut.jsonl"
    cut.write_text("".join(lines[:-2]))
    code, plain = _verify(world, trail=str(cut))
    assert code == EXIT_DONE and plain["ok"] is True
    code, anchored = _verify(world, *anchor, trail=str(cut))
    assert code == EXIT_BAD_INPUT and anchored["ok"] is False
    assert anchored["error"] == "state-rollback"

    with sqlite3.connect(world.ledger) as db:
        db.execute("UPDATE daily_totals SET total = '0'")
    code, report = _verify(world, "--ledger", str(world.ledger))
    assert code == EXIT_BAD_INPUT and report["error"] == "ledger-disagrees"

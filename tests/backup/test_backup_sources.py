"""``ceremony backup`` with a paper share sheet as a target, and with ``--seed generate``
(a new seed from dice + the first backup token's generator, sharded straight to the plan),
in process on the lab's SoftHSM backup tokens and in-process virtual cards."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from coldvault.backup.drill import DrillScenario
from coldvault.backup.plan import parse_plan
from coldvault.backup.record import load_record
from coldvault.backup.shares import share_facts
from coldvault.ceremonies.drill import RestoreDrill, restore_drill
from coldvault.ceremonies.sharding import RECORD_FILE, ShardBackup, shard_backup
from coldvault.crypto import mnemonics
from hardware_emulators.ceremony_driver import fair_dice
from tests.backup.conftest import ADMIN_PIN, USER_PIN
from tests.backup.lab_backup import direct_sessions
from tests.backup.lab_devices import LabDevices, RuleOperator, words_of
from tests.backup.plans import lab_plan
from tests.backup.test_backup_ceremony import SEED, assert_no_secret

pytestmark = pytest.mark.lab
SITES = ("site-a", "site-b", "site-c")
PAPER_TITLE = "the share of c-paper (site-c)"


def _rules(backup_tokens, *first):  # type: ignore[no-untyped-def]
    return (
        *first,
        (r"^Is this the approved plan", True),
        (r"^Run the drill", True),
        *[(f"^User PIN of backup token {backup_tokens.label(s)} ", backup_tokens.pin(s))
          for s in SITES],
        (r"^Card \w+: admin PIN$", ADMIN_PIN),
        (r"^Card \w+: user PIN$", USER_PIN),
    )  # fmt: skip


def _paper_plan(backup_tokens):  # type: ignore[no-untyped-def]
    text = lab_plan(backup_tokens.serials).replace('id = "lab-2of3"',
                                                   f'id = "paper-{uuid.uuid4().hex[:8]}"')
    text = text.replace('members = ["c-hsm", "c-card"]', 'members = ["c-hsm", "c-card", "c-paper"]')
    text += '\n[[sites.targets]]\nid = "c-paper"\nkind = "paper"\ncustodian = "FFFFC0DE0003"\n'
    return parse_plan(text)


def test_a_paper_sheet_is_shown_checked_never_stored_and_rebuilds_in_a_drill(
    backup_tokens, direct_card, softhsm_lab, tmp_path: Path
) -> None:
    plan = _paper_plan(backup_tokens)
    devices = LabDevices(softhsm_lab.module_path, direct_sessions(direct_card))
    typed = mnemonics.split_secret(SEED, 2, 3)[:2]
    op = RuleOperator(*_rules(backup_tokens, (r"^SLIP-39 share \d+$", list(typed))))
    op.rules.insert(0, (f"^When {re.escape(PAPER_TITLE)} is written down", ""))
    op.rules.insert(0, (f"^{re.escape(PAPER_TITLE)}, word \\d+$", words_of(op, PAPER_TITLE)))
    out = tmp_path / "backup"
    result = shard_backup(op, ShardBackup(actor="lead", transcript=tmp_path / "t.jsonl",
                                          plan=plan, out=out), devices)  # fmt: skip

    sheet = op.words[PAPER_TITLE]
    assert len(sheet) in (20, 33)  # one SLIP-39 share, nothing of any other
    facts = share_facts(" ".join(sheet))
    heading = (
        f"Paper share sheet c-paper, kept by FFFFC0DE0003 at site-c: share set "
        f"{facts.identifier}, group {facts.group + 1} of {facts.group_count} "
        f"({facts.group_threshold} groups needed), member {facts.member + 1} "
        f"({facts.member_threshold} of the group needed); the last 3 words are its checksum"
    )
    assert heading in op.said("info")
    assert f"{PAPER_TITLE} confirmed." in op.said("ok")
    assert op.clears >= 2  # the screen is cleared before and after the words
    record = load_record(out / RECORD_FILE)
    entry = record.entry("c-paper")
    assert (entry.site, entry.blob_sha256, entry.custodians) == ("site-c", "", ("FFFFC0DE0003",))
    assert "c-paper" not in result.blobs and not list(out.glob("*/c-paper*"))
    progress = json.loads((out / "progress.json").read_text())
    assert progress["targets"]["c-paper"] == "shown" and progress["status"] == "complete"
    steps = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [e["data"]["target"] for e in steps if e["step"] == "paper-share-shown"] == ["c-paper"]

    # site A lost: the paper sheet, typed by its keeper, is one of the shares used
    op = RuleOperator(
        (r"^Share words of c-paper at site-c, typed by its keeper$", " ".join(sheet)),
        *_rules(backup_tokens),
    )
    drill = restore_drill(op, RestoreDrill(
        actor="lead", plan=plan, backup_dir=out, scenario=DrillScenario.site_lost("site-a"),
        reports_dir=tmp_path / "drills"), devices)  # fmt: skip
    assert drill.report.passed, drill.report.reasons
    assert {s.target: s.status for s in drill.report.shares}["c-paper"] == "used"
    pins = [ADMIN_PIN, USER_PIN, *(backup_tokens.pin(s) for s in SITES)]
    assert_no_secret([tmp_path], [*typed, " ".join(sheet)], pins)


def test_seed_generate_shards_a_new_seed_to_the_plan(
    backup_tokens, direct_card, softhsm_lab, tmp_path: Path
) -> None:
    text = lab_plan(backup_tokens.serials)
    plan = parse_plan(text.replace('id = "lab-2of3"', f'id = "gen-{uuid.uuid4().hex[:8]}"'))
    devices = LabDevices(softhsm_lab.module_path, direct_sessions(direct_card))
    dice = fair_dice(seed=5, rolls=120)
    op = RuleOperator(*_rules(backup_tokens, (r"^Dice rolls \(digits 1-6", dice)))
    out = tmp_path / "backup"
    params = ShardBackup(actor="lead", transcript=tmp_path / "t.jsonl", plan=plan, out=out,
                         source="generate")
    result = shard_backup(op, params, devices)

    # the first HSM target's generator was mixed in, then every target was enrolled
    assert devices.tokens_opened[0] == backup_tokens.label("site-a")
    assert any("rolls accepted" in line for line in op.said("ok"))
    fingerprint = result.record.master_fingerprint
    assert any("Trial combine" in line and fingerprint in line for line in op.said("ok"))
    entries = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    opened = entries[0]["data"]["parameters"]
    assert opened["origin"] == "generate"
    sources = next(e["data"]["sources"] for e in entries if e["step"] == "entropy")
    assert sources["dice_rolls"] == 120
    assert {"seed-ready", "record-written", "trial-combine"} <= {e["step"] for e in entries}
    assert not any(e["step"] == "paper-share-shown" for e in entries)

    # a drill rebuilds the same new seed from two sites
    op = RuleOperator(*_rules(backup_tokens))
    drill = restore_drill(op, RestoreDrill(
        actor="lead", plan=plan, backup_dir=out, scenario=DrillScenario.site_lost("site-c"),
        reports_dir=tmp_path / "drills"), devices)  # fmt: skip
    assert drill.report.passed, drill.report.reasons
    assert drill.report.rebuilt_fingerprint == fingerprint
    # the dice never reach the disk
    pins = [ADMIN_PIN, USER_PIN, *(backup_tokens.pin(s) for s in SITES)]
    assert_no_secret([tmp_path], [], [*pins, dice, dice[:24]])

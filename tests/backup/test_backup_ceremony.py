"""``ceremony backup`` in process on the lab: the three SoftHSM backup tokens and three
virtual cards, the 2-of-3 site plan; every share read back; interruption and re-run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from coldvault.backup.drill import DrillScenario, run_drill
from coldvault.backup.plan import parse_plan
from coldvault.backup.record import parse_record
from coldvault.ceremonies.sharding import (
    BackupOutputExists,
    ShardBackup,
    load_backup,
    shard_backup,
)
from coldvault.crypto import mnemonics
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import Cancelled
from tests.backup.conftest import ADMIN_PIN, USER_PIN
from tests.backup.lab_backup import LabAccess, direct_sessions
from tests.backup.lab_devices import LabDevices, RuleOperator
from tests.backup.plans import lab_plan

pytestmark = pytest.mark.lab
SEED = bytes.fromhex("8dc652d6d6cd370d8c963141f6d79ba440300f25c467302c1d966bff8f62300d")
FINGERPRINT = master_fingerprint(SEED).hex()


def _plan(backup_tokens):
    text = lab_plan(backup_tokens.serials)
    return parse_plan(text.replace('id = "lab-2of3"', f'id = "cer-{uuid.uuid4().hex[:8]}"'))


def _operator(backup_tokens, shares: list[str], **extra) -> RuleOperator:
    token_pins = [
        (f"^User PIN of backup token {backup_tokens.label(site)} ", backup_tokens.pin(site))
        for site in ("site-a", "site-b", "site-c")
    ]
    return RuleOperator(
        *extra.get("first", []),
        (r"^Is this the approved plan", True),
        (r"^SLIP-39 share \d+$", list(shares)),
        *token_pins,
        (r"^Card \w+: admin PIN$", ADMIN_PIN),
        (r"^Card \w+: user PIN$", USER_PIN),
    )


def secrets_of(shares: list[str], pins: list[str]) -> list[bytes]:
    """What must never be on disk: the seed, every run of 4 words of a share, the PINs."""
    needles = [SEED, SEED.hex().encode(), *(p.encode() for p in pins)]
    for share in shares:
        words = share.split()
        needles += [" ".join(words[i : i + 4]).encode() for i in range(len(words) - 3)]
    return needles


def assert_no_secret(roots: list[Path], shares: list[str], pins: list[str]) -> None:
    files = [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]
    assert files
    needles = secrets_of(shares, pins)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle[:8]!r}... found in {path}"


def _assert_no_secret(root: Path, shares: list[str], tokens=None) -> None:
    pins = [ADMIN_PIN, USER_PIN]
    if tokens is not None:
        pins += [tokens.pin(s) for s in ("site-a", "site-b", "site-c")]
    assert_no_secret([root], shares, pins)


def test_backup_to_the_lab_plan_reads_back_and_survives_site_b_lost(
    backup_tokens, direct_card, softhsm_lab, tmp_path
) -> None:
    plan = _plan(backup_tokens)
    cards = direct_sessions(direct_card)
    devices = LabDevices(softhsm_lab.module_path, cards)
    typed = mnemonics.split_secret(SEED, 2, 3)[:2]
    op = _operator(backup_tokens, typed)
    out = tmp_path / "backup"
    params = ShardBackup(
        actor="lead", transcript=tmp_path / "t.jsonl", plan=plan, out=out,
        expect_fingerprint=FINGERPRINT,
    )  # fmt: skip
    result = shard_backup(op, params, devices)

    record = parse_record((out / "backup-record.json").read_bytes())
    assert record.master_fingerprint == FINGERPRINT
    assert record.plan_sha256 == plan.sha256
    assert sorted(result.blobs) == ["a-card", "a-hsm", "b-card", "b-hsm", "c-card", "c-hsm"]
    progress = json.loads((out / "progress.json").read_text())
    assert progress["status"] == "complete"
    assert set(progress["targets"].values()) == {"verified"}
    # every target was opened twice: enrolment, then read-back through its own device
    assert sorted(devices.tokens_opened) == sorted(
        [t.label for t in plan.targets if t.kind.value == "hsm"] * 2
    )
    said = op.said("ok")
    assert any("Trial combine" in line and FINGERPRINT in line for line in said)
    entries = [json.loads(line)["step"] for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert entries.count("share-read-back") == 6 and "trial-combine" in entries
    _assert_no_secret(tmp_path, typed, backup_tokens)
    assert_no_secret([Path(softhsm_lab.token_dir)], typed, [])

    # what was written is a real backup: site B lost still rebuilds the seed
    record_bytes, blobs = load_backup(out)
    access = LabAccess(backup_tokens, cards, plan.id)
    report = run_drill(plan, parse_record(record_bytes), DrillScenario.site_lost("site-b"),
                       blobs, access)  # fmt: skip
    assert report.passed, report.reasons
    assert report.rebuilt_fingerprint == FINGERPRINT

    # a second run into the same directory is refused and says why
    again = _operator(backup_tokens, typed)
    with pytest.raises(BackupOutputExists, match="is complete"):
        shard_backup(again, params.__class__(
            actor="lead", transcript=tmp_path / "t2.jsonl", plan=plan, out=out),
            devices)  # fmt: skip


def test_an_interrupted_backup_names_what_was_written_and_a_rerun_refuses(
    backup_tokens, direct_card, softhsm_lab, tmp_path
) -> None:
    plan = _plan(backup_tokens)
    devices = LabDevices(softhsm_lab.module_path, direct_sessions(direct_card))
    typed = mnemonics.split_secret(SEED, 2, 3)[:2]
    # the read-back of b-hsm is interrupted (Ctrl-C at its token PIN)
    b_pins: list = [backup_tokens.pin("site-b"), KeyboardInterrupt()]
    op = _operator(
        backup_tokens, typed,
        first=[(f"^User PIN of backup token {backup_tokens.label('site-b')} ", b_pins)],
    )  # fmt: skip
    out = tmp_path / "backup"
    params = ShardBackup(actor="lead", transcript=tmp_path / "t.jsonl", plan=plan, out=out)
    with pytest.raises(Cancelled):
        shard_backup(op, params, devices)
    progress = json.loads((out / "progress.json").read_text())
    assert progress["status"] == "in-progress"
    assert progress["targets"]["a-hsm"] == "verified"
    assert progress["targets"]["b-hsm"] == "written"
    assert progress["targets"]["c-card"] == "written"
    last = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[-1])
    assert last["data"]["status"] == "aborted"

    rerun = _operator(backup_tokens, typed)
    with pytest.raises(BackupOutputExists) as info:
        shard_backup(rerun, ShardBackup(actor="lead", transcript=tmp_path / "t2.jsonl",
                                        plan=plan, out=out), devices)  # fmt: skip
    message = info.value.message
    assert "in-progress" in message and "a-hsm" in message and "c-card" in message
    assert "never resumed" in message
    _assert_no_secret(tmp_path, typed, backup_tokens)


def test_a_passphrase_is_typed_twice_and_needed_to_rebuild(
    backup_tokens, direct_card, softhsm_lab, tmp_path
) -> None:
    plan = _plan(backup_tokens)
    cards = direct_sessions(direct_card)
    devices = LabDevices(softhsm_lab.module_path, cards)
    typed = mnemonics.split_secret(SEED, 2, 3)[1:]
    op = _operator(
        backup_tokens, typed,
        first=[(r"^Passphrase of the shares", ["drill pass", "drill pass"]),
               (r"^Repeat passphrase of the shares", ["drill pas", "drill pass"])],
    )  # fmt: skip
    out = tmp_path / "backup"
    params = ShardBackup(actor="lead", transcript=tmp_path / "t.jsonl", plan=plan, out=out,
                         use_passphrase=True)  # fmt: skip
    shard_backup(op, params, devices)
    assert "The two entries differ; enter the PIN again." in op.said("warn")
    record_bytes, blobs = load_backup(out)
    record = parse_record(record_bytes)
    assert record.passphrase_protected
    access = LabAccess(backup_tokens, cards, plan.id)
    site_b = DrillScenario.site_lost("site-b")
    good = run_drill(plan, record, site_b, blobs, access, passphrase="drill pass")
    assert good.passed, good.reasons
    bad = run_drill(plan, record, site_b, blobs, access, passphrase="drill pas")
    assert not bad.passed and bad.rebuilt_fingerprint != FINGERPRINT
    _assert_no_secret(tmp_path, typed, backup_tokens)
    assert_no_secret([tmp_path], [], ["drill pass"])

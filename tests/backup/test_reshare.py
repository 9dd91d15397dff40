"""``backup reshare`` in process on the lab: custodian FFFFC0DE0002 departs; the admin quorum
(admin cards through pcscd) approves a new share set of the same seed for a plan with a new
custodian; the old set is retired and wiped where reachable (token share keys destroyed, old
blobs deleted); a drill offered a retired set's share fails naming the "retired set"."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from ceremony_scripts.hardware import ReaderCards
from coldvault.backup.approvals import RECORD_KIND, verify_signed
from coldvault.backup.drill import DrillScenario, named_scenario
from coldvault.backup.history import RETIRED_FILE, read_retired
from coldvault.backup.plan import parse_plan
from coldvault.backup.targets import share_key_id
from coldvault.ceremonies.drill import RestoreDrill, restore_drill
from coldvault.ceremonies.params import ParameterError
from coldvault.ceremonies.resharing import ReshareBackup, SetAlreadyRetired, reshare_backup
from coldvault.ceremonies.sharding import RECORD_FILE, ShardBackup, shard_backup
from coldvault.crypto import mnemonics
from tests.backup.lab_backup import direct_sessions
from tests.backup.lab_devices import LabDevices
from tests.backup.plans import lab_plan
from tests.backup.test_backup_ceremony import FINGERPRINT, SEED, assert_no_secret
from tests.backup.test_signed_records import _admins_sign, _operator
from tests.ceremony.chain import Genesis
from tests.ceremony.support import CardSlot

pytestmark = pytest.mark.lab
DEPARTED, SUCCESSOR = "FFFFC0DE0002", "FFFFC0DE0006"


def _plans(backup_tokens) -> tuple[Any, Any]:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    text = lab_plan(backup_tokens.serials)
    old = parse_plan(text.replace('id = "lab-2of3"', f'id = "old-{tag}"'))
    new = parse_plan(text.replace('id = "lab-2of3"', f'id = "new-{tag}"')
                     .replace(DEPARTED, SUCCESSOR))  # fmt: skip
    return old, new


def test_reshare_replaces_a_departed_custodian_and_retires_the_old_set(
    chain: Genesis, slot: CardSlot, backup_tokens, direct_card, softhsm_lab, tmp_path: Path
) -> None:
    roster = chain.genesis
    old_plan, new_plan = _plans(backup_tokens)
    devices = LabDevices(softhsm_lab.module_path, direct_sessions(direct_card))
    typed = mnemonics.split_secret(SEED, 2, 3)[:2]
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"

    op = _operator(backup_tokens, slot, (r"^SLIP-39 share \d+$", list(typed)))
    _admins_sign(slot, chain)
    shard_backup(op, ShardBackup(actor="lead", transcript=tmp_path / "backup.jsonl",
                                 plan=old_plan, out=old_dir, roster=roster),
                 devices, ReaderCards(op, allow_emulated=True))  # fmt: skip
    old_record = json.loads((old_dir / RECORD_FILE).read_text())
    old_a_blob = (old_dir / "site-a" / "a-hsm.sealed").read_bytes()

    # the new plan must have its own id
    with pytest.raises(ParameterError, match="its own id"):
        ReshareBackup(actor="lead", plan=old_plan, out=new_dir, roster=roster,
                      old_plan=old_plan, old_dir=old_dir,
                      lost=named_scenario(old_plan, f"{DEPARTED} lost"))  # fmt: skip

    params = ReshareBackup(actor="lead", transcript=tmp_path / "reshare.jsonl", plan=new_plan,
                           out=new_dir, roster=roster, old_plan=old_plan, old_dir=old_dir,
                           lost=named_scenario(old_plan, f"{DEPARTED} lost"))  # fmt: skip
    op = _operator(backup_tokens, slot)
    _admins_sign(slot, chain)  # approve the re-sharing
    _admins_sign(slot, chain)  # sign the new record
    result = reshare_backup(op, params, devices, ReaderCards(op, allow_emulated=True))
    assert slot.done()
    new_set = result.record.share_set.identifier
    old_set = old_record["share_set"]["identifier"]
    assert new_set != old_set and result.record.master_fingerprint == FINGERPRINT
    assert [a.holder for a in verify_signed(new_dir / RECORD_FILE, RECORD_KIND, roster)] == [
        "Dave Admin", "Erin Admin"]  # fmt: skip
    assert SUCCESSOR in {c for e in result.record.entries for c in e.custodians}
    assert DEPARTED not in {c for e in result.record.entries for c in e.custodians}

    # the old set: retired in both directories, wiped where reachable
    for directory in (old_dir, new_dir):
        (retired,) = read_retired(directory)
        assert (retired.share_set, retired.replaced_by_set) == (old_set, new_set)
    wiped = read_retired(old_dir)[0].wiped
    assert wiped["a-hsm"] == "share key destroyed in the token; sealed blob deleted"
    assert wiped["c-card"] == "sealed blob deleted"
    assert wiped["b-card"].startswith("unreachable (lost)")
    assert not list(old_dir.glob("*/*.sealed"))
    assert share_key_id(old_plan.id, "a-hsm") not in backup_tokens.key_ids("site-a")
    assert share_key_id(old_plan.id, "c-hsm") not in backup_tokens.key_ids("site-c")
    assert share_key_id(new_plan.id, "a-hsm") in backup_tokens.key_ids("site-a")
    steps = [json.loads(line)["step"] for line in (tmp_path / "reshare.jsonl").read_text()
             .splitlines()]  # fmt: skip
    assert {"admin-approval", "quorum-met", "seed-rebuilt", "old-set-retired",
            "backup-record-signed"} <= set(steps)  # fmt: skip

    # the new set passes a drill with site B lost
    site_b = DrillScenario.site_lost("site-b")
    op = _operator(backup_tokens, slot)
    drill = restore_drill(op, RestoreDrill(actor="lead", plan=new_plan, backup_dir=new_dir,
                                           scenario=site_b, reports_dir=tmp_path / "drills"),
                          devices)  # fmt: skip
    assert drill.report.passed, drill.report.reasons

    # a retired set's share in the new envelope: the drill fails naming the retired set
    (new_dir / "site-a" / "a-hsm.sealed").write_bytes(old_a_blob)
    op = _operator(backup_tokens, slot)
    drill = restore_drill(op, RestoreDrill(actor="lead", plan=new_plan, backup_dir=new_dir,
                                           scenario=site_b, reports_dir=tmp_path / "drills"),
                          devices)  # fmt: skip
    status = {s.target: (s.status, s.error) for s in drill.report.shares}
    assert status["a-hsm"] == ("failed", "backup-retired-share")
    assert any("'a-hsm' at 'site-a'" in r and f"retired set {old_set}" in r
               for r in drill.report.reasons)  # fmt: skip
    assert not drill.report.passed

    # the old directory itself is a retired set: a drill of it fails, a second reshare refuses
    op = _operator(backup_tokens, slot)
    drill = restore_drill(op, RestoreDrill(actor="lead", plan=old_plan, backup_dir=old_dir,
                                           scenario=site_b, reports_dir=tmp_path / "drills"),
                          devices)  # fmt: skip
    assert not drill.report.passed
    assert any(f"share set {old_set} is a retired set" in r for r in drill.report.reasons)
    again = ReshareBackup(actor="lead", transcript=tmp_path / "again.jsonl", plan=new_plan,
                          out=tmp_path / "again", roster=roster, old_plan=old_plan,
                          old_dir=old_dir, lost=named_scenario(old_plan, f"{DEPARTED} lost"))
    with pytest.raises(SetAlreadyRetired, match="is a retired set"):
        reshare_backup(_operator(backup_tokens, slot), again, devices, ReaderCards(op))

    pins = ["12345678", "123456", *(backup_tokens.pin(s) for s in ("site-a", "site-b", "site-c"))]
    assert_no_secret([old_dir, new_dir, tmp_path / "reshare.jsonl", tmp_path / "drills"],
                     typed, pins)  # fmt: skip
    assert (new_dir / RETIRED_FILE).is_file()

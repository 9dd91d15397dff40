"""The admin quorum signs the backup record and the drill report through the one card loop
(admin cards in a lab reader, through pcscd); the drill is appended to the appliance's audit
trail; a report or record whose signatures are missing, forged or not by admins is refused,
naming the cause."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from ceremony_scripts.drills import drill
from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.plans import backup
from coldvault.backup.approvals import RECORD_KIND, REPORT_KIND, verify_signed
from coldvault.backup.drill import DrillScenario
from coldvault.backup.history import verify_report
from coldvault.backup.plan import parse_plan
from coldvault.ceremonies.drill import RestoreDrill, restore_drill
from coldvault.ceremonies.sharding import RECORD_FILE, ShardBackup, shard_backup
from coldvault.crypto import mnemonics
from coldvault.quorum.documents import SignedDocumentInvalid, approvals_path
from coldvault.quorum.errors import BadApprovalSignature, ThresholdNotMet, WrongRole
from coldvault.records import audit
from coldvault.records.chain import walk
from tests.backup.conftest import ADMIN_PIN, ADMINS_AND_APPROVER, USER_PIN
from tests.backup.lab_backup import direct_sessions
from tests.backup.lab_devices import LabDevices, RuleOperator
from tests.backup.plans import lab_plan
from tests.backup.test_backup_ceremony import SEED, assert_no_secret
from tests.ceremony.chain import Genesis
from tests.ceremony.support import CardSlot

pytestmark = pytest.mark.lab

APPLIANCE = "vault-backup-1"
INSERT = "Admin approval {n} of 2: insert an admin card."
DAVE, ERIN, ALICE = ADMINS_AND_APPROVER
SITES = ("site-a", "site-b", "site-c")


def _operator(backup_tokens, slot: CardSlot, *first) -> RuleOperator:
    op = RuleOperator(
        *first,
        (r"^Is this the approved plan", True),
        (r"^Run the drill", True),
        *[(f"^User PIN of backup token {backup_tokens.label(s)} ", backup_tokens.pin(s))
          for s in SITES],
        (r"^Card \w+: admin PIN$", ADMIN_PIN),
        (r"^Card \w+: user PIN$", USER_PIN),
        (r"^User PIN for card \w+ \((Dave|Erin) Admin\)$", USER_PIN),
    )  # fmt: skip
    op.on_info = slot
    return op


def _admins_sign(slot: CardSlot, chain: Genesis) -> None:
    slot.expect(INSERT.format(n=1), chain.cards[DAVE])
    slot.expect(INSERT.format(n=2), chain.cards[ERIN])


def _appliance_config(root: Path, roster: Path, genesis: str, state: Path) -> Path:
    """An appliance configuration naming this roster chain, pin and state directory."""
    path = root / "appliance.toml"
    path.write_text(f"""[appliance]
id = "{APPLIANCE}"
state_dir = "{state}"

[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "coldvault-appliance"

[trust]
rosters = ["{roster}"]
genesis_roster_sha256 = "{genesis}"
policy = "policy.toml"
wallets = "wallets.toml"
""")
    return path


def _tamper(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    approvals = approvals_path(path)
    data = json.loads(approvals.read_text())
    change(data["approvals"])
    approvals.write_text(json.dumps(data))


def test_record_and_report_signed_by_the_admin_quorum_and_the_drill_audited(
    chain: Genesis, slot: CardSlot, backup_tokens, direct_card, softhsm_lab, tmp_path: Path
) -> None:
    roster = chain.genesis
    text = lab_plan(backup_tokens.serials)
    plan = parse_plan(text.replace('id = "lab-2of3"', f'id = "sig-{uuid.uuid4().hex[:8]}"'))
    devices = LabDevices(softhsm_lab.module_path, direct_sessions(direct_card))
    typed = mnemonics.split_secret(SEED, 2, 3)[:2]

    # the backup: the admin quorum signs the record once every share is read back
    op = _operator(backup_tokens, slot, (r"^SLIP-39 share \d+$", list(typed)))
    _admins_sign(slot, chain)
    out = tmp_path / "backup"
    params = ShardBackup(actor="lead", transcript=tmp_path / "backup.jsonl", plan=plan, out=out,
                         roster=roster)  # fmt: skip
    shard_backup(op, params, devices, ReaderCards(op, allow_emulated=True))
    assert slot.done()
    signers = verify_signed(out / RECORD_FILE, RECORD_KIND, roster)
    assert [a.holder for a in signers] == ["Dave Admin", "Erin Admin"]
    assert json.loads((out / "progress.json").read_text())["status"] == "complete"
    cli = CliRunner().invoke(backup, ["record", "check", str(out), "--roster", str(chain.path),
                                      "--json"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["signed_by"] == ["Dave Admin", "Erin Admin"]

    # the drill: the record's signatures checked first, the report signed, the trail appended
    state = tmp_path / "state"
    state.mkdir()
    trail = state / "audit.jsonl"
    with audit.AuditLog(trail) as log:
        log.append("startup", {"appliance_id": APPLIANCE})
    op = _operator(backup_tokens, slot)
    _admins_sign(slot, chain)
    params_d = RestoreDrill(actor="lead", plan=plan, backup_dir=out,
                            scenario=DrillScenario.site_lost("site-b"),
                            reports_dir=tmp_path / "drills", roster=roster,
                            audit_trail=trail)  # fmt: skip
    result = restore_drill(op, params_d, devices, None, ReaderCards(op, allow_emulated=True))
    assert slot.done()
    assert result.report.passed, result.report.reasons
    assert "The backup record is signed by Dave Admin, Erin Admin." in op.said("ok")
    verified = verify_report(result.report_path, roster=roster)
    assert verified.signed_by == ("Dave Admin", "Erin Admin")
    # the roster checked against the genesis pinned in the appliance configuration
    pinned = hashlib.sha256(chain.path.read_bytes()).hexdigest()
    for genesis, status, error in ((pinned, 0, None), ("ab" * 32, 2, "roster-mismatch")):
        cli = CliRunner().invoke(drill, ["verify", str(result.report_path), "--roster",
                                         str(chain.path), "--genesis-sha256", genesis, "--json"])
        assert cli.exit_code == status, cli.output
        assert json.loads(cli.stdout).get("error") == error
    # ... or read from the appliance configuration itself (--config), which names both
    for genesis, status, error in ((pinned, 0, None), ("ab" * 32, 2, "roster-mismatch")):
        config = _appliance_config(tmp_path, chain.path, genesis, state)
        cli = CliRunner().invoke(drill, ["verify", str(result.report_path), "--config",
                                         str(config), "--json"])  # fmt: skip
        assert cli.exit_code == status, cli.output
        assert json.loads(cli.stdout).get("error") == error
    config = _appliance_config(tmp_path, chain.path, pinned, state)
    cli = CliRunner().invoke(drill, ["verify", str(result.report_path), "--config", str(config)])
    assert cli.exit_code == 0 and "signed by Dave Admin, Erin Admin" in cli.output

    entries = [line.entry for line in walk(trail, audit.AUDIT)]  # the chain checked
    assert [e["event"] for e in entries] == ["startup", "ceremony"]
    drill_entry = entries[-1]
    assert drill_entry["event"] == "ceremony"
    assert drill_entry["fields"]["ceremony"] == "drill"
    assert drill_entry["fields"]["report_sha256"] == result.report_sha256
    assert drill_entry["fields"]["passed"] is True
    assert drill_entry["fields"]["signed_by"] == [chain.card_id(DAVE), chain.card_id(ERIN)]

    report = result.report_path
    good = approvals_path(report).read_text()

    def restore() -> None:
        approvals_path(report).write_text(good)

    # a forged signature
    _tamper(report, lambda a: a[0].update(signature="00" * 64))
    with pytest.raises(BadApprovalSignature, match="Dave Admin"):
        verify_report(report, roster=roster)
    runner = CliRunner()
    cli = runner.invoke(drill, ["verify", str(report), "--roster", str(chain.path)])
    assert cli.exit_code == 1  # a quorum refusal
    assert "The signature from card" in cli.output and "does not verify" in cli.output
    restore()
    # a signature by a card that is not an admin's (Alice, an approver, signs the same token)
    doc_token = _report_token(report, roster)
    alice = chain.sign(ALICE, doc_token)
    _tamper(report, lambda a: a[1].update(card_serial=chain.card_id(ALICE), signature=alice.hex()))
    with pytest.raises(WrongRole, match="Alice Approver has role approver"):
        verify_report(report, roster=roster)
    restore()
    # a missing signature, then no approvals at all
    _tamper(report, lambda a: a.pop())
    with pytest.raises(ThresholdNotMet, match="1 of the 2"):
        verify_report(report, roster=roster)
    approvals_path(report).unlink()
    with pytest.raises(SignedDocumentInvalid, match="approvals.json does not exist"):
        verify_report(report, roster=roster)
    cli = runner.invoke(drill, ["verify", str(report), "--roster", str(chain.path), "--json"])
    assert cli.exit_code == 2 and json.loads(cli.stdout)["error"] == "signed-document-invalid"
    # the record check refuses a record changed since the admins signed it
    record_path = out / RECORD_FILE
    record_path.write_text(record_path.read_text().replace('"site-a"', '"site-x"', 1))
    cli = runner.invoke(backup, ["record", "check", str(out), "--roster", str(chain.path)])
    assert cli.exit_code == 2 and "does not match the hash its approvals cover" in cli.output

    # a drill refuses a backup whose record lacks the admin signatures, before any prompt
    unsigned = tmp_path / "unsigned"
    shutil.copytree(out, unsigned)
    approvals_path(unsigned / RECORD_FILE).unlink()
    op = RuleOperator()
    with pytest.raises(SignedDocumentInvalid):
        restore_drill(op, RestoreDrill(actor="lead", plan=plan, backup_dir=unsigned,
                                       scenario=DrillScenario.site_lost("site-b"),
                                       reports_dir=tmp_path / "drills2", roster=roster),
                      devices, None, ReaderCards(op, allow_emulated=True))  # fmt: skip
    assert not op.asked

    pins = [ADMIN_PIN, USER_PIN, *(backup_tokens.pin(s) for s in SITES)]
    assert_no_secret([out, tmp_path / "drills", state, tmp_path / "backup.jsonl"], typed, pins)


def _report_token(path: Path, roster) -> bytes:  # type: ignore[no-untyped-def]
    from coldvault.backup.approvals import unsigned

    return unsigned(REPORT_KIND, path.read_bytes(), roster).token

"""``drill run`` in process on the lab: the backup written to a directory like the backup
ceremony does, the drill through the console ShareAccess (each PIN typed at its prompt),
"site B lost" restoring into a fresh SoftHSM token, failures named, the report verified
against its transcript, the history and its overdue warning."""

from __future__ import annotations

import json
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from ceremony_scripts.cli import ceremony
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backup.drill import DrillScenario
from coldvault.backup.history import (
    DrillReportInvalid,
    drill_history,
    read_report,
    verify_report,
)
from coldvault.ceremonies.drill import FreshToken, RestoreDrill, restore_drill
from coldvault.ceremonies.sharding import RECORD_FILE
from coldvault.keys.pool import AccountSpec, Template, provision
from coldvault.records.printable import transcript_record
from tests.backup.conftest import USER_PIN
from tests.backup.lab_backup import direct_sessions, lab_backup
from tests.backup.lab_devices import LabDevices, RuleOperator
from tests.backup.test_backup_ceremony import assert_no_secret

pytestmark = pytest.mark.lab
SEED = bytes.fromhex("8dc652d6d6cd370d8c963141f6d79ba440300f25c467302c1d966bff8f62300d")
SPECS = [AccountSpec(Template.BIP84, network="main"), AccountSpec(Template.ETH),
         AccountSpec(Template.SOL)]  # fmt: skip


def _write(backup, out: Path) -> None:
    out.mkdir()
    (out / RECORD_FILE).write_bytes(backup.record.to_json())
    for target in backup.plan.targets:
        if target.id in backup.blobs:
            (out / target.site).mkdir(exist_ok=True)
            (out / target.site / f"{target.id}.sealed").write_bytes(backup.blobs[target.id])


def _operator(backup_tokens, *first, card_pin=USER_PIN) -> RuleOperator:
    return RuleOperator(
        *first,
        (r"^Run the drill", True),
        *[(f"^User PIN of backup token {backup_tokens.label(s)} ", backup_tokens.pin(s))
          for s in ("site-a", "site-b", "site-c")],
        (r"^Card \w+: user PIN$", card_pin),
    )  # fmt: skip


def _params(backup, out: Path, tmp_path: Path, scenario: DrillScenario, **kw) -> RestoreDrill:
    return RestoreDrill(actor="lead", plan=backup.plan, backup_dir=out, scenario=scenario,
                        reports_dir=tmp_path / "drills", **kw)  # fmt: skip


def test_site_b_lost_passes_restores_and_the_report_verifies(
    fresh_token, keystore, backup_tokens, direct_card, softhsm_lab, tmp_path
) -> None:
    production = provision(keystore, SEED, SPECS, 2)
    provisioning = json.dumps(production.to_dict()).encode()
    cards = direct_sessions(direct_card)
    backup = lab_backup(backup_tokens, cards, SEED)
    out = tmp_path / "backup"
    _write(backup, out)
    devices = LabDevices(softhsm_lab.module_path, cards)
    label, pin = fresh_token

    @contextmanager
    def opener(name: str, typed: str):
        with Pkcs11Keystore.open(softhsm_lab.module_path, name, typed, allow_emulated=True) as ks:
            yield ks

    op = _operator(backup_tokens, (f"^User PIN of the fresh token {label} ", pin))
    params = _params(backup, out, tmp_path, DrillScenario.site_lost("site-b"),
                     provisioning=provisioning)  # fmt: skip
    result = restore_drill(op, params, devices, FreshToken(label, opener))
    report = result.report
    assert report.passed, report.reasons
    assert set(report.sites_used) == {"site-a", "site-c"}
    assert {s.target: s.status for s in report.shares}["b-hsm"] == "lost"
    assert "backup-site-b" not in devices.tokens_opened
    assert report.restore is not None and report.restore.ok
    assert any("DRILL PASSED" in line for line in op.said("ok"))
    # the drill lead sees the rebuilt fingerprint to compare with the equipment log
    fingerprint = report.expected_fingerprint
    assert f"Rebuilt master fingerprint {fingerprint} matches the backup record's." in op.said("ok")
    # the card holders typed their PINs at their own prompts
    assert ("secret", "Card FFFFC0DE0001: user PIN") in op.asked

    verified = verify_report(result.report_path)
    assert verified.report.passed and verified.report.sha256 == result.report_sha256
    history = drill_history(tmp_path / "drills", now=report.started_at + 10)
    assert not history.overdue and history.last_passed is not None
    late = drill_history(tmp_path / "drills", now=report.started_at + 181 * 86_400)
    assert late.overdue and "181 days ago" in late.warning

    # a changed report no longer verifies
    data = json.loads(result.report_path.read_text())
    data["passed"] = False
    result.report_path.write_text(json.dumps(data))
    with pytest.raises(DrillReportInvalid, match="SHA-256"):
        verify_report(result.report_path)

    pins = [USER_PIN, pin, *(backup_tokens.pin(s) for s in ("site-a", "site-c"))]
    assert_no_secret([tmp_path, Path(softhsm_lab.token_dir)], [], pins)


def test_failures_name_the_share_and_its_site(
    backup_tokens, direct_card, softhsm_lab, tmp_path
) -> None:
    cards = direct_sessions(direct_card)
    backup = lab_backup(backup_tokens, cards, SEED)
    out = tmp_path / "backup"
    _write(backup, out)
    devices = LabDevices(softhsm_lab.module_path, cards)
    # c-hsm's blob tampered, a-card's holder types a wrong PIN (twice: then 1 try is left,
    # which the drill never spends)
    blob = out / "site-c" / "c-hsm.sealed"
    raw = bytearray(blob.read_bytes())
    raw[-5] ^= 1
    blob.write_bytes(raw)
    op = _operator(backup_tokens, (r"^Card FFFFC0DE0001: user PIN$", ["999999"] * 2))
    result = restore_drill(
        op, _params(backup, out, tmp_path, DrillScenario.site_lost("site-b")), devices
    )
    report = result.report
    status = {s.target: (s.status, s.error) for s in report.shares}
    assert status["c-hsm"] == ("failed", "backup-blob-tampered")
    assert status["a-card"] == ("failed", "card-wrong-pin")
    assert status["a-hsm"][0] == status["c-card"][0] == "used"
    assert report.passed is False and report.rebuilt  # a and c still rebuild
    assert any("'c-hsm' at 'site-c'" in r for r in report.reasons)
    assert any("'a-card' at 'site-a'" in r and "1 try left" in r for r in report.reasons)
    assert read_report(result.report_path).passed is False
    _check_shares_offered(backup.plan, result)
    assert any(line.startswith("c-hsm at site-c (") and "): refused: " in line
               for line in op.said("error"))  # fmt: skip
    assert any(line.startswith("b-hsm at site-b (")
               and line.endswith("): not reachable in the scenario")
               for line in op.said("info"))  # fmt: skip

    # two sites lost: too few, saying what is missing and from where
    op = _operator(backup_tokens)
    result = restore_drill(
        op, _params(backup, out, tmp_path, DrillScenario.site_lost("site-b", "site-c")), devices
    )
    assert not result.report.passed
    assert any("Too few shares" in r and "1 more needed" in r for r in result.report.reasons)
    history = drill_history(tmp_path / "drills")
    assert len(history.reports) == 2 and history.overdue and "No restore drill" in history.warning


def _check_shares_offered(plan, result) -> None:
    """Every target of the plan is listed once, in the report and in the printed record, with
    its custodians, site, medium, share position and outcome (used / refused with the reason
    / not reachable in the scenario)."""
    report = result.report
    listed = {s["target"]: s for s in json.loads(result.report_path.read_text())["shares"]}
    assert set(listed) == {t.id for t in plan.targets}
    expected = {}
    for target in plan.targets:
        position = plan.position(target.id)
        group = plan.scheme.groups[position.group]
        where = (f"set {report.share_set}, group {position.group + 1} ({group.name}), "
                 f"member {position.member + 1}")  # fmt: skip
        entry = listed[target.id]
        assert entry["custodians"] == list(target.custodians) and entry["site"] == target.site
        assert entry["kind"] == target.kind.value and entry["position"] == where
        assert entry["share_set"] == report.share_set and entry["group_name"] == group.name
        expected[target.id] = (", ".join(target.custodians), target.site, target.kind.value,
                               where)  # fmt: skip
    assert listed["b-hsm"]["outcome"] == "not reachable in the scenario"  # site-b lost
    assert listed["a-hsm"]["outcome"] == listed["c-card"]["outcome"] == "used"
    assert listed["c-hsm"]["outcome"].startswith("refused: ")
    assert listed["c-hsm"]["outcome"] == f"refused: {listed['c-hsm']['message']}"
    assert "1 try left" in listed["a-card"]["outcome"]

    record = transcript_record(result.closed.transcript)
    assert record.shares is not None and record.complete
    rows = {row[0]: row for row in record.shares.rows}
    assert set(rows) == set(listed)
    for target, row in rows.items():
        assert row[1:5] == expected[target] and row[5] == listed[target]["outcome"]

    pdf = result.closed.transcript.with_suffix(".pdf")
    done = CliRunner().invoke(
        ceremony, ["transcript", "render", str(result.closed.transcript), "--pdf", str(pdf)]
    )
    assert done.exit_code == 0, done.output
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip
    flat = " ".join(text.split())
    assert "Shares offered in the drill" in flat
    assert "not reachable in the scenario" in flat and "refused:" in flat
    for target in listed:
        assert target in flat

"""``coldvault backup reshare`` on the command line: mounted under ``backup``, and bad input
(a new plan with the old plan's id, a lost custodian the plan does not have) is one sentence
and exit 2 before any device is opened."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from appliance.cli import main
from coldvault.quorum.documents import SignedDocument, write_signed_document
from coldvault.quorum.roster import Role, Roster
from tests.backup.plans import lab_plan
from tests.domain.cards import SoftCard


def _roster(path: Path) -> Path:
    admins = [SoftCard(f"ADM-{i}", "ed25519", b"admin") for i in range(2)]
    roster = Roster(1, "vault-cli", tuple(c.holder(f"Admin {i}", Role.ADMIN)
                                          for i, c in enumerate(admins)), 2)  # fmt: skip
    doc = SignedDocument("roster", 1, "vault-cli", roster.to_bytes())
    for card in admins:
        doc = doc.with_approval(card.serial, card.sign(doc.token))
    write_signed_document(path, doc)
    return path


def _args(tmp_path: Path, lost: str, new_plan: Path) -> list[str]:
    old_plan = tmp_path / "old.toml"
    old_plan.write_text(lab_plan())
    (tmp_path / "old").mkdir(exist_ok=True)
    return ["backup", "reshare", "--operator", "O", "--module", str(tmp_path / "no-module.so"),
            "--old-plan", str(old_plan), "--old", str(tmp_path / "old"), "--lost", lost,
            "--plan", str(new_plan), "--out", str(tmp_path / "new"),
            "--roster", str(_roster(tmp_path / "roster.json")), "--json"]  # fmt: skip


def test_reshare_is_a_backup_command_and_refuses_bad_input_with_one_sentence(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["backup", "--help"])
    assert result.exit_code == 0 and "reshare" in result.output

    same_id = tmp_path / "same.toml"
    same_id.write_text(lab_plan())
    result = runner.invoke(main, _args(tmp_path, "FFFFC0DE0002 lost", same_id))
    assert result.exit_code == 2
    assert "the new plan needs its own id (not 'lab-2of3')" in result.output
    assert "Traceback" not in result.output

    new = tmp_path / "new.toml"
    new.write_text(lab_plan().replace('id = "lab-2of3"', 'id = "lab-2of3-v2"'))
    result = runner.invoke(main, _args(tmp_path, "FFFFC0DE0009 lost", new))
    assert result.exit_code == 2
    assert "the plan has no site or custodian 'FFFFC0DE0009'" in result.output
    assert not (tmp_path / "new").exists()

"""``backup plan check`` / ``backup plan propose``: exit statuses, JSON alone on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ceremony_scripts.plans import backup
from coldvault.backup.plan import load_plan
from tests.backup.plans import flat_plan, lab_plan


def _run(*args: str):
    return CliRunner().invoke(backup, list(args), catch_exceptions=False)


def test_check_a_valid_plan(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(lab_plan())
    result = _run("plan", "check", str(path))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "VALID: backup plan 'lab-2of3' passes every rule" in result.stderr
    # the hash the backup ceremony shows at its first step (canonical TOML, not the file's)
    sha256 = load_plan(path).sha256
    assert f"\nPlan SHA-256: {sha256}\n" in result.stderr

    result = _run("plan", "check", str(path), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["ok"], data["plan"], data["findings"]) == (True, "lab-2of3", [])
    assert data["plan_sha256"] == sha256
    assert result.stderr == ""


def test_check_refuses_with_reasons(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(lab_plan())
    result = _run("plan", "check", str(path), "--collusion", "2", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert [f["custodians"] for f in data["findings"]][0] == ["FFFFC0DE0001", "FFFFC0DE0002"]

    result = _run("plan", "check", str(path), "--survive", "3")
    assert result.exit_code == 1
    assert "REFUSED: backup plan 'lab-2of3' breaks 1 rule(s):" in result.stderr
    assert "[site-loss] The plan has 3 site(s)" in result.stderr


def test_check_a_bad_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(flat_plan(2).replace('kind = "hsm"', 'kind = "floppy"', 1))
    result = _run("plan", "check", str(path), "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["error"] == "backup-plan-invalid"
    assert data["field"] == "sites[0].targets[0].kind"
    result = _run("plan", "check", str(tmp_path / "absent.toml"))
    assert result.exit_code == 2
    assert "cannot be read" in result.stderr


def test_propose_prints_a_plan_that_checks(tmp_path: Path) -> None:
    result = _run(
        "plan",
        "propose",
        "--sites",
        "site-a,site-b,site-c",
        "--survive",
        "1",
        "--custodian",
        "site-a=FFFFC0DE0001",
        "--token",
        "site-a=backup-site-a:0042",
    )
    assert result.exit_code == 0, result.stderr
    path = tmp_path / "proposed.toml"
    path.write_text(result.stdout)
    assert "fill in locations" in result.stderr
    checked = _run("plan", "check", str(path), "--json")
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["ok"] is True
    assert 'serial = "0042"' in result.stdout


def test_propose_json_and_impossible_bounds() -> None:
    result = _run("plan", "propose", "--sites", "a,b,c,d", "--survive", "2", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["check"]["ok"] is True
    assert "group_threshold = 2" in data["plan_toml"]

    result = _run("plan", "propose", "--sites", "a,b", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "backup-plan-impossible"
    result = _run("plan", "propose", "--sites", "a,b,c", "--custodian", "x=1")
    assert result.exit_code == 2  # usage error: unknown site

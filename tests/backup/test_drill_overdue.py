"""The overdue warning: at appliance start-up (from the drills in its verified audit trail,
against the policy's ``drill_interval_days``) and in ``drill list`` (from the reports).  The
clock is injected; nothing sleeps."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.daemon import Appliance
from ceremony_scripts.drills import drill
from coldvault.backup.drill import DrillScenario
from coldvault.backup.history import (
    REPORT_FORMAT,
    DrillTrailBusy,
    DrillTrailMissing,
    append_to_trail,
    check_trail_free,
    trail_history,
)
from coldvault.backup.plan import parse_plan
from coldvault.ceremonies.drill import RestoreDrill, restore_drill
from coldvault.config import load_config
from coldvault.policy import PolicyInvalid, parse_policy, policy_toml
from coldvault.quorum.documents import write_signed_document
from coldvault.records.audit import AuditLog
from tests.backup.lab_devices import RuleOperator
from tests.backup.plans import lab_plan
from tests.integrity.conftest import SoftCollector, Ui, World, _sign_doc

DAY = 86_400
T0 = 1_900_000_000  # a fixed "now" of the drill


def _start(world: World, now: int) -> list[str]:
    ui = Ui()
    app = Appliance(load_config(world.config()), ui=ui, collector=SoftCollector(world.approvers),
                    hsm_pin=world.user_pin, allow_emulated=True, dev_allow_network=True,
                    clock=lambda: now)  # fmt: skip
    with app:
        app.start()
    return [line for line in ui.lines if "RESTORE DRILL OVERDUE" in line]


def _drill(trail: Path, started_at: int, *, passed: bool, scenario: str = "site-b lost") -> None:
    append_to_trail(trail, {"plan": "lab-2of3", "scenario": scenario, "started_at": started_at,
                            "passed": passed, "report_file": "drill.report.json",
                            "report_sha256": "ab" * 32})  # fmt: skip


@pytest.mark.lab
def test_appliance_start_warns_when_the_last_passing_drill_is_older_than_the_policy_interval(
    world: World,
) -> None:
    # no drill at all yet
    assert _start(world, T0) == [
        "RESTORE DRILL OVERDUE: No restore drill has passed yet: run one (coldvault drill run)."
    ]
    _drill(world.trail, T0, passed=True)
    assert _start(world, T0 + 10 * DAY) == []
    assert _start(world, T0 + 180 * DAY) == []
    # a later failed drill does not count
    _drill(world.trail, T0 + 170 * DAY, passed=False, scenario="site-c lost")
    (warning,) = _start(world, T0 + 181 * DAY)
    assert "'site-b lost') was 181 days ago, more than the 180-day interval" in warning

    # the policy's interval applies (a policy version 2 with 30 days, signed by the admins)
    text = (world.root / "policy.toml").read_text()
    policy = dataclasses.replace(parse_policy(text), version=2, drill_interval_days=30)
    write_signed_document(world.root / "policy.toml",
                          _sign_doc("policy", 2, policy_toml(policy).encode(), world.admins))
    (warning,) = _start(world, T0 + 31 * DAY)
    assert "31 days ago, more than the 30-day interval" in warning
    assert _start(world, T0 + 29 * DAY) == []

    # the drill entries sit in the verified trail the appliance itself keeps
    history = trail_history(world.trail, now=T0 + 31 * DAY)
    assert [r.passed for r in history.reports] == [True, False]


def test_the_drill_never_starts_a_trail(tmp_path: Path) -> None:
    with pytest.raises(DrillTrailMissing, match="does not exist"):
        _drill(tmp_path / "state" / "audit.jsonl", T0, passed=True)
    assert not (tmp_path / "state").exists()


def test_the_drill_refuses_a_trail_the_running_appliance_holds(tmp_path: Path) -> None:
    """Refused before any transcript, prompt or share; the trail and the drill go on once
    the appliance lets go."""
    trail = tmp_path / "state" / "audit.jsonl"
    trail.parent.mkdir()
    params = RestoreDrill(actor="lead", plan=parse_plan(lab_plan()), backup_dir=tmp_path,
                          scenario=DrillScenario.site_lost("site-b"),
                          reports_dir=tmp_path / "drills", audit_trail=trail)  # fmt: skip
    op = RuleOperator()  # any prompt fails the test
    with AuditLog(trail) as held:  # the appliance holds its trail while it runs
        with pytest.raises(DrillTrailBusy, match="stop the appliance"):
            restore_drill(op, params, devices=None)  # type: ignore[arg-type]
        held.append("startup", {"n": 1})  # the appliance's own lock was never disturbed
    assert op.asked == [] and not list((tmp_path / "drills").glob("*.jsonl"))
    check_trail_free(trail)  # free again once the appliance stopped
    _drill(trail, T0, passed=True)
    assert [r.passed for r in trail_history(trail, now=T0).reports] == [True]


def _report(directory: Path, name: str, started_at: int, passed: bool) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.report.json").write_text(json.dumps({
        "format": REPORT_FORMAT, "scenario": {"name": "site-b lost"}, "plan": "lab-2of3",
        "started_at": started_at, "passed": passed, "sites_used": ["site-a", "site-c"],
    }))  # fmt: skip


def test_drill_list_warns_when_overdue(tmp_path: Path) -> None:
    reports = tmp_path / "drills"
    now = int(time.time())
    _report(reports, "old", now - 200 * DAY, True)
    runner = CliRunner()
    result = runner.invoke(drill, ["list", "--reports", str(reports)])
    assert result.exit_code == 0
    assert "was 200 days ago, more than the 180-day interval" in result.stderr
    result = runner.invoke(drill, ["list", "--reports", str(reports), "--json"])
    data = json.loads(result.stdout)
    assert data["overdue"] is True and data["interval_days"] == 180

    _report(reports, "recent", now - 10 * DAY, True)
    result = runner.invoke(drill, ["list", "--reports", str(reports), "--interval-days", "30"])
    assert result.exit_code == 0 and "Warning" not in result.stderr
    result = runner.invoke(drill, ["list", "--reports", str(reports), "--interval-days", "5"])
    assert "was 10 days ago, more than the 5-day interval" in result.stderr


@pytest.mark.lab
def test_drill_commands_read_the_appliance_configuration(world: World, tmp_path: Path) -> None:
    """--config: the appliance's signed policy sets the interval, its roster chain (checked
    from the pinned genesis) the admins; an option the configuration names is refused."""
    text = (world.root / "policy.toml").read_text()
    policy = dataclasses.replace(parse_policy(text), version=2, drill_interval_days=30)
    write_signed_document(world.root / "policy.toml",
                          _sign_doc("policy", 2, policy_toml(policy).encode(), world.admins))
    reports, config = tmp_path / "drills", str(world.config())
    _report(reports, "recent", int(time.time()) - 40 * DAY, True)
    runner = CliRunner()
    plain = runner.invoke(drill, ["list", "--reports", str(reports), "--json"])
    assert plain.exit_code == 0 and json.loads(plain.stdout)["interval_days"] == 180
    listed = runner.invoke(drill, ["list", "--reports", str(reports), "--config", config])
    assert listed.exit_code == 0
    assert "was 40 days ago, more than the 30-day interval" in listed.stderr
    data = json.loads(runner.invoke(drill, ["list", "--reports", str(reports), "--config",
                                            config, "--json"]).stdout)  # fmt: skip
    assert data["overdue"] is True and data["interval_days"] == 30

    clash = runner.invoke(drill, ["list", "--config", config, "--policy", config])
    assert clash.exit_code == 2 and "leave out --policy" in clash.output
    clash = runner.invoke(drill, ["run", "--operator", "O", "--module", "m", "--plan", config,
                                  "--backup", str(tmp_path), "--scenario", "site-b lost",
                                  "--config", config, "--audit-trail", str(world.trail)])
    assert clash.exit_code == 2 and "leave out --audit-trail" in clash.output
    missing = runner.invoke(drill, ["list", "--config", str(tmp_path / "nope.toml"), "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"] == "config"
    assert "nope.toml does not exist" in json.loads(missing.stdout)["message"]
    # a configuration whose roster chain does not start at its pinned genesis is refused
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text(_repin(Path(config).read_text(), "ab" * 32))
    refused = runner.invoke(drill, ["list", "--reports", str(reports), "--config",
                                    str(bad_config), "--json"])  # fmt: skip
    assert refused.exit_code == 2 and json.loads(refused.stdout)["error"] == "roster-mismatch"


def _repin(config: str, genesis: str) -> str:
    lines = [f'genesis_roster_sha256 = "{genesis}"' if line.startswith("genesis_roster_sha256")
             else line for line in config.splitlines()]
    return "\n".join(lines) + "\n"


def test_the_policy_carries_the_drill_interval() -> None:
    base = 'format = "coldvault-policy/1"\nversion = 1\nappliance_id = "a"\nchains = []\n'
    assert parse_policy(base).drill_interval_days == 180
    policy = parse_policy(base + "drill_interval_days = 90\n")
    assert policy.drill_interval_days == 90
    assert parse_policy(policy_toml(policy)).drill_interval_days == 90
    with pytest.raises(PolicyInvalid, match="drill_interval_days must be an integer greater"):
        parse_policy(base + "drill_interval_days = 0\n")

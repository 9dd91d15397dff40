"""Drill scenarios by name (``drill run --scenario "site B lost"``) and the drill history's
overdue rule, without hardware."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldvault.backup.drill import ScenarioInvalid, named_scenario
from coldvault.backup.history import DAY, drill_history
from coldvault.backup.plan import parse_plan
from tests.backup.plans import lab_plan

PLAN = parse_plan(lab_plan({"site-a": "a1", "site-b": "b1", "site-c": "c1"}))


@pytest.mark.parametrize(
    ("name", "sites", "people"),
    [
        ("site-b lost", {"site-b"}, set()),
        ("site B lost", {"site-b"}, set()),
        ("  Site-B,  site-c LOST ", {"site-b", "site-c"}, set()),
        ("site-a and FFFFC0DE0002 lost", {"site-a"}, {"FFFFC0DE0002"}),
        ("nothing lost", set(), set()),
    ],
)
def test_names(name: str, sites: set[str], people: set[str]) -> None:
    scenario = named_scenario(PLAN, name)
    assert (set(scenario.lost_sites), set(scenario.lost_custodians)) == (sites, people)
    scenario.check(PLAN)


@pytest.mark.parametrize(("name", "problem"), [
    ("site-d lost", "no site or custodian 'site-d'"),
    ("site-b", "not a scenario file or a name"),
])  # fmt: skip
def test_bad_names(name: str, problem: str) -> None:
    with pytest.raises(ScenarioInvalid, match=problem):
        named_scenario(PLAN, name)


def _report(directory: Path, stem: str, started: int, passed: bool) -> None:
    doc = {"format": "coldvault-drill-report/1", "scenario": {"name": stem}, "plan": "p",
           "started_at": started, "passed": passed, "sites_used": ["site-a"]}  # fmt: skip
    (directory / f"{stem}.report.json").write_text(json.dumps(doc))


def test_history_overdue(tmp_path: Path) -> None:
    now = 1_800_000_000
    _report(tmp_path, "old-pass", now - 200 * DAY, True)
    _report(tmp_path, "recent-fail", now - 2 * DAY, False)
    (tmp_path / "junk.report.json").write_text("{")
    history = drill_history(tmp_path, now=now)
    assert [r.scenario for r in history.reports] == ["old-pass", "recent-fail"]
    assert history.unreadable == (str(tmp_path / "junk.report.json"),)
    assert history.overdue and "200 days ago" in history.warning
    assert not drill_history(tmp_path, now=now, interval_days=365).overdue
    _report(tmp_path, "new-pass", now - DAY, True)
    assert not drill_history(tmp_path, now=now).overdue

"""check_plan refuses bad plans with the right reason; propose_plan only proposes good ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.backup.check import Rule, SiteRequest, check_plan, propose_plan
from coldvault.backup.errors import PlanCheckTooLarge, PlanImpossible, PlanRefused
from coldvault.backup.plan import parse_plan
from tests.backup.plans import flat_plan, lab_plan

LAB = parse_plan(lab_plan())


def _rules(report) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(f.rule.value, f.sites, f.custodians) for f in report.findings]


def test_the_lab_plan_passes_the_default_bounds() -> None:
    report = check_plan(LAB)
    assert report.ok, report.reasons
    assert (report.collusion, report.survive) == (1, 1)
    assert report.combinations_checked == 3 + 3 + 3  # sites alone, custodians alone, losses


def test_collusion_of_two_names_every_minimal_pair() -> None:
    report = check_plan(LAB, collusion=2)
    assert not report.ok
    with pytest.raises(PlanRefused) as info:
        report.enforce()
    assert info.value.reason_count == 3
    assert str(info.value).endswith("(collusion bound 2). (2 more reasons)")
    check_plan(LAB).enforce()
    assert _rules(report) == [
        ("collusion", (), ("FFFFC0DE0001", "FFFFC0DE0002")),
        ("collusion", (), ("FFFFC0DE0001", "FFFFC0DE0003")),
        ("collusion", (), ("FFFFC0DE0002", "FFFFC0DE0003")),
    ]
    assert report.findings[0].message == (
        "Custodians 'FFFFC0DE0001' and 'FFFFC0DE0002' together can rebuild the seed "
        "(collusion bound 2)."
    )


def test_two_cards_of_one_person_are_one_custodian() -> None:
    report = check_plan(LAB, holders={"FFFFC0DE0001": "alice", "FFFFC0DE0002": "alice"})
    assert _rules(report) == [("custodian-alone", (), ("alice",))]
    assert "a-card, a-hsm, b-card and b-hsm" in report.findings[0].message.replace("'", "")


def test_one_site_alone_and_its_loss() -> None:
    text = flat_plan(1, sites=3)  # any single token rebuilds
    report = check_plan(parse_plan(text))
    rules = _rules(report)
    assert ("site-alone", ("s0",), ()) in rules
    assert ("custodian-alone", (), ("S2",)) in rules
    assert not [r for r in rules if r[0] == "site-loss"]


def test_site_loss_names_each_site_whose_loss_breaks_the_plan() -> None:
    report = check_plan(parse_plan(flat_plan(3, sites=3)), survive=2)
    assert _rules(report) == [
        ("site-loss", ("s0",), ()),
        ("site-loss", ("s1",), ()),
        ("site-loss", ("s2",), ()),
    ]  # minimal: pairs containing a failing site are not repeated
    assert report.findings[0].message == (
        "Losing site 's0' leaves too few shares: the remaining targets complete 0 of the 1 "
        "groups needed."
    )


def test_losing_two_sites_of_a_2_of_4_plan() -> None:
    report = check_plan(parse_plan(flat_plan(3, sites=4)), survive=2)
    losses = [f.sites for f in report.findings]
    assert losses == [
        ("s0", "s1"),
        ("s0", "s2"),
        ("s0", "s3"),
        ("s1", "s2"),
        ("s1", "s3"),
        ("s2", "s3"),
    ]
    assert check_plan(parse_plan(flat_plan(3, sites=4)), survive=1).ok


def test_a_plan_cannot_survive_losing_every_site() -> None:
    report = check_plan(LAB, survive=3)
    assert ("site-loss", ("site-a", "site-b", "site-c"), ()) in _rules(report)


def test_survive_zero_skips_the_loss_rule() -> None:
    assert check_plan(parse_plan(flat_plan(3, sites=3)), survive=0).ok


def test_the_combinatorics_are_bounded() -> None:
    plan = propose_plan([f"s{i}" for i in range(16)], survive=2, custodians_per_site=2)
    with pytest.raises(PlanCheckTooLarge) as info:
        check_plan(plan, collusion=8)
    assert info.value.limit == 200_000
    with pytest.raises(ValueError):
        check_plan(plan, collusion=0)


def test_propose_refuses_too_few_sites() -> None:
    with pytest.raises(PlanImpossible) as info:
        propose_plan(["a", "b"], survive=1)
    assert "at least 3" in info.value.message


def test_propose_uses_given_custodians_and_tokens() -> None:
    plan = propose_plan(
        [
            SiteRequest("a", custodians=("FFFFC0DE0001",), token_label="tok-a", token_serial="11"),
            "b",
            "c",
        ],
        survive=1,
    )
    assert plan.target("a-hsm").serial == "11"
    assert plan.target("a-card-1").card == "FFFFC0DE0001"
    assert plan.target("b-hsm").label == "backup-b"


def test_propose_raises_member_thresholds_against_collusion() -> None:
    plan = propose_plan(["a", "b", "c"], survive=1, collusion=2, custodians_per_site=2)
    assert {g.member_threshold for g in plan.scheme.groups} == {3}
    assert check_plan(plan, collusion=2, survive=1).ok
    with pytest.raises(PlanImpossible):
        propose_plan(["a", "b", "c"], survive=1, collusion=2, custodians_per_site=1)


@settings(max_examples=60, deadline=None)
@given(
    sites=st.integers(2, 7),
    survive=st.integers(0, 4),
    collusion=st.integers(1, 3),
    per_site=st.integers(1, 3),
)
def test_every_proposed_plan_passes_check(sites, survive, collusion, per_site) -> None:
    names = [f"site-{i}" for i in range(sites)]
    try:
        plan = propose_plan(
            names, survive=survive, collusion=collusion, custodians_per_site=per_site
        )
    except PlanImpossible:
        assert sites - survive < 2 or collusion > 1
        return
    report = check_plan(plan, collusion=collusion, survive=survive)
    assert report.ok, report.reasons
    assert parse_plan(plan.to_toml()) == plan


@settings(max_examples=40, deadline=None)
@given(sites=st.integers(3, 7), data=st.data())
def test_single_custodian_proposals_always_exist(sites, data) -> None:
    survive = data.draw(st.integers(0, sites - 2))
    plan = propose_plan([f"s{i}" for i in range(sites)], survive=survive)
    assert check_plan(plan, survive=survive).ok


def test_rules_are_stable_strings() -> None:
    assert [r.value for r in Rule] == ["site-alone", "custodian-alone", "collusion", "site-loss"]

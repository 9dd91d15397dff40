"""The backup plan document: strict parsing with errors naming the field, and round trips."""

from __future__ import annotations

import pytest

from coldvault.backup.errors import PlanInvalid
from coldvault.backup.plan import CardCurve, TargetKind, parse_plan, plan_to_toml
from tests.backup.plans import flat_plan, lab_plan


def test_the_lab_plan_parses() -> None:
    plan = parse_plan(lab_plan({"site-a": "abc123"}))
    assert plan.id == "lab-2of3"
    assert [s.name for s in plan.sites] == ["site-a", "site-b", "site-c"]
    assert plan.scheme.group_threshold == 2
    assert plan.scheme.slip39_groups == [(1, 1), (1, 1), (1, 1)]  # 1-of-2 = one share, copied
    hsm = plan.target("a-hsm")
    assert (hsm.kind, hsm.label, hsm.serial) == (TargetKind.HSM, "backup-site-a", "abc123")
    assert hsm.custodians == ("FFFFC0DE0001",)  # default: the site's custodians
    assert plan.target("b-card").curve is CardCurve.NIST_P256
    assert plan.target("c-card").curve is CardCurve.CV25519  # the default curve
    assert plan.position("b-card").group == 1
    assert plan.position("a-hsm") == plan.position("a-card")  # copies of one share


def test_flat_scheme_is_one_group() -> None:
    plan = parse_plan(flat_plan(2))
    assert plan.scheme.flat
    assert plan.scheme.group_threshold == 1
    assert plan.scheme.slip39_groups == [(2, 3)]
    assert [plan.position(f"t{i}").member for i in range(3)] == [0, 1, 2]


@pytest.mark.parametrize("text", [lab_plan({"site-a": "1", "site-b": "2"}), flat_plan(3, 5)])
def test_canonical_toml_round_trips(text: str) -> None:
    plan = parse_plan(text)
    again = parse_plan(plan_to_toml(plan))
    assert again == plan
    assert plan_to_toml(again) == plan_to_toml(plan)
    assert again.sha256 == plan.sha256


BASE = lab_plan()


@pytest.mark.parametrize(
    "old,new,field,problem",
    [
        ('format = "coldvault-backup-plan/1"', 'format = "other/1"', "format", "must be"),
        ('id = "lab-2of3"', 'id = "lab 2of3"', "id", "not a valid identifier"),
        ('id = "lab-2of3"', "id = 7", "id", "must be a string"),
        ("group_threshold = 2", "group_threshold = 4", "scheme.group_threshold", "between 1 and 3"),
        ("group_threshold = 2", "group_threshold = true", "scheme.group_threshold", "integer"),
        (
            'members = ["a-hsm", "a-card"]',
            'members = ["a-hsm", "a-hsm"]',
            "scheme.groups[0].members[1]",
            "repeated",
        ),
        (
            'members = ["a-hsm", "a-card"]',
            'members = ["a-hsm", "zz"]',
            "scheme.groups[0].members",
            "'zz' is not a target",
        ),
        (
            'members = ["b-hsm", "b-card"]',
            'members = ["b-hsm", "a-card"]',
            "scheme.groups[1].members",
            "already in group 'site-a'",
        ),
        (
            'members = ["c-hsm", "c-card"]',
            'members = ["c-hsm"]',
            "sites[2].targets[1]",
            "in no group",
        ),
        ('kind = "hsm"', 'kind = "usb-stick"', "sites[0].targets[0].kind", "hsm, card, paper"),
        ('label = "backup-site-a"', 'label = ""', "sites[0].targets[0].label", "empty"),
        (
            'card = "FFFFC0DE0002"',
            'card = "FFFFC0DE0001"',
            "sites[1].targets[1].card",
            "not a custodian of site 'site-b'",
        ),
        ('curve = "nistp256"', 'curve = "rsa2048"', "sites[1].targets[1].curve", "cv25519"),
        ('location = "Geneva, vault 1"', "", "sites[1].location", "is missing"),
        (
            'custodians = ["FFFFC0DE0002"]',
            'custodians = ["FFFFC0DE0002", "FFFFC0DE0001"]',
            "sites[1].custodians",
            "already a custodian of site 'site-a'",
        ),
        ('name = "site-c"\nlocation', 'name = "site-a"\nlocation', "sites[2].name", "twice"),
        (
            'id = "c-card"',
            'id = "c-card"\nserial = "x"',
            "sites[2].targets[1].serial",
            "not a known field",
        ),
        ("[scheme]", "[scheme]\nthreshold = 1", "scheme.threshold", "either groups"),
    ],
)
def test_bad_fields_are_named(old: str, new: str, field: str, problem: str) -> None:
    assert old in BASE
    with pytest.raises(PlanInvalid) as info:
        parse_plan(BASE.replace(old, new, 1), where="plan.toml")
    assert info.value.field == field
    assert problem in info.value.problem
    assert str(info.value).startswith(f"The backup plan plan.toml is invalid: {field}: ")


def test_member_threshold_above_members_is_refused() -> None:
    text = BASE.replace("member_threshold = 1", "member_threshold = 3", 1)
    with pytest.raises(PlanInvalid) as info:
        parse_plan(text)
    assert info.value.field == "scheme.groups[0].member_threshold"


def test_hsm_without_any_operator_is_refused() -> None:
    text = BASE.replace('custodians = ["FFFFC0DE0003"]', "custodians = []")
    text = text.replace('card = "FFFFC0DE0003"\n', 'card = "FFFFC0DE0003"\n', 1)
    with pytest.raises(PlanInvalid) as info:
        parse_plan(text)
    assert info.value.field == "sites[2].targets[0].custodians"


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"format = ", "not valid TOML"),
        (b"x" * (64 * 1024 + 1), "larger than"),
        (b'format = "coldvault-backup-plan/1"\nid = "x"\nsites = []\n', "non-empty array"),
    ],
)
def test_bad_documents(content: bytes, problem: str) -> None:
    with pytest.raises(PlanInvalid) as info:
        parse_plan(content)
    assert problem in info.value.problem


def test_too_many_sites_is_bounded() -> None:
    text = flat_plan(2, 17)
    with pytest.raises(PlanInvalid) as info:
        parse_plan(text)
    assert info.value.field == "sites"
    assert "more than 16" in info.value.problem

"""Approver groups without hardware: slots, the token, the policy document and its checks.
(The same rules through pcscd and the real cards: tests/session/test_groups.py.)"""

from __future__ import annotations

import dataclasses

import pytest

from coldvault.policy import PolicyInvalid, parse_policy, policy_toml
from coldvault.quorum import GroupQuota, GroupRequirement
from coldvault.quorum.approvals import ApprovalToken
from coldvault.quorum.roster import CardHolder, Role, Roster, RosterInvalid

KEY = bytes(range(32))


def holder(name: str, *groups: str, n: int = 0) -> CardHolder:
    return CardHolder(f"S{n}", name, Role.APPROVER, "site", "ed25519",
                      bytes([n]) + KEY[1:], groups=tuple(sorted(groups)))


def test_a_holder_in_two_groups_is_placed_where_it_helps() -> None:
    quota = GroupQuota(GroupRequirement.of({"compliance": 1, "treasury": 1}), 2)
    both, treasury, compliance = holder("B", "compliance", "treasury"), holder("T", "treasury"),\
        holder("C", "compliance")
    assert quota.can_count([both], compliance)  # both moves to treasury
    assert quota.can_count([both], treasury)
    assert not quota.can_count([treasury], holder("T2", "treasury"))
    assert not quota.can_count([treasury], holder("nobody"))
    assert quota.still_needed([treasury]) == (("compliance", 1),)


def test_free_slots_take_any_approver() -> None:
    quota = GroupQuota(GroupRequirement.of({"compliance": 1}), 3)
    counted = [holder("X"), holder("Y")]
    assert not quota.can_count(counted, holder("Z"))
    assert quota.can_count(counted, holder("C", "compliance"))


def test_requirement_rules() -> None:
    with pytest.raises(ValueError, match="count"):
        GroupRequirement.of({"treasury": 0})
    with pytest.raises(ValueError, match="group name"):
        GroupRequirement.of({"trea sury": 1})
    merged = GroupRequirement.strictest([GroupRequirement.of({"a": 1, "b": 2}),
                                         GroupRequirement.of({"b": 1, "c": 1})])
    assert merged.as_dict() == {"a": 1, "b": 2, "c": 1} and merged.total == 4
    with pytest.raises(ValueError, match="below the sum"):
        GroupQuota(merged, 3)


def test_token_binds_the_groups_and_keeps_old_bytes() -> None:
    fields = dict(request_digest=bytes(32), request_fingerprint="AAAA", wallet="w", client="c",
                  policy_version=1, roster_version=1, appliance_id="a", session_nonce=bytes(16),
                  issued_at=1, expires_at=2, required_approvals=2)
    plain = ApprovalToken(**fields)  # type: ignore[arg-type]
    grouped = dataclasses.replace(plain, required_groups=GroupRequirement.of({"treasury": 1}))
    assert b"treasury" in grouped.to_bytes() and b"\xa1ag" not in plain.to_bytes()
    assert ApprovalToken.from_bytes(grouped.to_bytes()) == grouped
    assert ApprovalToken.from_bytes(plain.to_bytes()) == plain
    assert grouped.token_id != plain.token_id


def test_roster_groups_round_trip_and_rules() -> None:
    admin = CardHolder("A1", "Admin", Role.ADMIN, "site", "ed25519", b"\xaa" * 32)
    roster = Roster(1, "vault", (holder("T", "treasury", n=1), admin), 1)
    assert Roster.from_bytes(roster.to_bytes()).to_bytes() == roster.to_bytes()
    assert Roster.from_bytes(roster.to_bytes()).holder("S1") == roster.holder("S1")
    assert roster.distinct_in_group("treasury") == 1
    assert b'"groups"' not in Roster(1, "vault", (holder("T", n=1), admin), 1).to_bytes()
    with pytest.raises(RosterInvalid, match="only approver cards"):
        Roster(1, "vault", (dataclasses.replace(admin, groups=("treasury",)),), 1)


POLICY = """format = "coldvault-policy/1"
version = 3
appliance_id = "vault"
chains = ["bitcoin"]

[[wallet]]
name = "w"
client = "c"
chain = "bitcoin"
network = "main"
kinds = ["psbt"]
min_approvals = 1
groups = { treasury = 1 }

[wallet.limits.BTC]
per_transaction = 1000
per_day = 2000

[[wallet.tier]]
asset = "BTC"
up_to = 100
approvals = 1

[[wallet.tier]]
asset = "BTC"
approvals = 2
groups = { compliance = 1, treasury = 1 }
"""


def test_policy_groups_parse_write_and_tiers() -> None:
    policy = parse_policy(POLICY)
    w = policy.wallets["w"]
    assert w.groups.as_dict() == {"treasury": 1}
    assert w.groups_for(w.tiers[1]).as_dict() == {"compliance": 1, "treasury": 1}
    assert parse_policy(policy_toml(policy)).wallets["w"] == w
    assert policy.required_groups().as_dict() == {"compliance": 1, "treasury": 1}


def test_unreachable_group_is_named() -> None:
    policy = parse_policy(POLICY)
    admin = CardHolder("A1", "Admin", Role.ADMIN, "site", "ed25519", b"\xaa" * 32)
    roster = Roster(1, "vault", (holder("T", "treasury", n=1), holder("U", n=2), admin), 1)
    assert policy.unreachable_with(roster) == (
        "it requires 1 approvals from group compliance but roster version 1 has only 0 active "
        "approvers in that group"
    )


def test_bad_groups_table_is_refused() -> None:
    with pytest.raises(PolicyInvalid, match=r"wallet\[0\]\.groups: treasury must be an integer"):
        parse_policy(POLICY.replace("groups = { treasury = 1 }", 'groups = { treasury = "1" }'))

"""Policy value types: a wallet's rules (limits, tiers, whitelist) and the :class:`Decision`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from coldvault.policy.errors import RULE_ERRORS
from coldvault.quorum.groups import GroupRequirement
from coldvault.requests.base import Chain


@dataclass(frozen=True)
class Destination:
    address: str
    chain: Chain
    label: str
    message: str = field(repr=False)
    signature: str = field(repr=False)


@dataclass(frozen=True)
class AssetLimits:
    per_transaction: int
    per_day: int


@dataclass(frozen=True)
class Tier:
    asset: str
    up_to: int | None  # inclusive; None = no upper bound
    approvals: int
    #: approvals this tier requires from named approver groups ("1 of compliance AND ...")
    groups: GroupRequirement = GroupRequirement()


@dataclass(frozen=True)
class WalletPolicy:
    name: str
    client: str
    chain: Chain
    network: str
    kinds: frozenset[str]
    min_approvals: int
    limits: Mapping[str, AssetLimits] = field(hash=False)
    tiers: tuple[Tier, ...] = ()
    destinations: tuple[Destination, ...] = ()
    contracts: tuple[tuple[str, str], ...] = ()  # (address, label) callable without ownership
    max_fee: int | None = None  # base units of the chain's native asset (ETH: gas x max fee)
    max_fee_rate: float | None = None  # sat/vB (Bitcoin)
    #: approvals every request of the wallet requires from named approver groups
    groups: GroupRequirement = GroupRequirement()

    def find_destination(self, address: str) -> Destination | None:
        key = normalise_address(self.chain, address)
        for d in self.destinations:
            if normalise_address(self.chain, d.address) == key:
                return d
        return None

    def find_contract(self, address: str) -> str | None:
        key = normalise_address(self.chain, address)
        for addr, label in self.contracts:
            if normalise_address(self.chain, addr) == key:
                return label
        return None

    def required_for(self, asset: str, amount: int) -> tuple[int, Tier | None]:
        for tier in sorted((t for t in self.tiers if t.asset == asset), key=tier_key):
            if tier.up_to is None or amount <= tier.up_to:
                return max(tier.approvals, self.min_approvals), tier
        return self.min_approvals, None

    def groups_for(self, tier: Tier | None) -> GroupRequirement:
        """The wallet's group requirement merged with ``tier``'s (the higher count wins)."""
        return GroupRequirement.strictest([self.groups, tier.groups if tier else self.groups])


def tier_key(t: Tier) -> tuple[bool, int]:
    return (t.up_to is None, t.up_to or 0)


def normalise_address(chain: Chain, address: str) -> str:
    """Comparison key: EVM hex and bech32 are case-insensitive; base58 is not."""
    if chain is Chain.ETHEREUM:
        return address.lower()
    if chain is Chain.BITCOIN and address.lower().startswith(("bc1", "tb1", "bcrt1")):
        return address.lower()
    return address


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    values: dict[str, object] = field(hash=False)
    message: str


@dataclass(frozen=True)
class Decision:
    allowed: bool
    required_approvals: int
    reasons: tuple[RuleResult, ...]
    policy_version: int
    #: approvals required from named approver groups (part of ``required_approvals``)
    required_groups: GroupRequirement = GroupRequirement()

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.reasons if not r.passed)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for the audit trail's ``decision`` entry and ``--json`` output."""
        return {
            "allowed": self.allowed,
            "required_approvals": self.required_approvals,
            "required_groups": self.required_groups.as_dict(),
            "policy_version": self.policy_version,
            "rules": [
                {"rule": r.rule, "passed": r.passed, "values": dict(r.values), "message": r.message}
                for r in self.reasons
            ],
        }

    def enforce(self) -> Decision:
        """Return self if allowed, else raise the first failing rule's specific error."""
        for r in self.failures:
            raise RULE_ERRORS[r.rule](r.message, r.values)
        return self

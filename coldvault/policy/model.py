"""Policy value types: a wallet's rules (limits, tiers, address book) and the :class:`Decision`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from coldvault.policy.errors import RULE_ERRORS
from coldvault.quorum.groups import GroupRequirement
from coldvault.requests.base import Chain


class DestinationKind(StrEnum):
    """How an address-book entry earned its place.

    ``proven``: it carries an ownership proof the appliance verifies (BIP-322, BIP-137,
    EIP-191/712, Ed25519). ``attested``: no proof is possible (an exchange deposit address, a
    contract, a custodial counterparty); it carries evidence instead, and the admin quorum's
    approval of the policy document is what admits it."""

    PROVEN = "proven"
    ATTESTED = "attested"


@dataclass(frozen=True)
class Evidence:
    """Why an attested entry is believed: a test transaction the counterparty confirmed,
    and/or the travel-rule data of its beneficiary (name, VASP, the VASP's reference)."""

    test_txid: str = ""
    beneficiary: str = ""
    vasp: str = ""
    reference: str = ""

    def sufficient(self) -> bool:
        """A test transaction, or the complete travel-rule triple."""
        return bool(self.test_txid) or all((self.beneficiary, self.vasp, self.reference))

    def describe(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("test transaction", self.test_txid),
                ("beneficiary", self.beneficiary),
                ("VASP", self.vasp),
                ("reference", self.reference),
            )
            if value
        ]
        return ", ".join(parts) or "no evidence"


@dataclass(frozen=True)
class Destination:
    """An address-book entry of one wallet: where the wallet may pay, and why."""

    address: str
    chain: Chain
    label: str
    message: str = field(default="", repr=False)
    signature: str = field(default="", repr=False)
    kind: DestinationKind = DestinationKind.PROVEN
    evidence: Evidence = Evidence()

    @property
    def admitted(self) -> bool:
        """Proven entries are checked at load; an attested one needs sufficient evidence."""
        return self.kind is DestinationKind.PROVEN or self.evidence.sufficient()

    def describe(self) -> str:
        """Kind and evidence, as the review and the admins' proposal show them."""
        if self.kind is DestinationKind.PROVEN:
            text = "proven by an ownership proof"
            if self.evidence != Evidence():
                text += f"; {self.evidence.describe()}"
            return text
        return f"attested: {self.evidence.describe()}"


@dataclass(frozen=True)
class AssetLimits:
    per_transaction: int
    per_day: int
    #: lower cap on what one request may pay to attested destinations (None: no own cap)
    attested_per_transaction: int | None = None


@dataclass(frozen=True)
class Tier:
    asset: str
    up_to: int | None  # inclusive; None = no upper bound
    approvals: int
    allow_attested: bool | None = None  # None: the wallet's allow_attested decides
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
    allow_attested: bool = False  # False: only proven destinations receive payments

    #: approvals every request of the wallet requires from named approver groups
    groups: GroupRequirement = GroupRequirement()

    def attested_allowed(self, asset: str, amount: int) -> bool:
        """Whether attested destinations may be paid when ``amount`` of ``asset`` moves."""
        _, tier = self.required_for(asset, amount)
        if tier is not None and tier.allow_attested is not None:
            return tier.allow_attested
        return self.allow_attested

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

"""The signing policy: whitelists, limits, fee caps, approval tiers, allowed chains and kinds.

A policy is a versioned TOML document (format and every rule in docs/policy.md) signed by the
admin quorum (:mod:`coldvault.signed_config`). Each client's wallets are separate tables; a
request is judged against its one wallet. :meth:`Policy.evaluate` returns a
:class:`Decision` naming every rule it checked and the values that decided it;
:meth:`Decision.enforce` raises the specific :class:`PolicyRuleFailed` subclass.

Every whitelisted destination carries an ownership proof, verified at load time with
``coldvault.ownership.verify_ownership`` (injectable); a policy with an unproven entry does
not load.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from coldvault.errors import ColdvaultError, ConfigError, IntegrityError, PolicyViolation
from coldvault.requests.base import Chain, MovementKind, Review
from coldvault.roster import Role, Roster
from coldvault.signed_config import ConfigVersion, load_signed_document, verify_admin_quorum

FORMAT = "coldvault-policy/1"
MAX_WALLETS = 1000
MAX_ENTRIES = 10_000

#: ``verify_ownership(chain, address, message, signature)`` (coldvault.ownership): raises a
#: :class:`ColdvaultError` (``OwnershipProofInvalid``) when the proof fails. A verifier may
#: also return ``False`` for failure; ``None`` or ``True`` mean proven.
OwnershipVerifier = Callable[[str, str, str, str], object]


# --------------------------------------------------------------------------- errors
class PolicyRuleFailed(PolicyViolation):
    """A request broke one policy rule; ``rule`` and ``values`` say which and why."""

    rule = "policy"

    def __init__(self, message: str, values: Mapping[str, object]) -> None:
        super().__init__(message)
        self.values = dict(values)

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["rule"] = self.rule
        data["values"] = {
            k: v if isinstance(v, int | float | bool) else str(v) for k, v in self.values.items()
        }
        return data


class UnknownWallet(PolicyRuleFailed):
    """The request's wallet is not in the policy."""

    rule = "wallet-known"
    code = "policy-wallet-known"


class ClientMismatch(PolicyRuleFailed):
    """The request's client does not own the wallet."""

    rule = "client-match"
    code = "policy-client-match"


class ChainNotAllowed(PolicyRuleFailed):
    """The chain is not allowed (appliance-wide or for this wallet)."""

    rule = "chain-allowed"
    code = "policy-chain-allowed"


class NetworkNotAllowed(PolicyRuleFailed):
    """The request is for another network than the wallet's."""

    rule = "network"
    code = "policy-network"


class KindNotAllowed(PolicyRuleFailed):
    """The request kind (e.g. eth-typed-data) is not allowed for the wallet."""

    rule = "kind-allowed"
    code = "policy-kind-allowed"


class DestinationNotWhitelisted(PolicyRuleFailed):
    """A destination is not on the wallet's whitelist."""

    rule = "destination-whitelisted"
    code = "policy-destination-whitelisted"


class AssetNotAllowed(PolicyRuleFailed):
    """An asset with no configured limits would move."""

    rule = "asset-allowed"
    code = "policy-asset-allowed"


class PerTransactionLimitExceeded(PolicyRuleFailed):
    """The amount exceeds the per-transaction limit."""

    rule = "per-transaction-limit"
    code = "policy-per-transaction-limit"


class DailyLimitExceeded(PolicyRuleFailed):
    """Today's total plus the amount exceeds the per-day limit."""

    rule = "per-day-limit"
    code = "policy-per-day-limit"


class FeeCapExceeded(PolicyRuleFailed):
    """The fee exceeds the absolute fee cap."""

    rule = "fee-cap"
    code = "policy-fee-cap"


class FeeRateCapExceeded(PolicyRuleFailed):
    """The fee rate exceeds (or cannot be checked against) the cap."""

    rule = "fee-rate-cap"
    code = "policy-fee-rate-cap"


RULE_ERRORS: dict[str, type[PolicyRuleFailed]] = {
    c.rule: c
    for c in (
        UnknownWallet, ClientMismatch, ChainNotAllowed, NetworkNotAllowed, KindNotAllowed,
        DestinationNotWhitelisted, AssetNotAllowed, PerTransactionLimitExceeded,
        DailyLimitExceeded, FeeCapExceeded, FeeRateCapExceeded,
    )
}  # fmt: skip


class PolicyInvalid(ConfigError):
    code = "policy-invalid"

    def __init__(self, reason: str, *, where: str = "") -> None:
        at = f" at {where}" if where else ""
        super().__init__(f"The policy is invalid{at}: {reason}.")
        self.reason = reason
        self.where = where


class UnprovenDestination(ConfigError):
    code = "policy-unproven-destination"

    def __init__(self, wallet: str, address: str, chain: str, detail: str) -> None:
        super().__init__(
            f"Whitelist entry {address} ({chain}) of wallet {wallet} has no valid ownership "
            f"proof ({detail}); the policy was not loaded."
        )
        self.wallet = wallet
        self.address = address
        self.chain = chain


class PolicyRollback(IntegrityError):
    code = "policy-rollback"

    def __init__(self, current_version: int, offered_version: int) -> None:
        super().__init__(
            f"Policy version {offered_version} was refused: version {current_version} is active "
            "and a policy change needs a higher version."
        )
        self.current_version = current_version
        self.offered_version = offered_version


# --------------------------------------------------------------------------- values
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
        for tier in sorted((t for t in self.tiers if t.asset == asset), key=_tier_key):
            if tier.up_to is None or amount <= tier.up_to:
                return max(tier.approvals, self.min_approvals), tier
        return self.min_approvals, None


def _tier_key(t: Tier) -> tuple[bool, int]:
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

    @property
    def failures(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.reasons if not r.passed)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for the audit trail's ``decision`` entry and ``--json`` output."""
        return {
            "allowed": self.allowed,
            "required_approvals": self.required_approvals,
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


# --------------------------------------------------------------------------- policy
class _Check(Protocol):
    def __call__(self, rule: str, ok: bool, message: str, **values: object) -> bool: ...


@dataclass(frozen=True)
class Policy:
    version: int
    appliance_id: str
    chains: frozenset[Chain]
    wallets: Mapping[str, WalletPolicy] = field(hash=False)
    sha256: bytes = b""

    def evaluate(self, review: Review, *, day_total: int | Mapping[str, int] = 0) -> Decision:
        """Judge ``review``. ``day_total``: base units already signed today (UTC) from this
        wallet, per asset (``Ledger.day_totals``), or one int when one asset moves."""
        results: list[RuleResult] = []

        def check(rule: str, ok: bool, message: str, **values: object) -> bool:
            results.append(RuleResult(rule, ok, values, message))
            return ok

        w = self.wallets.get(review.wallet)
        if w is None:
            check(
                "wallet-known",
                False,
                f"Wallet {review.wallet} is not in policy version {self.version}.",
                wallet=review.wallet,
                policy_version=self.version,
            )
            return Decision(False, 0, tuple(results), self.version)
        check(
            "wallet-known",
            True,
            f"Wallet {w.name} is in policy version {self.version}.",
            wallet=w.name,
            policy_version=self.version,
        )
        self._check_scope(w, review, check)
        totals = self._check_destinations(w, review, check)
        required = self._check_amounts(w, totals, _day_totals(day_total, totals), check)
        self._check_fees(w, review, check)
        allowed = all(r.passed for r in results)
        return Decision(allowed, required, tuple(results), self.version)

    def _check_scope(self, w: WalletPolicy, review: Review, check: _Check) -> None:
        neg = {True: "", False: "not "}
        ok = w.client == review.client
        check(
            "client-match",
            ok,
            f"Wallet {w.name} belongs to client {w.client}; the request names {review.client}.",
            wallet=w.name,
            policy_client=w.client,
            request_client=review.client,
        )
        ok = review.chain in self.chains and review.chain == w.chain
        check(
            "chain-allowed",
            ok,
            f"Chain {review.chain} is {neg[ok]}allowed for wallet {w.name}.",
            chain=str(review.chain),
            wallet_chain=str(w.chain),
            allowed_chains=",".join(sorted(self.chains)),
        )
        ok = review.network == w.network
        check(
            "network",
            ok,
            f"Network {review.network} is {neg[ok]}the wallet's network {w.network}.",
            network=review.network,
            wallet_network=w.network,
        )
        ok = review.kind in w.kinds
        check(
            "kind-allowed",
            ok,
            f"Request kind {review.kind} is {neg[ok]}allowed for wallet {w.name}.",
            kind=review.kind,
            allowed_kinds=",".join(sorted(w.kinds)),
        )

    @staticmethod
    def _check_destinations(w: WalletPolicy, review: Review, check: _Check) -> dict[str, int]:
        totals: dict[str, int] = {}
        for i, m in enumerate(review.external):
            totals[m.asset] = totals.get(m.asset, 0) + m.amount
            dest = w.find_destination(m.destination)
            label = dest.label if dest else None
            if dest is None and m.kind is MovementKind.CONTRACT_CALL:
                label = w.find_contract(m.destination)
            if label is None:
                message = f"Destination {m.destination} is not on wallet {w.name}'s whitelist."
            else:
                message = f"Destination {m.destination} is whitelisted as {label!r}."
            check(
                "destination-whitelisted",
                label is not None,
                message,
                movement=i,
                kind=str(m.kind),
                destination=m.destination,
                asset=m.asset,
                amount=m.amount,
                label=label or "",
            )
        return totals

    @staticmethod
    def _check_amounts(
        w: WalletPolicy, totals: Mapping[str, int], days: Mapping[str, int], check: _Check
    ) -> int:
        within = {True: "is within", False: "exceeds"}
        required = w.min_approvals
        for asset, amount in sorted(totals.items()):
            lim = w.limits.get(asset)
            if lim is None:
                check(
                    "asset-allowed",
                    False,
                    f"Asset {asset} has no limits in wallet {w.name}, so it may not move.",
                    asset=asset,
                )
                continue
            check(
                "asset-allowed", True, f"Asset {asset} has limits in wallet {w.name}.", asset=asset
            )
            ok = amount <= lim.per_transaction
            check(
                "per-transaction-limit",
                ok,
                f"{amount} base units of {asset} {within[ok]} the per-transaction limit "
                f"{lim.per_transaction}.",
                asset=asset,
                amount=amount,
                limit=lim.per_transaction,
            )
            today = days.get(asset, 0)
            ok = today + amount <= lim.per_day
            check(
                "per-day-limit",
                ok,
                f"{today} base units of {asset} signed today plus {amount} {within[ok]} the daily "
                f"limit {lim.per_day}.",
                asset=asset,
                amount=amount,
                day_total=today,
                limit=lim.per_day,
            )
            need, tier = w.required_for(asset, amount)
            required = max(required, need)
            bound = "unbounded" if tier is None or tier.up_to is None else tier.up_to
            check(
                "approval-tier",
                True,
                f"{amount} base units of {asset} need {need} approvals (tier up to {bound}).",
                asset=asset,
                amount=amount,
                approvals=need,
                tier_up_to=bound,
            )
        if not totals:
            check(
                "approval-tier",
                True,
                f"No value moves; the wallet minimum of {w.min_approvals} approvals applies.",
                approvals=w.min_approvals,
            )
        return required

    @staticmethod
    def _check_fees(w: WalletPolicy, review: Review, check: _Check) -> None:
        if review.fee is None:
            return
        if w.max_fee is not None:
            ok = review.fee <= w.max_fee
            verdict = "is within" if ok else "exceeds"
            check(
                "fee-cap",
                ok,
                f"The fee of {review.fee} base units {verdict} the cap of {w.max_fee}.",
                fee=review.fee,
                cap=w.max_fee,
            )
        if w.max_fee_rate is not None:
            rate = review.fee_rate
            ok = rate is not None and rate <= w.max_fee_rate
            shown = "unknown" if rate is None else f"{rate:.2f} sat/vB"
            verdict = "is within" if ok else "breaks"
            check(
                "fee-rate-cap",
                ok,
                f"The fee rate ({shown}) {verdict} the cap of {w.max_fee_rate} sat/vB.",
                fee_rate=shown,
                cap=w.max_fee_rate,
            )

    def enforce(self, review: Review, *, day_total: int | Mapping[str, int] = 0) -> Decision:
        return self.evaluate(review, day_total=day_total).enforce()

    @property
    def config_version(self) -> ConfigVersion:
        return ConfigVersion("policy", self.version, self.sha256)

    def max_required_approvals(self) -> int:
        return max(
            [w.min_approvals for w in self.wallets.values()]
            + [t.approvals for w in self.wallets.values() for t in w.tiers]
            + [0]
        )


def _day_totals(day_total: int | Mapping[str, int], totals: Mapping[str, int]) -> Mapping[str, int]:
    if isinstance(day_total, Mapping):
        return day_total
    moving = [a for a, v in totals.items() if v]
    if day_total and len(moving) > 1:
        raise ValueError("several assets move: pass day_total as a mapping asset -> base units")
    return {a: day_total for a in (moving or list(totals))}


# --------------------------------------------------------------------------- loading
def _default_verifier() -> OwnershipVerifier:
    from coldvault.ownership import verify_ownership

    return verify_ownership


def parse_policy(
    data: bytes | str, *, ownership_verifier: OwnershipVerifier | None = None
) -> Policy:
    """Parse and check a policy document (no signature check: see :func:`load_policy`)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise PolicyInvalid(f"it is not valid UTF-8 TOML ({exc})") from exc
    if doc.get("format") != FORMAT:
        raise PolicyInvalid(f"format must be {FORMAT!r}")
    try:
        chains = frozenset(Chain(c) for c in _list(doc, "chains"))
        wallets_raw = _list(doc, "wallet")
        if len(wallets_raw) > MAX_WALLETS:
            raise PolicyInvalid(f"more than {MAX_WALLETS} wallets")
        wallets: dict[str, WalletPolicy] = {}
        for i, entry in enumerate(wallets_raw):
            wp = _wallet(entry, f"wallet[{i}]")
            if wp.name in wallets:
                raise PolicyInvalid(f"wallet {wp.name} appears twice", where=f"wallet[{i}]")
            wallets[wp.name] = wp
        policy = Policy(
            version=_int(doc, "version", 1),
            appliance_id=str(doc["appliance_id"]),
            chains=chains,
            wallets=wallets,
            sha256=hashlib.sha256(raw).digest(),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyInvalid(f"{exc!r}") from exc
    verifier = ownership_verifier
    for w in policy.wallets.values():
        for d in w.destinations:
            verifier = verifier or _default_verifier()
            try:
                ok = verifier(str(d.chain), d.address, d.message, d.signature) is not False
                detail = "the signature does not verify"
            except ColdvaultError as exc:
                ok, detail = False, exc.message
            if not ok:
                raise UnprovenDestination(w.name, d.address, str(d.chain), detail)
    return policy


def load_policy(
    path: Path,
    *,
    roster: Roster,
    current: Policy | ConfigVersion | None = None,
    ownership_verifier: OwnershipVerifier | None = None,
) -> Policy:
    """Load ``path`` + ``path.approvals.json``: admin quorum of ``roster``, no rollback,
    every whitelist entry proven, every threshold reachable by the roster's approvers."""
    doc = load_signed_document(path, "policy")
    verify_admin_quorum(doc, roster)
    policy = parse_policy(doc.content, ownership_verifier=ownership_verifier)
    if policy.version != doc.version or policy.appliance_id != doc.appliance_id:
        raise PolicyInvalid("the approvals name another version or appliance than the policy")
    if current is not None and (
        policy.version < current.version
        or (policy.version == current.version and policy.sha256 != current.sha256)
    ):
        raise PolicyRollback(current.version, policy.version)
    approvers = roster.distinct_holders(Role.APPROVER)
    if policy.max_required_approvals() > approvers:
        raise PolicyInvalid(
            f"it requires {policy.max_required_approvals()} approvals but roster version "
            f"{roster.version} has only {approvers} active approvers"
        )
    return policy


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise PolicyInvalid(f"{key} must be a list of at most {MAX_ENTRIES} entries")
    return value


def _int(obj: Mapping[str, Any], key: str, minimum: int = 0, default: int | None = None) -> int:
    value = obj.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise PolicyInvalid(f"{key} must be an integer of at least {minimum}")
    return value


def _opt_num(obj: Mapping[str, Any], key: str) -> Any:
    value = obj.get(key)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or value < 0
    ):
        raise PolicyInvalid(f"{key} must be a non-negative number")
    return value


def _wallet(e: Mapping[str, Any], where: str) -> WalletPolicy:
    try:
        chain = Chain(e["chain"])
        limits = {}
        for asset, lim in dict(e.get("limits", {})).items():
            limits[str(asset)] = AssetLimits(_int(lim, "per_transaction"), _int(lim, "per_day"))
        tiers = tuple(
            Tier(str(t["asset"]), None if t.get("up_to") is None else _int(t, "up_to"),
                 _int(t, "approvals", 1))
            for t in _list(e, "tier")
        )  # fmt: skip
        dests = tuple(
            Destination(str(d["address"]), Chain(d["chain"]), str(d["label"]),
                        str(d["message"]), str(d["signature"]))
            for d in _list(e, "destination")
        )  # fmt: skip
        contracts = tuple((str(c["address"]), str(c["label"])) for c in _list(e, "contract"))
        wp = WalletPolicy(
            name=str(e["name"]),
            client=str(e["client"]),
            chain=chain,
            network=str(e["network"]),
            kinds=frozenset(str(k) for k in _list(e, "kinds")),
            min_approvals=_int(e, "min_approvals", 1),
            limits=limits,
            tiers=tiers,
            destinations=dests,
            contracts=contracts,
            max_fee=None if e.get("max_fee") is None else _int(e, "max_fee"),
            max_fee_rate=_opt_num(e, "max_fee_rate"),
        )
    except PolicyInvalid as exc:
        raise PolicyInvalid(exc.reason, where=where) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PolicyInvalid(f"{exc!r}", where=where) from exc
    for d in wp.destinations:
        if d.chain != wp.chain:
            raise PolicyInvalid(f"destination {d.address} is for chain {d.chain}", where=where)
    for asset in {t.asset for t in wp.tiers}:
        ordered = sorted((t for t in wp.tiers if t.asset == asset), key=_tier_key)
        if asset not in wp.limits:
            raise PolicyInvalid(f"tiers for asset {asset} that has no limits", where=where)
        if ordered[-1].up_to is not None or any(t.up_to is None for t in ordered[:-1]):
            raise PolicyInvalid(f"asset {asset} needs exactly one tier without up_to", where=where)
        if any(a.approvals > b.approvals for a, b in zip(ordered, ordered[1:], strict=False)):
            raise PolicyInvalid(f"tiers of asset {asset} must not decrease", where=where)
    return wp

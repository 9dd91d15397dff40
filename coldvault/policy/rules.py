"""Policy evaluation: :class:`Policy` judges a review against its wallet's rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from coldvault.policy.model import Decision, DestinationKind, RuleResult, WalletPolicy
from coldvault.quorum.documents import ConfigVersion
from coldvault.quorum.groups import GroupRequirement
from coldvault.quorum.roster import Role, Roster
from coldvault.requests.amounts import NATIVE, format_amount
from coldvault.requests.base import Chain, MovementKind, Review


class _Check(Protocol):
    def __call__(self, rule: str, ok: bool, message: str, **values: object) -> bool: ...


#: How often a restore drill must pass (``drill_interval_days``) unless the policy says.
DEFAULT_DRILL_INTERVAL_DAYS = 180


@dataclass(frozen=True)
class Policy:
    version: int
    appliance_id: str
    chains: frozenset[Chain]
    wallets: Mapping[str, WalletPolicy] = field(hash=False)
    sha256: bytes = b""
    #: the appliance warns at start-up when the last passing restore drill is older
    drill_interval_days: int = DEFAULT_DRILL_INTERVAL_DAYS

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
        totals, attested = self._check_destinations(w, review, check)
        self._check_attested(w, totals, attested, check)
        required, groups = self._check_amounts(w, totals, _day_totals(day_total, totals), check)
        self._check_fees(w, review, check)
        allowed = all(r.passed for r in results)
        return Decision(allowed, max(required, groups.total), tuple(results), self.version, groups)

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
    def _check_destinations(
        w: WalletPolicy, review: Review, check: _Check
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Every external movement's destination is in the wallet's address book (or a
        callable contract). Returns the totals per asset, and those paid to attested
        entries."""
        totals: dict[str, int] = {}
        attested: dict[str, int] = {}
        for i, m in enumerate(review.external):
            totals[m.asset] = totals.get(m.asset, 0) + m.amount
            dest = w.find_destination(m.destination)
            label = dest.label if dest else None
            kind, evidence = "", ""
            if dest is None and m.kind is MovementKind.CONTRACT_CALL:
                label = w.find_contract(m.destination)
                kind = "contract" if label is not None else ""
            if label is None:
                message = f"Destination {m.destination} is not on wallet {w.name}'s whitelist."
            elif dest is not None and not dest.admitted:
                label = None
                message = (
                    f"Destination {m.destination} is attested without evidence, so it may not "
                    "be paid."
                )
            elif dest is not None:
                kind, evidence = str(dest.kind), dest.evidence.describe()
                message = f"Destination {m.destination} is whitelisted as {dest.label!r}, " + (
                    f"{dest.describe()}."
                )
                if dest.kind is DestinationKind.ATTESTED:
                    attested[m.asset] = attested.get(m.asset, 0) + m.amount
            else:
                message = f"Destination {m.destination} is the callable contract {label!r}."
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
                destination_kind=kind,
                evidence=evidence,
            )
        return totals, attested

    @staticmethod
    def _check_attested(
        w: WalletPolicy, totals: Mapping[str, int], attested: Mapping[str, int], check: _Check
    ) -> None:
        """Attested destinations only where the wallet or the amount's tier allows them, and
        within their own lower cap."""
        for asset, amount in sorted(attested.items()):
            ok = w.attested_allowed(asset, totals[asset])
            check(
                "attested-allowed",
                ok,
                f"Wallet {w.name} {'allows' if ok else 'does not allow'} attested destinations "
                f"when {totals[asset]} base units of {asset} move"
                + ("." if ok else "; it requires proven destinations."),
                asset=asset,
                amount=totals[asset],
                attested_amount=amount,
            )
            lim = w.limits.get(asset)
            cap = None if lim is None else lim.attested_per_transaction
            if cap is not None:
                ok = amount <= cap
                check(
                    "attested-cap",
                    ok,
                    f"{amount} base units of {asset} to attested destinations "
                    f"{'is within' if ok else 'exceeds'} their cap of {cap}.",
                    asset=asset,
                    attested_amount=amount,
                    cap=cap,
                )

    @staticmethod
    def _check_amounts(
        w: WalletPolicy, totals: Mapping[str, int], days: Mapping[str, int], check: _Check
    ) -> tuple[int, GroupRequirement]:
        within = {True: "is within", False: "exceeds"}
        required = w.min_approvals
        groups = [w.groups]
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
                f"{format_amount(asset, amount)} {within[ok]} the per-transaction limit of "
                f"{format_amount(asset, lim.per_transaction)}.",
                asset=asset,
                amount=amount,
                limit=lim.per_transaction,
            )
            today = days.get(asset, 0)
            ok = today + amount <= lim.per_day
            check(
                "per-day-limit",
                ok,
                f"{format_amount(asset, today)} signed today plus {format_amount(asset, amount)} "
                f"{within[ok]} the daily limit of {format_amount(asset, lim.per_day)}.",
                asset=asset,
                amount=amount,
                day_total=today,
                limit=lim.per_day,
            )
            need, tier = w.required_for(asset, amount)
            required = max(required, need)
            tier_groups = w.groups_for(tier)
            groups.append(tier_groups)
            bound = "unbounded" if tier is None or tier.up_to is None else tier.up_to
            shown = ("the top tier, no upper bound" if isinstance(bound, str)
                     else f"the tier up to {format_amount(asset, bound)}")  # fmt: skip
            of_groups = f", {tier_groups}" if tier_groups else ""
            check(
                "approval-tier",
                True,
                f"{format_amount(asset, amount)} needs {need} approvals{of_groups} "
                f"({shown}).",
                asset=asset,
                amount=amount,
                approvals=need,
                tier_up_to=bound,
                **({"groups": tier_groups.as_dict()} if tier_groups else {}),
            )
        if not totals:
            check(
                "approval-tier",
                True,
                f"No value moves; the wallet minimum of {w.min_approvals} approvals applies.",
                approvals=w.min_approvals,
            )
        return required, GroupRequirement.strictest(groups)

    @staticmethod
    def _check_fees(w: WalletPolicy, review: Review, check: _Check) -> None:
        if review.fee is None:
            return
        if w.max_fee is not None:
            ok = review.fee <= w.max_fee
            verdict = "is within" if ok else "exceeds"
            fee_asset = NATIVE[review.chain].symbol
            check(
                "fee-cap",
                ok,
                f"The fee of {format_amount(fee_asset, review.fee)} {verdict} the cap of "
                f"{format_amount(fee_asset, w.max_fee)}.",
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

    def unreachable_with(self, roster: Roster) -> str:
        """Why ``roster``'s active approvers cannot meet some threshold or group count of
        this policy (``""``: every one is reachable)."""
        approvers = roster.distinct_holders(Role.APPROVER)
        if self.max_required_approvals() > approvers:
            return (
                f"it requires {self.max_required_approvals()} approvals but roster version "
                f"{roster.version} has only {approvers} active approvers"
            )
        for group, count in self.required_groups().counts:
            members = roster.distinct_in_group(group)
            if count > members:
                return (
                    f"it requires {count} approvals from group {group} but roster version "
                    f"{roster.version} has only {members} active approvers in that group"
                )
        return ""

    def required_groups(self) -> GroupRequirement:
        """For each approver group, the most approvals any wallet or tier asks of it."""
        return GroupRequirement.strictest(
            [w.groups for w in self.wallets.values()]
            + [t.groups for w in self.wallets.values() for t in w.tiers]
        )

    def max_required_approvals(self) -> int:
        return max(
            [max(w.min_approvals, w.groups.total) for w in self.wallets.values()]
            + [
                max(t.approvals, w.groups_for(t).total)
                for w in self.wallets.values()
                for t in w.tiers
            ]
            + [0]
        )


def _day_totals(day_total: int | Mapping[str, int], totals: Mapping[str, int]) -> Mapping[str, int]:
    if isinstance(day_total, Mapping):
        return day_total
    moving = [a for a, v in totals.items() if v]
    if day_total and len(moving) > 1:
        raise ValueError("several assets move: pass day_total as a mapping asset -> base units")
    return {a: day_total for a in (moving or list(totals))}

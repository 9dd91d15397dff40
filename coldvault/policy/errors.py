"""Policy errors: one :class:`PolicyRuleFailed` subclass per rule a request can break, and the
errors of loading a policy (invalid, unproven whitelist entry, rollback)."""

from __future__ import annotations

from collections.abc import Mapping

from coldvault.errors import ConfigError, IntegrityError, PolicyViolation


class PolicyRuleFailed(PolicyViolation):
    """A request broke one policy rule; ``rule`` and ``values`` say which and why."""

    code = "policy-rule"

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


class AttestedNotAllowed(PolicyRuleFailed):
    """An attested destination would be paid where the wallet (or the amount's tier) requires
    proven destinations."""

    rule = "attested-allowed"
    code = "policy-attested-allowed"


class AttestedCapExceeded(PolicyRuleFailed):
    """The amount paid to attested destinations exceeds their lower per-transaction cap."""

    rule = "attested-cap"
    code = "policy-attested-cap"


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
        DestinationNotWhitelisted, AttestedNotAllowed, AttestedCapExceeded, AssetNotAllowed,
        PerTransactionLimitExceeded, DailyLimitExceeded, FeeCapExceeded, FeeRateCapExceeded,
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

"""The signing policy: whitelists, limits, fee caps, approval tiers, allowed chains and kinds.

A policy is a versioned TOML document (format and every rule in docs/policy.md) signed by the
admin quorum (:mod:`coldvault.quorum.documents`). Each client's wallets are separate tables; a
request is judged against its one wallet. :meth:`Policy.evaluate` returns a
:class:`Decision` naming every rule it checked and the values that decided it;
:meth:`Decision.enforce` raises the specific :class:`PolicyRuleFailed` subclass.

Every whitelisted destination carries an ownership proof, verified at load time with
``coldvault.policy.ownership.verify_ownership`` (injectable); a policy with an unproven entry does
not load.

The parts: :mod:`coldvault.policy.errors`, :mod:`coldvault.policy.model`
(values, :class:`Decision`), :mod:`coldvault.policy.rules` (:class:`Policy`, evaluation)
:mod:`coldvault.policy.load` (parsing and loading) and :mod:`coldvault.policy.write`
(:func:`policy_toml`, the one writer of policy documents).
"""

from coldvault.policy.errors import (
    PolicyInvalid,
    PolicyRollback,
    PolicyRuleFailed,
    UnprovenDestination,
)
from coldvault.policy.load import OwnershipVerifier, load_policy, parse_policy
from coldvault.policy.model import (
    AssetLimits,
    Decision,
    Destination,
    RuleResult,
    Tier,
    WalletPolicy,
)
from coldvault.policy.rules import Policy
from coldvault.policy.write import policy_toml

__all__ = [
    "AssetLimits",
    "Decision",
    "Destination",
    "OwnershipVerifier",
    "Policy",
    "PolicyInvalid",
    "PolicyRollback",
    "PolicyRuleFailed",
    "RuleResult",
    "Tier",
    "UnprovenDestination",
    "WalletPolicy",
    "load_policy",
    "parse_policy",
    "policy_toml",
]

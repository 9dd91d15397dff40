"""The signing policy: whitelists, limits, fee caps, approval tiers, allowed chains and kinds.

A policy is a versioned TOML document (format and every rule in docs/policy.md) signed by the
admin quorum (:mod:`coldvault.quorum.documents`). Each client's wallets are separate tables; a
request is judged against its one wallet. :meth:`Policy.evaluate` returns a
:class:`Decision` naming every rule it checked and the values that decided it;
:meth:`Decision.enforce` raises the specific :class:`PolicyRuleFailed` subclass.

Each wallet has an address book. A *proven* entry carries an ownership proof, verified at
load time with ``coldvault.policy.ownership.verify_ownership`` (injectable; BIP-322 in
:mod:`coldvault.policy.bip322`); a policy with an unproven entry does not load. An *attested*
entry carries :class:`Evidence` instead (a test transaction, travel-rule data); it loads only
with sufficient evidence and is paid only where the wallet or the amount's tier allows it.

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
    DestinationKind,
    Evidence,
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
    "DestinationKind",
    "Evidence",
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

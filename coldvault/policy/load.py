"""Loading a policy: TOML parsing and checks, ownership proofs, admin quorum, no rollback."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coldvault.errors import ColdvaultError
from coldvault.policy.errors import PolicyInvalid, PolicyRollback, UnprovenDestination
from coldvault.policy.model import AssetLimits, Destination, Tier, WalletPolicy, tier_key
from coldvault.policy.rules import Policy
from coldvault.quorum.documents import ConfigVersion, load_signed_document, verify_admin_quorum
from coldvault.quorum.groups import GroupRequirement
from coldvault.quorum.roster import Roster
from coldvault.requests.base import Chain

FORMAT = "coldvault-policy/1"
MAX_WALLETS = 1000
MAX_ENTRIES = 10_000

#: ``verify_ownership(chain, address, message, signature)`` (coldvault.policy.ownership): raises a
#: :class:`ColdvaultError` (``OwnershipProofInvalid``) when the proof fails. A verifier may
#: also return ``False`` for failure; ``None`` or ``True`` mean proven.
OwnershipVerifier = Callable[[str, str, str, str], object]


def _default_verifier() -> OwnershipVerifier:
    from coldvault.policy.ownership import verify_ownership

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
    unreachable = policy.unreachable_with(roster)
    if unreachable:
        raise PolicyInvalid(unreachable)
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


def _groups(obj: Mapping[str, Any]) -> GroupRequirement:
    """``groups = { compliance = 1, treasury = 2 }``: distinct approvers per named group."""
    value = obj.get("groups", {})
    if not isinstance(value, Mapping):
        raise PolicyInvalid("groups must be a table of group name = count")
    counts: dict[str, int] = {}
    for group, count in value.items():
        if not isinstance(count, int) or isinstance(count, bool):
            raise PolicyInvalid(f"groups.{group} must be an integer")
        counts[str(group)] = count
    try:
        return GroupRequirement.of(counts)
    except ValueError as exc:
        raise PolicyInvalid(str(exc)) from exc


def _wallet(e: Mapping[str, Any], where: str) -> WalletPolicy:
    try:
        chain = Chain(e["chain"])
        limits = {}
        for asset, lim in dict(e.get("limits", {})).items():
            limits[str(asset)] = AssetLimits(_int(lim, "per_transaction"), _int(lim, "per_day"))
        tiers = tuple(
            Tier(str(t["asset"]), None if t.get("up_to") is None else _int(t, "up_to"),
                 _int(t, "approvals", 1), _groups(t))
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
            groups=_groups(e),
        )
    except PolicyInvalid as exc:
        raise PolicyInvalid(exc.reason, where=where) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PolicyInvalid(f"{exc!r}", where=where) from exc
    for d in wp.destinations:
        if d.chain != wp.chain:
            raise PolicyInvalid(f"destination {d.address} is for chain {d.chain}", where=where)
    for asset in {t.asset for t in wp.tiers}:
        ordered = sorted((t for t in wp.tiers if t.asset == asset), key=tier_key)
        if asset not in wp.limits:
            raise PolicyInvalid(f"tiers for asset {asset} that has no limits", where=where)
        if ordered[-1].up_to is not None or any(t.up_to is None for t in ordered[:-1]):
            raise PolicyInvalid(f"asset {asset} needs exactly one tier without up_to", where=where)
        if any(a.approvals > b.approvals for a, b in zip(ordered, ordered[1:], strict=False)):
            raise PolicyInvalid(f"tiers of asset {asset} must not decrease", where=where)
    return wp

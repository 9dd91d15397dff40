"""Loading a policy: TOML parsing and checks, ownership proofs of proven address-book entries,
evidence of attested ones, admin quorum, no rollback."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from coldvault import schema
from coldvault.errors import ColdvaultError
from coldvault.policy.errors import PolicyInvalid, PolicyRollback, UnprovenDestination
from coldvault.policy.model import (
    AssetLimits,
    Destination,
    DestinationKind,
    Evidence,
    Tier,
    WalletPolicy,
    tier_key,
)
from coldvault.policy.rules import DEFAULT_DRILL_INTERVAL_DAYS, Policy
from coldvault.quorum.documents import ConfigVersion, load_signed_document, verify_admin_quorum
from coldvault.quorum.groups import GroupRequirement
from coldvault.quorum.roster import Roster
from coldvault.requests.base import Chain

FORMAT = "coldvault-policy/1"
MAX_WALLETS = 1000
MAX_ENTRIES = 10_000

_AMOUNT = schema.Number(integer=True)
_TEXT = schema.Text()
_CHAIN = schema.Text(choices=tuple(str(c) for c in Chain))
#: ``groups = { compliance = 1, treasury = 2 }``: approvals per named approver group
_GROUPS = schema.Entries(schema.Number(integer=True, positive=True, maximum=64), max_items=16)

#: The policy document's declared shape (docs/policy.md). A section added to the policy
#: model is declared here too; anything not declared is refused, naming the nearest key.
POLICY_SCHEMA = schema.Table(
    {
        "format": schema.Text(max_len=64),
        "version": schema.Number(integer=True, positive=True),
        "appliance_id": schema.Text(max_len=200),
        "chains": schema.Items(_CHAIN, max_items=16),
        "drill_interval_days": schema.Number(integer=True, positive=True, maximum=3650),
        "wallet": schema.Items(
            schema.Table(
                {
                    "name": schema.Text(max_len=200),
                    "client": schema.Text(max_len=200),
                    "chain": _CHAIN,
                    "network": schema.Text(max_len=64),
                    "kinds": schema.Items(schema.Text(max_len=64), max_items=64),
                    "min_approvals": schema.Number(integer=True, positive=True, maximum=1000),
                    "max_fee": _AMOUNT,
                    "max_fee_rate": schema.Number(),
                    "allow_attested": schema.Flag(),
                    "groups": _GROUPS,
                    "limits": schema.Entries(
                        schema.Table(
                            {
                                "per_transaction": _AMOUNT,
                                "per_day": _AMOUNT,
                                "attested_per_transaction": _AMOUNT,
                            },
                            required=frozenset({"per_transaction", "per_day"}),
                        ),
                        max_items=64,
                    ),
                    "tier": schema.Items(
                        schema.Table(
                            {
                                "asset": _TEXT,
                                "up_to": _AMOUNT,
                                "approvals": schema.Number(
                                    integer=True, positive=True, maximum=1000
                                ),
                                "allow_attested": schema.Flag(),
                                "groups": _GROUPS,
                            },
                            required=frozenset({"asset"}),
                        ),
                        max_items=MAX_ENTRIES,
                    ),
                    "destination": schema.Items(
                        schema.Table(
                            {
                                "address": _TEXT,
                                "chain": _CHAIN,
                                "label": _TEXT,
                                "kind": schema.Text(choices=("proven", "attested")),
                                "message": schema.Text(),
                                "signature": schema.Text(),
                                "test_txid": _TEXT,
                                "beneficiary": _TEXT,
                                "vasp": _TEXT,
                                "reference": _TEXT,
                            },
                            required=frozenset({"address", "chain", "label"}),
                        ),
                        max_items=MAX_ENTRIES,
                    ),
                    "contract": schema.Items(
                        schema.Table(
                            {"address": _TEXT, "label": _TEXT},
                            required=frozenset({"address", "label"}),
                        ),
                        max_items=MAX_ENTRIES,
                    ),
                },
                required=frozenset({"name", "client", "chain", "network"}),
            ),
            max_items=MAX_WALLETS,
        ),
    },
    required=frozenset({"format", "version", "appliance_id"}),
)

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
        doc = schema.parse_toml(raw)
        if doc.get("format") != FORMAT:
            raise PolicyInvalid(f"format must be {FORMAT!r}")
        schema.check(doc, POLICY_SCHEMA)
    except schema.SchemaViolation as exc:
        raise PolicyInvalid(exc.problem, where=exc.where) from None
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
            drill_interval_days=_int(
                doc, "drill_interval_days", 1, default=DEFAULT_DRILL_INTERVAL_DAYS
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyInvalid(f"{exc!r}") from exc
    verifier = ownership_verifier
    for w in policy.wallets.values():
        for d in w.destinations:
            if d.kind is not DestinationKind.PROVEN:
                continue  # attested: admitted by the admin quorum's approval, with evidence
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


def _opt_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise PolicyInvalid(f"{key} must be true or false")
    return value


_MAX_TEXT = 200


def _text(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key, "")
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise PolicyInvalid(f"{key} must be text of at most {_MAX_TEXT} characters")
    return value.strip()


def _destination(d: Mapping[str, Any]) -> Destination:
    """One address-book entry: proven (message + signature) or attested (evidence)."""
    address = str(d["address"])
    try:
        kind = DestinationKind(d.get("kind", "proven"))
    except ValueError as exc:
        raise PolicyInvalid(f"destination {address}: kind must be proven or attested") from exc
    chain = Chain(d["chain"])
    evidence = Evidence(
        test_txid=_txid(chain, _text(d, "test_txid"), address),
        beneficiary=_text(d, "beneficiary"),
        vasp=_text(d, "vasp"),
        reference=_text(d, "reference"),
    )
    if kind is DestinationKind.PROVEN:
        message, signature = str(d["message"]), str(d["signature"])
    elif "message" in d or "signature" in d:
        raise PolicyInvalid(
            f"attested destination {address} carries a proof; a proven entry is kind proven"
        )
    else:
        message = signature = ""
        _attested_address(chain, address)
    return Destination(address, chain, str(d["label"]), message, signature, kind, evidence)


def _attested_address(chain: Chain, address: str) -> None:
    """An attested entry has no proof to vouch for its address: check its form here."""
    from coldvault.policy.ownership import check_address

    try:
        check_address(chain, address)
    except ColdvaultError as exc:
        raise PolicyInvalid(
            f"attested destination {address} is not a valid {chain} address "
            f"({exc.message.rstrip('.')})"
        ) from exc


_TXID = {
    Chain.BITCOIN: re.compile(r"[0-9a-fA-F]{64}"),
    Chain.ETHEREUM: re.compile(r"0x[0-9a-fA-F]{64}"),
    Chain.SOLANA: re.compile(r"[1-9A-HJ-NP-Za-km-z]{64,88}"),
}


def _txid(chain: Chain, value: str, address: str) -> str:
    if value and not _TXID[chain].fullmatch(value):
        shape = {Chain.BITCOIN: "64 hex digits", Chain.ETHEREUM: "0x and 64 hex digits",
                 Chain.SOLANA: "a base58 transaction signature"}[chain]  # fmt: skip
        raise PolicyInvalid(f"test_txid of destination {address} must be {shape}")
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
            attested_cap = lim.get("attested_per_transaction")
            limits[str(asset)] = AssetLimits(
                _int(lim, "per_transaction"), _int(lim, "per_day"),
                None if attested_cap is None else _int(lim, "attested_per_transaction"),
            )  # fmt: skip
        tiers = tuple(
            Tier(str(t["asset"]), None if t.get("up_to") is None else _int(t, "up_to"),
                 _int(t, "approvals", 1), _opt_bool(t, "allow_attested"), _groups(t))
            for t in _list(e, "tier")
        )  # fmt: skip
        dests = tuple(_destination(d) for d in _list(e, "destination"))
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
            allow_attested=bool(_opt_bool(e, "allow_attested")),
            groups=_groups(e),
        )
    except PolicyInvalid as exc:
        raise PolicyInvalid(exc.reason, where=where) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PolicyInvalid(f"{exc!r}", where=where) from exc
    for d in wp.destinations:
        if d.chain != wp.chain:
            raise PolicyInvalid(f"destination {d.address} is for chain {d.chain}", where=where)
        if not d.admitted:
            raise PolicyInvalid(
                f"attested destination {d.address} has no evidence: give test_txid, or "
                "beneficiary, vasp and reference",
                where=where,
            )
    for asset, lim in wp.limits.items():
        cap = lim.attested_per_transaction
        if cap is not None and cap > lim.per_transaction:
            raise PolicyInvalid(
                f"attested_per_transaction of {asset} ({cap}) is above its per_transaction "
                f"limit ({lim.per_transaction}); the attested cap is the lower one",
                where=where,
            )
    for asset in {t.asset for t in wp.tiers}:
        ordered = sorted((t for t in wp.tiers if t.asset == asset), key=tier_key)
        if asset not in wp.limits:
            raise PolicyInvalid(f"tiers for asset {asset} that has no limits", where=where)
        if ordered[-1].up_to is not None or any(t.up_to is None for t in ordered[:-1]):
            raise PolicyInvalid(f"asset {asset} needs exactly one tier without up_to", where=where)
        if any(a.approvals > b.approvals for a, b in zip(ordered, ordered[1:], strict=False)):
            raise PolicyInvalid(f"tiers of asset {asset} must not decrease", where=where)
    return wp

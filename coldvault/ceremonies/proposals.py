"""What the admin quorum is shown and asked to sign: :class:`Proposal`.

A proposal is the :class:`~coldvault.quorum.documents.SignedDocument` to be approved, the
tables the console shows (a summary of a policy, a wallet registry or a roster successor)
and the public facts the transcript records.  Everything here is checked before any card
is asked for: a document that cannot be approved is :class:`DocumentRefused` with the
reason.  The roster chain that decides who signs is verified from its genesis
(:func:`load_chain`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault import jsonsafe
from coldvault.ceremonies.params import ParameterError
from coldvault.errors import Refused
from coldvault.policy import parse_policy
from coldvault.quorum.documents import (
    MAX_DOCUMENT_BYTES,
    ConfigVersion,
    SignedDocument,
    approvals_path,
    load_signed_document,
    verify_roster_chain,
)
from coldvault.quorum.roster import Role, Roster, RosterRollback
from coldvault.requests.amounts import NATIVE, format_amount
from coldvault.requests.wallets import parse_wallets

_Rows = list[tuple[str, str]]
#: The verified roster chain: the newest roster and every document, genesis first.
Chain = tuple[Roster, list[SignedDocument]]


class DocumentKind(enum.StrEnum):
    """What ``approve-document`` approves."""

    POLICY = "policy"
    WALLETS = "wallets"
    ROSTER = "roster"


class DocumentRefused(Refused):
    """The document cannot be approved as given (before any card is asked for)."""

    code = "document-refused"

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"The {kind} document was not put to the admins: {reason}.")
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Proposal:
    """What the admins are asked to sign, and how it is shown to them."""

    doc: SignedDocument
    tables: tuple[tuple[str, _Rows], ...]
    facts: dict[str, Any]  # public summary for the transcript


def genesis_hex(value: str) -> str:
    """A pinned genesis roster hash as typed: empty, or 64 hex digits (lower-cased)."""
    genesis = value.strip().lower()
    if genesis and (len(genesis) != 64 or any(c not in "0123456789abcdef" for c in genesis)):
        raise ParameterError("genesis-sha256", "--genesis-sha256 must be 64 hex digits.")
    return genesis


def load_chain(paths: tuple[Path, ...], genesis_hex: str) -> Chain:
    """Verify the roster chain (genesis first) from the pinned (or first-seen) genesis."""
    docs = [load_signed_document(p, "roster") for p in paths]
    pinned = bytes.fromhex(genesis_hex) if genesis_hex else docs[0].sha256
    return verify_roster_chain(docs, pinned), docs


def _policy(content: bytes, roster: Roster, version: int | None) -> tuple[int, str, Proposal]:
    policy = parse_policy(content)  # every whitelist ownership proof is checked here
    if version is not None and version != policy.version:
        raise DocumentRefused("policy", f"it is version {policy.version}, not {version}")
    approvers = roster.distinct_holders(Role.APPROVER)
    if policy.max_required_approvals() > approvers:
        raise DocumentRefused(
            "policy",
            f"it requires {policy.max_required_approvals()} approvals but roster version "
            f"{roster.version} has only {approvers} active approvers",
        )
    tables: list[tuple[str, _Rows]] = [
        ("Policy", [("chains", ", ".join(sorted(str(c) for c in policy.chains)))])
    ]
    for w in policy.wallets.values():
        approvals = [f"at least {w.min_approvals}"] + [
            f"{t.asset} "
            f"{'up to ' + format_amount(t.asset, t.up_to) if t.up_to is not None else 'above'}"
            f": {t.approvals}"
            for t in w.tiers
        ]
        rows: _Rows = [
            ("client", w.client),
            ("chain / network", f"{w.chain} / {w.network}"),
            ("request kinds", ", ".join(sorted(w.kinds))),
            ("approvals", "; ".join(approvals)),
        ]
        rows += [
            (f"limit {asset}", f"{format_amount(asset, lim.per_transaction)} per transaction, "
             f"{format_amount(asset, lim.per_day)} per day")
            for asset, lim in w.limits.items()
        ]  # fmt: skip
        fee = NATIVE[w.chain].symbol
        rows.append(("max fee", "none" if w.max_fee is None else format_amount(fee, w.max_fee)))
        if w.max_fee_rate is not None:
            rows.append(("max fee rate", f"{w.max_fee_rate} sat/vB"))
        rows += [(f"destination {d.label}", d.address) for d in w.destinations]
        rows += [(f"contract {label}", address) for address, label in w.contracts]
        tables.append((f"Policy for wallet {w.name}", rows))
    facts = {
        "wallets": sorted(policy.wallets),
        "destinations": sum(len(w.destinations) for w in policy.wallets.values()),
    }
    doc = SignedDocument("policy", policy.version, policy.appliance_id, content)
    return policy.version, policy.appliance_id, Proposal(doc, tuple(tables), facts)


def _wallets(content: bytes, appliance_id: str, version: int | None) -> Proposal:
    if version is None:
        raise ValueError("a wallet registry needs an explicit version")
    wallets = parse_wallets(content)
    tables: list[tuple[str, _Rows]] = []
    for w in wallets.values():
        tables.append((f"Wallet {w.name}", [
            ("client", w.client),
            ("chain / network", f"{w.chain} / {w.network}"),
            ("template", w.template),
            ("master fingerprint", w.master_fingerprint),
            ("account path", w.account_path),
            ("descriptor", w.descriptor or "-"),
            ("highest index", str(w.max_index)),
        ]))  # fmt: skip
    doc = SignedDocument("wallets", version, appliance_id, content)
    return Proposal(doc, tuple(tables), {"wallets": sorted(wallets)})


def roster_proposal(content: bytes, current: Roster, version: int | None) -> Proposal:
    """The review of a roster successor: every holder, and the changes from ``current``."""
    new = Roster.from_bytes(content)
    if version is not None and version != new.version:
        raise DocumentRefused("roster", f"it is version {new.version}, not {version}")
    if new.version <= current.version:
        raise RosterRollback(current.version, new.version)
    rows: _Rows = [
        (h.serial, f"{h.holder} / {h.role} / {h.site} / {h.algorithm} / {h.status}")
        for h in sorted(new.holders, key=lambda h: h.serial)
    ]
    changes: _Rows = []
    for h in new.holders:
        old = current.holder(h.serial)
        if old is None:
            changes.append((h.serial, f"ADDED: {h.holder} ({h.role}, {h.site})"))
        elif old != h:
            what = [
                f"{name} {getattr(old, name)} -> {getattr(h, name)}"
                for name in ("holder", "role", "site", "status", "algorithm")
                if getattr(old, name) != getattr(h, name)
            ] + (["NEW PUBLIC KEY"] if old.public_key != h.public_key else [])
            changes.append((h.serial, "CHANGED: " + ", ".join(what)))
    changes += [
        (h.serial, f"REMOVED: {h.holder} ({h.role})")
        for h in current.holders
        if new.holder(h.serial) is None
    ]
    changes.append(("admin threshold", f"{new.admin_threshold} (was {current.admin_threshold})"))
    tables = ((f"Roster version {new.version}", rows),
              (f"Changes from roster version {current.version}", changes))  # fmt: skip
    doc = SignedDocument("roster", new.version, new.appliance_id, content)
    return Proposal(doc, tables, {"changes": [f"{k}: {v}" for k, v in changes]})


def previous_approval(path: Path, kind: str) -> ConfigVersion | None:
    """The version recorded in approvals already next to ``path`` (None when there are none).

    Only a guard against approving a rollback by mistake; the appliance decides with its
    ledger. A malformed file is not trusted for anything and is replaced."""
    try:
        header = jsonsafe.loads(approvals_path(path).read_bytes()[:MAX_DOCUMENT_BYTES])
        if header.get("kind") == kind and isinstance(header.get("version"), int):
            return ConfigVersion(kind, header["version"], bytes.fromhex(header["content_sha256"]))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        pass
    return None


def build_proposal(
    kind: DocumentKind, path: Path, chain: Chain, *,
    version: int | None, appliance_id: str | None,
) -> Proposal:  # fmt: skip
    roster = chain[0]
    if appliance_id is not None and appliance_id != roster.appliance_id:
        raise DocumentRefused(
            kind, f"--appliance-id {appliance_id} is not the roster's {roster.appliance_id}"
        )
    with path.open("rb") as fh:
        content = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(kind, "it is larger than 1 MiB")
    if kind is DocumentKind.POLICY:
        _, doc_appliance, proposal = _policy(content, roster, version)
    elif kind is DocumentKind.WALLETS:
        proposal = _wallets(content, roster.appliance_id, version)
        doc_appliance = roster.appliance_id
    else:
        proposal = roster_proposal(content, roster, version)
        doc_appliance = proposal.doc.appliance_id
    if doc_appliance != roster.appliance_id:
        raise DocumentRefused(
            kind, f"it is for appliance {doc_appliance}, the roster for {roster.appliance_id}"
        )
    return proposal


__all__ = [
    "Chain",
    "DocumentKind",
    "DocumentRefused",
    "Proposal",
    "build_proposal",
    "genesis_hex",
    "load_chain",
    "previous_approval",
    "roster_proposal",
]

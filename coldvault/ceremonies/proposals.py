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
from coldvault.policy import DestinationKind, Policy, WalletPolicy, parse_policy
from coldvault.policy.model import normalise_address
from coldvault.quorum.documents import (
    MAX_DOCUMENT_BYTES,
    ConfigVersion,
    SignedDocument,
    approvals_path,
    load_signed_document,
    verify_roster_chain,
)
from coldvault.quorum.roster import Roster, RosterRollback
from coldvault.requests.amounts import NATIVE, format_amount
from coldvault.requests.bitcoin.coordinator import CoordinatorWalletInvalid, from_descriptor
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
    unreachable = policy.unreachable_with(roster)
    if unreachable:
        raise DocumentRefused("policy", unreachable)
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
        rows += [
            (f"attested cap {asset}",
             f"{format_amount(asset, lim.attested_per_transaction)} per transaction")
            for asset, lim in w.limits.items()
            if lim.attested_per_transaction is not None
        ]  # fmt: skip
        if w.max_fee_rate is not None:
            rows.append(("max fee rate", f"{w.max_fee_rate} sat/vB"))
        if w.allow_attested or any(t.allow_attested for t in w.tiers):
            rows.append(("attested destinations", _attested_rule(w)))
        rows += [(f"destination {d.label}", f"{d.address}  [{d.describe()}]")
                 for d in w.destinations]  # fmt: skip
        rows += [(f"contract {label}", address) for address, label in w.contracts]
        tables.append((f"Policy for wallet {w.name}", rows))
    facts = {
        "wallets": sorted(policy.wallets),
        "destinations": sum(len(w.destinations) for w in policy.wallets.values()),
        "attested_destinations": sum(
            d.kind is DestinationKind.ATTESTED
            for w in policy.wallets.values()
            for d in w.destinations
        ),
    }
    doc = SignedDocument("policy", policy.version, policy.appliance_id, content)
    return policy.version, policy.appliance_id, Proposal(doc, tuple(tables), facts)


def _attested_rule(w: WalletPolicy) -> str:
    """Where the wallet lets attested destinations be paid, in the admins' words."""
    parts = ["allowed" if w.allow_attested else "not allowed"]
    parts += [
        f"{t.asset} {'up to ' + str(t.up_to) if t.up_to is not None else 'above'}: "
        f"{'allowed' if t.allow_attested else 'not allowed'}"
        for t in w.tiers
        if t.allow_attested is not None
    ]
    return "; ".join(parts)


def address_book_changes(current: Policy, new: Policy) -> _Rows:
    """Every address-book entry ``new`` adds, removes or changes against ``current``, with
    its full address, label, kind and evidence (rows keyed by wallet)."""
    rows: _Rows = []
    for name in sorted(set(current.wallets) | set(new.wallets)):
        old_w, new_w = current.wallets.get(name), new.wallets.get(name)
        old = {normalise_address(d.chain, d.address): d for d in (old_w.destinations if old_w
                                                                   else ())}  # fmt: skip
        now = {normalise_address(d.chain, d.address): d for d in (new_w.destinations if new_w
                                                                   else ())}  # fmt: skip
        for key, d in now.items():
            before = old.get(key)
            entry = f"{d.address} {d.label!r} [{d.describe()}]"
            if before is None:
                rows.append((name, f"ADDED: {entry}"))
            elif before != d:
                rows.append((name, f"CHANGED: {entry}, was {before.label!r} "
                                   f"[{before.describe()}]"))  # fmt: skip
        rows += [
            (name, f"REMOVED: {d.address} {d.label!r} [{d.describe()}]")
            for key, d in old.items()
            if key not in now
        ]
    return rows or [("address book", "no entry added, removed or changed")]


def _multisig_rows(descriptor: str | None) -> _Rows:
    """A multisig wallet's policy, every cosigner's fingerprint, path and xpub, and its
    first addresses, so the admins check them against the coordinator's screen."""
    if not descriptor or not descriptor.startswith("wsh(sortedmulti("):
        return []
    try:
        return from_descriptor(descriptor).rows()
    except CoordinatorWalletInvalid as exc:
        raise DocumentRefused("wallets", exc.reason) from exc


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
            *_multisig_rows(w.descriptor),
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
    "address_book_changes",
    "build_proposal",
    "genesis_hex",
    "load_chain",
    "previous_approval",
    "roster_proposal",
]

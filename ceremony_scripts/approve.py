"""``approve-document``: the admin quorum approves a policy, a wallet registry or a roster.

The document is shown (SHA-256, size, version, appliance and a summary: wallets,
destinations and limits of a policy; names, chains and descriptors of a wallet registry;
holders and changes of a roster successor), the operator confirms it, and admin cards of
the active roster sign its config approval token (:func:`coldvault.quorum.documents.config_token`;
Ed25519 cards sign the token, ECDSA cards its SHA-256) one at a time until the roster's
``admin_threshold`` distinct admins are counted (:func:`quorum_cards.collect_admin_signatures`).
The approvals are written to ``FILE.approvals.json`` (the document bytes are rewritten
unchanged) and read back through the same checks the appliance makes at start-up.

Who signs: a policy or wallet registry is approved by the admins of the newest roster of
``--roster`` (the chain, genesis first, is verified from the genesis); a roster successor
by the admins of the roster it replaces. Versions never go back: a lower version, or the
same version with other content, than the approvals already next to FILE is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ceremony_scripts.quorum_cards import collect_admin_signatures
from ceremony_scripts.runner import CeremonyRun, default_transcript_path
from ceremony_scripts.seed import common_options
from ceremony_scripts.ui import Operator
from coldvault import jsonsafe
from coldvault.errors import ColdvaultError, Refused
from coldvault.policy import load_policy, parse_policy
from coldvault.quorum.documents import (
    MAX_DOCUMENT_BYTES,
    ConfigVersion,
    SignedDocument,
    accept_roster,
    approvals_path,
    check_not_rolled_back,
    load_signed_document,
    load_verified_document,
    verify_admin_quorum,
    verify_roster_chain,
    write_signed_document,
)
from coldvault.quorum.roster import Role, Roster, RosterRollback
from coldvault.requests.wallets import parse_wallets

Rows = list[tuple[str, str]]


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
    tables: tuple[tuple[str, Rows], ...]
    facts: dict[str, Any]  # public summary for the transcript


# --------------------------------------------------------------------------- roster chain
def load_chain(paths: tuple[Path, ...], genesis_hex: str) -> tuple[Roster, list[SignedDocument]]:
    """Verify the roster chain (genesis first) from the pinned (or first-seen) genesis."""
    docs = [load_signed_document(p, "roster") for p in paths]
    pinned = bytes.fromhex(genesis_hex) if genesis_hex else docs[0].sha256
    return verify_roster_chain(docs, pinned), docs


# --------------------------------------------------------------------------- summaries
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
    tables: list[tuple[str, Rows]] = [
        ("Policy", [("chains", ", ".join(sorted(str(c) for c in policy.chains)))])
    ]
    for w in policy.wallets.values():
        approvals = [f"at least {w.min_approvals}"] + [
            f"{t.asset} {'up to ' + str(t.up_to) if t.up_to is not None else 'above'}: "
            f"{t.approvals}"
            for t in w.tiers
        ]
        rows: Rows = [
            ("client", w.client),
            ("chain / network", f"{w.chain} / {w.network}"),
            ("request kinds", ", ".join(sorted(w.kinds))),
            ("approvals", "; ".join(approvals)),
        ]
        rows += [
            (f"limit {asset}", f"{lim.per_transaction} per transaction, {lim.per_day} per day")
            for asset, lim in w.limits.items()
        ]
        rows.append(("max fee", "none" if w.max_fee is None else str(w.max_fee)))
        if w.max_fee_rate is not None:
            rows.append(("max fee rate", f"{w.max_fee_rate} sat/vB"))
        rows += [(f"destination {d.label}", d.address) for d in w.destinations]
        rows += [(f"contract {label}", address) for address, label in w.contracts]
        tables.append((f"Policy for wallet {w.name} (amounts in base units)", rows))
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
    tables: list[tuple[str, Rows]] = []
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
    rows: Rows = [
        (h.serial, f"{h.holder} / {h.role} / {h.site} / {h.algorithm} / {h.status}")
        for h in sorted(new.holders, key=lambda h: h.serial)
    ]
    changes: Rows = []
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


def _previous(path: Path, kind: str) -> ConfigVersion | None:
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
    kind: str, path: Path, chain: tuple[Roster, list[SignedDocument]], *,
    version: int | None, appliance_id: str | None,
) -> Proposal:  # fmt: skip
    roster = chain[0]
    if appliance_id is not None and appliance_id != roster.appliance_id:
        raise DocumentRefused(
            kind, f"--appliance-id {appliance_id} is not the roster's {roster.appliance_id}"
        )
    content = path.read_bytes()
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(kind, "it is larger than 1 MiB")
    if kind == "policy":
        _, doc_appliance, proposal = _policy(content, roster, version)
    elif kind == "wallets":
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


def _read_back(kind: str, path: Path, chain: tuple[Roster, list[SignedDocument]],
               genesis: bytes) -> None:  # fmt: skip
    """The checks the appliance makes at start-up, on the files as written."""
    roster, docs = chain
    if kind == "policy":
        load_policy(path, roster=roster)
    elif kind == "wallets":
        parse_wallets(load_verified_document(path, "wallets", roster).content)
    else:
        verify_roster_chain([*docs, load_signed_document(path, "roster")], genesis)


# --------------------------------------------------------------------------- command
@click.command("approve-document")
@common_options
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["policy", "wallets", "roster"]),
    help="What FILE is: a policy, a wallet registry or a roster successor.",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(1),
    default=None,
    help="Version being approved. Required for wallets (the file has none); "
    "for a policy or roster it must equal the version inside the file.",
)
@click.option(
    "--appliance-id",
    default=None,
    help="Appliance the document is for (default and must be: the roster's).",
)
@click.option(
    "--roster",
    "roster_paths",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Signed roster file, repeatable: the chain, genesis first. The newest "
    "roster's admins approve (for --kind roster: the roster FILE replaces).",
)
@click.option(
    "--genesis-sha256",
    default="",
    help="Pinned genesis roster SHA-256 (hex), as in the appliance configuration. "
    "Without it the first --roster is trusted and its hash shown to check.",
)
@click.option("--allow-emulated", is_flag=True, help="Accept virtual (test) cards: lab only.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result (or the error) as one JSON line at the end.",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def approve_document(**kw: Any) -> None:
    """Admins approve a policy, wallet registry or roster successor with their cards;
    writes FILE.approvals.json."""
    genesis = parse_genesis(kw["genesis_sha256"])
    if kw["kind"] == "wallets" and kw["version"] is None:
        raise click.UsageError("A wallet registry carries no version: give --version N.")
    run_json(kw["as_json"], lambda: _approve(kw, genesis))


def parse_genesis(value: str) -> str:
    """``--genesis-sha256``: empty, or 64 hex digits (returned lower-case)."""
    genesis = value.strip().lower()
    if genesis and (len(genesis) != 64 or any(c not in "0123456789abcdef" for c in genesis)):
        raise click.BadParameter("expected 64 hex digits", param_hint="--genesis-sha256")
    return genesis


def run_json(as_json: bool, body: Callable[[], dict[str, Any]]) -> None:
    """Run a ceremony body; with ``--json`` print its result, or the error, as one line."""
    try:
        result = body()
    except (ColdvaultError, click.Abort) as err:
        if as_json:
            data = (
                err.to_dict()
                if isinstance(err, ColdvaultError)
                else {"error": "aborted", "message": "The operator did not confirm."}
            )
            click.echo(json.dumps({"ok": False, **data}, sort_keys=True))
        raise
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))


def check_roster_step(
    op: Operator, run: CeremonyRun, paths: tuple[Path, ...], genesis_hex: str
) -> tuple[Roster, list[SignedDocument]]:
    """Step "Check the roster": verify the chain from the genesis, show the newest roster
    and its admins and the genesis hash, record ``roster-verified``."""
    op.step("Check the roster", ["the genesis hash equals the one pinned in the appliance"])
    chain = load_chain(paths, genesis_hex)
    roster, docs = chain
    genesis = docs[0].sha256
    admins = roster.active(Role.ADMIN)
    op.table(f"Roster version {roster.version} (verified from the genesis)", [
        ("appliance", roster.appliance_id),
        ("admin threshold", f"{roster.admin_threshold} of {len(admins)} admin cards"),
        *((f"admin {h.serial}", f"{h.holder} ({h.site})") for h in admins),
    ])  # fmt: skip
    op.info(f"genesis {genesis.hex()}")
    if not genesis_hex:
        op.warn("No --genesis-sha256: compare this hash with the appliance's pinned one.")
    run.record("roster-verified", {
        "version": roster.version, "appliance_id": roster.appliance_id,
        "genesis_sha256": genesis.hex(), "pinned": bool(genesis_hex),
        "admin_threshold": roster.admin_threshold,
    })  # fmt: skip
    return chain


def _approve(kw: dict[str, Any], genesis_hex: str) -> dict[str, Any]:
    op = Operator(assume_yes=kw["assume_yes"])
    kind, path = kw["kind"], kw["file"]
    transcript = kw["transcript_path"] or default_transcript_path(
        Path("transcripts"), "approve-document"
    )
    params = {
        "kind": kind,
        "file": str(path),
        "version": kw["version"],
        "appliance_id": kw["appliance_id"],
        "rosters": [str(p) for p in kw["roster_paths"]],
        "genesis_sha256": genesis_hex,
    }
    with CeremonyRun(
        op, "approve-document", transcript, actor=kw["operator_name"], parameters=params
    ) as run:
        chain = check_roster_step(op, run, kw["roster_paths"], genesis_hex)
        roster, docs = chain
        genesis = docs[0].sha256

        op.step(f"Review the {kind} document", [
            "the SHA-256 shown equals the one the proposer announced (read it aloud)",
            "every entry below is what the change request asked for, and nothing else",
        ])  # fmt: skip
        proposal = build_proposal(
            kind, path, chain, version=kw["version"], appliance_id=kw["appliance_id"]
        )
        doc = proposal.doc
        previous = _previous(path, kind)
        check_not_rolled_back(doc.config_version, previous)
        replaces = "nothing (no approvals next to the file)"
        if previous is not None:
            replaces = f"version {previous.version} (SHA-256 {previous.sha256.hex()[:16]}...)"
        op.table(f"{kind} document", [
            ("file", str(path)),
            ("kind / version", f"{kind} / {doc.version}"),
            ("appliance", doc.appliance_id),
            ("size", f"{len(doc.content)} bytes"),
            ("replaces approvals of", replaces),
        ])  # fmt: skip
        for title, rows in proposal.tables:
            op.table(title, rows)
        op.info(f"SHA-256 {doc.sha256.hex()}")  # one line, never wrapped: read it aloud
        run.record("document-reviewed", {
            "kind": kind, "version": doc.version, "appliance_id": doc.appliance_id,
            "file": str(path), "sha256": doc.sha256.hex(), "size": len(doc.content),
            "replaces_version": previous.version if previous else None,
            "token_sha256": hashlib.sha256(doc.token).hexdigest(), **proposal.facts,
        })  # fmt: skip
        op.confirm(f"Is this the {kind} document the admins are to approve?")

        op.step("Admins sign the approval", [
            f"{roster.admin_threshold} distinct admins of roster version {roster.version}",
            f"each admin checks the SHA-256 {doc.sha256.hex()[:16]}... before typing the PIN",
        ])  # fmt: skip
        approvals = collect_admin_signatures(
            op, run, roster, doc.token, what=f"the approvals of the {kind} document",
            allow_emulated=kw["allow_emulated"],
        )  # fmt: skip
        for approval in approvals:
            doc = doc.with_approval(approval.card_serial, approval.signature)
        if kind == "roster":
            accept_roster(doc, current=roster)
        else:
            verify_admin_quorum(doc, roster)

        op.step("Write and check the approvals")
        write_signed_document(path, doc)
        _read_back(kind, path, chain, genesis)
        written = approvals_path(path)
        run.record("document-approved", {
            "file": str(path), "approvals_file": str(written), "kind": kind,
            "version": doc.version, "sha256": doc.sha256.hex(),
            "approved_by": [a.card_serial for a in approvals],
        })  # fmt: skip
        op.ok(f"Approvals written: {written} ({len(approvals)} admins); read back and verified.")
        final_hash = run.finish({"kind": kind, "version": doc.version, "sha256": doc.sha256.hex()})
    op.ok(f"The {kind} document version {doc.version} is approved.")
    return {
        "ok": True,
        "kind": kind,
        "version": doc.version,
        "appliance_id": doc.appliance_id,
        "file": str(path),
        "approvals_file": str(written),
        "sha256": doc.sha256.hex(),
        "approvals": [
            {"card_serial": a.card_serial, "holder": a.holder, "site": a.site} for a in approvals
        ],
        "transcript": str(transcript),
        "final_hash": final_hash,
    }


__all__ = [
    "DocumentRefused",
    "Proposal",
    "approve_document",
    "build_proposal",
    "check_roster_step",
    "load_chain",
    "parse_genesis",
    "roster_proposal",
    "run_json",
]

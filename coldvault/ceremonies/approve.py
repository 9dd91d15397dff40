"""``approve-document``: the admin quorum approves a policy, a wallet registry or a roster.

The document is shown (SHA-256, size, version, appliance and a summary, see
:mod:`coldvault.ceremonies.proposals`), the operator confirms it, and admin cards of the
active roster sign its config approval token one at a time until the roster's
``admin_threshold`` distinct admins are counted (:meth:`Cards.admin_signatures`).  The
approvals are written to ``FILE.approvals.json`` (the document bytes are rewritten
unchanged) and read back through the same checks the appliance makes at start-up.

Who signs: a policy or wallet registry is approved by the admins of the newest roster of
the chain (verified from the genesis); a roster successor by the admins of the roster it
replaces.  Versions never go back: a lower version, or the same version with other
content, than the approvals already next to FILE is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.ceremonies.hardware import Cards
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import CeremonyParams, ParameterError, check_int, check_type
from coldvault.ceremonies.proposals import (
    Chain,
    DocumentKind,
    Proposal,
    address_book_changes,
    build_proposal,
    genesis_hex,
    load_chain,
    previous_approval,
)
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.policy import load_policy, parse_policy
from coldvault.quorum.approvals import Approval
from coldvault.quorum.documents import (
    accept_roster,
    approvals_path,
    check_not_rolled_back,
    load_signed_document,
    load_verified_document,
    verify_admin_quorum,
    verify_roster_chain,
    write_signed_document,
)
from coldvault.quorum.roster import Role, Roster
from coldvault.requests.wallets import parse_wallets

MAX_VERSION = 2**31 - 1


def check_rosters(rosters: tuple[Path, ...]) -> None:
    """The ``--roster`` chain as given: at least one file, every one a ``Path``."""
    check_type("rosters", rosters, tuple)
    for path in rosters:
        check_type("rosters", path, Path)
    if not rosters:
        raise ParameterError("roster", "--roster is required: the signed roster chain.")


@dataclass(frozen=True, kw_only=True)
class ApproveDocument(CeremonyParams):
    """Parameters of ``approve-document``.

    ``rosters`` is the signed roster chain, genesis first; ``genesis_sha256`` pins its
    genesis as the appliance configuration does (empty: the first roster is trusted and
    its hash shown to check).  ``version`` is required for a wallet registry (the file
    carries none); for a policy or roster it must equal the version inside the file.
    ``appliance_id`` defaults to, and must equal, the roster's."""

    kind: DocumentKind
    file: Path
    rosters: tuple[Path, ...]
    version: int | None = None
    appliance_id: str | None = None
    genesis_sha256: str = ""
    current: Path | None = None  # policy only: the approved policy it replaces

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("kind", self.kind, DocumentKind)
        check_type("file", self.file, Path)
        check_rosters(self.rosters)
        if self.version is not None:
            check_int("version", self.version, 1, MAX_VERSION)
        if self.appliance_id is not None:
            check_type("appliance_id", self.appliance_id, str)
        check_type("genesis_sha256", self.genesis_sha256, str)
        object.__setattr__(self, "genesis_sha256", genesis_hex(self.genesis_sha256))
        if self.current is not None:
            check_type("current", self.current, Path)
            if self.kind is not DocumentKind.POLICY:
                raise ParameterError("current", "--current compares policies only.")
        if self.kind is DocumentKind.WALLETS and self.version is None:
            raise ParameterError(
                "version", "A wallet registry carries no version: give --version N."
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "file": str(self.file),
            "version": self.version,
            "appliance_id": self.appliance_id,
            "rosters": [str(p) for p in self.rosters],
            "genesis_sha256": self.genesis_sha256,
            "current": None if self.current is None else str(self.current),
        }


def approvals_list(approvals: tuple[Approval, ...]) -> list[dict[str, str]]:
    """The public part of each approval, for results."""
    return [{"card_serial": a.card_serial, "holder": a.holder, "site": a.site} for a in approvals]


@dataclass(frozen=True)
class DocumentApproved:
    """A completed ``approve-document``."""

    closed: Closed
    kind: DocumentKind
    version: int
    appliance_id: str
    file: Path
    approvals_file: Path
    sha256: str
    approvals: tuple[Approval, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "kind": str(self.kind),
            "version": self.version,
            "appliance_id": self.appliance_id,
            "file": str(self.file),
            "approvals_file": str(self.approvals_file),
            "sha256": self.sha256,
            "approvals": approvals_list(self.approvals),
        }


def check_roster_step(
    op: Operator, run: CeremonyRun, paths: tuple[Path, ...], genesis: str
) -> Chain:
    """Step "Check the roster": verify the chain from the genesis, show the newest roster,
    its admins and the genesis hash, record ``roster-verified``."""
    op.step("Check the roster", ["the genesis hash equals the one pinned in the appliance"])
    chain = load_chain(paths, genesis)
    roster, docs = chain
    first = docs[0].sha256
    admins = roster.active(Role.ADMIN)
    op.table(f"Roster version {roster.version} (verified from the genesis)", [
        ("appliance", roster.appliance_id),
        ("admin threshold", f"{roster.admin_threshold} of {len(admins)} admin cards"),
        *((f"admin {h.serial}", f"{h.holder} ({h.site})") for h in admins),
    ])  # fmt: skip
    op.info(f"genesis {first.hex()}")
    if not genesis:
        op.warn("No --genesis-sha256: compare this hash with the appliance's pinned one.")
    run.record("roster-verified", {
        "version": roster.version, "appliance_id": roster.appliance_id,
        "genesis_sha256": first.hex(), "pinned": bool(genesis),
        "admin_threshold": roster.admin_threshold,
    })  # fmt: skip
    return chain


def _read_back(kind: DocumentKind, path: Path, chain: Chain) -> None:
    """The checks the appliance makes at start-up, on the files as written."""
    roster, docs = chain
    if kind is DocumentKind.POLICY:
        load_policy(path, roster=roster)
    elif kind is DocumentKind.WALLETS:
        parse_wallets(load_verified_document(path, "wallets", roster).content)
    else:
        verify_roster_chain([*docs, load_signed_document(path, "roster")], docs[0].sha256)


def _address_book_step(
    op: Operator, params: ApproveDocument, proposal: Proposal, roster: Roster
) -> list[str] | None:
    """With ``--current``: the address-book entries the new policy adds, removes or changes
    against the approved one it replaces (itself checked: admin quorum, proofs)."""
    if params.current is None:
        return None
    current = load_policy(params.current, roster=roster)
    new = parse_policy(proposal.doc.content)
    rows = address_book_changes(current, new)
    op.table(f"Address book changes from policy version {current.version}", rows)
    return [f"{wallet}: {change}" for wallet, change in rows]


def approve_document(op: Operator, params: ApproveDocument, cards: Cards) -> DocumentApproved:
    """Run ``approve-document``."""
    kind, path = params.kind, params.file
    with CeremonyRun(op, "approve-document", params, parameters=params.to_dict()) as run:
        chain = check_roster_step(op, run, params.rosters, params.genesis_sha256)
        roster = chain[0]

        op.step(f"Review the {kind} document", [
            "the SHA-256 shown equals the one the proposer announced (read it aloud)",
            "every entry below is what the change request asked for, and nothing else",
        ])  # fmt: skip
        proposal = build_proposal(
            kind, path, chain, version=params.version, appliance_id=params.appliance_id
        )
        doc = proposal.doc
        previous = previous_approval(path, str(kind))
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
        changes = _address_book_step(op, params, proposal, roster)
        op.info(f"SHA-256 {doc.sha256.hex()}")  # one line, never wrapped: read it aloud
        run.record("document-reviewed", {
            "kind": str(kind), "version": doc.version, "appliance_id": doc.appliance_id,
            "file": str(path), "sha256": doc.sha256.hex(), "size": len(doc.content),
            "replaces_version": previous.version if previous else None,
            "token_sha256": hashlib.sha256(doc.token).hexdigest(), **proposal.facts,
            **({"address_book_changes": changes} if changes is not None else {}),
        })  # fmt: skip
        confirm_or_cancel(op, f"Is this the {kind} document the admins are to approve?")

        op.step("Admins sign the approval", [
            f"{roster.admin_threshold} distinct admins of roster version {roster.version}",
            f"each admin checks the SHA-256 {doc.sha256.hex()[:16]}... before typing the PIN",
        ])  # fmt: skip
        approvals = cards.admin_signatures(
            run, roster, doc.token, what=f"the approvals of the {kind} document"
        )
        for approval in approvals:
            doc = doc.with_approval(approval.card_serial, approval.signature)
        if kind is DocumentKind.ROSTER:
            accept_roster(doc, current=roster)
        else:
            verify_admin_quorum(doc, roster)

        op.step("Write and check the approvals")
        write_signed_document(path, doc)
        _read_back(kind, path, chain)
        written = approvals_path(path)
        run.record("document-approved", {
            "file": str(path), "approvals_file": str(written), "kind": str(kind),
            "version": doc.version, "sha256": doc.sha256.hex(),
            "approved_by": [a.card_serial for a in approvals],
        })  # fmt: skip
        op.ok(f"Approvals written: {written} ({len(approvals)} admins); read back and verified.")
        closed = run.finish({"kind": str(kind), "version": doc.version, "sha256": doc.sha256.hex()})
    op.ok(f"The {kind} document version {doc.version} is approved.")
    return DocumentApproved(
        closed, kind, doc.version, doc.appliance_id, path, written, doc.sha256.hex(), approvals
    )


__all__ = [
    "ApproveDocument",
    "DocumentApproved",
    "approvals_list",
    "approve_document",
    "check_roster_step",
    "check_rosters",
]

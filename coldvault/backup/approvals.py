"""The admin quorum's card signatures on a backup record and on a drill report.

Both documents are signed like the configuration documents (:mod:`coldvault.quorum.documents`):
each admin card of the roster signs the config approval token of the document's exact
bytes, kind ``backup-record`` or ``drill-report`` (version 1, the roster's appliance), and
the approvals go beside the file in ``<file>.approvals.json``.  The signatures are
collected with the one card loop (``Cards.admin_signatures``) and checked with the one
card-signature check (through :func:`~coldvault.quorum.documents.verify_admin_quorum`).

:func:`verify_signed` refuses, naming the cause: no approvals file
(``signed-document-invalid``), a document changed since it was signed
(``document-hash-mismatch``), a forged signature (``bad-approval-signature``), a card of
another role (``wrong-role``), an unknown or revoked card, too few admins
(``threshold-not-met``), a document of another appliance (``roster-mismatch``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from coldvault.quorum.approvals import Approval
from coldvault.quorum.documents import (
    SignedDocument,
    load_signed_document,
    verify_admin_quorum,
)
from coldvault.quorum.roster import Roster

RECORD_KIND = "backup-record"
REPORT_KIND = "drill-report"
#: records and reports are never re-versioned: each is a new file
VERSION = 1


def unsigned(kind: str, content: bytes, roster: Roster) -> SignedDocument:
    """The document the admins are to sign (its :attr:`~SignedDocument.token` is what each
    admin card signs)."""
    if kind not in (RECORD_KIND, REPORT_KIND):
        raise ValueError(f"not a backup document kind: {kind!r}")
    return SignedDocument(kind, VERSION, roster.appliance_id, content)


def with_approvals(
    doc: SignedDocument, approvals: Iterable[Approval], roster: Roster
) -> SignedDocument:
    """``doc`` carrying ``approvals``, checked against ``roster``'s admins and threshold."""
    for approval in approvals:
        doc = doc.with_approval(approval.card_serial, approval.signature)
    verify_admin_quorum(doc, roster)
    return doc


def verify_signed(path: Path, kind: str, roster: Roster) -> tuple[Approval, ...]:
    """The admin approvals of the document at ``path`` (and ``path.approvals.json``), or
    the exact error (module docstring)."""
    return verify_admin_quorum(load_signed_document(path, kind), roster)


__all__ = ["RECORD_KIND", "REPORT_KIND", "VERSION", "unsigned", "verify_signed", "with_approvals"]

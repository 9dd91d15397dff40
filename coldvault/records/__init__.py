"""What the appliance and the ceremonies keep: the audit trail, transcripts, the ledger.

* :mod:`coldvault.records.audit` -- the tamper-evident audit trail of the appliance
  (:class:`AuditLog`, one writer per file, every entry fsync'd before the appliance acts on
  it; seals signed by the HSM audit key; :func:`verify_audit`). docs/audit.md.
* :mod:`coldvault.records.transcript` -- ceremony transcripts (:class:`TranscriptWriter`),
  closed with the outcome and signed by witnesses' cards; :func:`verify_transcript`.
  docs/transcripts.md.
* :mod:`coldvault.records.printable` -- the printable record of any ceremony transcript
  (:func:`transcript_record` -> :class:`PrintableRecord`); :mod:`coldvault.records.page`
  draws it as one HTML page (:func:`render_html`, :func:`render_transcript_html`, the copy a
  ceremony leaves beside its transcript); the PDF is drawn by the front end.
* :mod:`coldvault.records.ledger` -- the SQLite request ledger (:class:`Ledger`): request
  life cycle, single-use approvals, daily totals; :mod:`coldvault.records.export` builds its
  reconciliation export (CSV or JSON).
* :mod:`coldvault.records.anchor` -- the appliance's high-water marks (configuration
  versions, audit head, sealed-through) kept on the HSM and the start-up checks against them;
  :mod:`coldvault.records.reconcile` -- signed requests and per-day totals from the verified
  trail, and the ledger checked against it; :mod:`coldvault.records.responses` -- signed
  responses stored before a request counts as signed.
* :mod:`coldvault.records.chain` -- the one hash-chained JSON Lines log underneath both the
  audit trail and transcripts: canonical JSON, the genesis/prev rule, entry hashing with a
  per-log domain prefix, the bounded line reader, the clock and the one secret filter.
  Each log is a :class:`~coldvault.records.chain.ChainFormat` plus its own vocabulary.
* :mod:`coldvault.records.errors` -- tampering found by verification (an
  :class:`~coldvault.errors.IntegrityError` with the entry index) and the writers' refusals.
"""

from coldvault.records.audit import AuditLog, AuditReport, review_fields
from coldvault.records.audit import verify as verify_audit
from coldvault.records.errors import AuditTampered, TranscriptError
from coldvault.records.ledger import Ledger
from coldvault.records.page import render_html, render_transcript_html
from coldvault.records.printable import PrintableRecord, transcript_record
from coldvault.records.transcript import (
    Device,
    Signer,
    TranscriptWriter,
    WitnessSignature,
)
from coldvault.records.transcript import verify as verify_transcript

__all__ = [
    "AuditLog",
    "AuditReport",
    "AuditTampered",
    "Device",
    "Ledger",
    "PrintableRecord",
    "Signer",
    "TranscriptError",
    "TranscriptWriter",
    "WitnessSignature",
    "render_html",
    "render_transcript_html",
    "transcript_record",
    "review_fields",
    "verify_audit",
    "verify_transcript",
]

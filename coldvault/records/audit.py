"""The tamper-evident audit trail: a chain log of appliance events, sealed by the HSM.

Each line is one entry in canonical JSON:
``{"event":..,"fields":{..},"hash":..,"prev":..,"seq":n,"time":"...Z"}`` where
``hash = SHA-256("coldvault/audit/v1\\0" || canonical JSON of the entry without "hash")`` and
``prev`` is the previous entry's hash (64 zeros for entry 0); the chain, the bounded reader,
the clock and the secret filter are :mod:`coldvault.records.chain`'s (:data:`AUDIT` is the
trail's format). Every append is written and fsync'd (and the directory fsync'd when the
file is created) before :meth:`AuditLog.append` returns, so the caller may act (e.g. sign)
only on a durable record.

Every ``seal_every`` entries, or on demand, a ``seal`` entry carries the HSM audit key's
ECDSA (secp256k1) signature over ``SHA-256("coldvault/audit-seal/v1\\0" || head || seq)``,
``head`` being the hash of entry ``seq`` (the one just before the seal). :func:`verify`
detects any edit, deletion, insertion, reordering or torn write, with the entry index, and
reports the entries after the last seal as unsealed: they are chained but not signed, so
cutting them off cannot be detected from the file alone (see docs/audit.md).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.records.chain import (
    GENESIS,
    NAME_NAMES_A_SECRET,
    ChainFormat,
    ChainWriter,
    Clock,
    Defect,
    SecretFound,
    fsync_dir,
    walk,
)
from coldvault.records.errors import (
    AuditChainBroken,
    AuditHashMismatch,
    AuditLogLocked,
    AuditLogNotFound,
    AuditMalformed,
    AuditSealInvalid,
    AuditSequenceError,
    AuditTampered,
    AuditTruncated,
    BadAuditPublicKey,
    SealFailed,
    SecretInAudit,
)
from coldvault.requests.base import Review

EVENTS = frozenset(
    {
        "request-received", "review", "decision", "approval", "approval-refused", "signature",
        "response", "refusal", "config-change", "seal", "startup", "shutdown", "ceremony",
        "approval-token", "signing", "reconciled", "reshown", "repair", "state-reset",
    }
)  # fmt: skip
SEAL_PREFIX = b"coldvault/audit-seal/v1\x00"
MAX_LINE_BYTES = 4 * 1024 * 1024  # a review of a PSBT at the parser limits (5,000 outputs) fits

Sealer = Callable[[bytes], object]  # digest32 -> EcdsaSignature | 64-byte r||s | DER bytes


def _error(index: int, defect: Defect, found: int | None) -> AuditTampered:
    if defect is Defect.SEQUENCE:
        return AuditSequenceError(index, -1 if found is None else found)
    if defect is Defect.CHAIN_BROKEN:
        return AuditChainBroken(index)
    if defect is Defect.HASH_MISMATCH:
        return AuditHashMismatch(index)
    return AuditMalformed(index, defect.value)


def _refuse_secret(found: SecretFound) -> Exception:
    # Field names are chosen by code: a secret-looking field NAME is a programming mistake.
    # A secret-looking VALUE comes from the request (untrusted): a refusal, not a crash.
    if found.reason == NAME_NAMES_A_SECRET:
        return ValueError(f"audit field {found.path} looks like a secret and is refused")
    return SecretInAudit(found.path.removeprefix("fields."), found.reason)


#: the audit trail's chain format (docs/audit.md)
AUDIT = ChainFormat(
    name="audit",
    domain=b"coldvault/audit/v1\x00",
    keys={"seq": int, "time": str, "event": str, "fields": dict, "prev": str, "hash": str},
    index_key="seq",
    time_key="time",
    prev_key="prev",
    timespec="microseconds",
    max_line_bytes=MAX_LINE_BYTES,
    error=_error,
    refuse_secret=_refuse_secret,
)


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    event: str
    fields: Mapping[str, Any] = field(hash=False)
    prev: str = GENESIS
    hash: str = ""

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> AuditEntry:
        return cls(
            entry["seq"], entry["time"], entry["event"], entry["fields"], entry["prev"],
            entry["hash"],
        )  # fmt: skip


@dataclass(frozen=True)
class AuditReport:
    entries: int
    seals: int
    sealed_through: int | None  # seq of the last entry covered by a seal signature
    unsealed: int  # entries after the last seal entry
    head: str  # hash of the last entry
    events: Mapping[str, int] = field(hash=False)
    first_time: str | None = None
    last_time: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "events": dict(self.events)}


def entry_hash(entry: Mapping[str, Any]) -> str:
    """An audit entry's hash (its ``hash`` key, if present, is left out)."""
    return AUDIT.entry_hash(entry)


def review_fields(review: Review) -> dict[str, Any]:
    """The audit fields of a review: everything the operator was shown, nothing secret."""
    return {
        "digest": review.request_digest.hex(),
        "fingerprint": review.fingerprint,
        "chain": str(review.chain),
        "network": review.network,
        "kind": review.kind,
        "wallet": review.wallet,
        "client": review.client,
        "movements": [
            {
                "kind": str(m.kind),
                "asset": m.asset,
                "amount": str(m.amount),
                "destination": m.destination,
                "note": m.note,
            }
            for m in review.movements
        ],
        "fee": None if review.fee is None else str(review.fee),
        "fee_rate": review.fee_rate,
        "details": [list(d) for d in review.details],
        "warnings": list(review.warnings),
    }


# --------------------------------------------------------------------------- seals
def seal_digest(head: str, through_seq: int) -> bytes:
    """The 32 bytes the HSM audit key signs for a seal."""
    return hashlib.sha256(
        SEAL_PREFIX + bytes.fromhex(head) + through_seq.to_bytes(8, "big")
    ).digest()


def seal_ok(
    public_key: bytes | coincurve.PublicKey, head: str, through_seq: int, signature_hex: str
) -> bool:
    """The seal's signature (``r || s`` in hex) is by ``public_key`` over ``head`` and
    ``through_seq``. ``public_key``: SEC1 bytes, or a key parsed once for many seals."""
    try:
        sig = bytes.fromhex(signature_hex)
        if len(sig) != 64:
            return False
        der = EcdsaSignature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")).der
        if not isinstance(public_key, coincurve.PublicKey):
            public_key = coincurve.PublicKey(public_key)
        return bool(public_key.verify(der, seal_digest(head, through_seq), hasher=None))
    except (ValueError, TypeError):
        return False


def _compact(signature: object) -> bytes:
    compact = getattr(signature, "compact", None)
    if isinstance(compact, bytes):
        return compact
    if isinstance(signature, bytes | bytearray):
        if len(signature) == 64:
            return bytes(signature)
        try:
            r, s = decode_dss_signature(bytes(signature))
        except ValueError as exc:
            raise SealFailed(
                "the sealer returned a signature that is neither r||s nor DER"
            ) from exc
        return EcdsaSignature(r, s).compact
    raise SealFailed("the sealer returned an unsupported signature type")


def _check_seal(
    index: int, entry: AuditEntry, public_key: bytes | coincurve.PublicKey | None
) -> None:
    f = entry.fields
    if f.get("head") != entry.prev or f.get("through_seq") != index - 1:
        raise AuditSealInvalid(index, "it does not name the entry before it")
    if public_key is not None and not seal_ok(
        public_key, entry.prev, index - 1, str(f.get("signature"))
    ):
        raise AuditSealInvalid(index, "the signature is not by the audit key")


# --------------------------------------------------------------------------- verifying
def _scan(
    path: Path, public_key: bytes | None, *, allow_torn_tail: bool = False
) -> tuple[AuditReport, int]:
    """Verify ``path``; return the report and the byte length of the valid prefix."""
    entries = seals = valid_bytes = 0
    head, sealed_through, last_seal_index = GENESIS, None, -1
    events: dict[str, int] = {}
    first_time = last_time = None
    line = None
    key: bytes | coincurve.PublicKey | None = public_key
    if public_key is not None:
        try:
            key = coincurve.PublicKey(public_key)  # once, not per seal
        except (ValueError, TypeError):
            pass  # not a key: every seal is refused, as seal_ok refuses it
    for line in walk(path, AUDIT, allow_torn_tail=allow_torn_tail):
        event = line.entry["event"]
        if event == "seal":
            _check_seal(line.index, AuditEntry.from_dict(line.entry), key)
            seals, sealed_through, last_seal_index = seals + 1, line.index - 1, line.index
        events[event] = events.get(event, 0) + 1
        first_time = first_time or line.entry["time"]
    if line is not None:
        entries, valid_bytes = line.index + 1, line.end
        head, last_time = line.entry["hash"], line.entry["time"]
    report = AuditReport(
        entries=entries,
        seals=seals,
        sealed_through=sealed_through,
        unsealed=entries - last_seal_index - 1,
        head=head,
        events=events,
        first_time=first_time,
        last_time=last_time,
    )
    return report, valid_bytes


def verify(
    path: Path | str, audit_public_key: bytes, *, expect_sealed_through: int | None = None
) -> AuditReport:
    """Verify the whole trail and every seal; raise the specific :class:`AuditTampered`.

    ``expect_sealed_through``: the highest sealed seq recorded elsewhere (e.g. the ledger);
    a trail whose seals stop earlier was truncated (:class:`AuditTruncated`)."""
    try:
        coincurve.PublicKey(audit_public_key)
    except (ValueError, TypeError) as exc:
        raise BadAuditPublicKey() from exc
    try:
        report, _ = _scan(Path(path), audit_public_key)
    except FileNotFoundError as exc:
        raise AuditLogNotFound(str(path)) from exc
    found = -1 if report.sealed_through is None else report.sealed_through
    if expect_sealed_through is not None and found < expect_sealed_through:
        raise AuditTruncated(report.entries, expect_sealed_through, found)
    return report


def verify_prefix(path: Path | str, audit_public_key: bytes) -> tuple[AuditReport, int]:
    """:func:`verify` of the complete lines of a trail whose last line may be torn (a
    crash in the middle of an append); returns the report and the number of torn bytes
    after them (0: nothing torn)."""
    try:
        coincurve.PublicKey(audit_public_key)
    except (ValueError, TypeError) as exc:
        raise BadAuditPublicKey() from exc
    try:
        report, valid = _scan(Path(path), audit_public_key, allow_torn_tail=True)
        return report, Path(path).stat().st_size - valid
    except FileNotFoundError as exc:
        raise AuditLogNotFound(str(path)) from exc


def torn_aside_path(path: Path, offset: int) -> Path:
    """Where :class:`AuditLog` keeps the torn bytes that followed byte ``offset``."""
    return path.with_name(f"{path.name}.torn-at-{offset}")


def _move_aside(fd: int, path: Path, valid: int, size: int) -> Path:
    """Copy bytes ``valid..size`` of the open trail to a new file beside it (durable), then
    cut them from the trail: moved, never deleted."""
    aside = torn_aside_path(path, valid)
    torn = os.pread(fd, size - valid, valid)
    out = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        os.write(out, torn)
        os.fsync(out)
    finally:
        os.close(out)
    fsync_dir(path.parent)
    os.ftruncate(fd, valid)
    os.fsync(fd)
    return aside


# --------------------------------------------------------------------------- writing
class AuditLog:
    """The single writer of one trail file (an exclusive lock guards against a second)."""

    def __init__(
        self,
        path: Path | str,
        *,
        sealer: Sealer | None = None,
        audit_public_key: bytes | None = None,
        seal_every: int = 1000,
        clock: Clock | None = None,
        recover_torn_tail: bool = False,
        on_seal: Callable[[int], None] | None = None,
        on_append: Callable[[AuditEntry], None] | None = None,
    ) -> None:
        if seal_every < 1:
            raise ValueError("seal_every must be at least 1")
        self.path = Path(path)
        self._sealer, self._public_key = sealer, audit_public_key
        self._seal_every = seal_every
        #: called with ``through_seq`` after each durable seal (e.g.
        #: ``Ledger.set_audit_sealed_through``, the anchor ``verify`` checks truncation with)
        self._on_seal = on_seal
        #: called with every durable entry, seals included (e.g. the HSM state anchor)
        self._on_append = on_append
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            raise AuditLogLocked(str(self.path)) from exc
        try:
            if created:
                fsync_dir(self.path.parent)
            report, valid = _scan(self.path, audit_public_key, allow_torn_tail=recover_torn_tail)
            size = os.fstat(self._fd).st_size
            #: bytes of an incomplete final line moved aside at open (a crash mid-append)
            self.recovered_bytes = size - valid
            #: the file beside the trail that now holds them (:func:`torn_aside_path`)
            self.torn_file: Path | None = None
            if self.recovered_bytes:
                self.torn_file = _move_aside(self._fd, self.path, valid, size)
        except BaseException:
            os.close(self._fd)
            raise
        self._chain = ChainWriter(
            self.path, AUDIT, clock=clock, fd=self._fd, next_index=report.entries,
            head=report.head, size=valid,
        )  # fmt: skip
        self._since_seal = report.unsealed

    @property
    def head(self) -> str:
        return self._chain.head

    @property
    def next_seq(self) -> int:
        return self._chain.next_index

    def append(self, event: str, fields: Mapping[str, Any] | None = None) -> AuditEntry:
        """Write one entry durably (write + fsync) and return it; may add a seal after it."""
        if event not in EVENTS or event == "seal":
            raise ValueError(f"unknown or reserved audit event {event!r}")
        entry = self._write(event, dict(fields or {}))
        if self._sealer is not None and self._since_seal >= self._seal_every:
            self.seal()
        return entry

    def seal(self) -> AuditEntry:
        """Append a seal over the current head, signed by the HSM audit key."""
        if self._sealer is None:
            raise ValueError("this audit log has no sealer")
        if self.next_seq == 0:
            raise ValueError("nothing to seal yet")
        head, through = self.head, self.next_seq - 1
        signature = _compact(self._sealer(seal_digest(head, through))).hex()
        if self._public_key is not None and not seal_ok(self._public_key, head, through, signature):
            raise SealFailed("the signature does not verify with the audit public key")
        entry = self._write("seal", {"head": head, "through_seq": through, "signature": signature})
        if self._on_seal is not None:
            self._on_seal(through)
        return entry

    def _write(self, event: str, fields: dict[str, Any]) -> AuditEntry:
        entry = AuditEntry.from_dict(self._chain.append({"event": event, "fields": fields}))
        self._since_seal = 0 if event == "seal" else self._since_seal + 1
        if self._on_append is not None:
            self._on_append(entry)
        return entry

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "AUDIT",
    "EVENTS",
    "MAX_LINE_BYTES",
    "SEAL_PREFIX",
    "AuditEntry",
    "AuditLog",
    "AuditReport",
    "Sealer",
    "entry_hash",
    "review_fields",
    "seal_digest",
    "seal_ok",
    "torn_aside_path",
    "verify",
    "verify_prefix",
]

"""The tamper-evident audit trail: append-only, hash-chained JSON Lines, sealed by the HSM.

Each line is one entry in canonical JSON (keys sorted, no spaces, ASCII):
``{"event":..,"fields":{..},"hash":..,"prev":..,"seq":n,"time":"...Z"}`` where
``hash = SHA-256("coldvault/audit/v1\\0" || canonical JSON of the entry without "hash")`` and
``prev`` is the previous entry's hash (64 zeros for entry 0). Every append is written and
fsync'd (and the directory fsync'd when the file is created) before :meth:`AuditLog.append`
returns, so the caller may act (e.g. sign) only on a durable record.

Every ``seal_every`` entries, or on demand, a ``seal`` entry carries the HSM audit key's
ECDSA (secp256k1) signature over ``SHA-256("coldvault/audit-seal/v1\\0" || head || seq)``,
``head`` being the hash of entry ``seq`` (the one just before the seal). :func:`verify`
detects any edit, deletion, insertion, reordering or torn write, with the entry index, and
reports the entries after the last seal as unsealed: they are chained but not signed, so
cutting them off cannot be detected from the file alone (see docs/audit.md).

This module is the writer (:class:`AuditLog`); the format and :func:`verify` live in
:mod:`coldvault.records.chain`, the errors in :mod:`coldvault.records.errors` (both re-exported).
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.errors import HardwareError
from coldvault.records.chain import (
    MAX_LINE_BYTES,
    AuditEntry,
    entry_hash,
    scan,
    seal_digest,
    seal_ok,
)
from coldvault.records.errors import (
    AuditLogLocked,
    SealFailed,
)
from coldvault.requests.base import Review

__all__ = [
    "EVENTS",
    "FORBIDDEN_WORDS",
    "AuditLog",
    "Sealer",
    "review_fields",
]

EVENTS = frozenset(
    {
        "request-received", "review", "decision", "approval", "approval-refused", "signature",
        "response", "refusal", "config-change", "seal", "startup", "shutdown", "ceremony",
        "approval-token", "signing",
    }
)  # fmt: skip
#: Field-name words that must never reach the trail (case-insensitive, any position).
FORBIDDEN_WORDS = frozenset(
    {"pin", "pins", "puk", "seed", "seeds", "share", "shares", "mnemonic", "private",
     "privkey", "passphrase", "password", "secret", "xprv", "entropy"}
)  # fmt: skip

Sealer = Callable[[bytes], object]  # digest32 -> EcdsaSignature | 64-byte r||s | DER bytes


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


# --------------------------------------------------------------------------- writing
def _check_fields(value: Any, where: str = "fields", depth: int = 0) -> Any:
    """Validate and normalise field values (bytes become hex); refuse secret-looking keys."""
    if depth > 8:
        raise ValueError(f"audit {where} is nested too deeply")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"audit {where} has a non-string key")
            words = set(re.split(r"[^a-z0-9]+", key.lower()))
            if words & FORBIDDEN_WORDS or "private" in key.lower() or "secret" in key.lower():
                raise ValueError(f"audit field {where}.{key} looks like a secret and is refused")
            out[key] = _check_fields(item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_check_fields(v, where, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bytearray):
        raise ValueError(f"audit {where} is a bytearray (how secrets are held); refused")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"audit {where} has unsupported type {type(value).__name__}")


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    """The single writer of one trail file (an exclusive lock guards against a second)."""

    def __init__(
        self,
        path: Path | str,
        *,
        sealer: Sealer | None = None,
        audit_public_key: bytes | None = None,
        seal_every: int = 1000,
        clock: Callable[[], str] = _utc_now,
        recover_torn_tail: bool = False,
        on_seal: Callable[[int], None] | None = None,
    ) -> None:
        if seal_every < 1:
            raise ValueError("seal_every must be at least 1")
        self.path = Path(path)
        self._sealer, self._public_key = sealer, audit_public_key
        self._seal_every, self._clock = seal_every, clock
        #: called with ``through_seq`` after each durable seal (e.g.
        #: ``Ledger.set_audit_sealed_through``, the anchor ``verify`` checks truncation with)
        self._on_seal = on_seal
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._fd)
            raise AuditLogLocked(str(self.path)) from exc
        try:
            if created:
                _fsync_dir(self.path.parent)
            report, valid = scan(self.path, audit_public_key, allow_torn_tail=recover_torn_tail)
            size = os.fstat(self._fd).st_size
            #: bytes of an incomplete final line dropped at open (a crash mid-append)
            self.recovered_bytes = size - valid
            if self.recovered_bytes:
                os.ftruncate(self._fd, valid)
                os.fsync(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self._seq, self._head = report.entries, report.head
        self._since_seal = report.unsealed

    @property
    def head(self) -> str:
        return self._head

    @property
    def next_seq(self) -> int:
        return self._seq

    def append(self, event: str, fields: Mapping[str, Any] | None = None) -> AuditEntry:
        """Write one entry durably (write + fsync) and return it; may add a seal after it."""
        if event not in EVENTS or event == "seal":
            raise ValueError(f"unknown or reserved audit event {event!r}")
        entry = self._write(event, _check_fields(dict(fields or {})))
        if self._sealer is not None and self._since_seal >= self._seal_every:
            self.seal()
        return entry

    def seal(self) -> AuditEntry:
        """Append a seal over the current head, signed by the HSM audit key."""
        if self._sealer is None:
            raise ValueError("this audit log has no sealer")
        if self._seq == 0:
            raise ValueError("nothing to seal yet")
        through = self._seq - 1
        signature = _compact(self._sealer(seal_digest(self._head, through))).hex()
        if self._public_key is not None and not seal_ok(
            self._public_key, self._head, through, signature
        ):
            raise SealFailed("the signature does not verify with the audit public key")
        fields = {"head": self._head, "through_seq": through, "signature": signature}
        entry = self._write("seal", fields)
        if self._on_seal is not None:
            self._on_seal(through)
        return entry

    def _write(self, event: str, fields: dict[str, Any]) -> AuditEntry:
        body = AuditEntry(self._seq, self._clock(), event, fields, self._head)
        entry = AuditEntry(**{**body.__dict__, "hash": entry_hash(body.body())})
        line = entry.line()
        if len(line) > MAX_LINE_BYTES:
            raise ValueError(f"audit entry exceeds {MAX_LINE_BYTES} bytes")
        written = os.write(self._fd, line)
        if written != len(line):
            raise HardwareError(f"Only {written} of {len(line)} bytes reached the audit log.")
        os.fsync(self._fd)
        self._seq, self._head = self._seq + 1, entry.hash
        self._since_seal = 0 if event == "seal" else self._since_seal + 1
        return entry

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

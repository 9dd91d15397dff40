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
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import coincurve
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from coldvault import jsonsafe
from coldvault.errors import ConfigError, HardwareError, IntegrityError, Refused
from coldvault.keystore import EcdsaSignature
from coldvault.requests.base import Review

ENTRY_PREFIX = b"coldvault/audit/v1\x00"
SEAL_PREFIX = b"coldvault/audit-seal/v1\x00"
GENESIS_PREV = "0" * 64
MAX_LINE_BYTES = 64 * 1024
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
_KEYS = {"seq", "time", "event", "fields", "prev", "hash"}

Sealer = Callable[[bytes], object]  # digest32 -> EcdsaSignature | 64-byte r||s | DER bytes


# --------------------------------------------------------------------------- errors
class AuditTampered(IntegrityError):
    """Base of audit-trail verification failures; ``index`` is the 0-based line number."""

    code = "audit-tampered"

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"Audit entry {index}: {message}")
        self.index = index


class AuditMalformed(AuditTampered):
    code = "audit-malformed"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, f"the line is not a well-formed entry ({reason}).")
        self.reason = reason


class AuditSequenceError(AuditTampered):
    code = "audit-sequence"

    def __init__(self, index: int, found: int) -> None:
        super().__init__(
            index,
            f"sequence number {found} where {index} was expected: an entry was deleted, "
            "inserted or moved.",
        )
        self.found = found


class AuditChainBroken(AuditTampered):
    code = "audit-chain-broken"

    def __init__(self, index: int) -> None:
        super().__init__(index, "it does not chain to the entry before it.")


class AuditHashMismatch(AuditTampered):
    code = "audit-hash-mismatch"

    def __init__(self, index: int) -> None:
        super().__init__(index, "its content does not match its hash: the entry was edited.")


class AuditSealInvalid(AuditTampered):
    code = "audit-seal-invalid"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, f"the seal does not verify ({reason}).")
        self.reason = reason


class AuditTruncated(AuditTampered):
    code = "audit-truncated"

    def __init__(self, index: int, expected_through: int, found_through: int) -> None:
        super().__init__(
            index,
            f"the last seal covers entries up to {found_through}, but seals up to "
            f"{expected_through} were recorded: the trail was cut short.",
        )
        self.expected_through = expected_through
        self.found_through = found_through


class AuditLogNotFound(ConfigError):
    code = "audit-not-found"

    def __init__(self, path: str) -> None:
        super().__init__(f"The audit log {path} does not exist.")
        self.path = path


class BadAuditPublicKey(ConfigError):
    code = "audit-bad-pubkey"

    def __init__(self) -> None:
        super().__init__("The audit public key is not a valid secp256k1 point (33 or 65 bytes).")


class AuditLogLocked(Refused):
    code = "audit-locked"

    def __init__(self, path: str) -> None:
        super().__init__(f"The audit log {path} is already open in another process.")
        self.path = path


class SealFailed(HardwareError):
    code = "audit-seal-failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The HSM audit seal failed: {reason}.")
        self.reason = reason


# --------------------------------------------------------------------------- values
@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str
    event: str
    fields: Mapping[str, Any] = field(hash=False)
    prev: str = GENESIS_PREV
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "event": self.event,
            "fields": self.fields,
            "prev": self.prev,
        }

    def line(self) -> bytes:
        return _canonical({**self.body(), "hash": self.hash}) + b"\n"


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


def _canonical(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(ENTRY_PREFIX + _canonical(body)).hexdigest()


def seal_digest(head: str, through_seq: int) -> bytes:
    """The 32 bytes the HSM audit key signs for a seal."""
    return hashlib.sha256(
        SEAL_PREFIX + bytes.fromhex(head) + through_seq.to_bytes(8, "big")
    ).digest()


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


def _seal_ok(public_key: bytes, head: str, through_seq: int, signature_hex: str) -> bool:
    try:
        sig = bytes.fromhex(signature_hex)
        if len(sig) != 64:
            return False
        der = EcdsaSignature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")).der
        return bool(
            coincurve.PublicKey(public_key).verify(der, seal_digest(head, through_seq), hasher=None)
        )
    except (ValueError, TypeError):
        return False


# --------------------------------------------------------------------------- reading
def _parse_line(index: int, raw: bytes) -> AuditEntry:
    if not raw.endswith(b"\n"):
        raise AuditMalformed(index, "incomplete last line")
    if len(raw) > MAX_LINE_BYTES:
        raise AuditMalformed(index, "line too long")
    try:
        obj = jsonsafe.loads(raw)
    except jsonsafe.JsonRejected as exc:
        raise AuditMalformed(index, "not JSON") from exc
    if not isinstance(obj, dict) or set(obj) != _KEYS:
        raise AuditMalformed(index, "wrong keys")
    types = {"seq": int, "time": str, "event": str, "fields": dict, "prev": str, "hash": str}
    if any(not isinstance(obj[k], t) or isinstance(obj[k], bool) for k, t in types.items()):
        raise AuditMalformed(index, "a value has the wrong type")
    if _canonical(obj) + b"\n" != raw:
        raise AuditMalformed(index, "not in canonical form")
    return AuditEntry(
        obj["seq"], obj["time"], obj["event"], obj["fields"], obj["prev"], obj["hash"]
    )


def _check_entry(index: int, entry: AuditEntry, prev: str, public_key: bytes | None) -> None:
    if entry.seq != index:
        raise AuditSequenceError(index, entry.seq)
    if entry.prev != prev:
        raise AuditChainBroken(index)
    if entry.hash != entry_hash(entry.body()):
        raise AuditHashMismatch(index)
    if entry.event == "seal":
        f = entry.fields
        if f.get("head") != prev or f.get("through_seq") != index - 1:
            raise AuditSealInvalid(index, "it does not name the entry before it")
        if public_key is not None and not _seal_ok(
            public_key, prev, index - 1, str(f.get("signature"))
        ):
            raise AuditSealInvalid(index, "the signature is not by the audit key")


def _scan(
    path: Path, public_key: bytes | None, *, allow_torn_tail: bool = False
) -> tuple[AuditReport, int]:
    """Verify ``path``; return the report and the byte length of the valid prefix."""
    entries = seals = valid_bytes = 0
    prev, sealed_through, last_seal_index = GENESIS_PREV, None, -1
    events: dict[str, int] = {}
    first_time = last_time = None
    with open(path, "rb") as fh:
        for index, raw in enumerate(fh):
            try:
                entry = _parse_line(index, raw)
            except AuditMalformed as exc:
                if allow_torn_tail and exc.reason == "incomplete last line":
                    break
                raise
            _check_entry(index, entry, prev, public_key)
            if entry.event == "seal":
                seals, sealed_through, last_seal_index = seals + 1, index - 1, index
            events[entry.event] = events.get(entry.event, 0) + 1
            first_time = first_time or entry.time
            last_time, prev, entries = entry.time, entry.hash, entries + 1
            valid_bytes += len(raw)
    report = AuditReport(
        entries=entries,
        seals=seals,
        sealed_through=sealed_through,
        unsealed=entries - last_seal_index - 1,
        head=prev,
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
            report, valid = _scan(self.path, audit_public_key, allow_torn_tail=recover_torn_tail)
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
        if self._public_key is not None and not _seal_ok(
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

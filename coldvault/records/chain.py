"""The audit trail's format and its verification: canonical entries, the hash chain, seals.

An entry's hash covers its canonical JSON without ``hash``; a seal's signature covers the
head hash and sequence number (see :mod:`coldvault.records.audit` and docs/audit.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve

from coldvault import jsonsafe
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.records.errors import (
    AuditChainBroken,
    AuditHashMismatch,
    AuditLogNotFound,
    AuditMalformed,
    AuditSealInvalid,
    AuditSequenceError,
    AuditTruncated,
    BadAuditPublicKey,
)

ENTRY_PREFIX = b"coldvault/audit/v1\x00"
SEAL_PREFIX = b"coldvault/audit-seal/v1\x00"
GENESIS_PREV = "0" * 64
MAX_LINE_BYTES = 4 * 1024 * 1024  # a review of a PSBT at the parser limits (5,000 outputs) fits
_KEYS = {"seq", "time", "event", "fields", "prev", "hash"}


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


def seal_ok(public_key: bytes, head: str, through_seq: int, signature_hex: str) -> bool:
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
        if public_key is not None and not seal_ok(
            public_key, prev, index - 1, str(f.get("signature"))
        ):
            raise AuditSealInvalid(index, "the signature is not by the audit key")


def scan(
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
        report, _ = scan(Path(path), audit_public_key)
    except FileNotFoundError as exc:
        raise AuditLogNotFound(str(path)) from exc
    found = -1 if report.sealed_through is None else report.sealed_through
    if expect_sealed_through is not None and found < expect_sealed_through:
        raise AuditTruncated(report.entries, expect_sealed_through, found)
    return report

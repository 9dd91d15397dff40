"""Ceremony transcripts: a chain log of ceremony steps, closed and signed by witnesses.

A transcript is a JSON Lines file (format in docs/transcripts.md).  Each line is one entry
in canonical JSON with the keys ``v`` (format version 1), ``index`` (0, 1, ...),
``timestamp`` (UTC, ISO 8601, milliseconds), ``ceremony_id``, ``ceremony``, ``step``,
``actor``, ``devices`` (list of ``{"kind", "serial"}``), ``data`` (public results),
``prev_hash`` and ``hash``, where ``hash = SHA-256(canonical JSON of the entry without
"hash")`` (hex, no domain prefix) and ``prev_hash`` is the previous entry's ``hash`` (64
zeros for entry 0). The chain, the bounded reader, the clock and the secret filter are
:mod:`coldvault.records.chain`'s (:data:`TRANSCRIPT` is the transcript's format); every line
is fsynced as it is written.

The ``close`` entry records the outcome (``completed``/``aborted``); after it, only
``witness-signature`` entries may follow: each carries a witness card's signature over
:func:`close_message` (the ceremony id and the close entry's hash), checked with
:func:`coldvault.cards.signatures.verify_card_signature`.

Secrets never enter a transcript: every entry passes the chain log's one secret filter
(:func:`coldvault.records.chain.find_secret`; :func:`check_public` applies it to any value),
and a refusal is :class:`~coldvault.records.errors.SecretInTranscript`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.cards.signatures import verify_card_signature
from coldvault.records.chain import (
    ChainFormat,
    ChainWriter,
    Clock,
    Defect,
    Line,
    SecretFound,
    fsync_dir,
    read,
    screen,
    walk,
)
from coldvault.records.errors import (
    SecretInTranscript,
    TranscriptClosed,
    TranscriptDecodeError,
    TranscriptError,
    TranscriptExists,
    TranscriptTampered,
    WitnessSignatureInvalid,
)

CLOSE_PREFIX = b"coldvault/transcript-close/v1\x00"
WITNESS_STEP = "witness-signature"
CLOSE_STEP = "close"

_LINK_REASONS = {
    Defect.CHAIN_BROKEN: "its previous-hash link is broken",
    Defect.HASH_MISMATCH: "its content does not match its hash",
}


def _error(index: int, defect: Defect, found: int | None) -> TranscriptError:
    if defect is Defect.SEQUENCE:
        return TranscriptTampered(index, f"it carries index {found}")
    if defect in _LINK_REASONS:
        return TranscriptTampered(index, _LINK_REASONS[defect])
    return TranscriptDecodeError(index, defect.value)


def _refuse_secret(found: SecretFound) -> SecretInTranscript:
    return SecretInTranscript(found.key)


_KEYS = {
    "v": int, "index": int, "timestamp": str, "ceremony_id": str, "ceremony": str,
    "step": str, "actor": str, "devices": list, "data": dict, "prev_hash": str, "hash": str,
}  # fmt: skip

#: the transcript's chain format (docs/transcripts.md)
TRANSCRIPT = ChainFormat(
    name="transcript",
    domain=b"",
    keys=_KEYS,
    index_key="index",
    time_key="timestamp",
    prev_key="prev_hash",
    timespec="milliseconds",
    max_line_bytes=256 * 1024,
    error=_error,
    refuse_secret=_refuse_secret,
    version=("v", 1),
    max_entries=100_000,
    max_file_bytes=64 * 1024 * 1024,
)


# -- value types ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Device:
    kind: str  # "hsm", "card", "reader", "host", ...
    serial: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "serial": self.serial}


@dataclass(frozen=True)
class WitnessSignature:
    """A witness card's signature over :func:`close_message` (all public)."""

    card_serial: str
    holder: str
    role: str
    algorithm: str
    public_key: bytes
    signature: bytes

    def to_dict(self, signed_hash: str) -> dict[str, str]:
        return {
            "signed_hash": signed_hash,
            "card_serial": self.card_serial,
            "holder": self.holder,
            "role": self.role,
            "algorithm": self.algorithm,
            "public_key": self.public_key.hex(),
            "signature": self.signature.hex(),
        }


#: The callback the ceremony CLI provides: sign ``message`` on one witness card.
Signer = Callable[[bytes], WitnessSignature]


@dataclass(frozen=True)
class VerifyResult:
    path: str
    ceremony_id: str
    ceremony: str
    entries: int
    status: str  # "completed", "aborted" or "open" (never closed)
    final_hash: str  # hash of the close entry ("" if open)
    last_hash: str
    witnesses: tuple[dict[str, str], ...]

    @property
    def closed(self) -> bool:
        return self.status != "open"


# -- public data -----------------------------------------------------------------------------
def close_message(ceremony_id: str, final_hash: str) -> bytes:
    """What witnesses sign: ``prefix || ceremony_id || 0x00 || close-entry hash (32 bytes)``."""
    return CLOSE_PREFIX + ceremony_id.encode() + b"\x00" + bytes.fromhex(final_hash)


def check_public(data: Any) -> None:
    """Raise :class:`SecretInTranscript` if ``data`` holds a secret (the chain log's one
    rule), ``ValueError`` if it cannot be written at all."""
    screen(data, TRANSCRIPT)


# -- writer -----------------------------------------------------------------------------------
class TranscriptWriter:
    """Writes one transcript. Create with :meth:`create`; every append is fsynced."""

    def __init__(
        self, path: Path, ceremony: str, ceremony_id: str, *, clock: Clock | None = None
    ) -> None:
        self.path = Path(path)
        self.ceremony = ceremony
        self.ceremony_id = ceremony_id
        self._chain = ChainWriter(self.path, TRANSCRIPT, clock=clock)
        self._closed_hash = ""

    @classmethod
    def create(
        cls,
        path: Path,
        ceremony: str,
        *,
        actor: str,
        devices: Iterable[Device] = (),
        data: Mapping[str, Any] | None = None,
        ceremony_id: str | None = None,
        clock: Clock | None = None,
    ) -> TranscriptWriter:
        """Create a new transcript file (refuses to overwrite) and write its ``open`` entry."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise TranscriptExists(str(path)) from None
        os.close(fd)
        fsync_dir(path.parent)
        writer = cls(path, ceremony, ceremony_id or str(uuid.uuid4()), clock=clock)
        writer.append("open", actor=actor, devices=devices, data=dict(data or {}))
        return writer

    @property
    def closed(self) -> bool:
        return bool(self._closed_hash)

    @property
    def last_hash(self) -> str:
        return self._chain.head

    def append(
        self,
        step: str,
        *,
        actor: str,
        devices: Iterable[Device] = (),
        data: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one entry (public data only) and fsync it; returns the entry."""
        if self._closed_hash and step != WITNESS_STEP:
            raise TranscriptClosed()
        return self._chain.append(
            {
                "ceremony_id": self.ceremony_id,
                "ceremony": self.ceremony,
                "step": step,
                "actor": actor,
                "devices": [d.to_dict() for d in devices],
                "data": dict(data or {}),
            }
        )

    def close(
        self, status: str = "completed", *, actor: str, data: Mapping[str, Any] | None = None
    ) -> str:
        """Write the ``close`` entry; returns its hash (what witnesses sign)."""
        if status not in ("completed", "aborted"):
            raise ValueError("status must be 'completed' or 'aborted'")
        if self._closed_hash:
            return self._closed_hash
        entry = self.append(CLOSE_STEP, actor=actor, data={"status": status, **dict(data or {})})
        self._closed_hash = entry["hash"]
        return self._closed_hash

    def abort(self, reason: str, *, actor: str) -> str:
        """Record an abort (Ctrl-C, error) and close. Never raises for a closed transcript."""
        if self._closed_hash:
            return self._closed_hash
        return self.close("aborted", actor=actor, data={"reason": reason})

    def add_witness(self, signer: Signer) -> WitnessSignature:
        """Have one witness card sign the close hash; checked before it is recorded."""
        if not self._closed_hash:
            raise ValueError("close the transcript before collecting witness signatures")
        message = close_message(self.ceremony_id, self._closed_hash)
        sig = signer(message)
        if not verify_card_signature(sig.algorithm, sig.public_key, message, sig.signature):
            raise WitnessSignatureInvalid(
                self._chain.next_index, sig.card_serial, "does not verify"
            )
        self.append(
            WITNESS_STEP,
            actor=sig.holder,
            devices=[Device("card", sig.card_serial)],
            data=sig.to_dict(self._closed_hash),
        )
        return sig


# -- reader / verifier ------------------------------------------------------------------------
def _lines(lines: Iterator[Line]) -> Iterator[Line]:
    """``lines``, refusing an empty transcript (every transcript has its ``open`` entry)."""
    empty = True
    for line in lines:
        empty = False
        yield line
    if empty:
        raise TranscriptDecodeError(0, "the file is empty")


def read_entries(path: Path) -> list[dict[str, Any]]:
    """Decode every line (bounded); no chain checks (see :func:`verify`)."""
    return [line.entry for line in _lines(read(path, TRANSCRIPT))]


def _check_witness(entry: dict[str, Any], ceremony_id: str, final_hash: str, roster: Any) -> None:
    data, index = entry["data"], entry["index"]
    serial = str(data.get("card_serial", "?"))
    try:
        public_key = bytes.fromhex(data["public_key"])
        signature = bytes.fromhex(data["signature"])
        algorithm = str(data["algorithm"])
        signed = data["signed_hash"]
    except (KeyError, ValueError, TypeError):
        raise WitnessSignatureInvalid(index, serial, "is malformed") from None
    if signed != final_hash:
        raise WitnessSignatureInvalid(index, serial, "is over another hash")
    try:
        ok = verify_card_signature(
            algorithm, public_key, close_message(ceremony_id, final_hash), signature
        )
    except ValueError:
        ok = False
    if not ok:
        raise WitnessSignatureInvalid(index, serial, "does not verify")
    if roster is not None:
        holder = roster.holder(serial)
        if holder is None or not holder.active or holder.public_key != public_key:
            raise WitnessSignatureInvalid(index, serial, "is not from an active roster card")


def verify(path: Path, *, roster: Any = None, min_witnesses: int = 0) -> VerifyResult:
    """Check canonical form, hash chain, indices, close and witness signatures.

    ``roster`` (a :class:`coldvault.quorum.roster.Roster`) additionally requires every witness to
    be an active card of the roster with the recorded public key.
    """
    ceremony_id = ceremony = final_hash = last_hash = ""
    status, entries = "open", 0
    witnesses: list[dict[str, str]] = []
    for line in _lines(walk(path, TRANSCRIPT)):
        i, entry = line.index, line.entry
        if i == 0:
            ceremony_id, ceremony = entry["ceremony_id"], entry["ceremony"]
            if entry["step"] != "open":
                raise TranscriptTampered(i, "the transcript does not start with an open entry")
        elif (entry["ceremony_id"], entry["ceremony"]) != (ceremony_id, ceremony):
            raise TranscriptTampered(i, "it belongs to another ceremony")
        if final_hash:
            if entry["step"] != WITNESS_STEP:
                raise TranscriptTampered(i, "an entry other than a witness follows the close")
            _check_witness(entry, ceremony_id, final_hash, roster)
            witnesses.append({k: str(v) for k, v in entry["data"].items()})
        elif entry["step"] == CLOSE_STEP:
            final_hash, status = entry["hash"], str(entry["data"].get("status", "completed"))
        elif entry["step"] == WITNESS_STEP:
            raise TranscriptTampered(i, "a witness signature comes before the close")
        last_hash, entries = entry["hash"], entries + 1
    if len(witnesses) < min_witnesses:
        raise TranscriptTampered(
            entries - 1, f"{len(witnesses)} witness signatures, {min_witnesses} required"
        )
    return VerifyResult(
        path=str(path),
        ceremony_id=ceremony_id,
        ceremony=ceremony,
        entries=entries,
        status=status,
        final_hash=final_hash,
        last_hash=last_hash,
        witnesses=tuple(witnesses),
    )


__all__ = [
    "CLOSE_PREFIX",
    "TRANSCRIPT",
    "Device",
    "Signer",
    "TranscriptWriter",
    "VerifyResult",
    "WitnessSignature",
    "check_public",
    "close_message",
    "read_entries",
    "verify",
]

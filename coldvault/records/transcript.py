"""Append-only, hash-chained ceremony transcripts (format in docs/transcripts.md).

A transcript is a JSON Lines file.  Each line is one entry, serialised canonically
(``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=True)``) with fields

``v`` (format version 1), ``index`` (0, 1, ...), ``timestamp`` (UTC, ISO 8601),
``ceremony_id``, ``ceremony``, ``step``, ``actor``, ``devices`` (list of
``{"kind", "serial"}``), ``data`` (public results), ``prev_hash`` and ``hash``.

``hash = SHA-256(canonical JSON of the entry without "hash")`` (hex) and ``prev_hash`` is
the previous entry's ``hash`` (64 zeros for entry 0).  Every line is fsynced as it is
written.  The ``close`` entry records the outcome (``completed``/``aborted``); after it,
only ``witness-signature`` entries may follow: each carries a witness card's signature
over :func:`close_message` (the ceremony id and the close entry's hash), checked with
:func:`coldvault.cards.signatures.verify_card_signature`.

Secrets never enter a transcript: :func:`check_public` refuses data whose key names look
like secrets (pin, seed, mnemonic, share, dice, passphrase, ...) unless they are clearly
metadata (``dice_rolls``, ``share_threshold``, ``seed_fingerprint``, ...), and string
values that look like extended private keys or mnemonics.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mnemonic import Mnemonic

from coldvault.cards.signatures import verify_card_signature
from coldvault.errors import IntegrityError, Refused

FORMAT_VERSION = 1
GENESIS_HASH = "0" * 64
CLOSE_PREFIX = b"coldvault/transcript-close/v1\x00"
MAX_ENTRY_BYTES = 256 * 1024
MAX_ENTRIES = 100_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_NESTING = 32
WITNESS_STEP = "witness-signature"
CLOSE_STEP = "close"
FIELDS = (
    "v", "index", "timestamp", "ceremony_id", "ceremony", "step", "actor", "devices", "data",
    "prev_hash", "hash",
)  # fmt: skip

_SECRET_TOKENS = {
    "pin", "pins", "puk", "seed", "mnemonic", "mnemonics", "words", "share", "shares", "dice",
    "passphrase", "password", "secret", "private", "xprv", "tprv", "scalar", "entropy", "wif",
}  # fmt: skip
_METADATA_TOKENS = {
    "count", "rolls", "bits", "threshold", "fingerprint", "length", "bytes", "index",
    "indices", "summary", "tries", "retries", "policy", "version", "id", "identifier",
    "groups", "sources", "mix", "set", "changed", "ok", "verified", "backup",
}  # fmt: skip
_BIP39_WORDS = frozenset(Mnemonic("english").wordlist)
_XPRV = re.compile(r"\b[xt]prv[1-9A-HJ-NP-Za-km-z]{100,}")


# -- errors -----------------------------------------------------------------------------------
class TranscriptError(IntegrityError):
    """Family of transcript verification failures."""

    code = "transcript"


class TranscriptDecodeError(TranscriptError):
    """A line is not canonical JSON of a transcript entry (``index`` = line number, 0-based)."""

    code = "transcript-decode"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"Transcript line {index + 1} cannot be read: {reason}.")
        self.index = index


class TranscriptTampered(TranscriptError):
    """Entry ``index`` does not match the hash chain (changed, removed, reordered)."""

    code = "transcript-tampered"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"Transcript entry {index} fails verification: {reason}.")
        self.index = index


class WitnessSignatureInvalid(TranscriptError):
    """A witness signature does not verify, or the card is not an active roster member."""

    code = "transcript-witness"

    def __init__(self, index: int, card_serial: str, reason: str) -> None:
        super().__init__(
            f"Transcript entry {index}: the witness signature of card {card_serial} {reason}."
        )
        self.index = index
        self.card_serial = card_serial


class SecretInTranscript(Refused):
    """A caller tried to write something that looks like a secret into a transcript."""

    code = "secret-in-transcript"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Refusing to write the field {key!r} to a transcript: it looks like a secret."
        )
        self.key = key


class TranscriptExists(Refused):
    """A transcript is never overwritten or appended to by a new ceremony."""

    code = "transcript-exists"

    def __init__(self, path: str) -> None:
        super().__init__(f"The transcript file {path} already exists; choose a new file.")
        self.path = path


class TranscriptClosed(Refused):
    """Only witness signatures may follow the close entry."""

    code = "transcript-closed"

    def __init__(self) -> None:
        super().__init__("The transcript is closed; only witness signatures may be added.")


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


# -- canonical form ---------------------------------------------------------------------------
def canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def close_message(ceremony_id: str, final_hash: str) -> bytes:
    """What witnesses sign: ``prefix || ceremony_id || 0x00 || close-entry hash (32 bytes)``."""
    return CLOSE_PREFIX + ceremony_id.encode() + b"\x00" + bytes.fromhex(final_hash)


def _looks_like_mnemonic(text: str) -> bool:
    words = text.lower().split()
    return len(words) >= 12 and sum(w in _BIP39_WORDS for w in words) >= 0.8 * len(words)


def check_public(data: Any, *, key: str = "data") -> None:
    """Raise :class:`SecretInTranscript` if ``data`` looks like it holds a secret."""
    if isinstance(data, Mapping):
        for k, v in data.items():
            name = str(k)
            tokens = set(re.split(r"[^a-z0-9]+", name.lower()))
            if tokens & _SECRET_TOKENS and not tokens & _METADATA_TOKENS:
                raise SecretInTranscript(name)
            check_public(v, key=name)
    elif isinstance(data, list | tuple):
        for item in data:
            check_public(item, key=key)
    elif isinstance(data, str):
        if _XPRV.search(data) or _looks_like_mnemonic(data):
            raise SecretInTranscript(key)
    elif isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("transcript data must be JSON values; hex-encode public bytes")
    elif not (data is None or isinstance(data, bool | int | float)):
        raise TypeError(f"transcript data of type {type(data).__name__} is not JSON")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- writer -----------------------------------------------------------------------------------
class TranscriptWriter:
    """Writes one transcript. Create with :meth:`create`; every append is fsynced."""

    def __init__(self, path: Path, ceremony: str, ceremony_id: str, *, clock: Callable[[], str]):
        self.path = Path(path)
        self.ceremony = ceremony
        self.ceremony_id = ceremony_id
        self._clock = clock
        self._index = 0
        self._last_hash = GENESIS_HASH
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
        clock: Callable[[], str] = _now,
    ) -> TranscriptWriter:
        """Create a new transcript file (refuses to overwrite) and write its ``open`` entry."""
        path = Path(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise TranscriptExists(str(path)) from None
        os.close(fd)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        writer = cls(path, ceremony, ceremony_id or str(uuid.uuid4()), clock=clock)
        writer.append("open", actor=actor, devices=devices, data=dict(data or {}))
        return writer

    @property
    def closed(self) -> bool:
        return bool(self._closed_hash)

    @property
    def last_hash(self) -> str:
        return self._last_hash

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
        payload = dict(data or {})
        check_public(payload)
        check_public({"actor": actor, "step": step})
        entry: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "index": self._index,
            "timestamp": self._clock(),
            "ceremony_id": self.ceremony_id,
            "ceremony": self.ceremony,
            "step": step,
            "actor": actor,
            "devices": [d.to_dict() for d in devices],
            "data": payload,
            "prev_hash": self._last_hash,
        }
        entry["hash"] = entry_hash(entry)
        line = canonical(entry) + b"\n"
        if len(line) > MAX_ENTRY_BYTES:
            raise ValueError("transcript entry too large")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._index += 1
        self._last_hash = entry["hash"]
        return entry

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
            raise WitnessSignatureInvalid(self._index, sig.card_serial, "does not verify")
        self.append(
            WITNESS_STEP,
            actor=sig.holder,
            devices=[Device("card", sig.card_serial)],
            data=sig.to_dict(self._closed_hash),
        )
        return sig


# -- reader / verifier ------------------------------------------------------------------------
def _nesting_ok(line: bytes, limit: int = MAX_NESTING) -> bool:
    """Bound JSON nesting before the parser sees the line (deep nesting exhausts the stack)."""
    depth, in_string, escaped = 0, False, False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return False
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return True


def _decode(index: int, line: bytes) -> dict[str, Any]:
    if len(line) > MAX_ENTRY_BYTES:
        raise TranscriptDecodeError(index, "it is longer than an entry may be")
    if not _nesting_ok(line):
        raise TranscriptDecodeError(index, "it is nested too deeply")
    try:
        entry = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise TranscriptDecodeError(index, "it is not JSON") from None
    if not isinstance(entry, dict) or tuple(sorted(entry)) != tuple(sorted(FIELDS)):
        raise TranscriptDecodeError(index, "it does not have exactly the transcript fields")
    if canonical(entry) != line:
        raise TranscriptDecodeError(index, "it is not in canonical form")
    types = {
        "v": int, "index": int, "timestamp": str, "ceremony_id": str, "ceremony": str,
        "step": str, "actor": str, "devices": list, "data": dict, "prev_hash": str, "hash": str,
    }  # fmt: skip
    for name, kind in types.items():
        if not isinstance(entry[name], kind) or isinstance(entry[name], bool):
            raise TranscriptDecodeError(index, f"field {name} has the wrong type")
    if entry["v"] != FORMAT_VERSION:
        raise TranscriptDecodeError(index, f"format version {entry['v']} is unknown")
    return entry


def read_entries(path: Path) -> list[dict[str, Any]]:
    """Decode every line (bounded); no chain checks (see :func:`verify`)."""
    data = Path(path).read_bytes()
    if len(data) > MAX_FILE_BYTES:
        raise TranscriptDecodeError(0, "the file is too large")
    if not data:
        raise TranscriptDecodeError(0, "the file is empty")
    if not data.endswith(b"\n"):
        raise TranscriptDecodeError(data.count(b"\n"), "the last line is incomplete")
    lines = data[:-1].split(b"\n")
    if len(lines) > MAX_ENTRIES:
        raise TranscriptDecodeError(MAX_ENTRIES, "there are too many entries")
    return [_decode(i, line) for i, line in enumerate(lines)]


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
    entries = read_entries(path)
    prev = GENESIS_HASH
    ceremony_id, ceremony = entries[0]["ceremony_id"], entries[0]["ceremony"]
    final_hash, status = "", "open"
    witnesses: list[dict[str, str]] = []
    for i, entry in enumerate(entries):
        if entry["index"] != i:
            raise TranscriptTampered(i, f"it carries index {entry['index']}")
        if entry["prev_hash"] != prev:
            raise TranscriptTampered(i, "its previous-hash link is broken")
        if entry_hash(entry) != entry["hash"]:
            raise TranscriptTampered(i, "its content does not match its hash")
        if (entry["ceremony_id"], entry["ceremony"]) != (ceremony_id, ceremony):
            raise TranscriptTampered(i, "it belongs to another ceremony")
        if i == 0 and entry["step"] != "open":
            raise TranscriptTampered(i, "the transcript does not start with an open entry")
        if final_hash:
            if entry["step"] != WITNESS_STEP:
                raise TranscriptTampered(i, "an entry other than a witness follows the close")
            _check_witness(entry, ceremony_id, final_hash, roster)
            witnesses.append({k: str(v) for k, v in entry["data"].items()})
        elif entry["step"] == CLOSE_STEP:
            final_hash, status = entry["hash"], str(entry["data"].get("status", "completed"))
        elif entry["step"] == WITNESS_STEP:
            raise TranscriptTampered(i, "a witness signature comes before the close")
        prev = entry["hash"]
    if len(witnesses) < min_witnesses:
        raise TranscriptTampered(
            len(entries) - 1, f"{len(witnesses)} witness signatures, {min_witnesses} required"
        )
    return VerifyResult(
        path=str(path),
        ceremony_id=ceremony_id,
        ceremony=ceremony,
        entries=len(entries),
        status=status,
        final_hash=final_hash,
        last_hash=prev,
        witnesses=tuple(witnesses),
    )


# -- printable HTML ---------------------------------------------------------------------------
#: data keys whose string values get a QR code in the printable rendering
QR_KEYS = ("descriptor", "key_origin", "ur", "ur_account", "ur_output", "cosigner_key")
MAX_QR_CHARS = 1500


def _qr_data_uri(text: str) -> str:
    import qrcode  # imported lazily: only rendering needs it

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=3, border=2)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _qr_items(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    items = []
    for key, value in data.items():
        if key in QR_KEYS and isinstance(value, str) and 0 < len(value) <= MAX_QR_CHARS:
            items.append((key, value))
        elif isinstance(value, Mapping):
            items += [(f"{key}.{k}", v) for k, v in _qr_items(value)]
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    items += [(f"{key}[{i}].{k}", v) for k, v in _qr_items(item)]
    return items


def render_html(path: Path, *, roster: Any = None) -> str:
    """A standalone, printable HTML page of a transcript with its verification result and
    QR codes (PNG data URIs) of the exported public data and of the final hash."""
    esc = html.escape
    result: VerifyResult | None
    try:
        checked = verify(path, roster=roster)
        verdict = f"VERIFIED: {checked.entries} entries, status {checked.status}, " + (
            f"{len(checked.witnesses)} witness signature(s)"
        )
        result = checked
    except TranscriptError as exc:
        result, verdict = None, f"NOT VERIFIED: {exc}"
    entries = read_entries(path) if result is not None else []
    rows = []
    for e in entries:
        devices = ", ".join(f"{d.get('kind')}:{d.get('serial')}" for d in e["devices"])
        qrs = "".join(
            f'<figure><img alt="{esc(k)}" src="{_qr_data_uri(v)}">'
            f"<figcaption>{esc(k)}</figcaption></figure>"
            for k, v in _qr_items(e["data"])
        )
        rows.append(
            f"<tr><td>{e['index']}</td><td>{esc(e['timestamp'])}</td><td>{esc(e['step'])}</td>"
            f"<td>{esc(e['actor'])}</td><td>{esc(devices)}</td>"
            f"<td><pre>{esc(json.dumps(e['data'], indent=1, sort_keys=True))}</pre>{qrs}</td>"
            f"<td class=h>{esc(e['prev_hash'][:16])}&hellip;<br>{esc(e['hash'])}</td></tr>"
        )
    head = result.ceremony if result else "transcript"
    final = ""
    if result is not None and result.final_hash:
        final = (
            f"<p>Final hash (signed by witnesses): <code>{result.final_hash}</code></p>"
            f'<img alt="final hash" src="{_qr_data_uri(result.final_hash)}">'
        )
    return (
        "<!DOCTYPE html><html><head><meta charset=utf-8>"
        f"<title>coldvault {esc(head)} transcript</title><style>"
        "body{font-family:sans-serif;font-size:10pt}table{border-collapse:collapse;width:100%}"
        "td{border:1px solid #888;vertical-align:top;padding:3px}pre{white-space:pre-wrap;"
        "margin:0}.h{font-family:monospace;font-size:8pt;word-break:break-all}figure{display:"
        "inline-block;margin:4px}@media print{tr{page-break-inside:avoid}}</style></head><body>"
        f"<h1>coldvault ceremony transcript: {esc(head)}</h1>"
        f"<p>File: <code>{esc(str(path))}</code><br>Ceremony id: "
        f"<code>{esc(result.ceremony_id if result else '?')}</code></p>"
        f"<p><strong>{esc(verdict)}</strong></p>{final}"
        "<table><tr><th>#</th><th>time (UTC)</th><th>step</th><th>actor</th><th>devices</th>"
        "<th>public data</th><th>prev / hash</th></tr>" + "".join(rows) + "</table>"
        "<p>Check: every hash is SHA-256 of the entry's canonical JSON without its hash; "
        "see docs/transcripts.md.</p></body></html>\n"
    )


__all__ = [
    "Device",
    "SecretInTranscript",
    "Signer",
    "TranscriptClosed",
    "TranscriptDecodeError",
    "TranscriptError",
    "TranscriptExists",
    "TranscriptTampered",
    "TranscriptWriter",
    "VerifyResult",
    "WitnessSignature",
    "WitnessSignatureInvalid",
    "check_public",
    "close_message",
    "read_entries",
    "render_html",
    "verify",
]

"""Legacy animated-QR formats still spoken by older coordinators and signers.

* **pMofN** (Specter DIY and Specter Desktop): every frame is ``p<M>of<N> <chunk>`` with a
  1-based ``M``; the chunks concatenated in order give the text (usually a Base64 PSBT).
* **UR v1** (BCR-2020-005 first edition, Cobo Vault era): the CBOR body is encoded with
  *bc32* (the bech32 alphabet and BCH code with an empty prefix and the final constant
  ``0x3fffffff``) and the resulting string is cut into equal pieces.  Frames are
  ``ur:<type>/<M>of<N>/<digest>/<piece>`` where ``digest`` is bc32 of SHA-256 of the CBOR.
  A single frame may be ``ur:<type>/<bc32>`` or ``ur:<type>/<digest>/<bc32>``.

Both joiners accept repeats and any order, reject frames from another message, and are
bounded in part count and total characters.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from coldvault.errors import DecodeError

#: Upper bound on parts for either legacy format (a 35 KB PSBT needs ~250 at 200 chars).
MAX_PARTS = 2000
DEFAULT_MAX_CHARS = 8 * 1024 * 1024

_BC32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BC32_INDEX = {ch: i for i, ch in enumerate(_BC32_CHARSET)}
_BC32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_BC32_CONST = 0x3FFFFFFF
_PMOFN_RE = re.compile(r"p([1-9][0-9]{0,5})of([1-9][0-9]{0,5}) ", re.ASCII)
_SEQ_RE = re.compile(r"([1-9][0-9]{0,5})of([1-9][0-9]{0,5})", re.ASCII)
_TYPE_RE = re.compile(r"[a-z0-9-]{1,64}", re.ASCII)


class LegacyError(DecodeError):
    """A legacy (pMofN or UR v1) frame is malformed."""

    code = "legacy-qr"


class LegacyMixedError(LegacyError):
    """A frame belongs to a different message than the frames already received."""

    code = "legacy-qr-mixed"


class LegacyInconsistentError(LegacyError):
    """Two frames for the same part differ, or the joined data fails its digest."""

    code = "legacy-qr-inconsistent"


class LegacyTooLargeError(LegacyError):
    """A legacy message is larger than the configured bound."""

    code = "legacy-qr-too-large"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class Bc32Error(LegacyError):
    """A bc32 string has a bad character, mixed case, bad padding or a bad checksum."""

    code = "bc32"


# --------------------------------------------------------------------------- bc32


def _polymod(values: list[int]) -> int:
    chk = 1
    for value in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ value
        for i, gen in enumerate(_BC32_GENERATOR):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def _regroup(data: list[int] | bytes, from_bits: int, to_bits: int, pad: bool) -> list[int]:
    acc = 0
    bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = ((acc << from_bits) | value) & ((1 << (from_bits + to_bits)) - 1)
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or (acc << (to_bits - bits)) & maxv:
        raise Bc32Error("The bc32 data has invalid padding bits.")
    return out


def bc32_encode(data: bytes) -> str:
    """Encode bytes as bc32 (lower case)."""
    values = _regroup(data, 8, 5, True)
    mod = _polymod([0, *values, 0, 0, 0, 0, 0, 0]) ^ _BC32_CONST
    checksum = [(mod >> (5 * (5 - i))) & 31 for i in range(6)]
    return "".join(_BC32_CHARSET[v] for v in values + checksum)


def bc32_decode(text: str) -> bytes:
    """Decode a bc32 string (either all lower or all upper case) and verify its checksum."""
    if text != text.lower() and text != text.upper():
        raise Bc32Error("The bc32 text mixes upper and lower case.")
    text = text.lower()
    if len(text) < 6:
        raise Bc32Error("The bc32 text is too short to hold a checksum.")
    try:
        values = [_BC32_INDEX[ch] for ch in text]
    except KeyError as exc:
        raise Bc32Error(f"The bc32 text holds the invalid character {exc.args[0]!r}.") from None
    if _polymod([0, *values]) != _BC32_CONST:
        raise Bc32Error("The bc32 checksum does not match; the QR text is damaged.")
    return bytes(_regroup(values[:-6], 5, 8, False))


# --------------------------------------------------------------------------- pMofN


@dataclass(frozen=True)
class PmofnFrame:
    index: int  # 1-based, as on the wire
    total: int
    chunk: str


def is_pmofn(text: str) -> bool:
    """True when ``text`` starts with a ``pMofN `` prefix."""
    return _PMOFN_RE.match(text) is not None


def parse_pmofn(text: str) -> PmofnFrame:
    match = _PMOFN_RE.match(text)
    if match is None:
        raise LegacyError("The QR text does not start with a 'pMofN ' prefix such as 'p1of3 '.")
    index, total = int(match.group(1)), int(match.group(2))
    if total > MAX_PARTS:
        raise LegacyTooLargeError(
            f"The animated QR announces {total} parts; at most {MAX_PARTS} are accepted.",
            limit=MAX_PARTS,
        )
    if index > total:
        raise LegacyError(f"The QR part number {index} is larger than the part count {total}.")
    return PmofnFrame(index, total, text[match.end() :])


class _PartStore:
    """Parts 1..total keyed by number, consistent across repeats, bounded in size."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.total = 0
        self.parts: dict[int, str] = {}
        self.chars = 0

    def put(self, index: int, total: int, chunk: str) -> bool:
        if self.total == 0:
            self.total = total
        elif total != self.total:
            raise LegacyMixedError(
                f"This QR frame says the message has {total} parts, but the message being "
                f"received has {self.total}; scan only one animated QR at a time."
            )
        old = self.parts.get(index)
        if old is not None:
            if old != chunk:
                raise LegacyInconsistentError(
                    f"Part {index} was received twice with different contents."
                )
            return False
        if self.chars + len(chunk) > self.max_chars:
            raise LegacyTooLargeError(
                f"The animated QR message is longer than the limit of {self.max_chars} "
                "characters.",
                limit=self.max_chars,
            )
        self.parts[index] = chunk
        self.chars += len(chunk)
        return True

    @property
    def complete(self) -> bool:
        return self.total > 0 and len(self.parts) == self.total

    def joined(self) -> str:
        if not self.complete:
            raise LegacyError(
                f"The animated QR message is incomplete: {len(self.parts)} of {self.total} "
                "parts received."
            )
        return "".join(self.parts[i] for i in range(1, self.total + 1))


class _Joiner:
    """Progress of a multi-frame legacy message (shared by both legacy joiners)."""

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self._store = _PartStore(max_chars)

    @property
    def total(self) -> int:
        return self._store.total

    @property
    def received(self) -> int:
        return len(self._store.parts)

    @property
    def is_complete(self) -> bool:
        return self._store.complete


class PmofnJoiner(_Joiner):
    """Joins ``pMofN`` frames into the original text."""

    def add(self, text: str) -> bool:
        frame = parse_pmofn(text.strip("\r\n"))
        return self._store.put(frame.index, frame.total, frame.chunk)

    def result(self) -> str:
        return self._store.joined()


def encode_pmofn(text: str, max_chunk_len: int) -> list[str]:
    """Split ``text`` into ``pMofN`` frames with chunks of at most ``max_chunk_len`` chars.

    A text that fits in one chunk is returned as a single frame without prefix, as
    Specter does.
    """
    if max_chunk_len < 1:
        raise ValueError("max_chunk_len must be positive")
    if not text:
        raise ValueError("cannot encode empty text")
    if len(text) <= max_chunk_len:
        return [text]
    count = math.ceil(len(text) / max_chunk_len)
    size = math.ceil(len(text) / count)
    count = math.ceil(len(text) / size)
    return [f"p{i + 1}of{count} {text[i * size : (i + 1) * size]}" for i in range(count)]


# --------------------------------------------------------------------------- UR v1


@dataclass(frozen=True)
class UrV1Frame:
    ur_type: str
    index: int  # 1-based
    total: int
    digest: str | None  # bc32 text, lower case
    fragment: str  # bc32 text piece, lower case


def is_urv1(text: str) -> bool:
    """True when ``text`` is a UR v1 frame rather than a UR v2 one.

    A v2 multipart frame has ``<seq>-<len>`` in the second slot and v2 bodies are bytewords
    (which never use digits); v1 uses ``MofN`` and bc32 (which almost always has digits).
    """
    lower = text.strip().lower()
    if not lower.startswith("ur:"):
        return False
    pieces = lower[3:].split("/")
    if len(pieces) >= 3:
        if _SEQ_RE.fullmatch(pieces[1]) is not None:
            return True
        return len(pieces) == 3 and "-" not in pieces[1]
    if len(pieces) == 2:
        body = pieces[1]
        return any(ch.isdigit() for ch in body) and all(ch in _BC32_INDEX for ch in body)
    return False


def parse_urv1(text: str) -> UrV1Frame:
    lower = text.strip().lower()
    if not lower.startswith("ur:"):
        raise LegacyError("The QR text is not a UR: it must start with 'ur:'.")
    pieces = lower[3:].split("/")
    ur_type = pieces[0]
    if _TYPE_RE.fullmatch(ur_type) is None:
        raise LegacyError("The UR type is empty or holds characters other than a-z, 0-9, '-'.")
    if len(pieces) == 2:
        return UrV1Frame(ur_type, 1, 1, None, pieces[1])
    if len(pieces) == 3:
        return UrV1Frame(ur_type, 1, 1, pieces[1], pieces[2])
    if len(pieces) == 4:
        match = _SEQ_RE.fullmatch(pieces[1])
        if match is None:
            raise LegacyError(f"The UR v1 sequence {pieces[1]!r} is not of the form 'MofN'.")
        index, total = int(match.group(1)), int(match.group(2))
        if total > MAX_PARTS:
            raise LegacyTooLargeError(
                f"The UR v1 message announces {total} parts; at most {MAX_PARTS} are accepted.",
                limit=MAX_PARTS,
            )
        if index > total:
            raise LegacyError(f"The UR v1 part number {index} is larger than the count {total}.")
        return UrV1Frame(ur_type, index, total, pieces[2], pieces[3])
    raise LegacyError("The UR v1 text must have 2, 3 or 4 '/'-separated components.")


@dataclass(frozen=True)
class UrV1Message:
    ur_type: str
    cbor: bytes
    total: int


class UrV1Joiner(_Joiner):
    """Joins UR v1 frames and verifies the SHA-256 digest of the CBOR."""

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        super().__init__(max_chars=max_chars)
        self._type: str | None = None
        self._digest: str | None = None

    def add(self, text: str) -> bool:
        frame = parse_urv1(text)
        if self._type is None:
            self._type, self._digest = frame.ur_type, frame.digest
        elif frame.ur_type != self._type or frame.digest != self._digest:
            raise LegacyMixedError(
                "This UR v1 frame belongs to a different message (type or digest differs); "
                "scan only one animated QR at a time."
            )
        return self._store.put(frame.index, frame.total, frame.fragment)

    def result(self) -> UrV1Message:
        body = self._store.joined()
        cbor = bc32_decode(body)
        if self._digest is not None:
            expected = bc32_decode(self._digest)
            if hashlib.sha256(cbor).digest() != expected:
                raise LegacyInconsistentError(
                    "The UR v1 message does not match its SHA-256 digest; rescan the QR code."
                )
        if self._type is None:
            raise LegacyError("No UR v1 frame has been received.")
        return UrV1Message(self._type, cbor, self._store.total)


def encode_urv1(ur_type: str, cbor: bytes, max_fragment_len: int) -> list[str]:
    """UR v1 frames (lower case) for ``cbor`` with bc32 pieces of at most the given length."""
    if _TYPE_RE.fullmatch(ur_type) is None:
        raise ValueError(f"invalid UR type {ur_type!r}")
    if max_fragment_len < 1:
        raise ValueError("max_fragment_len must be positive")
    body = bc32_encode(cbor)
    if len(body) <= max_fragment_len:
        return [f"ur:{ur_type}/{body}"]
    digest = bc32_encode(hashlib.sha256(cbor).digest())
    count = math.ceil(len(body) / max_fragment_len)
    size = math.ceil(len(body) / count)
    count = math.ceil(len(body) / size)
    return [
        f"ur:{ur_type}/{i + 1}of{count}/{digest}/{body[i * size : (i + 1) * size]}"
        for i in range(count)
    ]

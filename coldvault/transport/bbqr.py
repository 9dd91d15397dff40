"""BBQr ("Better Bitcoin QR", Coinkite): split a file over alphanumeric QR codes and join it back.

Every frame is ``B$`` + encoding + file type + 2 base-36 digits of the part count + 2 base-36
digits of the 0-based part index, followed by that part's data characters.  Encodings:

* ``H`` upper-case hex (4 bits per character),
* ``2`` RFC 4648 Base32 without ``=`` padding (5 bits per character),
* ``Z`` the whole file raw-deflated (zlib ``wbits=-10``), then Base32.

All parts except the last have the same length and each decodes to whole bytes, so parts may
arrive in any order and repeated.  The joiner here is bounded: at most 1295 parts, a maximum
number of data characters, and a maximum inflated size (guards against deflate bombs).
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import qrcode.base
import qrcode.constants

from coldvault.errors import DecodeError

HEADER = "B$"
HEADER_LEN = 8
MAX_PARTS = 1295  # "ZZ" in base 36
#: Default bound on the joined, decoded file (bytes); callers may pass their own.
DEFAULT_MAX_FILE_LEN = 4 * 1024 * 1024
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_B32_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
_HEX_ALPHABET = frozenset("0123456789ABCDEF")
#: zlib window for BBQr: raw deflate (negative) with a 2**10 byte window.
ZLIB_WBITS = -10


class Encoding(StrEnum):
    """The third header character."""

    HEX = "H"
    BASE32 = "2"
    ZLIB = "Z"


class FileType(StrEnum):
    """The fourth header character."""

    PSBT = "P"
    TRANSACTION = "T"
    JSON = "J"
    CBOR = "C"
    UNICODE = "U"
    BINARY = "B"
    EXECUTABLE = "X"


class BbqrError(DecodeError):
    """A BBQr frame or a set of BBQr frames is malformed."""

    code = "bbqr"


class BbqrHeaderError(BbqrError):
    """A frame does not start with a valid 8-character BBQr header."""

    code = "bbqr-header"


class BbqrMixedError(BbqrError):
    """A frame belongs to a different BBQr message than the frames already received."""

    code = "bbqr-mixed"

    def __init__(self, message: str, *, expected: str, got: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.got = got


class BbqrInconsistentError(BbqrError):
    """Two frames for the same part differ, or part lengths break the splitting rules."""

    code = "bbqr-inconsistent"

    def __init__(self, message: str, *, index: int) -> None:
        super().__init__(message)
        self.index = index


class BbqrTooLargeError(BbqrError):
    """The message would exceed the configured size bound."""

    code = "bbqr-too-large"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class Header:
    """The parsed 8-character header of one frame."""

    encoding: Encoding
    file_type: FileType
    total: int
    index: int

    @property
    def key(self) -> str:
        """The first six characters, identical across all frames of one message."""
        return f"{HEADER}{self.encoding.value}{self.file_type.value}{_b36(self.total)}"


@dataclass(frozen=True)
class Split:
    """The frames of one file, ready to render (one QR per frame)."""

    parts: tuple[str, ...]
    encoding: Encoding
    file_type: FileType
    version: int  # the smallest QR version (ECC level L) that holds the largest frame


@dataclass(frozen=True)
class Joined:
    """A fully joined BBQr message."""

    data: bytes
    encoding: Encoding
    file_type: FileType
    total: int


def _b36(value: int) -> str:
    if not 0 <= value <= MAX_PARTS:
        raise ValueError(f"base-36 part number out of range: {value}")
    return _B36[value // 36] + _B36[value % 36]


def _parse_b36(text: str) -> int:
    if len(text) != 2 or text[0] not in _B36 or text[1] not in _B36:
        raise BbqrHeaderError(
            f"The BBQr part number {text!r} is not two upper-case base-36 digits."
        )
    return _B36.index(text[0]) * 36 + _B36.index(text[1])


def alnum_capacity(version: int) -> int:
    """Characters an alphanumeric-mode QR of ``version`` holds at error correction level L."""
    if not 1 <= version <= 40:
        raise ValueError(f"QR version must be 1..40, not {version}")
    blocks = qrcode.base.rs_blocks(version, qrcode.constants.ERROR_CORRECT_L)
    bits = sum(block.data_count for block in blocks) * 8 - 4
    bits -= 9 if version < 10 else (11 if version < 27 else 13)
    return (bits // 11) * 2 + (1 if bits % 11 >= 6 else 0)


def parse_header(frame: str) -> Header:
    """Parse and validate the header of ``frame`` (raises :class:`BbqrHeaderError`)."""
    if len(frame) < HEADER_LEN or not frame.startswith(HEADER):
        raise BbqrHeaderError(
            "The QR text is not a BBQr frame: it must start with 'B$' and 6 header characters."
        )
    try:
        encoding = Encoding(frame[2])
    except ValueError:
        raise BbqrHeaderError(
            f"The BBQr encoding {frame[2]!r} is not supported; expected H, 2 or Z."
        ) from None
    try:
        file_type = FileType(frame[3])
    except ValueError:
        raise BbqrHeaderError(
            f"The BBQr file type {frame[3]!r} is unknown; expected one of P T J C U B X."
        ) from None
    total = _parse_b36(frame[4:6])
    index = _parse_b36(frame[6:8])
    if total < 1:
        raise BbqrHeaderError("The BBQr header says the message has zero parts.")
    if index >= total:
        raise BbqrHeaderError(
            f"The BBQr part index {index} is outside the announced {total} parts."
        )
    return Header(encoding, file_type, total, index)


def is_bbqr(text: str) -> bool:
    """True when ``text`` looks like a BBQr frame (cheap check for format detection)."""
    return text.startswith(HEADER) and len(text) >= HEADER_LEN


# --------------------------------------------------------------------------- decode helpers


def _check_chars(data: str, encoding: Encoding, index: int) -> None:
    alphabet = _HEX_ALPHABET if encoding is Encoding.HEX else _B32_ALPHABET
    bad = next((ch for ch in data if ch not in alphabet), None)
    if bad is not None:
        raise BbqrError(
            f"BBQr part {index} holds the character {bad!r}, which is not valid "
            f"for encoding {encoding.value}."
        )


def _decode_chars(data: str, encoding: Encoding) -> bytes:
    if encoding is Encoding.HEX:
        if len(data) % 2:
            raise BbqrError("The joined BBQr hex data has an odd number of digits.")
        return bytes.fromhex(data)
    if len(data) % 8 in (1, 3, 6):
        raise BbqrError("The joined BBQr Base32 data has an impossible length.")
    padded = data + "=" * (-len(data) % 8)
    try:
        return base64.b32decode(padded)
    except binascii.Error:
        raise BbqrError("The joined BBQr Base32 data is not valid Base32.") from None


def inflate(data: bytes, max_len: int) -> bytes:
    """Raw-inflate BBQr ``Z`` data, refusing output longer than ``max_len`` bytes."""
    inflater = zlib.decompressobj(ZLIB_WBITS)
    try:
        out = inflater.decompress(data, max_len + 1)
    except zlib.error:
        raise BbqrError("The BBQr compressed data is corrupt and cannot be inflated.") from None
    if len(out) > max_len or inflater.unconsumed_tail:
        raise BbqrTooLargeError(
            f"The BBQr compressed data inflates to more than {max_len} bytes; refusing it.",
            limit=max_len,
        )
    if not inflater.eof:
        raise BbqrError("The BBQr compressed data is truncated.")
    if inflater.unused_data:
        raise BbqrError("The BBQr compressed data has trailing bytes after the deflate stream.")
    return out


class Joiner:
    """Collects BBQr frames in any order (repeats allowed) and joins them when complete."""

    def __init__(self, *, max_file_len: int = DEFAULT_MAX_FILE_LEN) -> None:
        if max_file_len < 1:
            raise ValueError("max_file_len must be positive")
        self.max_file_len = max_file_len
        # Base32 packs 5 bytes into 8 characters; allow for the data being stored as Base32
        # (or hex, 2 chars per byte) of a compressed file no larger than the bound.
        self._max_chars = max(2 * max_file_len, math.ceil(max_file_len * 8 / 5)) + 16
        self._key: str | None = None
        self._header: Header | None = None
        self._parts: dict[int, str] = {}
        self._chars = 0
        self._body_len: int | None = None

    @property
    def header(self) -> Header | None:
        return self._header

    @property
    def total(self) -> int:
        return self._header.total if self._header else 0

    @property
    def received(self) -> int:
        return len(self._parts)

    @property
    def is_complete(self) -> bool:
        return self._header is not None and len(self._parts) == self._header.total

    def add(self, frame: str) -> bool:
        """Add one frame; returns True when this frame was new. Raises on any inconsistency."""
        frame = frame.strip()
        header = parse_header(frame)
        data = frame[HEADER_LEN:]
        if self._key is None:
            self._key = header.key
            self._header = header
        elif header.key != self._key:
            raise BbqrMixedError(
                f"This BBQr frame starts with {header.key!r} but the message being received "
                f"starts with {self._key!r}; scan only one animated QR at a time.",
                expected=self._key,
                got=header.key,
            )
        _check_chars(data, header.encoding, header.index)
        previous = self._parts.get(header.index)
        if previous is not None:
            if previous != data:
                raise BbqrInconsistentError(
                    f"BBQr part {header.index} was received twice with different contents.",
                    index=header.index,
                )
            return False
        if self._chars + len(data) > self._max_chars:
            raise BbqrTooLargeError(
                f"The BBQr message is larger than the limit of {self.max_file_len} bytes.",
                limit=self.max_file_len,
            )
        self._check_length(header, data)
        self._parts[header.index] = data
        self._chars += len(data)
        return True

    def _check_length(self, header: Header, data: str) -> None:
        unit = 2 if header.encoding is Encoding.HEX else 8
        if not data:
            raise BbqrInconsistentError(
                f"BBQr part {header.index} carries no data.", index=header.index
            )
        last_index = header.total - 1
        if header.index == last_index:
            if self._body_len is not None and len(data) > self._body_len:
                raise BbqrInconsistentError(
                    f"BBQr last part {header.index} is longer than the other parts.",
                    index=header.index,
                )
            return
        if len(data) % unit:
            raise BbqrInconsistentError(
                f"BBQr part {header.index} has {len(data)} data characters, which is not "
                f"a whole number of bytes for encoding {header.encoding.value}.",
                index=header.index,
            )
        if self._body_len is None:
            final = self._parts.get(last_index)
            if final is not None and len(final) > len(data):
                raise BbqrInconsistentError(
                    f"BBQr last part {last_index} is longer than the other parts.",
                    index=last_index,
                )
            self._body_len = len(data)
        elif len(data) != self._body_len:
            raise BbqrInconsistentError(
                f"BBQr part {header.index} has {len(data)} data characters but earlier parts "
                f"have {self._body_len}; all parts but the last must be equally long.",
                index=header.index,
            )

    def missing(self) -> list[int]:
        """Indexes not yet received."""
        return [i for i in range(self.total) if i not in self._parts]

    def result(self) -> Joined:
        """The joined file; raises :class:`BbqrError` when incomplete or undecodable."""
        if self._header is None or not self.is_complete:
            raise BbqrError(
                f"The BBQr message is incomplete: {self.received} of {self.total} parts received."
            )
        header = self._header
        raw = _decode_chars("".join(self._parts[i] for i in range(header.total)), header.encoding)
        if header.encoding is Encoding.ZLIB:
            raw = inflate(raw, self.max_file_len)
        elif len(raw) > self.max_file_len:
            raise BbqrTooLargeError(
                f"The BBQr message is larger than the limit of {self.max_file_len} bytes.",
                limit=self.max_file_len,
            )
        return Joined(raw, header.encoding, header.file_type, header.total)


def join(frames: Iterable[str], *, max_file_len: int = DEFAULT_MAX_FILE_LEN) -> Joined:
    """Join an iterable of frames (blank lines ignored, any order, repeats allowed)."""
    joiner = Joiner(max_file_len=max_file_len)
    for frame in frames:
        if frame.strip():
            joiner.add(frame)
    return joiner.result()


# --------------------------------------------------------------------------- encode


def _encode_chars(raw: bytes, encoding: Encoding) -> str:
    if encoding is Encoding.HEX:
        return raw.hex().upper()
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def deflate(data: bytes) -> bytes:
    """Raw-deflate ``data`` the way BBQr ``Z`` expects (level 9, 2**10 window)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, ZLIB_WBITS)
    return compressor.compress(data) + compressor.flush()


def encode_data(data: bytes, encoding: Encoding) -> tuple[str, Encoding]:
    """Encode the whole file; ``Z`` falls back to ``2`` when compression does not help."""
    if encoding is Encoding.ZLIB:
        packed = deflate(data)
        if len(packed) >= len(data):
            return _encode_chars(data, Encoding.BASE32), Encoding.BASE32
        return _encode_chars(packed, Encoding.ZLIB), Encoding.ZLIB
    return _encode_chars(data, encoding), encoding


def split(
    data: bytes,
    file_type: FileType | str,
    *,
    encoding: Encoding | str = Encoding.ZLIB,
    min_version: int = 5,
    max_version: int = 40,
    min_split: int = 1,
    max_split: int = MAX_PARTS,
) -> Split:
    """Split ``data`` into the fewest frames, then the smallest QR version giving that count.

    Versions ``min_version..max_version`` (error correction L, alphanumeric mode) are tried;
    a version qualifies when it yields at most ``max_split`` parts.  At least ``min_split``
    parts are made.  Parts are balanced: all but the last have the same length, a multiple of
    the encoding's byte unit (2 hex or 8 Base32 characters).
    """
    file_type = FileType(file_type)
    encoding = Encoding(encoding)
    if not data:
        raise ValueError("cannot split an empty file")
    if not 1 <= min_version <= max_version <= 40:
        raise ValueError("need 1 <= min_version <= max_version <= 40")
    if not 1 <= min_split <= max_split <= MAX_PARTS:
        raise ValueError(f"need 1 <= min_split <= max_split <= {MAX_PARTS}")
    chars, encoding = encode_data(data, encoding)
    unit = 2 if encoding is Encoding.HEX else 8
    best: tuple[int, int, int] | None = None  # (count, version, size)
    for version in range(min_version, max_version + 1):
        per_part = (alnum_capacity(version) - HEADER_LEN) // unit * unit
        count = math.ceil(len(chars) / per_part) if per_part > 0 else MAX_PARTS + 1
        if count > max_split:
            continue
        count = max(count, min_split)
        size = math.ceil(math.ceil(len(chars) / count) / unit) * unit
        count = math.ceil(len(chars) / size)
        if count < min_split:
            continue
        if best is None or count < best[0]:
            best = (count, version, size)
    if best is None:
        raise ValueError(
            f"{len(data)} bytes do not fit in {min_split}..{max_split} BBQr parts "
            f"of QR versions {min_version}..{max_version}"
        )
    count, version, size = best
    key = f"{HEADER}{encoding.value}{file_type.value}{_b36(count)}"
    parts = tuple(key + _b36(i) + chars[i * size : (i + 1) * size] for i in range(count))
    return Split(parts, encoding, file_type, version)


def frame_version(frame: str) -> int:
    """The smallest QR version (level L, alphanumeric) that holds ``frame``."""
    for version in range(1, 41):
        if alnum_capacity(version) >= len(frame):
            return version
    raise ValueError("frame longer than a version-40 QR code")


def file_type_for(data: bytes) -> FileType:
    """A sensible file type for raw ``data`` (PSBT magic, else binary)."""
    if data.startswith(b"psbt\xff"):
        return FileType.PSBT
    return FileType.BINARY


def parts_needed(frames: Sequence[str]) -> int:
    """The part count announced by the first frame of ``frames``."""
    return parse_header(frames[0]).total

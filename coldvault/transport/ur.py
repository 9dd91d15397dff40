"""Uniform Resources (BCR-2020-005) with multipart fountain transport (BCR-2024-001).

A UR is a type string plus CBOR bytes.  Text forms:

* single part: ``ur:<type>/<minimal bytewords of cbor + CRC32>``
* multipart:   ``ur:<type>/<seqNum>-<seqLen>/<minimal bytewords of part CBOR + CRC32>``

Types are lower-case letters, digits and hyphens.  Input is case-insensitive (QR
alphanumeric mode upper-cases URs); output is lower case.  Decoding is bounded: the text
length, the announced message length and part count are checked before any buffer is
allocated for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from coldvault.errors import DecodeError
from coldvault.transport import bytewords
from coldvault.transport.fountain import (
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_MAX_MESSAGE_LEN,
    FountainDecoder,
    FountainEncoder,
    LimitExceeded,
    Part,
)

_TYPE_RE = re.compile(r"[a-z0-9-]+")
_SEQ_RE = re.compile(r"([0-9]{1,10})-([0-9]{1,10})")
#: Longest accepted UR type string.
MAX_TYPE_LEN = 64
#: Fixed overhead of a part: array head + four uint32 heads + byte-string head.
_PART_OVERHEAD = 1 + 4 * 9 + 9


def is_valid_type(ur_type: str) -> bool:
    return (
        isinstance(ur_type, str)
        and len(ur_type) <= MAX_TYPE_LEN
        and _TYPE_RE.fullmatch(ur_type) is not None
    )


# --------------------------------------------------------------------------- errors


class URError(DecodeError):
    """A ``ur:`` string could not be decoded."""

    code = "ur"


class InvalidScheme(URError):
    code = "ur-scheme"

    def __init__(self) -> None:
        super().__init__(
            "The QR code is not a Uniform Resource: it does not start with 'ur:'."
        )


class TypeUnspecified(URError):
    code = "ur-type-missing"

    def __init__(self) -> None:
        super().__init__(
            "The UR has no type (expected 'ur:<type>/<data>'); it is truncated or damaged."
        )


class InvalidType(URError):
    code = "ur-type-invalid"

    def __init__(self) -> None:
        super().__init__(
            "The UR type is empty, too long, or has characters other than letters, digits "
            "and hyphens; the QR code is damaged or not a UR."
        )


class InvalidSequence(URError):
    code = "ur-sequence"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The multipart UR sequence component is invalid ({detail}); expected "
            "'ur:<type>/<n>-<total>/<data>' with 1 <= n and 1 <= total."
        )
        self.detail = detail


class TooLong(URError):
    code = "ur-too-long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The UR text is {length} characters long, above the limit of {limit}; "
            "refusing to decode it."
        )
        self.length = length
        self.limit = limit


class NotSinglePart(URError):
    code = "ur-multipart"

    def __init__(self) -> None:
        super().__init__(
            "This is one part of an animated (multipart) UR; scan all of it with a "
            "multipart decoder."
        )


class TypeMismatch(URError):
    code = "ur-type-mismatch"

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(
            f"This QR code carries a '{got}' UR while a '{expected}' transfer is in "
            "progress. Show only one animated QR code at a time, or restart the scan."
        )
        self.expected = expected
        self.got = got


class UnexpectedSinglePart(URError):
    code = "ur-unexpected-single"

    def __init__(self) -> None:
        super().__init__(
            "A single-part UR was scanned while an animated (multipart) transfer is in "
            "progress. Show only one QR code at a time, or restart the scan."
        )


class SequenceMismatch(URError):
    code = "ur-sequence-mismatch"

    def __init__(self) -> None:
        super().__init__(
            "The multipart UR's sequence numbers in the text and in its data disagree; "
            "the QR code is damaged or forged. Rescan."
        )


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class UR:
    """A Uniform Resource: registry type and the CBOR payload (untagged at top level)."""

    type: str  # noqa: A003 - the field name is the spec's
    cbor: bytes

    def __post_init__(self) -> None:
        if not is_valid_type(self.type):
            raise ValueError(f"invalid UR type {self.type!r}")
        if not isinstance(self.cbor, bytes) or not self.cbor:
            raise ValueError("UR cbor must be non-empty bytes")


@dataclass(frozen=True)
class URPart:
    """One parsed ``ur:`` string: the type, the sequence (multipart only) and the
    bytewords-decoded, CRC-checked payload (the UR CBOR, or a fountain part's CBOR)."""

    type: str  # noqa: A003
    seq_num: int | None
    seq_len: int | None
    payload: bytes

    @property
    def is_multipart(self) -> bool:
        return self.seq_num is not None


def max_text_len(max_message_len: int) -> int:
    """Longest ``ur:`` string that can carry a message of ``max_message_len`` bytes."""
    return 3 + MAX_TYPE_LEN + 1 + 22 + 2 * (_PART_OVERHEAD + max_message_len + 4)


def parse_ur(text: str, *, max_len: int | None = None) -> URPart:
    """Parse any ``ur:`` string (single or multipart) into a :class:`URPart`.

    Case-insensitive; surrounding whitespace is ignored.  ``max_len`` bounds the text
    (default: enough for :data:`DEFAULT_MAX_MESSAGE_LEN`).
    """
    if not isinstance(text, str):
        raise TypeError("UR text must be a str")
    limit = max_text_len(DEFAULT_MAX_MESSAGE_LEN) if max_len is None else max_len
    text = text.strip()
    if len(text) > limit:
        raise TooLong(len(text), limit)
    text = text.lower()
    if not text.startswith("ur:"):
        raise InvalidScheme()
    components = text[3:].split("/")
    if len(components) < 2:
        raise TypeUnspecified()
    ur_type = components[0]
    if not is_valid_type(ur_type):
        raise InvalidType()
    seq_num = seq_len = None
    if len(components) == 3:
        match = _SEQ_RE.fullmatch(components[1])
        if match is None:
            raise InvalidSequence("not two numbers joined by '-'")
        seq_num, seq_len = int(match.group(1)), int(match.group(2))
        if seq_num < 1 or seq_len < 1:
            raise InvalidSequence("numbers must be at least 1")
        if seq_num > 0xFFFFFFFF or seq_len > 0xFFFFFFFF:
            raise InvalidSequence("numbers must fit in 32 bits")
    elif len(components) > 3:
        raise InvalidSequence("too many '/' components")
    payload = bytewords.decode(components[-1], bytewords.Style.MINIMAL)
    return URPart(ur_type, seq_num, seq_len, payload)


def encode_single(ur: UR) -> str:
    """The single-part text form ``ur:<type>/<bytewords>`` (lower case)."""
    return f"ur:{ur.type}/{bytewords.encode(ur.cbor, bytewords.Style.MINIMAL)}"


def decode_single(text: str, *, max_len: int | None = None) -> UR:
    """Decode a single-part ``ur:`` string; a multipart part raises :class:`NotSinglePart`."""
    part = parse_ur(text, max_len=max_len)
    if part.is_multipart:
        raise NotSinglePart()
    return UR(part.type, part.payload)


def encode_part(ur_type: str, part: Part) -> str:
    body = bytewords.encode(part.to_cbor(), bytewords.Style.MINIMAL)
    return f"ur:{ur_type}/{part.seq_num}-{part.seq_len}/{body}"


# --------------------------------------------------------------------------- encoder


class UREncoder:
    """Emits a UR as QR-sized text parts.

    If the CBOR fits in one fragment (:attr:`is_single`), every :meth:`next_part` is the
    single-part string.  Otherwise parts ``1..seq_len`` are the plain fragments and the
    stream continues forever with fountain-mixed parts (a receiver that missed frames
    completes from whatever it catches).
    """

    def __init__(
        self,
        ur: UR,
        max_fragment_len: int,
        min_fragment_len: int = 10,
        first_seq_num: int = 0,
    ) -> None:
        self.ur = ur
        self._fountain = FountainEncoder(
            ur.cbor, max_fragment_len, min_fragment_len, first_seq_num
        )

    @property
    def is_single(self) -> bool:
        return self._fountain.is_single_part

    @property
    def seq_len(self) -> int:
        return self._fountain.seq_len

    @property
    def seq_num(self) -> int:
        """Sequence number of the last part emitted."""
        return self._fountain.seq_num

    @property
    def fragment_len(self) -> int:
        return self._fountain.fragment_len

    def next_part(self) -> str:
        part = self._fountain.next_part()
        if self.is_single:
            return encode_single(self.ur)
        return encode_part(self.ur.type, part)


# --------------------------------------------------------------------------- decoder


class URDecoder:
    """Collects ``ur:`` strings (single or multipart, any order, with loss and repeats).

    :meth:`receive_part` returns True when the string was accepted and added information,
    False when it was redundant (a repeat, or after completion).  It raises a
    :class:`~coldvault.errors.DecodeError` subclass for damaged text, parts of another
    transfer (:class:`TypeMismatch`, :class:`~coldvault.transport.fountain.InconsistentPart`),
    announced sizes above the limits (:class:`~coldvault.transport.fountain.LimitExceeded`),
    and a reassembled message with a bad checksum (after which the decoder stays failed).
    """

    def __init__(
        self,
        max_message_len: int = DEFAULT_MAX_MESSAGE_LEN,
        *,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        self.max_message_len = max_message_len
        self._max_text = max_text_len(max_message_len)
        self._fountain = FountainDecoder(
            max_message_len=max_message_len, max_fragments=max_fragments
        )
        self._type: str | None = None
        self._result: UR | None = None

    @property
    def ur_type(self) -> str | None:
        """Type of the transfer in progress, once the first part was accepted."""
        return self._type

    @property
    def is_complete(self) -> bool:
        return self._result is not None or self._fountain.is_complete

    @property
    def is_success(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> UR:
        """The decoded UR.  Raises the decoding error if the transfer failed its
        checksum, and ``ValueError`` if called before completion."""
        if self._result is None:
            if self._fountain.is_complete:
                self._fountain.result  # noqa: B018 - raises the stored error
            raise ValueError("the UR decoder is not complete yet")
        return self._result

    @property
    def expected_parts(self) -> int:
        """Fragments in the transfer (``seqLen``); 1 for a single-part UR; 0 before any."""
        if self._result is not None and self._fountain.seq_len == 0:
            return 1
        return self._fountain.seq_len

    @property
    def received_parts(self) -> int:
        """Distinct plain fragments recovered so far."""
        if self._result is not None and self._fountain.seq_len == 0:
            return 1
        return self._fountain.recovered_fragments

    @property
    def processed_parts(self) -> int:
        """Multipart strings that passed validation so far, repeats included."""
        return self._fountain.processed_parts

    @property
    def estimated_percent(self) -> float:
        """Progress in percent, 0.0 to 100.0.  Exact for fountain decoding: the share of
        independent parts held (the transfer completes when it reaches 100)."""
        if self._result is not None:
            return 100.0
        seq_len = self._fountain.seq_len
        if seq_len == 0:
            return 0.0
        return 100.0 * self._fountain.rank / seq_len

    def receive_part(self, text: str) -> bool:
        """Feed one scanned ``ur:`` string; see the class docstring for the outcome."""
        if self.is_complete:
            return False
        parsed = parse_ur(text, max_len=self._max_text)
        if self._type is not None and parsed.type != self._type:
            raise TypeMismatch(self._type, parsed.type)
        if not parsed.is_multipart:
            if self._type is not None:
                raise UnexpectedSinglePart()
            if len(parsed.payload) > self.max_message_len:
                raise LimitExceeded("message length", len(parsed.payload), self.max_message_len)
            self._type = parsed.type
            self._result = UR(parsed.type, parsed.payload)
            return True
        part = Part.from_cbor(parsed.payload)
        if part.seq_num != parsed.seq_num or part.seq_len != parsed.seq_len:
            raise SequenceMismatch()
        added = self._fountain.receive(part)
        self._type = parsed.type
        if self._fountain.is_success:
            self._result = UR(parsed.type, self._fountain.result)
        return added

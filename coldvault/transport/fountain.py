"""Fountain codes for multipart URs (BCR-2024-001).

A message is split into ``seq_len`` equal fragments (the last zero-padded).  Parts
``1..seq_len`` carry the fragments in order; every later part carries the XOR of a
pseudo-random subset chosen by :func:`~coldvault.transport.xoshiro.choose_fragments`, so an
encoder can emit parts forever and a decoder completes from any sufficient subset.

Part wire form (CBOR): ``[seqNum: uint32, seqLen: uint, messageLen: uint,
checksum: uint32 (CRC32 of the message), data: bytes]``.

The decoder keeps the received parts as a GF(2) linear system in reduced row echelon
form (one row per independent part; a row's fragment set is a bit mask, its data an
integer), so it completes as soon as the parts received span every fragment.  Memory is
bounded: at most ``seq_len`` rows of ``fragment_len`` bytes plus a ``seq_len``-bit mask,
with ``message_len <= max_message_len`` and ``seq_len <= max_fragments`` checked on the
first part, before anything is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from coldvault.errors import DecodeError
from coldvault.transport.bytewords import crc32
from coldvault.transport.xoshiro import choose_fragments

#: Default cap on the reassembled message (bytes).  A 1,000-output PSBT is ~35 KB;
#: anything a camera can realistically scan is far below this.
DEFAULT_MAX_MESSAGE_LEN = 4 * 1024 * 1024
#: Default cap on the number of fragments (``seqLen``).  Bounds the decoder's
#: bit-mask memory to ``max_fragments**2 / 8`` bytes (2 MiB) in the worst case.
DEFAULT_MAX_FRAGMENTS = 4096
_UINT32 = 0xFFFFFFFF


# --------------------------------------------------------------------------- errors


class FountainError(DecodeError):
    """A fountain-coded part could not be used."""

    code = "fountain"


class MalformedPart(FountainError):
    """The part's CBOR is not ``[uint32, uint, uint, uint32, bytes]``."""

    code = "fountain-malformed-part"

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"A multipart QR code is malformed ({detail}); it was not made by a BC-UR "
            "encoder or is damaged. Rescan, or restart the transfer on the sending device."
        )
        self.detail = detail


class InvalidPart(FountainError):
    """The part is well-formed but its header values are impossible."""

    code = "fountain-invalid-part"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(
            f"A multipart QR code has an invalid {field} ({detail}). Restart the transfer "
            "on the sending device."
        )
        self.field = field
        self.detail = detail


class LimitExceeded(FountainError):
    """The part announces a message larger than this decoder accepts."""

    code = "fountain-limit"

    def __init__(self, field: str, value: int, limit: int) -> None:
        super().__init__(
            f"A multipart QR transfer announces {field} {value}, above this appliance's "
            f"limit of {limit}; refusing it before reading further."
        )
        self.field = field
        self.value = value
        self.limit = limit


class InconsistentPart(FountainError):
    """The part belongs to a different message than the parts received before."""

    code = "fountain-inconsistent"

    def __init__(self, field: str, expected: int, got: int) -> None:
        super().__init__(
            f"This QR code belongs to a different transfer ({field} is {got}, the transfer "
            f"in progress has {expected}). Show only one animated QR code at a time, or "
            "restart the scan."
        )
        self.field = field
        self.expected = expected
        self.got = got


class MessageChecksumError(FountainError):
    """All fragments were recovered but the message's CRC32 does not match."""

    code = "fountain-checksum"

    def __init__(self) -> None:
        super().__init__(
            "The multipart QR transfer reassembled to data whose checksum does not match; "
            "the data is corrupt and was discarded. Restart the scan."
        )


# --------------------------------------------------------------------------- parts


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([(major << 5) | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([(major << 5) | info]) + value.to_bytes(size, "big")
    raise ValueError("integer too large for CBOR")


def _read_head(buf: bytes, pos: int, name: str) -> tuple[int, int, int]:
    """Read one CBOR head at ``pos``; return (major type, value, new position)."""
    if pos >= len(buf):
        raise MalformedPart(f"{name} is missing")
    first = buf[pos]
    major, info = first >> 5, first & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(info)
    if size is None:
        raise MalformedPart(f"{name} has an unsupported length encoding")
    if pos + size > len(buf):
        raise MalformedPart(f"{name} is truncated")
    return major, int.from_bytes(buf[pos : pos + size], "big"), pos + size


@dataclass(frozen=True)
class Part:
    """One fountain part, as sent on the wire."""

    seq_num: int
    seq_len: int
    message_len: int
    checksum: int
    data: bytes

    def to_cbor(self) -> bytes:
        return b"".join(
            (
                b"\x85",
                _cbor_head(0, self.seq_num),
                _cbor_head(0, self.seq_len),
                _cbor_head(0, self.message_len),
                _cbor_head(0, self.checksum),
                _cbor_head(2, len(self.data)),
                self.data,
            )
        )

    @classmethod
    def from_cbor(cls, buf: bytes) -> Part:
        """Parse a part with explicit bounds; raises :class:`MalformedPart`."""
        major, count, pos = _read_head(buf, 0, "part")
        if major != 4 or count != 5:
            raise MalformedPart("not an array of five items")
        fields = []
        for name in ("seqNum", "seqLen", "messageLen", "checksum"):
            major, value, pos = _read_head(buf, pos, name)
            if major != 0:
                raise MalformedPart(f"{name} is not an unsigned integer")
            if value > _UINT32:
                raise MalformedPart(f"{name} is larger than 32 bits")
            fields.append(value)
        major, length, pos = _read_head(buf, pos, "data")
        if major != 2:
            raise MalformedPart("data is not a byte string")
        if pos + length != len(buf):
            raise MalformedPart("data length does not match the part size")
        return cls(fields[0], fields[1], fields[2], fields[3], bytes(buf[pos:]))

    def indexes(self) -> frozenset[int]:
        return choose_fragments(self.seq_num, self.seq_len, self.checksum)


# --------------------------------------------------------------------------- encoder


def find_nominal_fragment_length(
    message_len: int, min_fragment_len: int, max_fragment_len: int
) -> int:
    """Fragment length for the fewest fragments no longer than ``max_fragment_len``.

    Equals the reference's search: the smallest fragment count ``n`` with
    ``ceil(message_len / n) <= max_fragment_len``, then ``ceil(message_len / n)``; the
    count never exceeds ``message_len // min_fragment_len`` (at least 1), so when the two
    bounds conflict the minimum fragment length wins, as in the reference.
    """
    if message_len < 1 or min_fragment_len < 1 or max_fragment_len < 1:
        raise ValueError("message and fragment lengths must be positive")
    count = min(-(-message_len // max_fragment_len), max(1, message_len // min_fragment_len))
    return -(-message_len // count)


def partition(message: bytes, fragment_len: int) -> list[bytes]:
    """Split into ``fragment_len`` pieces, zero-padding the last one."""
    padded_len = -(-len(message) // fragment_len) * fragment_len
    padded = bytes(message) + bytes(padded_len - len(message))
    return [padded[i : i + fragment_len] for i in range(0, padded_len, fragment_len)]


def join(fragments: list[bytes], message_len: int) -> bytes:
    return b"".join(fragments)[:message_len]


class FountainEncoder:
    """Endless source of parts for ``message``: the plain fragments, then mixtures."""

    def __init__(
        self,
        message: bytes,
        max_fragment_len: int,
        min_fragment_len: int = 10,
        first_seq_num: int = 0,
    ) -> None:
        if not message:
            raise ValueError("cannot fountain-encode an empty message")
        if len(message) > _UINT32:
            raise ValueError("message longer than 2**32-1 bytes")
        if not 0 <= first_seq_num <= _UINT32:
            raise ValueError("first_seq_num must be a 32-bit unsigned integer")
        self.message_len = len(message)
        self.checksum = crc32(message)
        self.fragment_len = find_nominal_fragment_length(
            len(message), min_fragment_len, max_fragment_len
        )
        self._fragments = [int.from_bytes(f, "big") for f in partition(message, self.fragment_len)]
        self.seq_num = first_seq_num

    @property
    def seq_len(self) -> int:
        return len(self._fragments)

    @property
    def is_single_part(self) -> bool:
        return self.seq_len == 1

    @property
    def is_complete(self) -> bool:
        """True once every plain fragment has been emitted at least once."""
        return self.seq_num >= self.seq_len

    def next_part(self) -> Part:
        self.seq_num = (self.seq_num + 1) & _UINT32 or 1
        value = 0
        for index in choose_fragments(self.seq_num, self.seq_len, self.checksum):
            value ^= self._fragments[index]
        return Part(
            self.seq_num,
            self.seq_len,
            self.message_len,
            self.checksum,
            value.to_bytes(self.fragment_len, "big"),
        )


# --------------------------------------------------------------------------- decoder


class FountainDecoder:
    """Reassembles a message from parts in any order, with loss and duplicates.

    :meth:`receive` returns True when the part added information, False when it was
    redundant (duplicate, already implied, or the message is already complete).  It
    raises a :class:`FountainError` for malformed parts, impossible headers, parts of a
    different message, and a message whose checksum fails (the decoder then stays
    failed: :attr:`is_complete` is True and :attr:`result` raises the error).
    """

    def __init__(
        self,
        *,
        max_message_len: int = DEFAULT_MAX_MESSAGE_LEN,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    ) -> None:
        if max_message_len < 1 or max_fragments < 1:
            raise ValueError("limits must be positive")
        self.max_message_len = max_message_len
        self.max_fragments = max_fragments
        self._header: tuple[int, int, int, int] | None = None  # seq_len, len, crc, frag_len
        self._rows: dict[int, tuple[int, int]] = {}  # pivot bit -> (mask, data)
        self._result: bytes | None = None
        self._error: FountainError | None = None
        self.processed_parts = 0

    # -- state

    @property
    def seq_len(self) -> int:
        """Fragments in the message, 0 before the first part."""
        return self._header[0] if self._header else 0

    @property
    def message_len(self) -> int:
        return self._header[1] if self._header else 0

    @property
    def checksum(self) -> int:
        return self._header[2] if self._header else 0

    @property
    def is_complete(self) -> bool:
        return self._result is not None or self._error is not None

    @property
    def is_success(self) -> bool:
        return self._result is not None

    @property
    def rank(self) -> int:
        """Independent parts held: decoding completes when this reaches ``seq_len``."""
        return self.seq_len if self._result is not None else len(self._rows)

    @property
    def recovered_fragments(self) -> int:
        """Plain fragments known so far."""
        if self._result is not None:
            return self.seq_len
        return sum(1 for mask, _ in self._rows.values() if mask & (mask - 1) == 0)

    @property
    def result(self) -> bytes:
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise ValueError("the fountain decoder is not complete yet")
        return self._result

    # -- input

    def receive_cbor(self, cbor: bytes) -> bool:
        return self.receive(Part.from_cbor(cbor))

    def validate(self, part: Part) -> None:
        """Check ``part`` against the limits and the transfer in progress (no state change)."""
        if part.seq_num < 1:
            raise InvalidPart("sequence number", "it is 0; parts count from 1")
        if part.seq_len < 1:
            raise InvalidPart("part count", "it is 0")
        if part.message_len < 1:
            raise InvalidPart("message length", "it is 0")
        if not part.data:
            raise InvalidPart("fragment", "it is empty")
        if self._header is None:
            if part.message_len > self.max_message_len:
                raise LimitExceeded("message length", part.message_len, self.max_message_len)
            if part.seq_len > self.max_fragments:
                raise LimitExceeded("part count", part.seq_len, self.max_fragments)
            frag_len = len(part.data)
            if frag_len > part.message_len or -(-part.message_len // frag_len) != part.seq_len:
                raise InvalidPart(
                    "fragment length",
                    f"{frag_len} bytes cannot split {part.message_len} bytes "
                    f"into {part.seq_len} parts",
                )
            return
        seq_len, message_len, checksum, frag_len = self._header
        for name, expected, got in (
            ("part count", seq_len, part.seq_len),
            ("message length", message_len, part.message_len),
            ("checksum", checksum, part.checksum),
            ("fragment length", frag_len, len(part.data)),
        ):
            if expected != got:
                raise InconsistentPart(name, expected, got)

    def receive(self, part: Part) -> bool:
        if self.is_complete:
            return False
        self.validate(part)
        if self._header is None:
            self._header = (part.seq_len, part.message_len, part.checksum, len(part.data))
        self.processed_parts += 1
        mask = 0
        for index in part.indexes():
            mask |= 1 << index
        added = self._insert(mask, int.from_bytes(part.data, "big"))
        if added and len(self._rows) == self.seq_len:
            self._finish()
        return added

    # -- linear algebra over GF(2)

    def _insert(self, mask: int, data: int) -> bool:
        rows = self._rows
        # Eliminate every existing pivot from the new row.
        pending = mask
        while pending:
            low = pending & -pending
            pending ^= low
            bit = low.bit_length() - 1
            row = rows.get(bit)
            if row is not None:
                mask ^= row[0]
                data ^= row[1]
        if mask == 0:
            return False  # nothing new: duplicate or implied by earlier parts
        pivot = (mask & -mask).bit_length() - 1
        low = 1 << pivot
        # Keep the system reduced: remove the new pivot from every other row.
        for bit, (rmask, rdata) in rows.items():
            if rmask & low:
                rows[bit] = (rmask ^ mask, rdata ^ data)
        rows[pivot] = (mask, data)
        return True

    def _finish(self) -> None:
        seq_len, message_len, checksum, frag_len = self._header  # type: ignore[misc]
        fragments = []
        for index in range(seq_len):
            mask, data = self._rows[index]
            if mask != 1 << index:  # cannot happen with a full-rank reduced system
                raise AssertionError("fountain decoder system not fully reduced")
            fragments.append(data.to_bytes(frag_len, "big"))
        message = join(fragments, message_len)
        self._rows = {}
        if crc32(message) != checksum:
            self._error = MessageChecksumError()
            raise self._error
        self._result = message

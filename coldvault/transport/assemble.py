"""The single entry for QR text coming in, and the matching reply going out.

Incoming: feed every scanned text to :class:`Assembler`.  The first frame decides the format
(BC-UR v2, BBQr, Specter ``pMofN``, UR v1, or one plain Base64/hex PSBT); frames of another
format or another message raise :class:`MixedFormatError` / :class:`MixedMessageError` and
leave the assembly as it was (skip the frame, or :meth:`Assembler.reset`).  When complete,
:meth:`Assembler.result` gives a :class:`Received`.

Outgoing (:mod:`coldvault.transport.reply`, re-exported here): :func:`encode_reply` produces a
:class:`FrameStream` in the format the request came in (rule of DESIGN.md §5): an endless
fountain for multipart UR, a finite loop otherwise.  Shared values live in
:mod:`coldvault.transport.formats`.

Payload convention (both directions): for ``UR``/``URV1`` the payload is the UR's CBOR; for
the other formats it is the raw file (e.g. PSBT bytes).  :attr:`Received.cbor` and
:attr:`Received.content` give either view for every format, and :func:`encode_reply` accepts
a PSBT either raw or CBOR-wrapped.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass

from coldvault.errors import DecodeError
from coldvault.transport import bbqr, legacy
from coldvault.transport import ur as urmod
from coldvault.transport.formats import (
    PSBT_MAGIC,
    PSBT_TYPES,
    UR_TYPE_FOR_BBQR,
    Received,
    ReplyHint,
    TransportFormat,
    unwrap_cbor_bytes,
)
from coldvault.transport.fountain import DEFAULT_MAX_MESSAGE_LEN, InconsistentPart

__all__ = [
    "Assembler",
    "MixedFormatError",
    "MixedMessageError",
    "PayloadTooLarge",
    "Progress",
    "TransportError",
    "UnknownFormat",
    "detect_format",
]

_HEX_RE = re.compile(r"(?:[0-9a-fA-F]{2})+", re.ASCII)
_B64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}", re.ASCII)


# --------------------------------------------------------------------------- errors


class TransportError(DecodeError):
    """A scanned text cannot be used for the transfer in progress."""

    code = "qr-transport"


class UnknownFormat(TransportError):
    """The first frame is none of the supported QR transport formats."""

    code = "qr-unknown-format"


class MixedFormatError(TransportError):
    """A frame of a different transport format arrived in the middle of a transfer."""

    code = "qr-mixed-format"

    def __init__(self, expected: TransportFormat, got: TransportFormat) -> None:
        super().__init__(
            f"This QR code is {got.value} but the transfer in progress is {expected.value}; "
            "scan only one animated QR at a time, or start over."
        )
        self.expected = expected.value
        self.got = got.value


class MixedMessageError(TransportError):
    """A frame of the same format but of another message arrived mid-transfer."""

    code = "qr-mixed-message"


class PayloadTooLarge(TransportError):
    """A single-frame payload exceeds the configured message bound."""

    code = "qr-too-large"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"The QR payload is {length} bytes, more than the limit of {limit} bytes."
        )
        self.length = length
        self.limit = limit


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Progress:
    """Where an assembly stands after one :meth:`Assembler.feed`."""

    format: TransportFormat  # noqa: A003 - the natural name
    parts_received: int
    parts_expected: int
    percent: float
    complete: bool
    accepted: bool  # False when the frame added nothing (a repeat)


def _normalise_type(wire_type: str, cbor: bytes) -> str:
    if wire_type in PSBT_TYPES:
        return "crypto-psbt"
    if wire_type == "bytes":
        inner = unwrap_cbor_bytes(cbor)
        if inner is not None and inner.startswith(PSBT_MAGIC):
            return "crypto-psbt"
    return wire_type


# --------------------------------------------------------------------------- detection


def _plain_psbt(text: str) -> tuple[TransportFormat, bytes] | None:
    if text[:10].lower() == "70736274ff" and _HEX_RE.fullmatch(text):
        return TransportFormat.PLAIN_HEX, bytes.fromhex(text)
    if text.startswith("cHNidP") and _B64_RE.fullmatch(text):
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error:
            return None
        if raw.startswith(PSBT_MAGIC):
            return TransportFormat.PLAIN_BASE64, raw
    return None


def detect_format(text: str) -> TransportFormat:
    """The transport format of one scanned text (raises :class:`UnknownFormat`)."""
    text = text.strip()
    if text[:3].lower() == "ur:":
        return TransportFormat.URV1 if legacy.is_urv1(text) else TransportFormat.UR
    if bbqr.is_bbqr(text):
        return TransportFormat.BBQR
    if legacy.is_pmofn(text):
        return TransportFormat.PMOFN
    if text[:10].lower() == "70736274ff":
        return TransportFormat.PLAIN_HEX
    if text.startswith("cHNidP"):
        return TransportFormat.PLAIN_BASE64
    raise UnknownFormat(
        "This QR code is not a signing request: expected a BC-UR ('UR:...'), BBQr ('B$...'), "
        "'pMofN' animated QR or a Base64/hex PSBT."
    )


# --------------------------------------------------------------------------- assembler


class Assembler:
    """Assembles one request from scanned texts; see the module docstring."""

    def __init__(self, max_message_len: int = DEFAULT_MAX_MESSAGE_LEN) -> None:
        if max_message_len < 1:
            raise ValueError("max_message_len must be positive")
        self.max_message_len = max_message_len
        self.reset()

    def reset(self) -> None:
        """Forget everything received; the next frame starts a new transfer."""
        self._format: TransportFormat | None = None
        self._ur: urmod.URDecoder | None = None
        self._bbqr: bbqr.Joiner | None = None
        self._pmofn: legacy.PmofnJoiner | None = None
        self._urv1: legacy.UrV1Joiner | None = None
        self._plain: bytes | None = None
        self._max_frame_len = 0
        self._result: Received | None = None

    @property
    def format(self) -> TransportFormat | None:  # noqa: A003
        return self._format

    @property
    def is_complete(self) -> bool:
        if self._format is None:
            return False
        return self._counts()[2]

    def _counts(self) -> tuple[int, int, bool, float]:
        """(received, expected, complete, percent)."""
        if self._ur is not None:
            dec = self._ur
            return (
                dec.received_parts,
                dec.expected_parts,
                dec.is_complete,
                dec.estimated_percent,
            )
        joiner: bbqr.Joiner | legacy.PmofnJoiner | legacy.UrV1Joiner | None = (
            self._bbqr or self._pmofn or self._urv1
        )
        if joiner is not None:
            got, total = joiner.received, joiner.total
            return got, total, joiner.is_complete, 100.0 * got / total if total else 0.0
        done = self._plain is not None
        return int(done), 1, done, 100.0 if done else 0.0

    def progress(self, *, accepted: bool = False) -> Progress:
        if self._format is None:
            raise ValueError("nothing has been fed yet")
        got, expected, complete, percent = self._counts()
        return Progress(self._format, got, expected, percent, complete, accepted)

    def feed(self, text: str) -> Progress:
        """Add one scanned text.  Raises a :class:`~coldvault.errors.DecodeError` subclass
        for damaged or foreign frames; the assembly state is unchanged in that case."""
        if not isinstance(text, str):
            raise TypeError("feed() takes the scanned text as str")
        text = text.strip("\r\n")  # keep spaces: they may be pMofN text content
        if not text.strip():
            raise UnknownFormat("The scanned QR code is empty.")
        fmt = detect_format(text)
        if self._format is not None and fmt is not self._format:
            raise MixedFormatError(self._format, fmt)
        if self._format is None:
            self._start(fmt)
        accepted = self._feed(fmt, text)
        if accepted:
            self._max_frame_len = max(self._max_frame_len, len(text))
        return self.progress(accepted=accepted)

    def _start(self, fmt: TransportFormat) -> None:
        limit = self.max_message_len
        char_limit = 2 * limit + 256
        if fmt is TransportFormat.UR:
            self._ur = urmod.URDecoder(max_message_len=limit)
        elif fmt is TransportFormat.BBQR:
            self._bbqr = bbqr.Joiner(max_file_len=limit)
        elif fmt is TransportFormat.PMOFN:
            self._pmofn = legacy.PmofnJoiner(max_chars=char_limit)
        elif fmt is TransportFormat.URV1:
            self._urv1 = legacy.UrV1Joiner(max_chars=char_limit)
        self._format = fmt

    def _feed(self, fmt: TransportFormat, text: str) -> bool:
        try:
            if self._ur is not None:
                if self._ur.is_complete:
                    urmod.parse_ur(text, max_len=urmod.max_text_len(self.max_message_len))
                return self._ur.receive_part(text)
            if self._bbqr is not None:
                return self._bbqr.add(text)
            if self._pmofn is not None:
                return self._pmofn.add(text)
            if self._urv1 is not None:
                return self._urv1.add(text)
        except (
            urmod.TypeMismatch,
            urmod.UnexpectedSinglePart,
            InconsistentPart,
            bbqr.BbqrMixedError,
            legacy.LegacyMixedError,
        ) as exc:
            raise MixedMessageError(str(exc)) from exc
        return self._feed_plain(fmt, text)

    def _feed_plain(self, fmt: TransportFormat, text: str) -> bool:
        text = text.strip()
        if len(text) > 2 * self.max_message_len + 4:
            raise PayloadTooLarge(len(text) // 2, self.max_message_len)
        found = _plain_psbt(text)
        if found is None:
            raise UnknownFormat(
                "The QR code looks like a PSBT but is not valid Base64 or hex; rescan it."
            )
        raw = found[1]
        if len(raw) > self.max_message_len:
            raise PayloadTooLarge(len(raw), self.max_message_len)
        if self._plain is not None:
            if raw != self._plain:
                raise MixedMessageError(
                    "A different PSBT was scanned after the first one; start over."
                )
            return False
        self._plain = raw
        return True

    def result(self) -> Received:
        """The assembled request.  ``ValueError`` if not complete; a
        :class:`~coldvault.errors.DecodeError` if the joined data does not decode."""
        if self._result is not None:
            return self._result
        if not self.is_complete or self._format is None:
            raise ValueError("the transfer is not complete yet")
        self._result = self._build(self._format)
        return self._result

    def _build(self, fmt: TransportFormat) -> Received:
        got, expected, _, _ = self._counts()
        if self._ur is not None:
            message = self._ur.result
            per_frame = _ur_fragment_len(message.cbor, expected)
            hint = ReplyHint(fmt, message.type, per_frame, expected)
            return Received(fmt, _normalise_type(message.type, message.cbor), message.cbor, hint)
        if self._bbqr is not None:
            joined = self._bbqr.result()
            hint = ReplyHint(
                fmt,
                None,
                math.ceil(len(joined.data) / joined.total),
                joined.total,
                joined.file_type.value,
                joined.encoding.value,
            )
            ur_type = UR_TYPE_FOR_BBQR[joined.file_type]
            return Received(fmt, ur_type, joined.data, hint)
        if self._urv1 is not None:
            v1 = self._urv1.result()
            hint = ReplyHint(fmt, v1.ur_type, math.ceil(len(v1.cbor) / v1.total), v1.total)
            return Received(fmt, _normalise_type(v1.ur_type, v1.cbor), v1.cbor, hint)
        if self._pmofn is not None:
            text = self._pmofn.result()
            found = _plain_psbt(text)
            if found is not None:
                raw, ur_type = found[1], "crypto-psbt"
            else:
                raw, ur_type = text.encode("utf-8"), "text"
            if len(raw) > self.max_message_len:
                raise PayloadTooLarge(len(raw), self.max_message_len)
            hint = ReplyHint(fmt, None, math.ceil(len(raw) / self._pmofn.total),
                             self._pmofn.total)
            return Received(fmt, ur_type, raw, hint)
        if self._plain is None:  # pragma: no cover - guarded by is_complete
            raise ValueError("the transfer is not complete yet")
        return Received(fmt, "crypto-psbt", self._plain, ReplyHint(fmt, None, None, 1))


def _ur_fragment_len(cbor: bytes, seq_len: int) -> int | None:
    if seq_len <= 1:
        return None
    return math.ceil(len(cbor) / seq_len)

"""What assembly and reply share: transport formats, the request's shape, the CBOR byte string.

:class:`TransportFormat` names the QR formats, :class:`Received` is an assembled request and
:class:`ReplyHint` what it looked like, so the reply can look the same.  For ``UR``/``URV1``
the payload is the UR's CBOR; for the other formats it is the raw file (e.g. PSBT bytes);
:func:`cbor_bytes` / :func:`unwrap_cbor_bytes` convert between the two views.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from coldvault.transport import bbqr

PSBT_MAGIC = b"psbt\xff"
PSBT_TYPES = frozenset({"crypto-psbt", "psbt"})
#: Message bytes per frame when neither the caller nor the request says otherwise.
DEFAULT_FRAGMENT_LEN = 250
#: Largest payload of a single binary-mode QR (version 40, level L).
MAX_SINGLE_QR_BYTES = 2953
#: The densest UR fragment offered: QR version 34 at level L (151 modules).  Shown over
#: 85 % of a 720p camera picture that is about 3.8 px per module, and every frame is read
#: through the virtual camera's blur and noise (tests/codecs/test_dense_frames.py).
DENSE_FRAGMENT_LEN = 1600
#: Fragment sizes :func:`adaptive_fragment_len` picks from: Keystone's, Sparrow's, then
#: denser steps up to :data:`DENSE_FRAGMENT_LEN`.
FRAGMENT_STEPS = (200, 400, 800, 1200, DENSE_FRAGMENT_LEN)
#: A message up to this many fragments keeps the lightest step that carries it.
ADAPTIVE_MAX_FRAGMENTS = 20


def adaptive_fragment_len(message_len: int) -> int:
    """Bytes per fragment for a message of ``message_len`` bytes: the lightest step of
    :data:`FRAGMENT_STEPS` that carries it in at most :data:`ADAPTIVE_MAX_FRAGMENTS`
    fragments, else the densest.  Small messages stay easy to scan; large ones need the
    fewest frames (a 35 KB PSBT: 23 fragments instead of 179 at 200 B)."""
    if message_len < 0:
        raise ValueError("message length must not be negative")
    for step in FRAGMENT_STEPS:
        if -(-message_len // step) <= ADAPTIVE_MAX_FRAGMENTS:
            return step
    return DENSE_FRAGMENT_LEN


class TransportFormat(StrEnum):
    UR = "ur"
    BBQR = "bbqr"
    PMOFN = "pmofn"
    URV1 = "urv1"
    PLAIN_BASE64 = "plain-base64"
    PLAIN_HEX = "plain-hex"


BBQR_TYPE_FOR_UR = {
    "crypto-psbt": bbqr.FileType.PSBT,
    "bitcoin-transaction": bbqr.FileType.TRANSACTION,
    "json": bbqr.FileType.JSON,
    "cbor": bbqr.FileType.CBOR,
    "text": bbqr.FileType.UNICODE,
    "bytes": bbqr.FileType.BINARY,
    "executable": bbqr.FileType.EXECUTABLE,
}
UR_TYPE_FOR_BBQR = {ft: name for name, ft in BBQR_TYPE_FOR_UR.items()}



@dataclass(frozen=True)
class ReplyHint:
    """What the request looked like, so the reply can look the same."""

    format: TransportFormat  # noqa: A003
    wire_type: str | None = None  # UR / UR v1 type as received ("psbt", "bytes", ...)
    fragment_len: int | None = None  # message bytes per frame in the request
    frame_count: int = 1
    bbqr_file_type: str | None = None
    bbqr_encoding: str | None = None


@dataclass(frozen=True)
class Received:
    """A completely assembled request."""

    format: TransportFormat  # noqa: A003
    ur_type: str  # normalised: "psbt" and PSBT-in-"bytes" become "crypto-psbt"
    payload: bytes  # UR/URV1: the CBOR; other formats: the raw file
    fragment_hint: ReplyHint

    @property
    def is_cbor(self) -> bool:
        return self.format in (TransportFormat.UR, TransportFormat.URV1)

    @property
    def cbor(self) -> bytes:
        """The UR CBOR for :attr:`ur_type` (raw files are wrapped as a CBOR byte string)."""
        return self.payload if self.is_cbor else cbor_bytes(self.payload)

    @property
    def content(self) -> bytes:
        """The raw file: for byte-string URs (PSBT, bytes) the unwrapped bytes."""
        if not self.is_cbor:
            return self.payload
        inner = unwrap_cbor_bytes(self.payload)
        return self.payload if inner is None else inner


# --------------------------------------------------------------------------- CBOR bstr


def cbor_bytes(data: bytes) -> bytes:
    """``data`` as a CBOR byte string (major type 2)."""
    length = len(data)
    if length < 24:
        head = bytes([0x40 | length])
    elif length < 0x100:
        head = bytes([0x58, length])
    elif length < 0x10000:
        head = bytes([0x59]) + length.to_bytes(2, "big")
    elif length < 0x100000000:
        head = bytes([0x5A]) + length.to_bytes(4, "big")
    else:
        head = bytes([0x5B]) + length.to_bytes(8, "big")
    return head + data


def unwrap_cbor_bytes(cbor: bytes) -> bytes | None:
    """The content when ``cbor`` is exactly one definite-length CBOR byte string, else None."""
    if not cbor or cbor[0] >> 5 != 2:
        return None
    info = cbor[0] & 0x1F
    if info < 24:
        start, length = 1, info
    elif 24 <= info <= 27:
        size = 1 << (info - 24)
        if len(cbor) < 1 + size:
            return None
        start, length = 1 + size, int.from_bytes(cbor[1 : 1 + size], "big")
    else:
        return None
    if len(cbor) != start + length:
        return None
    return cbor[start:]

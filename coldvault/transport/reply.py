"""The reply going out: frames in the format (and density) the request came in.

:func:`encode_reply` produces a :class:`FrameStream` in the format the request came in (rule
of DESIGN.md §5): an endless fountain for multipart UR, a finite loop otherwise.  A PSBT may
be given raw or CBOR-wrapped.  Re-exported by :mod:`coldvault.transport.assemble`.
"""

from __future__ import annotations

import base64
import itertools
import math
from collections.abc import Iterator

from coldvault.transport import bbqr, legacy
from coldvault.transport import ur as urmod
from coldvault.transport.formats import (
    BBQR_TYPE_FOR_UR,
    DEFAULT_FRAGMENT_LEN,
    MAX_SINGLE_QR_BYTES,
    PSBT_MAGIC,
    PSBT_TYPES,
    Received,
    ReplyHint,
    TransportFormat,
    cbor_bytes,
    unwrap_cbor_bytes,
)


class FrameStream:
    """Frame texts for display.  Finite formats have :attr:`frame_count`; a multipart UR is
    an endless fountain (``frame_count`` is None) — take what you need with :meth:`frames`
    or iterate."""

    def __init__(
        self,
        fmt: TransportFormat,
        *,
        frames: list[str] | None = None,
        encoder: urmod.UREncoder | None = None,
    ) -> None:
        self.format = fmt
        self._frames = frames
        self._encoder = encoder
        self._encoder_cycle: list[str] = []

    @property
    def frame_count(self) -> int | None:
        """Frames in one full cycle; None for an endless fountain."""
        if self._frames is not None:
            return len(self._frames)
        return None

    @property
    def is_endless(self) -> bool:
        return self._frames is None

    @property
    def parts_needed(self) -> int:
        """Fragments a receiver needs at minimum (``seqLen`` for UR, else frame count)."""
        if self._encoder is not None:
            return 1 if self._encoder.is_single else self._encoder.seq_len
        return len(self._frames or ())

    def __iter__(self) -> Iterator[str]:
        """Finite formats: one cycle.  Endless UR: forever."""
        if self._frames is not None:
            return iter(self._frames)
        return self.cycle()

    def cycle(self) -> Iterator[str]:
        """Frames forever, in display order (finite formats loop)."""
        if self._frames is not None:
            return itertools.cycle(self._frames)
        return self._fountain()

    def _fountain(self) -> Iterator[str]:
        encoder = self._encoder
        if encoder is None:  # pragma: no cover - constructor guarantees one or the other
            return
        while True:
            yield encoder.next_part().upper()

    def frames(self, limit: int | None = None) -> list[str]:
        """The first ``limit`` frames (all frames of a finite format when None)."""
        if self._frames is not None:
            return list(self._frames if limit is None else self._frames[:limit])
        if limit is None:
            raise ValueError("an endless UR stream needs a frame limit")
        return list(itertools.islice(self._fountain(), limit))


def _raw_for_reply(ur_type: str, payload: bytes) -> bytes:
    if ur_type in PSBT_TYPES or ur_type == "bytes":
        inner = unwrap_cbor_bytes(payload)
        if inner is not None and not payload.startswith(PSBT_MAGIC):
            return inner
    return payload


def _cbor_for_reply(ur_type: str, payload: bytes) -> bytes:
    if payload.startswith(PSBT_MAGIC):
        return cbor_bytes(payload)
    if ur_type == "bytes" and unwrap_cbor_bytes(payload) is None:
        return cbor_bytes(payload)
    return payload


def encode_reply(
    received_format: TransportFormat,
    ur_type: str,
    payload: bytes,
    *,
    max_fragment_len: int | None = None,
    hint: ReplyHint | None = None,
    bbqr_encoding: bbqr.Encoding = bbqr.Encoding.ZLIB,
    first_seq_num: int = 0,
) -> FrameStream:
    """Frames carrying ``payload`` in ``received_format``.

    ``max_fragment_len`` is the most message bytes per frame (UR: CBOR bytes per fountain
    fragment; BBQr/pMofN/UR v1: converted to characters of their text encoding); by default
    the request's own density from ``hint``, else :data:`DEFAULT_FRAGMENT_LEN`.
    PSBTs may be given raw or as a CBOR byte string; ``psbt`` replies go out as
    ``crypto-psbt`` over UR.  UR and BBQr frames are upper case (QR alphanumeric mode).
    """
    if not payload:
        raise ValueError("cannot encode an empty payload")
    fmt = TransportFormat(received_format)
    per_frame = max_fragment_len or (hint.fragment_len if hint else None) or DEFAULT_FRAGMENT_LEN
    if per_frame < 10:
        raise ValueError("max_fragment_len must be at least 10 bytes")
    out_type = "crypto-psbt" if ur_type in PSBT_TYPES else ur_type
    if fmt is TransportFormat.UR:
        cbor = _cbor_for_reply(out_type, payload)
        encoder = urmod.UREncoder(
            urmod.UR(out_type, cbor), per_frame, first_seq_num=first_seq_num
        )
        if encoder.is_single:
            return FrameStream(fmt, frames=[urmod.encode_single(encoder.ur).upper()])
        return FrameStream(fmt, encoder=encoder)
    if fmt is TransportFormat.URV1:
        # UR v1 readers (Specter DIY, Cobo) expect PSBTs as "bytes"; a PSBT answer mirrors the
        # request's wire type, any other answer goes out under its own type
        wire = out_type
        if out_type == "crypto-psbt":
            mirrored = hint.wire_type if hint else None
            wire = mirrored if mirrored in ("bytes", "crypto-psbt", "psbt") else "bytes"
        cbor = _cbor_for_reply(wire, payload)
        chars = math.ceil(per_frame * 8 / 5)
        return FrameStream(
            fmt, frames=[f.upper() for f in legacy.encode_urv1(wire, cbor, chars)]
        )
    raw = _raw_for_reply(out_type, payload)
    if fmt is TransportFormat.BBQR:
        if out_type in BBQR_TYPE_FOR_UR:
            file_type = BBQR_TYPE_FOR_UR[out_type]
        elif hint and hint.bbqr_file_type:
            file_type = bbqr.FileType(hint.bbqr_file_type)
        else:
            file_type = bbqr.file_type_for(raw)
        chars = math.ceil(per_frame * 8 / 5) + bbqr.HEADER_LEN
        max_version = next(
            (v for v in range(1, 41) if bbqr.alnum_capacity(v) >= chars), 40
        )
        split = bbqr.split(
            raw, file_type, encoding=bbqr_encoding, min_version=1, max_version=max_version
        )
        return FrameStream(fmt, frames=list(split.parts))
    if fmt is TransportFormat.PLAIN_HEX:
        text = raw.hex().upper()
        chunk = max(per_frame * 2, MAX_SINGLE_QR_BYTES if max_fragment_len is None else 0)
        return FrameStream(fmt, frames=legacy.encode_pmofn(text, chunk))
    if out_type == "text":
        text = raw.decode("utf-8")
    else:
        text = base64.b64encode(raw).decode("ascii")
    if fmt is TransportFormat.PLAIN_BASE64 and max_fragment_len is None:
        chunk = MAX_SINGLE_QR_BYTES
    else:
        chunk = math.ceil(per_frame * 4 / 3)
    return FrameStream(fmt, frames=legacy.encode_pmofn(text, chunk))


def reply_to(
    received: Received,
    payload: bytes,
    *,
    ur_type: str | None = None,
    max_fragment_len: int | None = None,
    bbqr_encoding: bbqr.Encoding = bbqr.Encoding.ZLIB,
) -> FrameStream:
    """:func:`encode_reply` in the format and density of ``received``."""
    return encode_reply(
        received.format,
        ur_type or received.ur_type,
        payload,
        max_fragment_len=max_fragment_len,
        hint=received.fragment_hint,
        bbqr_encoding=bbqr_encoding,
    )

"""QR transport: scanned frames in, an assembled message out; a reply back as QR frames.

The path of a request: a frame source (:mod:`~coldvault.transport.frames`: image files, a
camera or scanner backend) yields texts; :class:`Assembler` feeds them to the right decoder
(BC-UR v2 with fountain codes, BBQr, legacy Specter ``pMofN``/UR v1, or one plain PSBT) and
returns a :class:`Received`; the registry (:mod:`coldvault.transport.registry`) turns a UR's
CBOR into typed values. The reply goes out with :func:`encode_reply` in the format and
density the request came in, as a :class:`FrameStream` that :func:`render_png` draws.

Modules: ``assemble`` (the single entry for incoming text), ``reply``, ``formats`` (shared
values), ``ur``/``fountain``/``bytewords``/``xoshiro`` (BC-UR), ``bbqr``, ``legacy``,
``registry/`` (typed UR values), ``render`` (QR images), ``frames`` (frame sources).
"""

from coldvault.transport.assemble import Assembler, Progress
from coldvault.transport.formats import PSBT_TYPES, Received, TransportFormat
from coldvault.transport.frames import CameraError, FrameSource, ImageFileSource, frame_texts
from coldvault.transport.render import render_png
from coldvault.transport.reply import FrameStream, encode_reply, reply_to
from coldvault.transport.ur import UR, encode_single

__all__ = [
    "PSBT_TYPES",
    "UR",
    "Assembler",
    "CameraError",
    "FrameSource",
    "FrameStream",
    "ImageFileSource",
    "Progress",
    "Received",
    "TransportFormat",
    "encode_reply",
    "encode_single",
    "frame_texts",
    "render_png",
    "reply_to",
]

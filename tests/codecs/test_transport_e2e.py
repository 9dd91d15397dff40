"""End to end: a 35 KB PSBT -> rendered QR frames -> virtual camera (30 % of frames dropped,
some blurred, sensor noise) -> real QR decoder -> Assembler, byte-exact."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from coldvault.backends import qr_decode
from coldvault.transport import assemble as t
from coldvault.transport import render as qr_render
from coldvault.transport.formats import TransportFormat
from coldvault.transport.frames import frame_texts
from coldvault.transport.reply import FrameStream, encode_reply
from hardware_emulators.virtual_camera import VirtualCamera

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bbqr"
SPEC = json.loads((VECTORS / "bbqr.json").read_text())
PSBT = (VECTORS / "1in1000out.psbt").read_bytes()  # 35,644 bytes, 1,001 outputs
OPTIONS = qr_render.RenderOptions(box_size=4, border=4, mask_pattern=2)


def _rendered(stream: FrameStream) -> Iterator[Image.Image]:
    cache: dict[str, Image.Image] = {}
    for text in stream.cycle():
        image = cache.get(text)
        if image is None:
            image = cache[text] = qr_render.render_image(text, OPTIONS)
        yield image


def test_psbt_is_the_35kb_vector() -> None:
    info = SPEC["files"]["1in1000out.psbt"]
    assert len(PSBT) == info["size"] == 35_644
    assert hashlib.sha256(PSBT).hexdigest() == info["sha256"]
    assert PSBT.startswith(b"psbt\xff")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "fragment_len"),
    [(TransportFormat.UR, 800), (TransportFormat.BBQR, 1200)],
)
def test_35kb_psbt_through_lossy_camera(fmt: TransportFormat, fragment_len: int) -> None:
    stream = encode_reply(fmt, "crypto-psbt", PSBT, max_fragment_len=fragment_len)
    needed = stream.parts_needed
    camera = VirtualCamera(
        _rendered(stream),
        fps=5,
        drop_rate=0.30,
        blur_rate=0.20,
        blur_radius=1.2,
        noise=0.08,
        seed=2026,
        realtime=False,
        max_frames=8 * needed,
    )
    assembler = t.Assembler()
    for text in frame_texts(camera.frames(), qr_decode.default_decoder()):
        if assembler.feed(text).complete:
            break
    received = assembler.result()
    assert received.format is fmt
    assert received.ur_type == "crypto-psbt"
    assert received.content == PSBT  # byte-exact
    stats = camera.stats
    assert stats.dropped > 0.2 * stats.shown and stats.blurred > 0
    # the loss cost at most this many shown frames per needed part
    assert stats.shown <= 3 * needed

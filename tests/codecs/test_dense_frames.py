"""The densest UR setting stays readable: every frame of a 35 KB PSBT at
``DENSE_FRAGMENT_LEN``, blurred and noisy through the virtual 720p camera, decodes."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldvault.backends import qr_decode
from coldvault.transport import render as qr_render
from coldvault.transport.assemble import Assembler
from coldvault.transport.formats import (
    DENSE_FRAGMENT_LEN,
    FRAGMENT_STEPS,
    TransportFormat,
    adaptive_fragment_len,
)
from coldvault.transport.frames import frame_texts
from coldvault.transport.reply import encode_reply
from hardware_emulators.virtual_camera import VirtualCamera

PSBT = Path(__file__).resolve().parents[1] / "vectors" / "bbqr" / "1in1000out.psbt"
RENDER = qr_render.RenderOptions(box_size=4, border=4, mask_pattern=2)


def test_every_dense_frame_is_read_through_blur_and_noise() -> None:
    psbt = PSBT.read_bytes()
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", psbt,
                          max_fragment_len=DENSE_FRAGMENT_LEN)
    texts = stream.frames(stream.parts_needed + 2)
    assert max(qr_render.qr_version(text, RENDER) for text in texts) == 34
    camera = VirtualCamera(
        [qr_render.render_image(text, RENDER) for text in texts], fps=8, blur_rate=1.0,
        blur_radius=1.2, noise=0.05, seed=3, realtime=False,
    )
    read = list(frame_texts(camera.frames(), qr_decode.default_decoder()))
    assert camera.stats.blurred == len(texts)
    assert read == texts  # every frame, in order, nothing lost to the blur
    assembler = Assembler()
    for text in read:
        assembler.feed(text)
    assert assembler.is_complete and assembler.result().content == psbt


@pytest.mark.parametrize(
    "size,expected",
    [(0, 200), (4000, 200), (4001, 400), (16_000, 800), (24_000, 1200), (35_644, 1600),
     (10_000_000, DENSE_FRAGMENT_LEN)],
)
def test_adaptive_fragment_len_keeps_small_messages_light(size: int, expected: int) -> None:
    assert adaptive_fragment_len(size) == expected
    assert expected in FRAGMENT_STEPS

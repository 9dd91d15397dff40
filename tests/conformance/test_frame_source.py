"""The frame-source contract (:class:`coldvault.transport.frames.FrameSource`), asserted
identically on every source: image files (a PNG and an animated GIF) and the virtual camera.
Each backend shows the same multi-frame BBQr message once; what comes out is decoded by both
QR decoders the appliance ships and reassembled by the real assembler.
"""

from __future__ import annotations

import pytest

from coldvault.backends import qr_decode
from coldvault.transport.assemble import Assembler
from coldvault.transport.frames import FrameSource, frame_texts
from tests.conformance.backends import FrameSourceBackend


def test_is_a_frame_source_with_a_positive_rate(frame_source: FrameSourceBackend) -> None:
    assert isinstance(frame_source.source, FrameSource)
    assert frame_source.source.fps == pytest.approx(5.0)


def test_frames_are_greyscale_images(frame_source: FrameSourceBackend) -> None:
    frames = list(frame_source.source.frames())
    assert len(frames) == len(frame_source.texts)
    assert {frame.mode for frame in frames} == {"L"}
    assert all(frame.width >= 100 and frame.height >= 100 for frame in frames)


@pytest.mark.parametrize("decoder", ["pyzbar", "zxing"])
def test_every_frame_decodes_to_the_text_shown(
    frame_source: FrameSourceBackend, decoder: str
) -> None:
    qr = qr_decode.PyzbarDecoder() if decoder == "pyzbar" else qr_decode.ZxingDecoder()
    assert list(frame_texts(frame_source.source.frames(), qr)) == frame_source.texts


def test_the_frames_reassemble_the_message(frame_source: FrameSourceBackend) -> None:
    assembler = Assembler()
    for text in frame_texts(frame_source.source.frames(), qr_decode.default_decoder()):
        assembler.feed(text)
    assert assembler.is_complete
    expected = Assembler()
    for text in frame_source.texts:
        expected.feed(text)
    assert assembler.result().payload == expected.result().payload
    assert len(assembler.result().payload) > 1000


def test_close_ends_the_stream(frame_source: FrameSourceBackend) -> None:
    frames = frame_source.source.frames()
    next(frames)
    frame_source.source.close()
    assert list(frames) == []  # the running stream stops at the next frame
    assert list(frame_source.source.frames()) == []

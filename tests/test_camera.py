"""Frame and text sources: image files, the virtual camera, the serial scanner over a real pty."""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from coldvault.backends import qr_decode
from coldvault.backends.serial_scanner import ScannerError, SerialScanner
from coldvault.backends.v4l2_camera import V4l2Camera
from coldvault.errors import HardwareError, InputError
from coldvault.transport import assemble as t
from coldvault.transport import bbqr
from coldvault.transport import render as qr_render
from coldvault.transport.frames import (
    CameraError,
    FrameSource,
    ImageFileError,
    ImageFileSource,
    TextSource,
    frame_texts,
)
from hardware_emulators.virtual_camera import VirtualCamera

VECTORS = Path(__file__).resolve().parent / "vectors"
PSBT = (VECTORS / "bbqr" / "1in100out.psbt").read_bytes()
FRAMES = list(bbqr.split(PSBT, "P", encoding="H", max_version=12).parts)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return qr_render.render_frames(FRAMES)


# --------------------------------------------------------------------------- image files


def test_image_file_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(ImageFileError) as info:
        list(ImageFileSource([junk], fps=1).frames())
    assert info.value.path == str(junk) and isinstance(info.value, InputError)
    with pytest.raises(ImageFileError):
        list(ImageFileSource([tmp_path / "missing.png"], fps=1).frames())
    with pytest.raises(ValueError):
        ImageFileSource([])


# --------------------------------------------------------------------------- virtual camera


def test_virtual_camera_plays_all_frames_on_720p_canvas(images: list[Image.Image]) -> None:
    camera = VirtualCamera(images, fps=10, realtime=False)
    assert isinstance(camera, FrameSource)
    shot = list(camera.frames())
    assert len(shot) == len(images)
    assert all(frame.size == (1280, 720) and frame.mode == "L" for frame in shot)
    decoder = qr_decode.default_decoder()
    assert [decoder.decode(f) for f in shot] == [[text] for text in FRAMES]
    assert camera.stats.shown == camera.stats.delivered == len(images)


def test_virtual_camera_is_deterministic(images: list[Image.Image]) -> None:
    def run(seed: int) -> list[bytes]:
        camera = VirtualCamera(images, drop_rate=0.3, blur_rate=0.3, noise=0.1, seed=seed,
                               realtime=False)
        return [frame.tobytes()[::997] for frame in camera.frames()]

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_virtual_camera_drop_and_blur_rates(images: list[Image.Image]) -> None:
    camera = VirtualCamera(images[:3], drop_rate=0.3, blur_rate=0.2, seed=1, realtime=False,
                           loop=True, max_frames=400)
    delivered = sum(1 for _ in camera.frames())
    stats = camera.stats
    assert stats.shown == 400 and delivered == stats.delivered == 400 - stats.dropped
    assert 90 <= stats.dropped <= 150  # 30 % of 400, +-3.3 sigma
    assert 35 <= stats.blurred <= 80  # 20 % of the delivered frames


def test_virtual_camera_blur_and_noise_change_pixels(images: list[Image.Image]) -> None:
    clean = next(VirtualCamera(images[:1], realtime=False).frames())
    blurred = next(VirtualCamera(images[:1], blur_rate=1.0, blur_radius=3,
                                 realtime=False).frames())
    noisy = next(VirtualCamera(images[:1], noise=0.3, realtime=False).frames())
    assert clean.tobytes() != blurred.tobytes() != noisy.tobytes()
    corner = (0, 0, 100, 100)  # background only
    assert ImageStat.Stat(clean.crop(corner)).stddev[0] == 0
    assert ImageStat.Stat(noisy.crop(corner)).stddev[0] > 10


def test_virtual_camera_realtime_pacing(images: list[Image.Image]) -> None:
    camera = VirtualCamera(images[:4], fps=40, realtime=True)
    start = time.monotonic()
    assert len(list(camera.frames())) == 4
    assert time.monotonic() - start >= 3 / 40 - 0.01


def test_virtual_camera_from_gif_path(tmp_path: Path) -> None:
    gif = tmp_path / "a.gif"
    gif.write_bytes(qr_render.render_gif(FRAMES[:3]))
    with VirtualCamera(gif, realtime=False) as camera:
        texts = list(frame_texts(camera.frames(), qr_decode.default_decoder()))
    assert texts == FRAMES[:3]


def test_virtual_camera_to_assembler(images: list[Image.Image]) -> None:
    camera = VirtualCamera(images, drop_rate=0.3, blur_rate=0.2, seed=3, realtime=False,
                           loop=True, max_frames=20 * len(images))
    assembler = t.Assembler()
    for text in frame_texts(camera.frames(), qr_decode.default_decoder()):
        if assembler.feed(text).complete:
            break
    assert assembler.result().payload == PSBT


def test_virtual_camera_validates_arguments(images: list[Image.Image]) -> None:
    with pytest.raises(ValueError):
        VirtualCamera(images, fps=0)
    with pytest.raises(ValueError):
        VirtualCamera(images, drop_rate=1.5)
    with pytest.raises(ValueError):
        VirtualCamera([])


# --------------------------------------------------------------------------- serial scanner


def test_serial_scanner_over_pty() -> None:
    master, slave = os.openpty()
    try:
        scanner = SerialScanner(os.ttyname(slave), idle_timeout=0.5)
        assert isinstance(scanner, TextSource)

        def type_codes() -> None:
            for frame in FRAMES:
                os.write(master, frame.encode() + b"\r\n")
                time.sleep(0.002)
            os.write(master, b"\r\n" + b"X" * 9000 + b"\r")

        writer = threading.Thread(target=type_codes)
        writer.start()
        assembler = t.Assembler()
        lines = []
        for line in scanner.lines():
            lines.append(line)
            if assembler.feed(line).complete:
                break
        writer.join()
        scanner.close()
        assert lines == FRAMES
        assert assembler.result().payload == PSBT
    finally:
        os.close(master)
        os.close(slave)


def test_serial_scanner_drops_overlong_lines_and_handles_eof() -> None:
    stream = io.BytesIO(b"first\n" + b"Y" * 20000 + b"\nsecond\r\n\r\nthird")
    scanner = SerialScanner(stream=stream, max_line_len=1000)
    assert list(scanner.lines()) == ["first", "second", "third"]
    assert scanner.overlong_lines == 1


def test_serial_scanner_missing_device() -> None:
    with pytest.raises(ScannerError) as info:
        SerialScanner("/dev/does-not-exist-qr")
    assert isinstance(info.value, HardwareError)
    assert info.value.device == "/dev/does-not-exist-qr"
    with pytest.raises(ValueError):
        SerialScanner()


# --------------------------------------------------------------------------- V4L2


def test_v4l2_camera_clear_error_without_opencv_or_device() -> None:
    with pytest.raises(CameraError) as info:
        V4l2Camera("/dev/video-does-not-exist")
    assert isinstance(info.value, HardwareError)
    message = str(info.value)
    assert "OpenCV" in message or "does not exist" in message

"""Frame and text sources: image files, the virtual camera (also as the registered frame
source ``virtual-camera`` chosen by configuration), the serial scanner over a real pty."""

from __future__ import annotations

import io
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from PIL import Image, ImageStat

from appliance import cli as appliance_cli
from coldvault.backends import qr_decode
from coldvault.backends.serial_scanner import ScannerError, ScannerLineTooLong, SerialScanner
from coldvault.backends.v4l2_camera import V4l2Camera
from coldvault.config import ApplianceConfig, load_config
from coldvault.errors import (
    EXIT_BAD_INPUT,
    ConfigError,
    HardwareError,
    InputError,
    Refused,
    exit_status,
)
from coldvault.transport import assemble as t
from coldvault.transport import bbqr
from coldvault.transport import render as qr_render
from coldvault.transport.frames import (
    FRAME_SOURCE_GROUP,
    NOTHING_IN_VIEW,
    CameraError,
    EmulatedInputRefused,
    FrameSource,
    FrameSourceSettings,
    ImageFileError,
    ImageFileSource,
    TextSource,
    UnknownFrameSource,
    frame_texts,
    open_registered_source,
    registered_frame_sources,
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


# --------------------------------------------------------------------------- registered source


@pytest.fixture
def png_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, text in enumerate(FRAMES[:4]):
        (folder / f"frame-{i:03d}.png").write_bytes(qr_render.render_png(text))
    return folder


def _first_texts(texts: Iterator[str | None], count: int) -> list[str]:
    seen: list[str] = []
    for text in texts:
        if text is not None and text not in seen:
            seen.append(text)
        if len(seen) == count:
            break
    return seen


def test_virtual_camera_is_registered_by_entry_point(png_dir: Path) -> None:
    assert "virtual-camera" in registered_frame_sources()
    settings = FrameSourceSettings(path=str(png_dir), fps=5, drop_rate=0.3, seed=2)
    source = open_registered_source("virtual-camera", settings, allow_emulated=True)
    assert isinstance(source, VirtualCamera) and isinstance(source, FrameSource)
    assert source.drop_rate == 0.3 and not source.realtime
    texts = _first_texts(frame_texts(source.frames(), qr_decode.default_decoder()), 4)
    assert sorted(texts) == sorted(FRAMES[:4])
    assert source.stats.dropped > 0  # it looped past the dropped frames


def test_a_directory_is_a_screen_whose_content_changes(tmp_path: Path) -> None:
    """The virtual camera reads its directory again at every pass: a code written there is
    seen, an emptied directory is a blank screen (NOTHING_IN_VIEW), and a code shown again
    after that is yielded again (the dedupe run ended with the empty view)."""
    settings = FrameSourceSettings(path=str(tmp_path), fps=5)
    source = open_registered_source("virtual-camera", settings, allow_emulated=True)
    texts = frame_texts(source.frames(), qr_decode.default_decoder(), ticks=True)
    assert next(texts) == NOTHING_IN_VIEW  # nothing on the screen yet
    (tmp_path / "a.png").write_bytes(qr_render.render_png(FRAMES[0]))
    seen = [next(texts) for _ in range(4)]
    assert seen[:2] in ([NOTHING_IN_VIEW, FRAMES[0]], [FRAMES[0], None])
    assert set(seen[2:]) == {None}  # the same code held: nothing new
    (tmp_path / "a.png").unlink()
    assert next(texts) == NOTHING_IN_VIEW
    (tmp_path / "a.png").write_bytes(qr_render.render_png(FRAMES[0]))
    assert [t for t in itertools.islice(texts, 3) if t] == [FRAMES[0]]  # shown again
    source.close()


def test_registered_source_is_refused_before_its_module_is_imported(tmp_path: Path) -> None:
    """Production (emulators not allowed) is refused without importing the emulator."""
    script = textwrap.dedent(
        f"""
        import sys
        from coldvault.transport.frames import (
            EmulatedInputRefused, FrameSourceSettings, open_registered_source)
        try:
            open_registered_source(
                "virtual-camera", FrameSourceSettings({str(tmp_path)!r}, 5.0),
                allow_emulated=False)
        except EmulatedInputRefused as err:
            print(err.code, err.source)
        print(sorted(m for m in sys.modules if m.startswith("hardware_emulators")))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.splitlines() == ["emulated-input virtual-camera", "[]"]


def test_unknown_registered_source(tmp_path: Path) -> None:
    settings = FrameSourceSettings(path=str(tmp_path), fps=5)
    with pytest.raises(UnknownFrameSource) as info:
        open_registered_source("holo-camera", settings, allow_emulated=True)
    assert info.value.source == "holo-camera" and isinstance(info.value, ConfigError)
    assert "virtual-camera" in info.value.message and FRAME_SOURCE_GROUP == (
        "coldvault.frame_sources"
    )
    refused = EmulatedInputRefused("virtual-camera")
    assert isinstance(refused, Refused) and "--allow-emulated" in refused.message


APPLIANCE_TOML = """
[appliance]
id = "vault-01"
state_dir = "state"
allow_emulated_hardware = {allow}

[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "coldvault-appliance"

[trust]
rosters = ["roster-1.json"]
genesis_roster_sha256 = "{genesis}"
policy = "policy.toml"
wallets = "wallets.toml"

[input]
source = "{source}"
path = "{path}"
drop_rate = 0.2
seed = 5
"""


def _config(tmp_path: Path, source: str, allow: bool, path: Path) -> Path:
    file = tmp_path / "appliance.toml"
    file.write_text(APPLIANCE_TOML.format(
        allow=str(allow).lower(), genesis="ab" * 32, source=source, path=path))
    return file


def test_config_refuses_emulated_input_unless_allowed(tmp_path: Path, png_dir: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, "virtual-camera", False, png_dir))
    assert "'virtual-camera' is emulated input" in info.value.message
    assert "production refuses it" in info.value.message
    with pytest.raises(ConfigError, match="source must be one of camera, scanner, files, "):
        load_config(_config(tmp_path, "holo-camera", True, png_dir))
    cfg = load_config(_config(tmp_path, "virtual-camera", True, png_dir))
    assert cfg.input_source == "virtual-camera" and cfg.input_drop_rate == 0.2
    assert load_config(_config(tmp_path, "files", False, png_dir)).input_source == "files"


def _run_context(allow_emulated: bool) -> click.Context:
    context = click.Context(appliance_cli.appliance_run)
    context.params = {"allow_emulated": allow_emulated}
    return context


def test_appliance_input_needs_flag_and_config(tmp_path: Path, png_dir: Path) -> None:
    """``coldvault appliance run`` opens the virtual camera only with the flag AND the
    config; otherwise it refuses before reading a frame."""
    cfg = load_config(_config(tmp_path, "virtual-camera", True, png_dir))
    with pytest.raises(EmulatedInputRefused):
        appliance_cli._input_texts(cfg, None)  # no command: no --allow-emulated
    with _run_context(False), pytest.raises(EmulatedInputRefused):
        appliance_cli._input_texts(cfg, None)
    no_config = ApplianceConfig(**{**cfg.__dict__, "allow_emulated_hardware": False})
    with _run_context(True), pytest.raises(EmulatedInputRefused):
        appliance_cli._input_texts(no_config, None)
    with _run_context(True):
        texts = _first_texts(appliance_cli._input_texts(cfg, None), 4)
    assert sorted(texts) == sorted(FRAMES[:4])
    files = ApplianceConfig(**{**no_config.__dict__, "input_source": "files"})
    assert [t for t in appliance_cli._input_texts(files, None) if t is not None] == FRAMES[:4]


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


def test_serial_scanner_handles_eof() -> None:
    stream = io.BytesIO(b"first\n\nsecond\r\n\r\nthird")
    scanner = SerialScanner(stream=stream, max_line_len=1000)
    assert list(scanner.lines()) == ["first", "second", "third"]


@pytest.mark.parametrize("tail", [b"\nsecond\n", b""])
def test_serial_scanner_reports_an_overlong_line(tail: bytes) -> None:
    stream = io.BytesIO(b"first\n" + b"Y" * 20000 + tail)
    scanner = SerialScanner(stream=stream, max_line_len=1000)
    lines = scanner.lines()
    assert next(lines) == "first"
    with pytest.raises(ScannerLineTooLong) as info:
        next(lines)
    assert str(info.value) == (
        "The QR scanner <stream> sent a line longer than 1000 characters, more than any QR "
        "code holds; the line was discarded and nothing was signed."
    )
    assert exit_status(info.value) == EXIT_BAD_INPUT
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


def test_serial_scanner_polls_a_silent_pipe() -> None:
    """stdin or a pipe: nothing arriving gives control back (ticks) instead of blocking;
    lines typed later arrive whole; closing the writer ends the input."""
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        lines = SerialScanner(stream=pipe).lines(ticks=True)
        started = time.monotonic()
        assert next(lines) is None  # silence: a tick after one poll, not a hang
        assert time.monotonic() - started < 1
        # silent for a second: nothing in view, at every poll from then on
        assert next(t for t in lines if t is not None) == NOTHING_IN_VIEW
        assert time.monotonic() - started >= 1
        assert next(lines) == NOTHING_IN_VIEW
        os.write(write_end, FRAMES[0].encode() + b"\r\n" + FRAMES[1][:10].encode())
        got = [x for x in itertools.islice(lines, 3) if x is not None]
        assert got == [FRAMES[0]]
        os.write(write_end, FRAMES[1][10:].encode() + b"\n")
        os.close(write_end)
        assert [x for x in lines if x is not None] == [FRAMES[1]]

"""The response display: frames rendered lazily as they are shown, through the appliance's own
path (``Appliance.show``), and the terminal QR sink decoded back to the signed bytes."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.console import OperatorConsole
from appliance.daemon import Appliance
from appliance.display import FrameScreen, show_on_screen
from coldvault.backends.qr_decode import available_decoders
from coldvault.config import ApplianceConfig
from coldvault.transport import render as qr_render
from coldvault.transport.assemble import Assembler
from coldvault.transport.formats import TransportFormat
from coldvault.transport.reply import FrameStream, encode_reply

from .terminal_qr import rasterise

#: a response the size of a signed 500-input PSBT (about 136 KB), deterministic
BIG_RESPONSE = b"psbt\xff" + b"".join(
    hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(4_260)
)


class RecordingScreen:
    """A :class:`FrameScreen` that records, per frame shown, how many frames were rendered
    and how many frame texts were produced by then."""

    def __init__(self, stop_after: int | None = None, *, interactive: bool = False) -> None:
        self.interactive = interactive
        self.stop_after = stop_after
        self.pictures: list[str] = []
        self.rendered_when_shown: list[int] = []
        self.produced_when_shown: list[int] = []
        self.rendered = 0
        self.produced = 0
        self.infos: list[str] = []

    def show_frame(self, picture: str, caption: str) -> None:
        self.pictures.append(picture)
        self.rendered_when_shown.append(self.rendered)
        self.produced_when_shown.append(self.produced)

    def stop_requested(self, seconds: float) -> bool:
        return self.stop_after is not None and len(self.pictures) >= self.stop_after

    # the rest of appliance.session.Ui (not used by show)
    def info(self, text: str) -> None:
        self.infos.append(text)

    def warn(self, text: str) -> None:
        self.infos.append(text)


def _config(tmp_path: Path, sink: str = "terminal") -> ApplianceConfig:
    return ApplianceConfig(
        appliance_id="vault-test", state_dir=tmp_path, hsm_module=tmp_path / "none.so",
        hsm_token_label="none", roster_files=(), policy_file=tmp_path / "p.toml",
        wallets_file=tmp_path / "w.toml", genesis_roster_sha256="", output_sink=sink,
        output_path=tmp_path / "response",
    )  # fmt: skip


def _counting(
    stream: FrameStream, screen: RecordingScreen, monkeypatch: pytest.MonkeyPatch
) -> FrameStream:
    """Count every frame text the stream produces and every frame rendered."""
    original_cycle, original_render = stream.cycle, qr_render.render_terminal

    def cycle() -> Iterator[str]:
        for text in original_cycle():
            screen.produced += 1
            yield text

    def render(text: str, **kwargs: object) -> str:
        screen.rendered += 1
        return original_render(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stream, "cycle", cycle)
    monkeypatch.setattr(qr_render, "render_terminal", render)
    return stream


def _big_stream() -> FrameStream:
    return encode_reply(TransportFormat.UR, "crypto-psbt", BIG_RESPONSE, max_fragment_len=200)


def test_the_appliance_shows_the_first_frame_after_rendering_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = _big_stream()
    assert stream.parts_needed > 600  # a 500-input response: hundreds of fragments
    screen = RecordingScreen(stop_after=3, interactive=True)
    _counting(stream, screen, monkeypatch)
    app = Appliance(_config(tmp_path), ui=screen, collector=None, hsm_pin="")  # type: ignore[arg-type]
    written = app.show(stream)
    assert written == [] and not (tmp_path / "response").exists()  # nothing on disk
    # structurally lazy: frame n is rendered (and its text made) only when it is shown
    assert screen.rendered_when_shown == [1, 2, 3]
    assert screen.produced_when_shown == [1, 2, 3]
    assert screen.rendered == 3  # the operator's Enter ended the display


def test_a_script_sees_one_cycle_and_the_sink_option_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", BIG_RESPONSE[:2_000],
                          max_fragment_len=200)  # fmt: skip
    screen = RecordingScreen()  # not interactive: one cycle, then the command goes on
    _counting(stream, screen, monkeypatch)
    app = Appliance(_config(tmp_path, sink="png-dir"), ui=screen, collector=None, hsm_pin="")  # type: ignore[arg-type]
    assert app.show(stream, sink="terminal") == []
    cycle = max(2 * stream.parts_needed, 10)
    assert len(screen.pictures) == cycle
    assert screen.rendered_when_shown == list(range(1, cycle + 1))


@pytest.mark.parametrize("decoder", available_decoders(), ids=lambda d: d.name)
def test_the_terminal_frames_decode_back_to_the_response(
    tmp_path: Path, decoder: object
) -> None:
    """What the console draws, re-rasterised, is read by a QR decoder and reassembles to
    exactly the signed bytes."""
    payload = BIG_RESPONSE[:1_500]
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", payload, max_fragment_len=200)
    out = io.StringIO()
    console = OperatorConsole(stream=out, width=200)
    assert isinstance(console, FrameScreen)
    shown = show_on_screen(stream.cycle(), console, fps=5, limit=3 * stream.parts_needed,
                           timeout=60)  # fmt: skip
    assert shown == 3 * stream.parts_needed
    pictures = out.getvalue().split("response frame ")
    assembler = Assembler()
    for block in pictures[:-1]:
        picture = block.split("\n", 1)[-1] if block[:1].isdigit() else block
        picture = picture.rstrip("\n")
        texts = decoder.decode(rasterise(picture))  # type: ignore[attr-defined]
        assert len(texts) == 1, "every frame drawn on the console is a readable QR code"
        if assembler.feed(texts[0]).complete:
            break
    received = assembler.result()
    assert received.ur_type == "crypto-psbt"
    from coldvault.transport.formats import unwrap_cbor_bytes

    assert unwrap_cbor_bytes(received.payload) == payload


def test_on_a_terminal_each_frame_replaces_the_last_and_nothing_else() -> None:
    out = io.StringIO()
    console = OperatorConsole(stream=out, width=120)
    console.console._force_terminal = True  # as on the appliance's screen
    console.show_frame("AB\nCD", "response frame 1")
    console.show_frame("EF\nGH", "response frame 2")
    assert out.getvalue().endswith("\x1b[3F\x1b[JEF\nGH\nresponse frame 2\n")
    console.info("Response for request 0000-0000-0000 shown.")
    mark = len(out.getvalue())
    console.show_frame("IJ\nKL", "response frame 1")  # the next response: the line stays
    assert "\x1b[" not in out.getvalue()[mark:]

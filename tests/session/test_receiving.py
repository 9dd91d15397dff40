"""Receiving: the timeout holds while the camera shows the same refused code for ever, and
the end of the input is reported as the end of the input, not as a timeout.

Driven through the real appliance (SoftHSM token, audit trail, ledger) and the registered
virtual camera replaying rendered QR frames through the real decoder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.daemon import Appliance
from appliance.states import InputEnded, TimedOut
from coldvault.backends.qr_decode import default_decoder
from coldvault.config import load_config
from coldvault.errors import EXIT_BAD_INPUT, exit_status
from coldvault.transport import frames as frames_mod
from coldvault.transport import render as qr_render
from coldvault.transport.formats import TransportFormat
from coldvault.transport.frames import frame_texts
from coldvault.transport.reply import encode_reply
from hardware_emulators.virtual_camera import VirtualCamera
from tests.session.scenarios import SCENARIOS
from tests.session.world import SessionWorld, session_world

WAY = "receiving"
#: a code the assembler refuses (a UR of an unknown shape): shown on every frame
REFUSED = "UR:CRYPTO-PSBT/NOT-BYTEWORDS-AT-ALL"


class QuietUi:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def show_review(self, review: Any, decision: Any) -> None:
        raise AssertionError("nothing may reach review")

    def confirm(self, question: str) -> bool:
        raise AssertionError("nothing may be asked")

    def info(self, text: str) -> None:
        self.messages.append(text)

    warn = error = info


class NoCards:
    def collect(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("no card may be asked for")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
) -> Iterator[SessionWorld]:
    with session_world(
        tmp_path_factory.mktemp("receiving"), lab_config, softhsm_lab, pcsc_lab
    ) as w:
        yield w


@pytest.fixture
def app(world: SessionWorld) -> Iterator[tuple[Appliance, QuietUi]]:
    config = load_config(world.config(WAY, SCENARIOS[0]))
    config = dataclasses.replace(
        config, timeouts=dataclasses.replace(config.timeouts, receiving=1.0)
    )
    ui = QuietUi()
    appliance = Appliance(
        config,
        ui=ui,
        collector=NoCards(),  # type: ignore[arg-type]
        hsm_pin=world.lab.config.appliance_token().user_pin,
        allow_emulated=True,
        dev_allow_network=True,
    )
    with appliance:
        appliance.start()
        yield appliance, ui


def png(tmp_path: Path, text: str, name: str = "frame-0000.png") -> Path:
    path = tmp_path / name
    path.write_bytes(qr_render.render_png(text))
    return path


def test_timeout_holds_while_the_same_refused_code_stays_in_view(
    app: tuple[Appliance, QuietUi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    appliance, ui = app
    pauses: list[float] = []
    real_sleep = frames_mod.time.sleep

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(frames_mod.time, "sleep", sleep)
    camera = VirtualCamera([png(tmp_path, REFUSED)], loop=True, realtime=False)
    texts = frame_texts(camera.frames(), default_decoder(), ticks=True, idle_pause=0.05)
    with pytest.raises(TimedOut) as info:
        appliance.receive(texts)  # before the fix: never returned, one core at 94 %
    assert str(info.value) == "Timed out after 1 s while receiving; nothing was signed."
    assert exit_status(info.value) == EXIT_BAD_INPUT
    assert [m for m in ui.messages if m.startswith("ignored a frame")][:1]
    assert len([m for m in ui.messages if m.startswith("ignored a frame")]) == 1  # once
    # every later frame brought nothing new: paused between them, never a busy loop
    assert pauses and set(pauses) == {0.05}
    assert appliance.session is not None
    assert appliance.session.machine.state.value == "idle"


def test_end_of_input_is_reported_as_such(app: tuple[Appliance, QuietUi]) -> None:
    appliance, _ui = app
    with pytest.raises(InputEnded) as info:
        appliance.receive(iter([REFUSED, None]))
    assert str(info.value) == (
        "The input ended before a complete request arrived; nothing was signed."
    )
    assert exit_status(info.value) == EXIT_BAD_INPUT
    stream = encode_reply(
        TransportFormat.UR, "crypto-psbt", bytes(range(256)) * 4, max_fragment_len=100
    )
    first_two = stream.frames(2)
    with pytest.raises(InputEnded) as info:
        appliance.receive(iter(first_two))
    assert str(info.value) == (
        f"The input ended before a complete request arrived (2 of {stream.parts_needed} parts "
        "arrived); nothing was signed."
    )


def test_scanner_end_of_input_and_overlong_line(app: tuple[Appliance, QuietUi]) -> None:
    """Through the real scanner reader: a stream that ends is the end of input (not "timed
    out after 600 s"); an over-long line is reported as such, and the appliance is idle."""
    import io

    from coldvault.backends.serial_scanner import ScannerLineTooLong, SerialScanner

    appliance, _ui = app
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", bytes(range(256)) * 4,
                          max_fragment_len=100)
    typed = "\r\n".join(stream.frames(1)).encode() + b"\r\n"
    scanner = SerialScanner(stream=io.BytesIO(typed))
    with pytest.raises(InputEnded) as ended:
        appliance.receive(scanner.lines(ticks=True))
    assert str(ended.value) == (
        f"The input ended before a complete request arrived (1 of {stream.parts_needed} parts "
        "arrived); nothing was signed."
    )
    scanner = SerialScanner(stream=io.BytesIO(typed + b"A" * 10_000 + b"\n"))
    with pytest.raises(ScannerLineTooLong) as long_line:
        appliance.receive(scanner.lines(ticks=True))
    assert exit_status(long_line.value) == EXIT_BAD_INPUT
    assert "longer than 8192 characters" in str(long_line.value)
    assert appliance.session is not None
    assert appliance.session.machine.state.value == "idle"


def test_a_silent_scanner_pipe_times_out_at_the_deadline(
    app: tuple[Appliance, QuietUi],
) -> None:
    """A keyboard-wedge scanner on standard input (``source = "scanner"``, ``path = "-"``)
    that goes quiet mid-request: the reader polls the pipe, so the receiving deadline holds
    (it used to block in read() until the next byte, for ever)."""
    import os
    import time

    from coldvault.backends.serial_scanner import SerialScanner

    appliance, _ui = app
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", bytes(range(256)) * 4,
                          max_fragment_len=100)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, stream.frames(1)[0].encode() + b"\r\n")  # one part, then silence
        with os.fdopen(read_end, "rb", closefd=False) as pipe:
            started = time.monotonic()
            with pytest.raises(TimedOut) as info:
                appliance.receive(SerialScanner(stream=pipe).lines(ticks=True))
            waited = time.monotonic() - started
        assert str(info.value) == "Timed out after 1 s while receiving; nothing was signed."
        assert 0.9 < waited < 5  # the 1 s deadline, not the pipe's next byte
        assert appliance.session is not None
        assert appliance.session.machine.state.value == "idle"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_the_request_just_handled_is_not_taken_again_until_the_view_was_empty(
    app: tuple[Appliance, QuietUi],
) -> None:
    """A running appliance's loop: the request it just handled, still in front of the
    camera (single-part, or an animated multipart that keeps cycling), is not taken again;
    once the view has been empty (the code taken away), showing it again presents it again;
    any other request is taken at once."""
    import hashlib
    import time

    from coldvault.requests.base import request_fingerprint
    from coldvault.transport.assemble import Assembler
    from coldvault.transport.frames import NOTHING_IN_VIEW

    appliance, ui = app
    multi = encode_reply(TransportFormat.UR, "crypto-psbt", bytes(range(256)) * 4,
                         max_fragment_len=100).frames(40)  # fmt: skip
    single = encode_reply(TransportFormat.UR, "crypto-psbt", b"\x70\x73\x62\x74\xff" + b"x" * 50,
                          max_fragment_len=1000).frames(1)  # fmt: skip
    assembler = Assembler()
    for text in multi:
        assembler.feed(text)
    handled = hashlib.sha256(assembler.result().payload).digest()

    # still in view, cycling for ever: never taken; the operator is told once
    with pytest.raises(InputEnded):
        appliance.receive(iter([*multi, None, *multi]), just_handled=handled)
    notes = [m for m in ui.messages if "was just handled and is still in view" in m]
    assert notes == [
        f"Request {request_fingerprint(handled)} was just handled and is still in view: it is "
        "not taken again. Take it away; show it again to present it again."
    ]
    # one frame that decodes to nothing (a blurred frame) is not an empty view
    with pytest.raises(InputEnded):
        appliance.receive(iter([*multi, NOTHING_IN_VIEW, *multi]), just_handled=handled)

    def taken_away(seconds: float) -> Iterator[str | None]:
        yield from multi[:5]
        until = time.monotonic() + seconds
        while time.monotonic() < until:  # frames without any code
            yield NOTHING_IN_VIEW
        yield NOTHING_IN_VIEW
        yield from multi

    # taken away (a second of empty view), then shown again: taken
    quick = appliance.config  # this module's 1 s receiving timeout is shorter than that
    appliance.config = dataclasses.replace(
        quick, timeouts=dataclasses.replace(quick.timeouts, receiving=30.0)
    )
    try:
        received = appliance.receive(taken_away(1.1), just_handled=handled)
    finally:
        appliance.config = quick
    assert hashlib.sha256(received.payload).digest() == handled
    # the coordinator moves on to another request: taken at once
    received = appliance.receive(iter([*multi, *single]), just_handled=handled)
    assert received.payload != assembler.result().payload
    # without just_handled (--once, or the first request) nothing is held back
    received = appliance.receive(iter(multi))
    assert hashlib.sha256(received.payload).digest() == handled
    appliance.session.machine.reset()  # type: ignore[union-attr]


def test_a_transfer_that_stops_gives_way_to_the_next_one(
    app: tuple[Appliance, QuietUi],
) -> None:
    """The coordinator shows part of one request, then switches to another: while the first
    still moves, frames of the second are skipped (a frame of another transfer never aborts
    one under way); once it has made no progress for a second, the second is followed."""
    import time

    from coldvault.transport.assemble import Assembler

    appliance, ui = app
    first = encode_reply(TransportFormat.UR, "crypto-psbt", bytes(range(256)) * 4,
                         max_fragment_len=100).frames(3)  # 3 of its 11 parts  # fmt: skip
    second = encode_reply(TransportFormat.UR, "crypto-psbt", bytes(range(255, -1, -1)) * 3,
                          max_fragment_len=100).frames(40)  # fmt: skip

    def switch_after(seconds: float) -> Iterator[str | None]:
        yield from first
        until = time.monotonic() + seconds
        while time.monotonic() < until:  # the second request's frames, over and over
            yield from second[:2]
        yield from second

    quick = appliance.config
    appliance.config = dataclasses.replace(
        quick, timeouts=dataclasses.replace(quick.timeouts, receiving=30.0)
    )
    try:
        received = appliance.receive(switch_after(1.2))
    finally:
        appliance.config = quick
    expected = Assembler()
    for text in second:
        if expected.feed(text).complete:
            break
    assert received.payload == expected.result().payload
    assert any("ignored a frame" in m for m in ui.messages)  # skipped while the first moved
    assert any("the transfer under way stopped" in m for m in ui.messages)
    # a transfer that keeps moving is never given up for another one
    with pytest.raises(InputEnded):
        appliance.receive(iter([first[0], second[0], first[1], second[1], first[2]]))

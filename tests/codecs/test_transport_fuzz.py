"""Hypothesis fuzzing of everything that reads scanned QR text.

Random and mutated frames may only ever raise ColdvaultError subclasses (never IndexError,
UnicodeError, zlib.error, ...), and memory stays bounded by the configured message limit.
"""

from __future__ import annotations

import base64
import tracemalloc
from pathlib import Path

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldvault.errors import ColdvaultError
from coldvault.transport import assemble as t
from coldvault.transport import bbqr, legacy
from coldvault.transport.formats import TransportFormat
from coldvault.transport.reply import encode_reply

PSBT = (Path(__file__).resolve().parents[1] / "vectors" / "bbqr" / "1in10out.psbt").read_bytes()
LIMIT = 64 * 1024


def _valid_frames() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for fmt in TransportFormat:
        stream = encode_reply(fmt, "crypto-psbt", PSBT, max_fragment_len=120)
        out[fmt.value] = stream.frames(None if not stream.is_endless else 20)
    out["bbqr-h"] = list(bbqr.split(PSBT, "P", encoding="H", max_version=6).parts)
    out["urv1-single"] = legacy.encode_urv1("bytes", cbor2.dumps(PSBT[:40]), 1000)
    out["plain"] = [base64.b64encode(PSBT).decode(), PSBT.hex()]
    return out


VALID = _valid_frames()
ALL_FRAMES = [frame for frames in VALID.values() for frame in frames]
SETTINGS = settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def mutated(draw: st.DrawFn) -> list[str]:
    """A valid frame sequence with a few random edits."""
    key = draw(st.sampled_from(sorted(VALID)))
    frames = list(VALID[key])
    count = draw(st.integers(1, len(frames)))
    picked = draw(st.lists(st.sampled_from(frames), min_size=1, max_size=count))
    result = []
    for frame in picked:
        action = draw(st.sampled_from(["keep", "flip", "cut", "insert", "upper", "lower",
                                       "swap-header"]))
        if action == "flip" and frame:
            pos = draw(st.integers(0, len(frame) - 1))
            frame = frame[:pos] + draw(st.characters(codec="ascii")) + frame[pos + 1 :]
        elif action == "cut":
            frame = frame[: draw(st.integers(0, len(frame)))]
        elif action == "insert":
            pos = draw(st.integers(0, len(frame)))
            frame = frame[:pos] + draw(st.text(max_size=8)) + frame[pos:]
        elif action == "upper":
            frame = frame.upper()
        elif action == "lower":
            frame = frame.lower()
        elif action == "swap-header":
            frame = draw(st.sampled_from(ALL_FRAMES))[:10] + frame[10:]
        result.append(frame)
    return result


def _drive(frames: list[str]) -> None:
    assembler = t.Assembler(max_message_len=LIMIT)
    for frame in frames:
        try:
            assembler.feed(frame)
        except ColdvaultError:
            continue
        if assembler.is_complete:
            try:
                received = assembler.result()
            except ColdvaultError:
                return
            assert len(received.payload) <= LIMIT
            return


@SETTINGS
@given(st.lists(st.text(max_size=300), min_size=1, max_size=5))
def test_random_text_only_raises_domain_errors(frames: list[str]) -> None:
    _drive(frames)


@SETTINGS
@given(st.lists(st.sampled_from(["ur:", "UR:BYTES/", "B$", "B$ZP", "B$HP0100", "p1of2 ",
                                 "cHNidP8", "70736274ff", "ur:bytes/1of2/"]), min_size=1,
                max_size=3), st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-/qpzry=",
                                      max_size=200))
def test_prefixed_garbage_only_raises_domain_errors(prefixes: list[str], tail: str) -> None:
    _drive([prefix + tail for prefix in prefixes])


@SETTINGS
@given(mutated())
def test_mutated_frames_only_raise_domain_errors(frames: list[str]) -> None:
    _drive(frames)


@SETTINGS
@given(st.lists(st.text(alphabet="B$HZ2PUT0123456789ABCDEFGXYZ=", max_size=120), max_size=6))
def test_bbqr_joiner_direct(frames: list[str]) -> None:
    joiner = bbqr.Joiner(max_file_len=LIMIT)
    for frame in frames:
        try:
            joiner.add(frame)
        except ColdvaultError:
            continue
    if joiner.is_complete:
        try:
            assert len(joiner.result().data) <= LIMIT
        except ColdvaultError:
            pass


@SETTINGS
@given(st.lists(st.text(max_size=200), max_size=6))
def test_legacy_joiners_direct(frames: list[str]) -> None:
    for joiner in (legacy.PmofnJoiner(max_chars=LIMIT), legacy.UrV1Joiner(max_chars=LIMIT)):
        for frame in frames:
            try:
                joiner.add("ur:bytes/" + frame if isinstance(joiner, legacy.UrV1Joiner)
                           else "p1of2 " + frame)
            except ColdvaultError:
                continue
        if joiner.is_complete:
            try:
                joiner.result()
            except ColdvaultError:
                pass


@given(st.binary(max_size=64))
@SETTINGS
def test_bc32_decode_total(data: bytes) -> None:
    text = data.decode("latin-1")
    try:
        legacy.bc32_decode(text)
    except ColdvaultError:
        pass


@pytest.mark.parametrize("size", [5_000_000, 20_000_000])
def test_memory_bounded_for_hostile_frames(size: int) -> None:
    """Frames announcing or inflating to huge sizes are refused without allocating them."""
    bomb = bbqr.deflate(bytes(size))
    frame = "B$ZB0100" + base64.b32encode(bomb).decode().rstrip("=")
    hostile = [
        frame,
        "B$HPZZ00" + "AB" * 2000,
        "p1of1999 " + "A" * 2000,
        "ur:bytes/1of1999/" + "q" * 59 + "/" + "q" * 2000,
    ]
    tracemalloc.start()
    try:
        for text in hostile:
            assembler = t.Assembler(max_message_len=LIMIT)
            try:
                assembler.feed(text)
                if assembler.is_complete:
                    assembler.result()
            except ColdvaultError:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * LIMIT + len(frame) * 4 + 1_000_000

"""Specter pMofN and UR v1 (bc32) codecs.

There are no official UR v1 / pMofN vectors in tests/vectors; the wire layout is checked
structurally here, against independently computed values (SHA-256 via hashlib, CBOR via
cbor2) and with the BIP-174 and BBQr PSBTs as payloads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import cbor2
import pytest

from coldvault.errors import DecodeError
from coldvault.transport import legacy

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BIP174 = json.loads((VECTORS / "bip174_psbt.json").read_text())
BIG_PSBT = (VECTORS / "bbqr" / "1in100out.psbt").read_bytes()


def _bip174_base64() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("category") == "valid" and isinstance(node.get("base64"), str):
                found.append(node["base64"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(BIP174)
    return found


# --------------------------------------------------------------------------- bc32


def test_bc32_roundtrip_and_checksum_constant() -> None:
    rng = random.Random(3)
    for size in (0, 1, 2, 5, 31, 32, 33, 100, 1000):
        data = rng.randbytes(size)
        text = legacy.bc32_encode(data)
        assert len(text) == -(-size * 8 // 5) + 6
        assert set(text) <= set("qpzry9x8gf2tvdw0s3jn54khce6mua7l")
        assert legacy.bc32_decode(text) == data
        assert legacy.bc32_decode(text.upper()) == data
        values = ["qpzry9x8gf2tvdw0s3jn54khce6mua7l".index(c) for c in text]
        assert legacy._polymod([0, *values]) == 0x3FFFFFFF  # noqa: SLF001 - bc32 constant


@pytest.mark.parametrize(
    "text",
    ["", "qqqqq", "QqqqqqQq", "qqqqqqqb", "tyq3wurnvf607qgq"],
)
def test_bc32_rejects(text: str) -> None:
    with pytest.raises(legacy.Bc32Error):
        legacy.bc32_decode(text)


def test_bc32_detects_every_single_character_error() -> None:
    text = legacy.bc32_encode(b"coldvault bc32 check")
    for pos in range(len(text)):
        for replacement in "qp":
            if text[pos] == replacement:
                continue
            broken = text[:pos] + replacement + text[pos + 1 :]
            with pytest.raises(legacy.Bc32Error):
                legacy.bc32_decode(broken)


# --------------------------------------------------------------------------- UR v1


def test_urv1_multipart_layout() -> None:
    cbor = cbor2.dumps(BIG_PSBT)
    frames = legacy.encode_urv1("bytes", cbor, 300)
    digest = legacy.bc32_encode(hashlib.sha256(cbor).digest())
    body = legacy.bc32_encode(cbor)
    assert len(frames) == -(-len(body) // 300)
    for number, frame in enumerate(frames, start=1):
        scheme, seq, frame_digest, piece = frame.split("/")
        assert scheme == "ur:bytes"
        assert seq == f"{number}of{len(frames)}"
        assert frame_digest == digest
        assert len(piece) <= 300
    assert "".join(f.split("/")[3] for f in frames) == body


def test_urv1_roundtrip_any_order_upper_case_with_repeats() -> None:
    cbor = cbor2.dumps(BIG_PSBT)
    frames = [f.upper() for f in legacy.encode_urv1("bytes", cbor, 250)]
    shuffled = frames + frames[:4]
    random.Random(5).shuffle(shuffled)
    joiner = legacy.UrV1Joiner()
    for frame in shuffled:
        joiner.add(frame)
    message = joiner.result()
    assert message.ur_type == "bytes"
    assert message.cbor == cbor
    assert cbor2.loads(message.cbor) == BIG_PSBT
    assert all(legacy.is_urv1(f) for f in frames)


def test_urv1_single_part_forms() -> None:
    cbor = cbor2.dumps(b"\x01\x02\x03")
    (single,) = legacy.encode_urv1("bytes", cbor, 1000)
    assert single == f"ur:bytes/{legacy.bc32_encode(cbor)}"
    joiner = legacy.UrV1Joiner()
    joiner.add(single)
    assert joiner.result().cbor == cbor
    digest = legacy.bc32_encode(hashlib.sha256(cbor).digest())
    with_digest = f"ur:bytes/{digest}/{legacy.bc32_encode(cbor)}"
    joiner = legacy.UrV1Joiner()
    joiner.add(with_digest)
    assert joiner.result().cbor == cbor


def test_urv1_digest_mismatch() -> None:
    cbor = cbor2.dumps(b"payload" * 50)
    other = legacy.bc32_encode(hashlib.sha256(b"other").digest())
    frames = legacy.encode_urv1("bytes", cbor, 100)
    forged = ["/".join([*f.split("/")[:2], other, f.split("/")[3]]) for f in frames]
    joiner = legacy.UrV1Joiner()
    for frame in forged:
        joiner.add(frame)
    with pytest.raises(legacy.LegacyInconsistentError):
        joiner.result()


def test_urv1_mixed_messages() -> None:
    a = legacy.encode_urv1("bytes", cbor2.dumps(b"a" * 300), 100)
    b = legacy.encode_urv1("bytes", cbor2.dumps(b"b" * 300), 100)
    joiner = legacy.UrV1Joiner()
    joiner.add(a[0])
    with pytest.raises(legacy.LegacyMixedError):
        joiner.add(b[1])
    with pytest.raises(legacy.LegacyInconsistentError):
        joiner.add(a[0].replace(a[0][-3:], "qqq"))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("bytes/abc", legacy.LegacyError),
        ("ur:/qqqqqq", legacy.LegacyError),
        ("ur:by_tes/qqqqqq", legacy.LegacyError),
        ("ur:bytes/1of2/qqqqqq/qqqq/extra", legacy.LegacyError),
        ("ur:bytes/3of2/qqqqqq/qqqq", legacy.LegacyError),
        ("ur:bytes/1ofx/qqqqqq/qqqq", legacy.LegacyError),
        ("ur:bytes/1of9999999/qqqqqq/qqqq", legacy.LegacyError),
        ("ur:bytes/1of99999/qqqqqq/qqqq", legacy.LegacyTooLargeError),
    ],
)
def test_urv1_bad_frames(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        legacy.UrV1Joiner().add(text)


def test_urv1_bad_bc32_surfaces_as_bc32_error() -> None:
    joiner = legacy.UrV1Joiner()
    joiner.add("ur:bytes/qqqqqqqqqq")
    with pytest.raises(legacy.Bc32Error):
        joiner.result()


def test_is_urv1_distinguishes_v2() -> None:
    assert not legacy.is_urv1("ur:crypto-psbt/1-3/lpadaxcfaxiacyvwhdfhdcloykiagh")
    assert not legacy.is_urv1("UR:BYTES/HDCXLKAHSSQZWFVSLOFZOXWKRE")
    assert legacy.is_urv1("ur:bytes/1of3/" + "q" * 59 + "/tyq3wurnvf")
    assert legacy.is_urv1("UR:BYTES/TYQ3WURNVF607QGQ")


# --------------------------------------------------------------------------- pMofN


def test_pmofn_roundtrip_bip174_and_big_psbt() -> None:
    texts = _bip174_base64() + [base64.b64encode(BIG_PSBT).decode()]
    assert len(texts) >= 2
    for text in texts:
        frames = legacy.encode_pmofn(text, 120)
        if len(text) <= 120:
            assert frames == [text]
            continue
        assert all(legacy.is_pmofn(f) for f in frames)
        assert frames[0].startswith(f"p1of{len(frames)} ")
        joiner = legacy.PmofnJoiner()
        for frame in reversed(frames + frames[:1]):
            joiner.add(frame)
        assert joiner.is_complete and joiner.result() == text


def test_pmofn_incomplete_and_mixed() -> None:
    joiner = legacy.PmofnJoiner()
    joiner.add("p1of3 abc")
    joiner.add("p3of3 ghi")
    assert not joiner.is_complete and joiner.received == 2 and joiner.total == 3
    with pytest.raises(legacy.LegacyError, match="incomplete"):
        joiner.result()
    with pytest.raises(legacy.LegacyMixedError):
        joiner.add("p2of4 def")
    with pytest.raises(legacy.LegacyInconsistentError):
        joiner.add("p1of3 abX")
    joiner.add("p2of3 def")
    assert joiner.result() == "abcdefghi"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("p0of3 abc", legacy.LegacyError),
        ("p4of3 abc", legacy.LegacyError),
        ("p1of3abc", legacy.LegacyError),
        ("P1OF3 abc", legacy.LegacyError),
        ("p1of999999 abc", legacy.LegacyTooLargeError),
        ("hello", legacy.LegacyError),
    ],
)
def test_pmofn_bad_frames(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        legacy.PmofnJoiner().add(text)


def test_pmofn_size_bound() -> None:
    joiner = legacy.PmofnJoiner(max_chars=100)
    joiner.add("p1of2 " + "a" * 80)
    with pytest.raises(legacy.LegacyTooLargeError):
        joiner.add("p2of2 " + "a" * 80)


def test_errors_are_decode_errors() -> None:
    for cls in (legacy.LegacyError, legacy.LegacyMixedError, legacy.LegacyInconsistentError,
                legacy.LegacyTooLargeError, legacy.Bc32Error):
        assert issubclass(cls, DecodeError)


def test_programmer_errors() -> None:
    with pytest.raises(ValueError):
        legacy.encode_pmofn("", 10)
    with pytest.raises(ValueError):
        legacy.encode_pmofn("abc", 0)
    with pytest.raises(ValueError):
        legacy.encode_urv1("Bad Type", b"\x40", 10)

"""The transport front door: format detection, assembly, mixing rules and same-format replies."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import cbor2
import pytest

from coldvault.errors import DecodeError
from coldvault.transport import assemble as t
from coldvault.transport import bbqr, legacy, ur
from coldvault.transport.formats import Received, ReplyHint, cbor_bytes, unwrap_cbor_bytes
from coldvault.transport.formats import TransportFormat as F
from coldvault.transport.reply import encode_reply, reply_to

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BCUR = json.loads((VECTORS / "bcur.json").read_text())
REGISTRY = json.loads((VECTORS / "ur_registry.json").read_text())
PSBT = (VECTORS / "bbqr" / "1in100out.psbt").read_bytes()  # 4,142 bytes
SMALL_PSBT = (VECTORS / "bbqr" / "1in2out.psbt").read_bytes()


def _assemble(frames: list[str], **kwargs: int) -> Received:
    assembler = t.Assembler(**kwargs)
    for frame in frames:
        progress = assembler.feed(frame)
        if progress.complete:
            break
    assert assembler.is_complete
    return assembler.result()


# --------------------------------------------------------------------------- official vectors


def test_bcur_multipart_vector_assembles() -> None:
    case = BCUR["ur_encoder_multipart"]
    received = _assemble([p.upper() for p in case["expected_parts"]])
    assert received.format is F.UR
    assert received.ur_type == "bytes"
    assert received.payload.hex() == case["cbor_hex"]
    assert received.fragment_hint.wire_type == "bytes"
    assert received.fragment_hint.frame_count == 9


def test_bcur_single_part_vector() -> None:
    case = BCUR["single_part_ur"]
    received = _assemble([case["expected_ur"]])
    assert received.format is F.UR and received.payload.hex() == case["cbor_hex"]
    assert received.content == bytes.fromhex(case["message"]["hex"])


@pytest.mark.parametrize("case", REGISTRY["keystone"]["eth-sign-request"]
                         + REGISTRY["keystone"]["sol-sign-request"]
                         + REGISTRY["keystone"]["crypto-psbt"], ids=lambda c: c["name"])
def test_registry_urs_keep_type_and_cbor(case: dict[str, str]) -> None:
    received = _assemble([case["ur"].upper()])
    assert received.ur_type == case["ur_type"]
    assert received.payload.hex() == case["cbor_hex"]
    assert received.cbor.hex() == case["cbor_hex"]


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("ur:crypto-psbt/1-3/lpadaxcfaxiacyvwhdfhdcloykiagh", F.UR),
        ("UR:BYTES/HDEYMEJTSWHHYLKEPMYKHH", F.UR),
        ("ur:bytes/1of3/" + "q" * 59 + "/tyq3wurnvf", F.URV1),
        ("B$ZP0800ABCDEFGH", F.BBQR),
        ("p1of3 cHNidP8BAH", F.PMOFN),
        ("cHNidP8BAHEBAAAA", F.PLAIN_BASE64),
        ("70736274FF0100", F.PLAIN_HEX),
    ],
)
def test_detect_format(text: str, fmt: F) -> None:
    assert t.detect_format(text) is fmt


@pytest.mark.parametrize("text", ["", "   ", "hello world", "bitcoin:bc1q...", "{\"a\": 1}"])
def test_unknown_first_frame(text: str) -> None:
    with pytest.raises(t.UnknownFormat):
        t.Assembler().feed(text)


# --------------------------------------------------------------------------- each format in


def test_bbqr_in() -> None:
    split = bbqr.split(PSBT, "P", encoding="Z", max_version=15)
    frames = list(split.parts)
    random.Random(1).shuffle(frames)
    received = _assemble(frames)
    assert (received.format, received.ur_type, received.payload) == (F.BBQR, "crypto-psbt", PSBT)
    assert received.content == PSBT and received.cbor == cbor2.dumps(PSBT)
    assert received.fragment_hint.bbqr_file_type == "P"
    assert received.fragment_hint.bbqr_encoding == "Z"


def test_real_scan_bbqr_text_file() -> None:
    lines = [x for x in (VECTORS / "bbqr" / "real-scan.txt").read_text().splitlines() if x]
    received = _assemble(lines)
    assert received.format is F.BBQR and received.ur_type == "text"
    assert received.payload.startswith(b"# The BBQr Protocol")


def test_pmofn_in() -> None:
    frames = legacy.encode_pmofn(base64.b64encode(PSBT).decode(), 400)
    received = _assemble(frames[::-1])
    assert (received.format, received.ur_type, received.payload) == (F.PMOFN, "crypto-psbt", PSBT)


def test_pmofn_text_in() -> None:
    received = _assemble(["p2of2 world", "p1of2 hello "])
    assert (received.ur_type, received.payload) == ("text", b"hello world")


def test_urv1_bytes_psbt_in_normalised() -> None:
    frames = legacy.encode_urv1("bytes", cbor2.dumps(PSBT), 300)
    received = _assemble([f.upper() for f in frames])
    assert received.format is F.URV1
    assert received.ur_type == "crypto-psbt"
    assert received.fragment_hint.wire_type == "bytes"
    assert received.content == PSBT


def test_ur_psbt_type_normalised() -> None:
    text = ur.encode_single(ur.UR("psbt", cbor2.dumps(SMALL_PSBT)))
    received = _assemble([text.upper()])
    assert received.ur_type == "crypto-psbt" and received.content == SMALL_PSBT
    assert received.fragment_hint.wire_type == "psbt"


@pytest.mark.parametrize("encode", [lambda b: base64.b64encode(b).decode(),
                                    lambda b: b.hex(), lambda b: b.hex().upper()])
def test_plain_single_frame(encode) -> None:  # type: ignore[no-untyped-def]
    received = _assemble([encode(SMALL_PSBT)])
    assert received.format in (F.PLAIN_BASE64, F.PLAIN_HEX)
    assert received.ur_type == "crypto-psbt" and received.payload == SMALL_PSBT


def test_plain_bad_base64() -> None:
    with pytest.raises(t.UnknownFormat):
        t.Assembler().feed("cHNidP8B*AAA")


# --------------------------------------------------------------------------- progress & mixing


def test_progress_and_repeats() -> None:
    frames = list(bbqr.split(PSBT, "P", encoding="H", max_version=10).parts)
    assembler = t.Assembler()
    first = assembler.feed(frames[0])
    assert (first.format, first.parts_received, first.parts_expected) == (F.BBQR, 1, len(frames))
    assert first.accepted and not first.complete
    assert 0 < first.percent < 100
    again = assembler.feed(frames[0])
    assert not again.accepted and again.parts_received == 1
    with pytest.raises(ValueError):
        assembler.result()
    for frame in frames[1:]:
        last = assembler.feed(frame)
    assert last.complete and last.percent == 100.0
    assert assembler.result().payload == PSBT
    assert not assembler.feed(frames[2]).accepted  # after completion: harmless


def test_mixed_format_rejected_and_state_kept() -> None:
    frames = list(bbqr.split(PSBT, "P", encoding="H", max_version=10).parts)
    assembler = t.Assembler()
    assembler.feed(frames[0])
    with pytest.raises(t.MixedFormatError) as info:
        assembler.feed("p1of2 abc")
    assert info.value.expected == "bbqr" and info.value.got == "pmofn"
    with pytest.raises(t.MixedFormatError):
        assembler.feed(BCUR["single_part_ur"]["expected_ur"])
    for frame in frames[1:]:
        assembler.feed(frame)
    assert assembler.result().payload == PSBT


def test_mixed_message_rejected() -> None:
    one = list(bbqr.split(PSBT, "P", encoding="H", max_version=10).parts)
    two = list(bbqr.split(SMALL_PSBT, "T", encoding="H", max_version=5).parts)
    assembler = t.Assembler()
    assembler.feed(one[0])
    with pytest.raises(t.MixedMessageError):
        assembler.feed(two[1])


def test_mixed_ur_messages_rejected() -> None:
    a = ur.UREncoder(ur.UR("crypto-psbt", cbor2.dumps(PSBT)), 200)
    b = ur.UREncoder(ur.UR("crypto-psbt", cbor2.dumps(PSBT[:-1] + b"\x01")), 200)
    c = ur.UREncoder(ur.UR("bytes", cbor2.dumps(PSBT)), 200)
    assembler = t.Assembler()
    assembler.feed(a.next_part())
    with pytest.raises(t.MixedMessageError):
        assembler.feed(b.next_part())
    with pytest.raises(t.MixedMessageError):
        assembler.feed(c.next_part())
    with pytest.raises(t.MixedMessageError):
        assembler.feed(ur.encode_single(ur.UR("crypto-psbt", cbor2.dumps(b"x"))))


def test_mixed_plain_rejected() -> None:
    assembler = t.Assembler()
    assembler.feed(SMALL_PSBT.hex())
    assert not assembler.feed(SMALL_PSBT.hex()).accepted
    with pytest.raises(t.MixedMessageError):
        assembler.feed((SMALL_PSBT + b"\x00").hex())


def test_reset_starts_over() -> None:
    assembler = t.Assembler()
    assembler.feed("p1of2 hello")
    assembler.reset()
    assert assembler.format is None and not assembler.is_complete
    assembler.feed(SMALL_PSBT.hex())
    assert assembler.result().payload == SMALL_PSBT


def test_size_bounds() -> None:
    with pytest.raises(t.PayloadTooLarge):
        t.Assembler(max_message_len=100).feed(SMALL_PSBT.hex())
    big = bbqr.split(PSBT, "P", encoding="H", max_version=40).parts
    with pytest.raises(bbqr.BbqrTooLargeError):
        for frame in big:
            t.Assembler(max_message_len=1000).feed(frame)
    frames = ur.UREncoder(ur.UR("crypto-psbt", cbor2.dumps(PSBT)), 200)
    with pytest.raises(DecodeError):
        t.Assembler(max_message_len=1000).feed(frames.next_part())


# --------------------------------------------------------------------------- replies


@pytest.mark.parametrize("fmt", list(F))
@pytest.mark.parametrize("payload_form", ["raw", "cbor"])
def test_reply_roundtrip_every_format(fmt: F, payload_form: str) -> None:
    payload = PSBT if payload_form == "raw" else cbor2.dumps(PSBT)
    stream = encode_reply(fmt, "crypto-psbt", payload, max_fragment_len=300)
    if fmt is F.UR:
        assert stream.is_endless and stream.frame_count is None
        frames = stream.frames(stream.parts_needed * 2)
        assert all(f == f.upper() and f.startswith("UR:CRYPTO-PSBT/") for f in frames)
    else:
        assert stream.frame_count == len(stream.frames()) >= 2
        frames = stream.frames()
    if fmt in (F.BBQR, F.URV1):
        assert all(f == f.upper() for f in frames)
    received = _assemble(frames)
    expected_format = F.PMOFN if fmt in (F.PLAIN_BASE64, F.PLAIN_HEX) else fmt
    assert received.format is expected_format
    assert received.ur_type == "crypto-psbt"
    assert received.content == PSBT


def test_reply_plain_small_stays_single_frame() -> None:
    for fmt, expected in ((F.PLAIN_BASE64, base64.b64encode(SMALL_PSBT).decode()),
                          (F.PLAIN_HEX, SMALL_PSBT.hex().upper())):
        stream = encode_reply(fmt, "crypto-psbt", SMALL_PSBT)
        assert stream.frames() == [expected]


def test_reply_single_ur_is_finite() -> None:
    stream = encode_reply(F.UR, "crypto-psbt", SMALL_PSBT, max_fragment_len=2000)
    assert stream.frame_count == 1 and not stream.is_endless
    assert stream.frames() == [ur.encode_single(ur.UR("crypto-psbt", cbor2.dumps(SMALL_PSBT)))
                               .upper()]


def test_reply_to_mirrors_request() -> None:
    request = legacy.encode_urv1("bytes", cbor2.dumps(PSBT), 300)
    received = _assemble(request)
    stream = reply_to(received, PSBT)
    frames = stream.frames()
    assert frames[0].startswith("UR:BYTES/1OF")
    assert len(frames) == len(request)
    bbqr_request = bbqr.split(PSBT, "P", encoding="H", max_version=12).parts
    received = _assemble(list(bbqr_request))
    reply = reply_to(received, PSBT).frames()
    assert reply[0].startswith("B$ZP") or reply[0].startswith("B$2P")
    assert bbqr.join(reply).data == PSBT


def test_reply_ur_fountain_is_endless_and_decodes_with_loss() -> None:
    stream = encode_reply(F.UR, "crypto-psbt", PSBT, max_fragment_len=200)
    rng = random.Random(9)
    assembler = t.Assembler()
    shown = 0
    for frame in stream:
        shown += 1
        if rng.random() < 0.3:
            continue
        if assembler.feed(frame).complete:
            break
        assert shown < 10 * stream.parts_needed
    assert assembler.result().content == PSBT


def test_reply_cycle_loops_finite_frames() -> None:
    stream = encode_reply(F.BBQR, "crypto-psbt", PSBT, max_fragment_len=500)
    cycle = stream.cycle()
    count = stream.frame_count or 0
    first = [next(cycle) for _ in range(count)]
    assert [next(cycle) for _ in range(count)] == first


def test_reply_programmer_errors() -> None:
    with pytest.raises(ValueError):
        encode_reply(F.UR, "crypto-psbt", b"")
    with pytest.raises(ValueError):
        encode_reply(F.UR, "crypto-psbt", PSBT, max_fragment_len=5)
    with pytest.raises(ValueError):
        encode_reply(F.UR, "crypto-psbt", PSBT, max_fragment_len=100).frames()


def test_cbor_bytes_helpers() -> None:
    for size in (0, 23, 24, 255, 256, 65535, 65536):
        data = bytes(size)
        assert cbor_bytes(data) == cbor2.dumps(data)
        assert unwrap_cbor_bytes(cbor2.dumps(data)) == data
    assert unwrap_cbor_bytes(b"") is None
    assert unwrap_cbor_bytes(b"\x58") is None
    assert unwrap_cbor_bytes(cbor2.dumps(b"ab") + b"x") is None
    assert unwrap_cbor_bytes(cbor2.dumps([1])) is None


def test_reply_type_follows_the_answer_not_the_request() -> None:
    eth_sig = cbor2.dumps({1: b"\x01" * 16, 2: b"\x02" * 65})
    v1_request_hint = ReplyHint(F.URV1, wire_type="bytes", fragment_len=100)
    frames = encode_reply(F.URV1, "eth-signature", eth_sig, hint=v1_request_hint).frames()
    assert all(f.startswith("UR:ETH-SIGNATURE/") for f in frames)
    assert _assemble(frames).payload == eth_sig
    psbt_frames = encode_reply(F.URV1, "crypto-psbt", PSBT, hint=v1_request_hint).frames()
    assert psbt_frames[0].startswith("UR:BYTES/")
    bbqr_hint = ReplyHint(F.BBQR, bbqr_file_type="P", fragment_len=800)
    tx = bytes.fromhex((VECTORS / "bbqr" / "devils-txn.txn").read_text())
    reply = encode_reply(F.BBQR, "bitcoin-transaction", tx, hint=bbqr_hint).frames()
    assert reply[0][3] == "T" and bbqr.join(reply).data == tx

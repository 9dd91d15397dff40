"""UR single/multipart strings, UREncoder and URDecoder against bcur.json."""

from __future__ import annotations

import json
import random
from pathlib import Path

import cbor2
import pytest

from coldvault.transport import ur as urmod
from coldvault.transport.bytewords import ChecksumMismatch, InvalidWord
from coldvault.transport.fountain import InconsistentPart, LimitExceeded, MalformedPart
from coldvault.transport.ur import (
    UR,
    InvalidScheme,
    InvalidSequence,
    InvalidType,
    NotSinglePart,
    SequenceMismatch,
    TooLong,
    TypeMismatch,
    TypeUnspecified,
    UnexpectedSinglePart,
    URDecoder,
    UREncoder,
    decode_single,
    encode_single,
    parse_ur,
)
from coldvault.transport.xoshiro import Xoshiro256

V = json.loads((Path(__file__).parents[1] / "vectors" / "bcur.json").read_text())
D = V["decoder"]
ERROR_KINDS = {
    "InvalidScheme": InvalidScheme,
    "TypeUnspecified": TypeUnspecified,
    "InvalidCharacters": InvalidType,
    "InvalidIndices": InvalidSequence,
}


def make_ur(length: int, seed: str = "Wolf") -> UR:
    """notes.message_generation: make_message_ur(len, seed)."""
    return UR("bytes", cbor2.dumps(Xoshiro256(seed).next_data(length)))


def test_single_part_ur() -> None:
    case = V["single_part_ur"]
    ur = make_ur(case["message"]["make_message"]["len"])
    assert ur.cbor.hex() == case["cbor_hex"]
    assert encode_single(ur) == case["expected_ur"]
    assert decode_single(case["expected_ur"]) == ur
    encoder = UREncoder(ur, 1000)
    assert encoder.is_single and encoder.seq_len == 1
    assert encoder.next_part() == case["expected_ur"]
    assert encoder.next_part() == case["expected_ur"]
    decoder = URDecoder()
    assert decoder.receive_part(case["expected_ur"]) is True
    assert decoder.is_complete and decoder.result == ur
    assert decoder.expected_parts == 1 and decoder.received_parts == 1
    assert decoder.estimated_percent == 100.0


def test_multipart_encoder_vector() -> None:
    case = V["ur_encoder_multipart"]
    ur = make_ur(case["message"]["make_message"]["len"])
    assert ur.cbor.hex() == case["cbor_hex"]
    encoder = UREncoder(
        ur, case["max_fragment_len"], case["min_fragment_len"], case["first_seq_num"]
    )
    assert not encoder.is_single
    assert [encoder.next_part() for _ in case["expected_parts"]] == case["expected_parts"]


def test_multipart_vector_parts_decode() -> None:
    case = V["ur_encoder_multipart"]
    decoder = URDecoder()
    for text in case["expected_parts"]:
        decoder.receive_part(text)
        if decoder.is_complete:
            break
    assert decoder.result.cbor.hex() == case["cbor_hex"]


def test_custom_type_example() -> None:
    case = D["custom_type_multipart_example"]
    ur = UR(case["ur_type"], case["message_utf8"].encode())
    encoder = UREncoder(
        ur, case["max_fragment_len"], case["min_fragment_len"], case["first_seq_num"]
    )
    assert encoder.next_part() == case["expected_first_part"]
    # With the BC default minimum fragment length the 10-byte payload is single-part.
    assert UREncoder(ur, case["max_fragment_len"]).is_single


def test_multipart_roundtrip_32767() -> None:
    case = D["multipart_ur_roundtrip"]
    ur = make_ur(case["message"]["make_message_ur"]["len"])
    encoder = UREncoder(ur, case["max_fragment_len"], first_seq_num=case["first_seq_num"])
    decoder = URDecoder()
    while not decoder.is_complete:
        decoder.receive_part(encoder.next_part())
    assert decoder.result == ur
    assert decoder.estimated_percent == 100.0
    assert decoder.received_parts == decoder.expected_parts == encoder.seq_len


@pytest.mark.parametrize("case", D["ur_string_cases"], ids=lambda c: c["input"])
def test_ur_string_cases(case: dict) -> None:
    text = case["input"]
    if case.get("valid") is False:
        with pytest.raises(ERROR_KINDS[case["error_kind"]]):
            parse_ur(text)
        with pytest.raises(ERROR_KINDS[case["error_kind"]]):
            URDecoder().receive_part(text)
        return
    parsed = parse_ur(text)
    if case.get("kind") == "multi-part":
        assert parsed.is_multipart and (parsed.seq_num, parsed.seq_len) == (1, 2)
        assert parsed.payload == b"data"
        with pytest.raises(NotSinglePart):
            decode_single(text)
        with pytest.raises(MalformedPart):
            URDecoder().receive_part(text)
        return
    # ur-rs treats the body as the raw message; here it is the UR's CBOR bytes.
    assert not parsed.is_multipart
    assert parsed.payload.hex() == case["message_hex"]
    assert decode_single(text) == UR(text.split(":")[1].split("/")[0].lower(),
                                     bytes.fromhex(case["message_hex"]))


def test_uppercase_multipart_stream() -> None:
    ur = make_ur(2000)
    encoder = UREncoder(ur, 120)
    decoder = URDecoder()
    while not decoder.is_complete:
        decoder.receive_part(encoder.next_part().upper() + "\n")
    assert decoder.result == ur


def test_decoder_with_loss_reorder_duplicates() -> None:
    rnd = random.Random(11)
    ur = UR("crypto-psbt", cbor2.dumps(Xoshiro256("psbt").next_data(35_000)))
    encoder = UREncoder(ur, 250)
    stream = [encoder.next_part() for _ in range(int(encoder.seq_len * 2.2))]
    frames = [s for s in stream if rnd.random() >= 0.3]
    frames += rnd.sample(frames, 20)
    rnd.shuffle(frames)
    decoder = URDecoder()
    progress = []
    for text in frames:
        decoder.receive_part(text)
        progress.append(decoder.estimated_percent)
        if decoder.is_complete:
            break
    assert decoder.result == ur
    assert progress == sorted(progress) and progress[-1] == 100.0
    assert decoder.ur_type == "crypto-psbt"


def test_decoder_progress_and_duplicates() -> None:
    encoder = UREncoder(make_ur(1000), 100)
    first = encoder.next_part()
    decoder = URDecoder()
    assert decoder.expected_parts == 0 and decoder.estimated_percent == 0.0
    assert decoder.receive_part(first) is True
    assert decoder.receive_part(first.upper()) is False
    assert decoder.expected_parts == encoder.seq_len
    assert decoder.received_parts == 1
    assert decoder.estimated_percent == pytest.approx(100.0 / encoder.seq_len)
    with pytest.raises(ValueError):
        decoder.result  # noqa: B018


def test_decoder_rejects_other_type_and_other_message() -> None:
    a = UREncoder(make_ur(1000), 100)
    decoder = URDecoder()
    decoder.receive_part(a.next_part())
    other_type = UREncoder(UR("crypto-psbt", make_ur(1000).cbor), 100).next_part()
    with pytest.raises(TypeMismatch):
        decoder.receive_part(other_type)
    with pytest.raises(InconsistentPart):
        decoder.receive_part(UREncoder(make_ur(1000, "Fox"), 100).next_part())
    with pytest.raises(UnexpectedSinglePart):
        decoder.receive_part(encode_single(make_ur(20)))
    assert decoder.received_parts == 1


def test_decoder_rejects_sequence_mismatch() -> None:
    text = UREncoder(make_ur(1000), 100).next_part()
    forged = text.replace("/1-", "/2-", 1)
    with pytest.raises(SequenceMismatch):
        URDecoder().receive_part(forged)


def test_decoder_damaged_body() -> None:
    text = UREncoder(make_ur(1000), 100).next_part()
    body_start = text.rindex("/") + 1
    flipped = text[: body_start + 10] + ("ae" if text[body_start + 10 : body_start + 12]
                                         != "ae" else "ad") + text[body_start + 12 :]
    with pytest.raises(ChecksumMismatch):
        URDecoder().receive_part(flipped)
    with pytest.raises(InvalidWord):
        URDecoder().receive_part(text[:-1])


def test_decoder_limits() -> None:
    big = UREncoder(make_ur(5000), 1000).next_part()
    with pytest.raises(LimitExceeded):
        URDecoder(max_message_len=4000).receive_part(big)
    with pytest.raises(LimitExceeded):
        URDecoder(max_message_len=10).receive_part(encode_single(make_ur(20)))
    with pytest.raises(TooLong):
        URDecoder(max_message_len=10).receive_part("ur:bytes/" + "ae" * 10_000)
    with pytest.raises(TooLong):
        parse_ur("ur:bytes/aeadaolazmjendeoti", max_len=10)


def test_ur_type_validation() -> None:
    assert urmod.is_valid_type("crypto-psbt") and urmod.is_valid_type("whatever-12")
    for bad in ["", "Bytes", "a_b", "a/b", "x" * 65]:
        assert not urmod.is_valid_type(bad)
        with pytest.raises(ValueError):
            UR(bad, b"\x40")
    with pytest.raises(ValueError):
        UR("bytes", b"")
    with pytest.raises(InvalidType):
        parse_ur("ur:by_tes/aeadaolazmjendeoti")


def test_first_seq_num_and_fragment_len() -> None:
    encoder = UREncoder(make_ur(1000), 100, first_seq_num=41)
    assert encoder.next_part().startswith(f"ur:bytes/42-{encoder.seq_len}/")
    assert encoder.seq_num == 42 and encoder.fragment_len <= 100

"""Fuzz the UR decoder and registry: only ColdvaultError subclasses may escape, and
announced sizes are refused before memory is committed to them."""

from __future__ import annotations

import os
import tracemalloc

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldvault.errors import ColdvaultError
from coldvault.transport import bytewords
from coldvault.transport.fountain import LimitExceeded, Part
from coldvault.transport.registry import decode_registry
from coldvault.transport.registry.codec import DECODERS
from coldvault.transport.ur import UR, URDecoder, UREncoder, encode_single
from coldvault.transport.xoshiro import Xoshiro256

#: Raise COLDVAULT_FUZZ_EXAMPLES for a longer local fuzzing run.
FUZZ = settings(
    max_examples=int(os.environ.get("COLDVAULT_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MESSAGE = UR("crypto-psbt", cbor2.dumps(Xoshiro256("fuzz").next_data(600)))
_ENCODER = UREncoder(MESSAGE, 60)
STREAM = [_ENCODER.next_part() for _ in range(30)]
TYPES = sorted(DECODERS)


def feed(decoder: URDecoder, text: str) -> None:
    try:
        decoder.receive_part(text)
    except ColdvaultError:
        pass


def part_text(ur_type: str, seq: tuple[int, int] | None, payload: bytes) -> str:
    body = bytewords.encode(payload)
    if seq is None:
        return f"ur:{ur_type}/{body}"
    return f"ur:{ur_type}/{seq[0]}-{seq[1]}/{body}"


# ----------------------------------------------------------------- transport


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    feed(URDecoder(), text)
    feed(URDecoder(), "ur:" + text)
    feed(URDecoder(), "ur:bytes/" + text)


@FUZZ
@given(
    st.lists(st.sampled_from(range(len(STREAM))), min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 10_000), st.characters(), st.sampled_from("rid")),
             max_size=4),
)
def test_mutated_parts(order: list[int], edits: list[tuple[int, str, str]]) -> None:
    decoder = URDecoder()
    for i, index in enumerate(order):
        text = STREAM[index]
        if i < len(edits):
            pos, ch, op = edits[i]
            pos %= len(text)
            text = {
                "r": text[:pos] + ch + text[pos + 1 :],
                "i": text[:pos] + ch + text[pos:],
                "d": text[:pos] + text[pos + 1 :],
            }[op]
        feed(decoder, text)
    if decoder.is_success and decoder.result.type == MESSAGE.type:
        # (A damaged '/' can turn a part into a single-part UR of another type; the CRC
        # covers only the body. The registry then refuses the unknown type.)
        assert decoder.result == MESSAGE


@FUZZ
@given(
    st.binary(max_size=200),
    st.one_of(st.none(), st.tuples(st.integers(1, 2**32 - 1), st.integers(1, 2**32 - 1))),
)
def test_valid_checksum_random_payload(payload: bytes, seq: tuple[int, int] | None) -> None:
    """Bytewords CRC passes, so the part CBOR parser and fountain decoder are exercised."""
    decoder = URDecoder()
    feed(decoder, STREAM[0])
    feed(decoder, part_text("crypto-psbt", seq, payload))
    feed(URDecoder(), part_text("crypto-psbt", seq, payload))


@FUZZ
@given(
    st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1), st.binary(max_size=80), st.booleans(),
)
def test_forged_part_headers(
    seq_num: int, seq_len: int, message_len: int, checksum: int, data: bytes, started: bool
) -> None:
    decoder = URDecoder(max_message_len=100_000)
    if started:
        feed(decoder, STREAM[1])
    cbor = Part(seq_num, seq_len, message_len, checksum, data).to_cbor()
    feed(decoder, part_text("crypto-psbt", (max(seq_num, 1), max(seq_len, 1)), cbor))
    assert decoder.expected_parts <= 100_000


def test_huge_announcements_refused_up_front() -> None:
    tracemalloc.start()
    try:
        for seq_len, message_len in [(2**32 - 1, 2**32 - 1), (4097, 4097), (1, 2**31)]:
            cbor = Part(1, seq_len, message_len, 0, b"x").to_cbor()
            with pytest.raises(LimitExceeded):
                URDecoder().receive_part(part_text("bytes", (1, seq_len), cbor))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_decoder_memory_is_bounded_by_message() -> None:
    """A full transfer at the default limits holds about the message size, not more."""
    big = UR("bytes", cbor2.dumps(Xoshiro256("big").next_data(200_000)))
    encoder = UREncoder(big, 400)
    decoder = URDecoder()
    tracemalloc.start()
    try:
        for _ in range(encoder.seq_len - 1):
            decoder.receive_part(encoder.next_part())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 200_000
    decoder.receive_part(encoder.next_part())
    assert decoder.result == big


# ----------------------------------------------------------------- registry

_TAGS = [37, 1, 100, 303, 304, 305, 306, 308, 310, 400, 401, 403, 404, 406, 409, 410, 40303]
_LEAVES = st.one_of(
    st.integers(-(2**64), 2**64 - 1), st.binary(max_size=40), st.text(max_size=10),
    st.booleans(), st.none(), st.floats(allow_nan=False),
)
_CBOR_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.integers(0, 12), inner, max_size=6),
        st.builds(cbor2.CBORTag, st.sampled_from(_TAGS), inner),
    ),
    max_leaves=25,
)


def decode_safely(ur: UR) -> None:
    try:
        decode_registry(ur)
    except ColdvaultError:
        pass


@FUZZ
@given(st.sampled_from(TYPES), _CBOR_VALUES)
def test_registry_structured_values(ur_type: str, value: object) -> None:
    decode_safely(UR(ur_type, cbor2.dumps(value)))


@FUZZ
@given(st.sampled_from(TYPES), st.binary(min_size=1, max_size=200))
def test_registry_random_bytes(ur_type: str, data: bytes) -> None:
    decode_safely(UR(ur_type, data))


_VALID = [
    UR("eth-sign-request", bytes.fromhex(
        "a601d825509b1deb4d3b7d4bad9bdd2b0d7b3dcb6d02584bf849808609184e72a00082271094000000"
        "000000000000000000000000000000000080a47f7465737432000000000000000000000000000000000"
        "0000000000000000000006000578080800301040105d90130a2018a182cf501f501f500f401f4021a12"
        "34567807686d6574616d61736b")),
    UR("crypto-output", bytes.fromhex(
        "d90193d9012fa503582102d2b36900396c9282fa14628566582f206a5dd0bcc8d5e892611806cafb03"
        "01f0045820637807030d55d01f9a0cb3a7839515d796bd07706386a6eddf06cc29a65a0e2906d90130"
        "a30186182cf500f500f5021ad34db33f030407d90130a1018401f480f4081a78412e3a")),
]


@FUZZ
@given(
    st.sampled_from(_VALID), st.sampled_from(TYPES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_registry_mutated_valid(base: UR, ur_type: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray(base.cbor)
    for pos, byte in flips:
        data[pos % len(data)] = byte
    decode_safely(UR(base.type, bytes(data)))
    decode_safely(UR(ur_type, bytes(data)))


def test_single_part_registry_through_decoder() -> None:
    decoder = URDecoder()
    decoder.receive_part(encode_single(_VALID[0]).upper())
    assert decode_registry(decoder.result).chain_id == 1


# ----------------------------------------------------------------- round-trip property


@FUZZ
@given(
    st.binary(min_size=1, max_size=3000),
    st.integers(5, 400),
    st.integers(1, 20),
    st.integers(0, 2**32 - 2),
    st.randoms(use_true_random=False),
)
def test_roundtrip_with_loss_and_reordering(
    payload: bytes, max_len: int, min_len: int, first: int, rnd
) -> None:
    ur = UR("bytes", cbor2.dumps(payload))
    encoder = UREncoder(ur, max_len, min_len, first)
    frames = [encoder.next_part() for _ in range(encoder.seq_len * 3 + 5)]
    kept = [f for f in frames if rnd.random() > 0.25] + frames[-3:]
    rnd.shuffle(kept)
    decoder = URDecoder()
    for text in kept + kept:
        decoder.receive_part(text if rnd.random() > 0.5 else text.upper())
        if decoder.is_complete:
            break
    if not decoder.is_complete:  # heavy loss: keep streaming, it must finish
        for _ in range(encoder.seq_len * 20):
            decoder.receive_part(encoder.next_part())
            if decoder.is_complete:
                break
    assert decoder.result == ur

"""Xoshiro256**, sampler, shuffle, fragment choice and fountain codes against bcur.json."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from coldvault.transport.bytewords import crc32
from coldvault.transport.fountain import (
    FountainDecoder,
    FountainEncoder,
    InconsistentPart,
    InvalidPart,
    LimitExceeded,
    MalformedPart,
    MessageChecksumError,
    Part,
    find_nominal_fragment_length,
    join,
    partition,
)
from coldvault.transport.xoshiro import (
    RandomSampler,
    Xoshiro256,
    choose_degree,
    choose_fragments,
    shuffled,
)

V = json.loads((Path(__file__).parents[1] / "vectors" / "bcur.json").read_text())


def make_message(length: int, seed: str = "Wolf") -> bytes:
    """notes.message_generation: Xoshiro256(seed).next_data(len)."""
    return Xoshiro256(seed).next_data(length)


def vector_message(spec: dict) -> bytes:
    gen = spec["make_message"]
    message = make_message(gen["len"], gen["seed"])
    if "hex" in spec:
        assert message.hex() == spec["hex"]
    return message


# ----------------------------------------------------------------- primitives


def test_sha256_vector() -> None:
    case = V["sha256"]
    assert hashlib.sha256(case["input_utf8"].encode()).hexdigest() == case["expected_hex"]


def test_make_message_matches_paper_crc() -> None:
    case = V["crc32"][2]
    assert make_message(1024).hex() == case["input_hex"]
    assert crc32(make_message(1024)) == case["expected_uint32"]


@pytest.mark.parametrize("case", V["xoshiro256"], ids=lambda c: c["name"])
def test_xoshiro(case: dict) -> None:
    seed = case["seed"]
    if seed["kind"] == "utf8_string":
        rng = Xoshiro256(seed["value"])
    else:
        assert crc32(seed["value"].encode()) == seed["crc32_uint32"]
        rng = Xoshiro256.from_uint32(seed["crc32_uint32"])
        assert Xoshiro256(bytes.fromhex(seed["seed_bytes_hex"])).next() == (
            Xoshiro256.from_uint32(seed["crc32_uint32"]).next()
        )
    if case["op"] == "next() % 100":
        assert [rng.next() % 100 for _ in range(case["count"])] == case["expected"]
    elif case["op"] == "next_int(1, 10)":
        assert [rng.next_int(1, 10) for _ in range(case["count"])] == case["expected"]
    else:
        assert [rng.next_data(10).hex() for _ in case["expected_hex"]] == case["expected_hex"]


def test_xor_vector() -> None:
    case = V["xor"]
    a, b = bytes.fromhex(case["a_hex"]), bytes.fromhex(case["b_hex"])
    assert Xoshiro256("Wolf").next_data(20) == a + b
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    assert x.to_bytes(len(a), "big").hex() == case["a_xor_b_hex"]


def test_random_sampler() -> None:
    case = V["random_sampler"]
    sampler = RandomSampler(case["probs"])
    rng = Xoshiro256(case["rng_seed"])
    draws = [sampler.next(rng.next_double) for _ in range(case["count"])]
    assert draws == case["expected"]
    assert [draws.count(i) for i in range(len(case["probs"]))] == case[
        "expected_counts_per_index"
    ]


def test_random_sampler_rejects_bad_weights() -> None:
    with pytest.raises(ValueError):
        RandomSampler([])
    with pytest.raises(ValueError):
        RandomSampler([0.0, 0.0])
    with pytest.raises(ValueError):
        RandomSampler([1.0, -1.0])


def test_shuffle_full_repeated() -> None:
    case = V["shuffle"][0]
    rng = Xoshiro256(case["rng_seed"])
    assert [shuffled(case["values"], rng) for _ in case["expected"]] == case["expected"]


def test_shuffle_prefix() -> None:
    case = V["shuffle"][1]
    got = [
        shuffled(case["values"], Xoshiro256(case["rng_seed"]), count)
        for count in range(1, len(case["expected"]) + 1)
    ]
    assert got == case["expected"]


def test_choose_degree_per_nonce() -> None:
    case = V["choose_degree"][0]
    got = [
        choose_degree(case["seq_len"], Xoshiro256(f"Wolf-{nonce}"))
        for nonce in range(1, len(case["expected"]) + 1)
    ]
    assert got == case["expected"]


def test_choose_degree_single_rng() -> None:
    case = V["choose_degree"][1]
    rng = Xoshiro256("Wolf")
    got = [choose_degree(case["seq_len"], rng) for _ in range(1000)]
    assert got[: len(case["expected"])] == case["expected"]
    counts = [got.count(d) for d in range(1, case["seq_len"] + 1)]
    assert counts == case["expected_counts_per_degree"]


def test_choose_fragments() -> None:
    case = V["choose_fragments"]
    message = vector_message(case["message"])
    assert crc32(message) == case["checksum_uint32"]
    got = [
        sorted(choose_fragments(seq_num, case["seq_len"], case["checksum_uint32"]))
        for seq_num in range(1, len(case["expected_indexes"]) + 1)
    ]
    assert got == case["expected_indexes"]


@pytest.mark.parametrize("case", V["find_nominal_fragment_length"])
def test_fragment_length(case: dict) -> None:
    got = find_nominal_fragment_length(
        case["message_len"], case["min_fragment_len"], case["max_fragment_len"]
    )
    assert got == case["expected"]


def test_fragment_length_matches_reference_search() -> None:
    """The closed form equals the reference's linear search for many inputs."""
    rnd = random.Random(7)
    for _ in range(2000):
        length = rnd.randint(1, 5000)
        lo = rnd.randint(1, 50)
        hi = rnd.randint(1, 400)
        expected = None
        for count in range(1, max(1, length // lo) + 1):
            expected = -(-length // count)
            if expected <= hi:
                break
        if expected is not None:
            assert find_nominal_fragment_length(length, lo, hi) == expected


def test_partition_and_join() -> None:
    case = V["partition_and_join"]
    message = vector_message(case["message"])
    frag_len = find_nominal_fragment_length(
        len(message), case["min_fragment_len"], case["max_fragment_len"]
    )
    assert frag_len == case["expected_fragment_len"]
    fragments = partition(message, frag_len)
    assert [f.hex() for f in fragments] == case["expected_fragments_hex"]
    assert join(fragments, len(message)) == message


# ----------------------------------------------------------------- parts


def test_part_cbor() -> None:
    case = V["part_cbor"]
    part = Part(
        case["seq_num"],
        case["seq_len"],
        case["message_len"],
        case["checksum_uint32"],
        bytes.fromhex(case["data_hex"]),
    )
    assert part.to_cbor().hex() == case["expected_cbor_hex"]
    assert Part.from_cbor(part.to_cbor()) == part


@pytest.mark.parametrize(
    "case", V["decoder"]["part_cbor_rejects"], ids=lambda c: c["reason"]
)
def test_part_cbor_rejects(case: dict) -> None:
    with pytest.raises(MalformedPart):
        Part.from_cbor(bytes.fromhex(case["cbor_hex"]))


@pytest.mark.parametrize("case", V["decoder"]["part_cbor_accepts"], ids=lambda c: c["note"])
def test_part_cbor_accepts(case: dict) -> None:
    part = Part.from_cbor(bytes.fromhex(case["cbor_hex"]))
    assert part.data == b"\x05"


@pytest.mark.parametrize("extra", ["ff", "00"])
def test_part_cbor_rejects_trailing_bytes(extra: str) -> None:
    with pytest.raises(MalformedPart):
        Part.from_cbor(bytes.fromhex(V["part_cbor"]["expected_cbor_hex"] + extra))


@pytest.mark.parametrize(
    "case", V["decoder"]["part_semantic_rejects"], ids=lambda c: c["reason"]
)
def test_part_semantic_rejects(case: dict) -> None:
    p = case["part"]
    part = Part(
        p["seq_num"], p["seq_len"], p["message_len"], p["checksum_uint32"],
        bytes.fromhex(p["data_hex"]),
    )
    assert part.to_cbor().hex() == case["cbor_hex"]
    decoder = FountainDecoder()
    with pytest.raises(InvalidPart):
        decoder.receive_cbor(bytes.fromhex(case["cbor_hex"]))
    assert decoder.seq_len == 0 and not decoder.is_complete


def test_message_checksum_failure() -> None:
    case = V["decoder"]["message_checksum_failure"]
    decoder = FountainDecoder()
    with pytest.raises(MessageChecksumError):
        decoder.receive_cbor(bytes.fromhex(case["cbor_hex"]))
    assert decoder.is_complete and not decoder.is_success
    with pytest.raises(MessageChecksumError):
        decoder.result  # noqa: B018
    assert decoder.receive_cbor(bytes.fromhex(case["cbor_hex"])) is False


# ----------------------------------------------------------------- encoder


def test_fountain_encoder_vector() -> None:
    case = V["fountain_encoder"]
    message = vector_message(case["message"])
    encoder = FountainEncoder(
        message, case["max_fragment_len"], case["min_fragment_len"], case["first_seq_num"]
    )
    assert encoder.seq_len == case["expected_seq_len"]
    assert encoder.fragment_len == case["expected_fragment_len"]
    for expected in case["expected_parts"]:
        part = encoder.next_part()
        assert part.seq_num == expected["seq_num"]
        assert part.seq_len == expected["seq_len"]
        assert part.message_len == expected["message_len"]
        assert part.checksum == expected["checksum_uint32"]
        assert part.data.hex() == expected["data_hex"]
        assert part.to_cbor().hex() == expected["cbor_hex"]


def test_fountain_encoder_is_complete() -> None:
    case = V["fountain_encoder"]
    encoder = FountainEncoder(vector_message(case["message"]), case["max_fragment_len"])
    emitted = 0
    while not encoder.is_complete:
        encoder.next_part()
        emitted += 1
    assert emitted == case["is_complete_after"]


# ----------------------------------------------------------------- decoder


def _roundtrip(case: dict, keep: callable) -> tuple[bytes, FountainDecoder, int]:
    message = vector_message(case["message"])
    encoder = FountainEncoder(
        message, case["max_fragment_len"], case["min_fragment_len"] if "min_fragment_len"
        in case else 10, case["first_seq_num"],
    )
    decoder = FountainDecoder()
    sent = 0
    while not decoder.is_complete:
        part = encoder.next_part()
        sent += 1
        if keep(sent):
            decoder.receive(part)
        assert sent < 10 * encoder.seq_len
    return message, decoder, sent


def test_decoder_roundtrip() -> None:
    case = V["decoder"]["fountain_roundtrip"]
    message, decoder, _ = _roundtrip(case, lambda n: True)
    assert decoder.result == message
    assert decoder.recovered_fragments == decoder.seq_len


def test_decoder_skip_every_other() -> None:
    case = V["decoder"]["fountain_roundtrip_skip_every_other"]
    message, decoder, _ = _roundtrip(case, lambda n: n % 2 == 1)
    assert decoder.result == message


@pytest.mark.parametrize("seed", range(5))
def test_decoder_loss_reorder_duplicates(seed: int) -> None:
    rnd = random.Random(seed)
    message = make_message(rnd.randint(2000, 9000), f"Wolf-{seed}")
    encoder = FountainEncoder(message, rnd.randint(40, 300))
    stream = [encoder.next_part() for _ in range(encoder.seq_len * 3)]
    kept = [p for p in stream if rnd.random() > 0.3]
    kept += rnd.sample(kept, len(kept) // 4)  # duplicates
    rnd.shuffle(kept)
    decoder = FountainDecoder()
    for part in kept:
        decoder.receive(part)
        if decoder.is_complete:
            break
    assert decoder.result == message


def test_decoder_duplicates_are_not_accepted_twice() -> None:
    encoder = FountainEncoder(make_message(500), 50)
    parts = [encoder.next_part() for _ in range(3)]
    decoder = FountainDecoder()
    assert decoder.receive(parts[0]) is True
    assert decoder.receive(parts[0]) is False
    assert decoder.receive(parts[1]) is True
    assert decoder.recovered_fragments == 2 and decoder.rank == 2


def test_decoder_completes_from_mixed_parts_only() -> None:
    message = make_message(3000)
    encoder = FountainEncoder(message, 100)
    for _ in range(encoder.seq_len):
        encoder.next_part()  # drop every plain fragment
    decoder = FountainDecoder()
    while not decoder.is_complete:
        decoder.receive(encoder.next_part())
    assert decoder.result == message


def test_decoder_35kb_psbt_sized_with_loss_is_fast() -> None:
    import time

    message = make_message(35_000, "psbt")
    encoder = FountainEncoder(message, 100)
    decoder = FountainDecoder()
    rnd = random.Random(3)
    start = time.perf_counter()
    sent = 0
    while not decoder.is_complete:
        part = encoder.next_part()
        sent += 1
        if rnd.random() >= 0.3:
            decoder.receive(part)
    assert decoder.result == message
    assert sent < 2 * encoder.seq_len
    assert time.perf_counter() - start < 5


def _part_of(message: bytes, max_len: int = 30, seq: int = 1) -> Part:
    encoder = FountainEncoder(message, max_len)
    for _ in range(seq - 1):
        encoder.next_part()
    return encoder.next_part()


@pytest.mark.parametrize("field", ["part count", "message length", "checksum", "fragment length"])
def test_decoder_rejects_other_message(field: str) -> None:
    decoder = FountainDecoder()
    decoder.receive(_part_of(make_message(256)))
    other = {
        "part count": _part_of(make_message(256), 60),
        "message length": _part_of(make_message(255)),
        "checksum": _part_of(make_message(256, "Fox")),
    }.get(field)
    if other is None:  # same header, different data length
        base = _part_of(make_message(256), seq=2)
        other = Part(base.seq_num, base.seq_len, base.message_len, base.checksum, base.data[:-1])
    with pytest.raises(InconsistentPart) as info:
        decoder.receive(other)
    assert info.value.field == field
    assert decoder.rank == 1  # state unchanged


def test_decoder_limits_refused_up_front() -> None:
    decoder = FountainDecoder(max_message_len=1000, max_fragments=10)
    with pytest.raises(LimitExceeded) as info:
        decoder.receive(Part(1, 1, 2**32 - 1, 0, b"x"))
    assert info.value.field == "message length"
    with pytest.raises(LimitExceeded) as info:
        decoder.receive(Part(1, 100, 1000, 0, b"x" * 10))
    assert info.value.field == "part count"
    with pytest.raises(InvalidPart):  # data longer than the whole message
        decoder.receive(Part(1, 1, 10, 0, b"x" * 500))
    with pytest.raises(InvalidPart):  # fragment length inconsistent with seqLen
        decoder.receive(Part(1, 3, 100, 0, b"x" * 10))
    assert decoder.seq_len == 0


def test_encoder_programmer_errors() -> None:
    with pytest.raises(ValueError):
        FountainEncoder(b"", 10)
    with pytest.raises(ValueError):
        FountainEncoder(b"abc", 0)
    # min wins over max when they conflict (reference behaviour): one 10-byte fragment
    assert FountainEncoder(b"0123456789", 5, 10).seq_len == 1

"""Bytewords (BCR-2020-012) and CRC32 against the BC-UR vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldvault.errors import DecodeError
from coldvault.transport import bytewords
from coldvault.transport.bytewords import ChecksumMismatch, InvalidWord, Style, TooLong, TooShort

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "bcur.json").read_text())
CASES = VECTORS["bytewords"]["cases"]
REJECT_ERRORS = {"bad checksum": ChecksumMismatch, "too short": TooShort}


def test_table_matches_vectors() -> None:
    assert list(bytewords.WORDS) == VECTORS["bytewords_table"]
    assert len(set(bytewords.MINIMAL)) == 256


@pytest.mark.parametrize("case", VECTORS["crc32"], ids=lambda c: c["source"])
def test_crc32(case: dict) -> None:
    data = (
        case["input_utf8"].encode() if "input_utf8" in case else bytes.fromhex(case["input_hex"])
    )
    assert bytewords.crc32(data) == case["expected_uint32"]
    assert bytewords.crc32(data).to_bytes(4, "big").hex() == case["expected_hex"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_encode_decode_all_styles(case: dict) -> None:
    data = bytes.fromhex(case["input_hex"])
    for style in ("standard", "uri", "minimal"):
        if style not in case:
            # uri is the standard words joined by '-'
            expected = case["standard"].replace(" ", "-")
        else:
            expected = case[style]
        assert bytewords.encode(data, style) == expected
        assert bytewords.decode(expected, style) == data
        assert bytewords.decode(expected.upper(), style) == data
    if "crc32_hex" in case:
        assert bytewords.crc32(data).to_bytes(4, "big").hex() == case["crc32_hex"]


@pytest.mark.parametrize(
    "case", VECTORS["bytewords"]["rejects"], ids=lambda c: c["input"] or "empty"
)
def test_rejects(case: dict) -> None:
    with pytest.raises(REJECT_ERRORS[case["reason"]]):
        bytewords.decode(case["input"], case["style"])


@pytest.mark.parametrize(
    ("text", "style"),
    [
        ("able acid also lava zoom jade need echo tax", Style.STANDARD),  # not a word
        ("able-acid-also-lava-zoom-jade-need-echo-taxi-", Style.URI),  # empty word
        ("able acid  also lava zoom jade need echo taxi", Style.STANDARD),  # double space
        ("aeadaolazmjendeot", Style.MINIMAL),  # odd length
        ("aeadaolazmjendeoqq", Style.MINIMAL),  # unknown pair
        ("ab1e acid also lava zoom jade need echo taxi", Style.STANDARD),
    ],
)
def test_invalid_words(text: str, style: Style) -> None:
    with pytest.raises(InvalidWord) as info:
        bytewords.decode(text, style)
    assert isinstance(info.value, DecodeError)
    assert "position" in str(info.value)


def test_middle_letters_checked_for_full_words() -> None:
    # 'tuna' is a word; 'tina' shares first and last letters but is not.
    assert bytewords.decode(bytewords.encode(b"\xd9", "standard"), "standard") == b"\xd9"
    with pytest.raises(InvalidWord):
        bytewords.decode(bytewords.encode(b"\xd9", "standard").replace("tuna", "tina"), "standard")


def test_length_bound() -> None:
    text = bytewords.encode(bytes(100))
    with pytest.raises(TooLong):
        bytewords.decode(text, max_len=len(text) - 1)
    assert bytewords.decode(text, max_len=len(text)) == bytes(100)

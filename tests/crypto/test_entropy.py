"""Seed entropy mixing and dice sanity checks."""

from __future__ import annotations

import hashlib
import random

import pytest

from coldvault.keys.entropy import (
    CHI_SQUARE_LIMIT,
    DOMAIN,
    DiceRejected,
    check_dice,
    chi_square,
    mix_entropy,
)


def fair_dice(n: int = 99, seed: int = 7) -> str:
    rng = random.Random(seed)  # deterministic test input, not a secret
    while True:
        text = "".join(rng.choice("123456") for _ in range(n))
        try:
            check_dice(text)
            return text
        except DiceRejected:
            continue


GOOD = fair_dice()


def loaded_dice(n: int = 150) -> str:
    rng = random.Random(1)
    return "".join(rng.choice("111111123456") for _ in range(n))


SKEWED = loaded_dice()


def test_good_dice_accepted() -> None:
    report = check_dice(GOOD)
    assert report.rolls == 99 and 255 < report.entropy_bits < 256
    # whitespace is ignored
    assert check_dice(" ".join(GOOD)).rolls == 99


@pytest.mark.parametrize(
    "text,reason",
    [
        (GOOD[:98], "too-few-rolls"),
        ("", "too-few-rolls"),
        (GOOD[:50] + "7" + GOOD[51:], "invalid-character"),
        (GOOD[:50] + "0" + GOOD[51:], "invalid-character"),
        (GOOD[:50] + "x" + GOOD[51:], "invalid-character"),
        ("4" * 120, "all-equal"),
        (GOOD[:40] + "3" * 8 + GOOD[48:], "long-run"),
        ("123456" * 20, "repeating-pattern"),
        ("1" * 30 + "2" * 5 + "3" * 5 + "4" * 5 + "5" * 5 + "6" * 5 + "1" * 60, "long-run"),
        (SKEWED, "skewed"),
        ("7" * 1001, "invalid-character"),
        ("12" * 600, "too-many-rolls"),
    ],
)
def test_bad_dice_refused_with_reason(text: str, reason: str) -> None:
    with pytest.raises(DiceRejected) as info:
        check_dice(text)
    assert info.value.reason == reason
    assert text[:20] not in str(info.value) or not text
    assert info.value.message.endswith(".")


def test_skewed_threshold() -> None:
    assert chi_square(bytearray(int(c) for c in SKEWED)) > CHI_SQUARE_LIMIT
    assert chi_square(bytearray(int(c) for c in GOOD)) <= CHI_SQUARE_LIMIT


def test_mix_is_documented_sha512() -> None:
    hsm = bytes(range(64))
    osr = bytes(range(64, 128))
    out, record = mix_entropy(
        hsm_random=lambda n: hsm[:n], dice=GOOD, length=32, os_random=lambda n: osr[:n]
    )
    dice = bytes(int(c) for c in GOOD)
    material = DOMAIN
    for part in (hsm, osr, dice):
        material += len(part).to_bytes(4, "big") + part
    assert bytes(out) == hashlib.sha512(material).digest()[:32]
    assert isinstance(out, bytearray)
    assert record.to_dict() == {
        "mix": "sha512-v1",
        "hsm_bytes": 64,
        "os_bytes": 64,
        "dice_rolls": 99,
        "dice_bits": 255.9,
        "output_bytes": 32,
    }


def test_every_source_changes_the_output() -> None:
    def run(h: int, o: int, dice: str) -> bytes:
        out, _ = mix_entropy(
            hsm_random=lambda n: bytes([h]) * n, dice=dice, os_random=lambda n: bytes([o]) * n
        )
        return bytes(out)

    base = run(1, 2, GOOD)
    assert run(9, 2, GOOD) != base
    assert run(1, 9, GOOD) != base
    assert run(1, 2, fair_dice(seed=8)) != base


def test_mix_refuses_bad_dice_before_touching_rng() -> None:
    def hsm(_: int) -> bytes:
        raise AssertionError("RNG must not be read for refused dice")

    with pytest.raises(DiceRejected):
        mix_entropy(hsm_random=hsm, dice="1" * 99)

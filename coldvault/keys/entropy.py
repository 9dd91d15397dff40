"""Seed entropy for the generate-seed ceremony: HSM RNG + OS RNG + operator dice.

Mixing (version ``sha512-v1``)
------------------------------
``seed_entropy = SHA-512(DOMAIN || L(hsm) || hsm || L(os) || os || L(dice) || dice)[:n]``

* ``DOMAIN`` = ``b"coldvault/seed-entropy/v1\\0"``; ``L(x)`` is ``len(x)`` as a 4-byte
  big-endian integer, so no two different inputs concatenate to the same string.
* ``hsm`` = 64 bytes from the HSM's RNG (the caller passes ``Keystore.random``).
* ``os`` = 64 bytes from the operating system (``secrets.token_bytes``).
* ``dice`` = the rolls, one byte (1..6) per roll.
* ``n`` = 16..64 (32 for a 24-word BIP-39 mnemonic or a 256-bit SLIP-39 secret).

SHA-512 acts as the extractor: the output is unpredictable as long as *any one* of the
three inputs is unpredictable to an attacker and carries at least ``8n`` bits of
min-entropy.  A backdoored HSM RNG, a weak OS RNG or a careless operator alone cannot
make the seed guessable.

Dice checks (refused with :class:`DiceRejected`, ``reason`` in brackets)
------------------------------------------------------------------------
* only ``1``-``6`` (whitespace ignored)                               [invalid-character]
* at least :data:`MIN_ROLLS` = 99 rolls (99 x log2 6 = 255.9 bits)     [too-few-rolls]
* not all the same face                                               [all-equal]
* no run of :data:`MAX_RUN` = 8 or more equal consecutive rolls        [long-run]
  (chance for fair dice in 99 rolls ~ 3 x 10^-4)
* not a short repeating pattern (period <= 12, e.g. ``123456123456...``) [repeating-pattern]
* face counts pass Pearson's chi-square test, 5 degrees of freedom, at p < 0.001:
  refused when chi^2 > :data:`CHI_SQUARE_LIMIT` = 20.515               [skewed]
  (fair dice are refused by mistake once in a thousand ceremonies; roll again)

These checks catch typing accidents and lazy input, not a determined cheat: that is why
the dice are only one of three sources.  Dice are never stored, logged or put in an error;
the caller's string is immutable (click/terminal input) and cannot be wiped, the byte copy
made here is.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from coldvault.crypto.memory import wipe
from coldvault.errors import InputError

MIX_VERSION = "sha512-v1"
DOMAIN = b"coldvault/seed-entropy/v1\x00"
MIN_ROLLS = 99
MAX_ROLLS = 1000
MAX_RUN = 8
MAX_PERIOD = 12
#: chi-square critical value, 5 degrees of freedom, p = 0.001
CHI_SQUARE_LIMIT = 20.515
HSM_BYTES = 64
OS_BYTES = 64
BITS_PER_ROLL = math.log2(6)


class DiceRejected(InputError):
    """The operator's dice input is refused; ``reason`` is a stable short code."""

    code = "dice-rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DiceReport:
    """Public facts about accepted dice input (safe for a transcript)."""

    rolls: int
    entropy_bits: float


@dataclass(frozen=True)
class EntropyRecord:
    """What went into a seed, without any of the values (safe for a transcript)."""

    mix: str
    hsm_bytes: int
    os_bytes: int
    dice_rolls: int
    dice_bits: float
    output_bytes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "mix": self.mix,
            "hsm_bytes": self.hsm_bytes,
            "os_bytes": self.os_bytes,
            "dice_rolls": self.dice_rolls,
            "dice_bits": round(self.dice_bits, 1),
            "output_bytes": self.output_bytes,
        }


def _parse(text: str, min_rolls: int) -> bytearray:
    rolls = bytearray()
    position = 0
    for char in text:
        if char.isspace():
            continue
        position += 1
        if char not in "123456":
            wipe(rolls)
            raise DiceRejected(
                "invalid-character",
                f"Dice input character {position} is not a digit from 1 to 6.",
            )
        if len(rolls) >= MAX_ROLLS:
            wipe(rolls)
            raise DiceRejected("too-many-rolls", f"More than {MAX_ROLLS} rolls were entered.")
        rolls.append(ord(char) - 48)
    if len(rolls) < min_rolls:
        count = len(rolls)
        wipe(rolls)
        raise DiceRejected(
            "too-few-rolls", f"{count} dice rolls were entered; at least {min_rolls} are needed."
        )
    return rolls


def _longest_run(rolls: bytearray) -> int:
    best = run = 1
    for prev, cur in zip(rolls, rolls[1:], strict=False):
        run = run + 1 if cur == prev else 1
        best = max(best, run)
    return best


def _has_short_period(rolls: bytearray) -> bool:
    for period in range(2, MAX_PERIOD + 1):
        if all(rolls[i] == rolls[i + period] for i in range(len(rolls) - period)):
            return True
    return False


def chi_square(rolls: bytearray) -> float:
    """Pearson's statistic of the face counts against a fair die."""
    expected = len(rolls) / 6
    counts = [0] * 6
    for roll in rolls:
        counts[roll - 1] += 1
    return sum((c - expected) ** 2 / expected for c in counts)


def _check(rolls: bytearray) -> None:
    if len(set(rolls)) == 1:
        raise DiceRejected("all-equal", "Every dice roll has the same value.")
    run = _longest_run(rolls)
    if run >= MAX_RUN:
        raise DiceRejected(
            "long-run",
            f"The dice input has a run of {run} equal rolls; runs of {MAX_RUN} or more are "
            "refused.",
        )
    if _has_short_period(rolls):
        raise DiceRejected(
            "repeating-pattern",
            f"The dice input repeats a pattern of at most {MAX_PERIOD} rolls.",
        )
    if chi_square(rolls) > CHI_SQUARE_LIMIT:
        raise DiceRejected(
            "skewed",
            "The dice faces are too unevenly distributed (chi-square test, p < 0.001); "
            "roll again with a fair die.",
        )


def check_dice(text: str, *, min_rolls: int = MIN_ROLLS) -> DiceReport:
    """Validate dice input; raise :class:`DiceRejected` with the reason if refused."""
    rolls = _parse(text, min_rolls)
    try:
        _check(rolls)
        return DiceReport(rolls=len(rolls), entropy_bits=len(rolls) * BITS_PER_ROLL)
    finally:
        wipe(rolls)


def _put(buf: bytearray, data: bytes | bytearray) -> None:
    buf += len(data).to_bytes(4, "big")
    buf += data


def mix_entropy(
    *,
    hsm_random: Callable[[int], bytes],
    dice: str,
    length: int = 32,
    min_rolls: int = MIN_ROLLS,
    os_random: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[bytearray, EntropyRecord]:
    """Seed entropy of ``length`` bytes (``bytearray``; the caller wipes it) and its record.

    ``hsm_random`` is the appliance keystore's ``random``; ``dice`` is checked first with
    :func:`check_dice`.  ``os_random`` is a hook for tests only.
    """
    if not 16 <= length <= 64:
        raise ValueError("seed entropy length must be 16..64 bytes")
    rolls = _parse(dice, min_rolls)
    material = bytearray(DOMAIN)
    try:
        _check(rolls)
        hsm = bytearray(hsm_random(HSM_BYTES))
        osr = bytearray(os_random(OS_BYTES))
        if len(hsm) != HSM_BYTES or len(osr) != OS_BYTES:
            raise ValueError("entropy source returned the wrong number of bytes")
        _put(material, hsm)
        _put(material, osr)
        _put(material, rolls)
        wipe(hsm)
        wipe(osr)
        digest = bytearray(hashlib.sha512(material).digest())
        out = digest[:length]
        wipe(digest)
        record = EntropyRecord(
            mix=MIX_VERSION,
            hsm_bytes=HSM_BYTES,
            os_bytes=OS_BYTES,
            dice_rolls=len(rolls),
            dice_bits=len(rolls) * BITS_PER_ROLL,
            output_bytes=length,
        )
        return out, record
    finally:
        wipe(rolls)
        wipe(material)


__all__ = [
    "CHI_SQUARE_LIMIT",
    "DiceRejected",
    "DiceReport",
    "EntropyRecord",
    "MAX_RUN",
    "MIN_ROLLS",
    "check_dice",
    "chi_square",
    "mix_entropy",
]

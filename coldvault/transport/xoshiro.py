"""Deterministic randomness for BC-UR fountain codes (BCR-2024-001).

Encoder and decoder must agree bit for bit on which fragments every part mixes, so this
module follows the reference arithmetic exactly:

* :class:`Xoshiro256` -- xoshiro256** seeded with the SHA-256 of a seed, the digest read
  as four big-endian 64-bit words.
* :class:`RandomSampler` -- Walker/Vose alias sampling of a discrete distribution; each
  sample consumes two ``next_double()`` values (column, then coin).
* :func:`shuffled`, :func:`choose_degree`, :func:`choose_fragments`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

_MASK64 = (1 << 64) - 1
_TWO_64 = float(1 << 64)

T = TypeVar("T")


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _MASK64


class Xoshiro256:
    """xoshiro256** PRNG with BC-UR seeding.  Not for cryptographic use."""

    __slots__ = ("_s",)

    def __init__(self, seed: bytes | str) -> None:
        """Seed with SHA-256 of ``seed`` (a ``str`` is taken as UTF-8)."""
        if isinstance(seed, str):
            seed = seed.encode("utf-8")
        digest = hashlib.sha256(seed).digest()
        self._s = [int.from_bytes(digest[i : i + 8], "big") for i in range(0, 32, 8)]

    @classmethod
    def from_uint32(cls, value: int) -> Xoshiro256:
        """Seed from a 32-bit integer (e.g. a CRC32), as its 4 big-endian bytes."""
        return cls(value.to_bytes(4, "big"))

    def next(self) -> int:
        s = self._s
        result = (_rotl((s[1] * 5) & _MASK64, 7) * 9) & _MASK64
        t = (s[1] << 17) & _MASK64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def next_double(self) -> float:
        """A float in [0, 1]: ``next()`` converted to double, divided by 2**64."""
        return float(self.next()) / _TWO_64

    def next_int(self, low: int, high: int) -> int:
        """An integer in ``[low, high]`` (reference arithmetic, via ``next_double``)."""
        return int(self.next_double() * (high - low + 1)) + low

    def next_byte(self) -> int:
        return self.next_int(0, 255)

    def next_data(self, count: int) -> bytes:
        return bytes(self.next_byte() for _ in range(count))


class RandomSampler:
    """Walker/Vose alias-method sampler over non-negative weights ``probs``."""

    __slots__ = ("_probs", "_aliases")

    def __init__(self, probs: Sequence[float]) -> None:
        if not probs or any(p < 0 for p in probs):
            raise ValueError("probabilities must be a non-empty list of non-negative numbers")
        total = 0.0
        for p in probs:  # left-to-right double summation, as the reference
            total += p
        if total <= 0:
            raise ValueError("probabilities must not all be zero")
        n = len(probs)
        scaled = [p * float(n) / total for p in probs]
        small: list[int] = []
        large: list[int] = []
        for i in range(n - 1, -1, -1):  # reversed index order, as the reference
            (small if scaled[i] < 1 else large).append(i)
        table = [0.0] * n
        aliases = [0] * n
        while small and large:
            a = small.pop()
            g = large.pop()
            table[a] = scaled[a]
            aliases[a] = g
            scaled[g] += scaled[a] - 1
            (small if scaled[g] < 1 else large).append(g)
        for i in large:
            table[i] = 1.0
        for i in small:
            table[i] = 1.0
        self._probs = table
        self._aliases = aliases

    def next(self, rng: Callable[[], float]) -> int:
        r1 = rng()
        r2 = rng()
        i = int(len(self._probs) * r1)
        return i if r2 < self._probs[i] else self._aliases[i]


def shuffled(items: Sequence[T], rng: Xoshiro256, count: int | None = None) -> list[T]:
    """Fisher-Yates as the reference: repeatedly pick ``next_int(0, remaining-1)``.

    With ``count``, stop after that many picks (the first ``count`` of the full shuffle).
    """
    remaining = list(items)
    picks = len(remaining) if count is None else min(count, len(remaining))
    result: list[T] = []
    for _ in range(picks):
        index = rng.next_int(0, len(remaining) - 1)
        result.append(remaining.pop(index))
    return result


@functools.lru_cache(maxsize=16)
def _degree_sampler(seq_len: int) -> RandomSampler:
    return RandomSampler([1.0 / i for i in range(1, seq_len + 1)])


def choose_degree(seq_len: int, rng: Xoshiro256) -> int:
    """How many fragments a mixed part combines: 1..seq_len, weighted 1/k."""
    return _degree_sampler(seq_len).next(rng.next_double) + 1


def choose_fragments(seq_num: int, seq_len: int, checksum: int) -> frozenset[int]:
    """The fragment indexes (0-based) mixed into part ``seq_num`` of a message.

    Parts 1..seq_len are the plain fragments in order; later parts are seeded by
    ``sha256(seq_num_be32 || checksum_be32)``.
    """
    if seq_len < 1 or not 1 <= seq_num <= 0xFFFFFFFF:
        raise ValueError("seq_len must be >= 1 and seq_num a positive 32-bit integer")
    if seq_num <= seq_len:
        return frozenset((seq_num - 1,))
    rng = Xoshiro256(seq_num.to_bytes(4, "big") + (checksum & 0xFFFFFFFF).to_bytes(4, "big"))
    degree = choose_degree(seq_len, rng)
    return frozenset(shuffled(range(seq_len), rng, degree))

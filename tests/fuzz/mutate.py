"""The hypothesis strategy every fuzz target draws from: corpus entries, mutated, or noise.

Mutations are the classic byte-level ones (flip, insert, delete, duplicate, splice with
another corpus entry, truncate, interesting integers), applied one to eight times; a tenth of
the examples are plain random bytes. Text inputs (TOML, JSON, QR frames) are bytes too.
"""

from __future__ import annotations

from hypothesis import strategies as st

INTERESTING = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\xff\xff\xff\xff", b"\x00\x00\x00\x00",
    b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff", b"[", b"{", b"\n", b'"', b"9" * 40,
)  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(
            ("flip", "insert", "delete", "duplicate", "splice", "truncate", "interesting")
        ))  # fmt: skip
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "duplicate":
            size = draw(st.integers(1, 256))
            data[pos:pos] = data[pos : pos + size]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[pos:] = other[start:]
        elif op == "truncate":
            del data[pos:]
        elif op == "interesting":
            value = draw(st.sampled_from(INTERESTING))
            data[pos : pos + len(value)] = value
    return bytes(data)


def inputs(seeds: tuple[bytes, ...], max_noise: int = 512) -> st.SearchStrategy[bytes]:
    """Mutated seeds (nine in ten) or random bytes."""
    noise = st.binary(max_size=max_noise)
    if not seeds:
        return noise
    return st.one_of(_mutated(seeds), _mutated(seeds), _mutated(seeds), noise)

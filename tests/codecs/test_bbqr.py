"""BBQr against the coinkite/BBQr test data (tests/vectors/bbqr, see SOURCES.md)."""

from __future__ import annotations

import hashlib
import json
import random
import zlib
from pathlib import Path

import pytest

from coldvault.errors import DecodeError
from coldvault.transport import bbqr

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "bbqr"
SPEC = json.loads((VECTORS / "bbqr.json").read_text())
FILES = sorted(name for name in SPEC["files"] if name != "real-scan.txt")


def _data(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def test_vector_files_are_the_recorded_ones() -> None:
    for name in [*FILES, "real-scan.txt"]:
        info = SPEC["files"][name]
        raw = _data(name)
        assert len(raw) == info["size"]
        assert hashlib.sha256(raw).hexdigest() == info["sha256"]


def test_join_real_scan() -> None:
    expected = SPEC["files"]["real-scan.txt"]["expected_join"]
    lines = (VECTORS / "real-scan.txt").read_text().splitlines()
    joined = bbqr.join(lines)
    assert joined.file_type.value == expected["file_type"] == "U"
    assert joined.encoding.value == expected["encoding"] == "Z"
    assert joined.total == expected["total_parts"] == 8
    derived = expected["derived"]
    assert len(joined.data) == derived["decoded_len"]
    assert hashlib.sha256(joined.data).hexdigest() == derived["decoded_sha256"]
    assert joined.data.decode().startswith(derived["decoded_starts_with"])
    assert b"Zlib compressed" in joined.data and b"PSBT" in joined.data


def test_real_scan_joiner_counts_repeats_once() -> None:
    joiner = bbqr.Joiner()
    new = [joiner.add(line) for line in (VECTORS / "real-scan.txt").read_text().splitlines()
           if line.strip()]
    assert sum(new) == 8 and len(new) == 26
    assert joiner.is_complete and joiner.missing() == []


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("encoding", ["H", "2", "Z"])
def test_split_join_loopback_every_file(name: str, encoding: str) -> None:
    data = _data(name)
    split = bbqr.split(data, "T" if name.endswith(".txn") else "P", encoding=encoding)
    parts = list(split.parts)
    assert len({len(p) for p in parts[:-1]}) <= 1  # all but the last equal
    assert all(bbqr.frame_version(p) <= split.version for p in parts)
    assert all(len(p) <= bbqr.alnum_capacity(split.version) for p in parts)
    assert all(ch in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$%*+-./:" for p in parts for ch in p)
    random.Random(name + encoding).shuffle(parts)
    joined = bbqr.join(parts + parts[:3])
    assert joined.data == data
    if encoding != "Z":
        assert joined.encoding.value == encoding


@pytest.mark.parametrize("name", FILES)
def test_zlib_shrinks_or_falls_back(name: str) -> None:
    data = _data(name)
    split = bbqr.split(data, "B", encoding="Z")
    if split.encoding is bbqr.Encoding.ZLIB:
        base32_only = bbqr.split(data, "B", encoding="2")
        assert sum(map(len, split.parts)) < sum(map(len, base32_only.parts))
    else:
        assert split.encoding is bbqr.Encoding.BASE32
    compressed = bbqr.deflate(data)
    assert bbqr.inflate(compressed, len(data)) == data


@pytest.mark.parametrize("size", range(1060, 1080))
def test_version_27_two_parts_upstream_rule(size: int) -> None:
    data = random.Random(size).randbytes(size)
    hex_split = bbqr.split(data, "B", encoding="H", min_version=27, max_version=27, max_split=2)
    assert len(hex_split.parts) == (1 if size <= 1062 else 2)
    for encoding in ("2", "Z"):
        assert len(bbqr.split(data, "B", encoding=encoding, min_version=27, max_version=27,
                              max_split=2).parts) == 1


def test_capacity_table_matches_spec() -> None:
    for version, chars in SPEC["qr_capacity_alnum_chars_level_L"].items():
        assert bbqr.alnum_capacity(int(version)) == chars
    for version, nbytes in SPEC["qr_capacity_hex_payload_bytes_level_L"].items():
        assert (bbqr.alnum_capacity(int(version)) - bbqr.HEADER_LEN) // 2 == nbytes


def test_loopback_sizes_and_versions() -> None:
    rng = random.Random(7)
    for size in (10, 100, 2000, 50000):
        for entropy in ("low", "high"):
            data = bytes(size) if entropy == "low" else rng.randbytes(size)
            for max_version in (11, 29, 40):
                for encoding in ("H", "2", "Z"):
                    split = bbqr.split(data, "B", encoding=encoding, max_version=max_version)
                    assert bbqr.join(split.parts).data == data


def test_base36_header_limits() -> None:
    assert bbqr.parse_header("B$HPZZZY").total == 1295
    assert bbqr.parse_header("B$HPZZZY").index == 1294
    with pytest.raises(bbqr.BbqrHeaderError):
        bbqr.parse_header("B$HPZZZZ")
    assert bbqr.parse_header("B$HPZZ00").index == 0
    assert bbqr.parse_header("B$2C0100").file_type is bbqr.FileType.CBOR


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("B$", bbqr.BbqrHeaderError),
        ("X$HP0100AB", bbqr.BbqrHeaderError),
        ("B$QP0100AB", bbqr.BbqrHeaderError),  # unknown encoding
        ("B$HQ0100AB", bbqr.BbqrHeaderError),  # unknown file type
        ("B$HP0000AB", bbqr.BbqrHeaderError),  # zero parts
        ("B$HP0101AB", bbqr.BbqrHeaderError),  # index beyond total
        ("B$HPa100AB", bbqr.BbqrHeaderError),  # lower-case base 36
        ("B$HP0100AG", bbqr.BbqrError),  # not hex
        ("B$HP0100ABC", bbqr.BbqrError),  # odd hex
        ("B$2P0100A1", bbqr.BbqrError),  # '1' not Base32
        ("B$HP0100", bbqr.BbqrInconsistentError),  # empty part
        ("B$ZP0100AAAAAAAA", bbqr.BbqrError),  # not a deflate stream
    ],
)
def test_bad_frames(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        bbqr.join([frame])


def test_mixed_headers_rejected() -> None:
    joiner = bbqr.Joiner()
    joiner.add("B$HP0200ABCD")
    with pytest.raises(bbqr.BbqrMixedError) as info:
        joiner.add("B$HT0201ABCD")
    assert info.value.expected == "B$HP02" and info.value.got == "B$HT02"
    with pytest.raises(bbqr.BbqrMixedError):
        joiner.add("B$2P0201ABCD")
    with pytest.raises(bbqr.BbqrMixedError):
        joiner.add("B$HP0301ABCD")


def test_inconsistent_parts_rejected() -> None:
    joiner = bbqr.Joiner()
    joiner.add("B$HP0300ABCD")
    with pytest.raises(bbqr.BbqrInconsistentError):
        joiner.add("B$HP0300ABCE")  # same index, other data
    with pytest.raises(bbqr.BbqrInconsistentError):
        joiner.add("B$HP0301ABCDEF")  # middle part of another length
    with pytest.raises(bbqr.BbqrInconsistentError):
        joiner.add("B$HP0302ABCDEF")  # last part longer than the others
    assert not joiner.add("B$HP0300ABCD")  # an identical repeat is fine
    joiner.add("B$HP0302AB")
    with pytest.raises(bbqr.BbqrError, match="incomplete"):
        joiner.result()
    joiner.add("B$HP0301ABCD")
    assert joiner.result().data == bytes.fromhex("ABCDABCDAB")


def test_zlib_bomb_is_bounded() -> None:
    bomb = bbqr.deflate(bytes(2_000_000))
    chars = bbqr._encode_chars(bomb, bbqr.Encoding.ZLIB)  # noqa: SLF001 - test helper
    frame = "B$ZB0100" + chars
    with pytest.raises(bbqr.BbqrTooLargeError) as info:
        bbqr.join([frame], max_file_len=100_000)
    assert info.value.limit == 100_000


def test_trailing_garbage_after_deflate_rejected() -> None:
    packed = bbqr.deflate(b"hello world" * 10) + b"\x00\x01\x02\x03\x04"
    frame = "B$ZU0100" + bbqr._encode_chars(packed, bbqr.Encoding.ZLIB)  # noqa: SLF001
    with pytest.raises(bbqr.BbqrError, match="trailing"):
        bbqr.join([frame])


def test_too_many_characters_refused_before_storing() -> None:
    joiner = bbqr.Joiner(max_file_len=100)
    joiner.add("B$HP0300" + "AB" * 100)
    with pytest.raises(bbqr.BbqrTooLargeError):
        joiner.add("B$HP0301" + "AB" * 100)


def test_truncated_deflate_rejected() -> None:
    packed = bbqr.deflate(random.Random(1).randbytes(500))[:-20]
    frame = "B$ZB0100" + bbqr._encode_chars(packed, bbqr.Encoding.ZLIB)  # noqa: SLF001
    with pytest.raises(bbqr.BbqrError):
        bbqr.join([frame])


def test_errors_are_decode_errors() -> None:
    for cls in (bbqr.BbqrError, bbqr.BbqrHeaderError, bbqr.BbqrMixedError,
                bbqr.BbqrInconsistentError, bbqr.BbqrTooLargeError):
        assert issubclass(cls, DecodeError)


def test_zlib_window_is_10_bits() -> None:
    data = _data("1in100out.psbt")
    packed = bbqr.deflate(data)
    assert zlib.decompress(packed, -10) == data
    assert zlib.decompress(packed, -15) == data  # readable with any larger window


def test_programmer_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        bbqr.split(b"", "P")
    with pytest.raises(ValueError):
        bbqr.split(b"x", "Q")
    with pytest.raises(ValueError):
        bbqr.split(b"x" * 10_000, "B", encoding="H", max_version=5, max_split=2)

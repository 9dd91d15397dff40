"""The fast canonical check (orjson) never accepts a line the exact encoder would refuse,
and agrees with it on every line the writer produces."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from coldvault import jsonsafe
from coldvault.errors import IntegrityError
from coldvault.records import audit
from coldvault.records.audit import AUDIT
from coldvault.records.chain import MAX_DEPTH, Defect, _canonical_fast, canonical, walk

from . import golden

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), VALUES, max_size=6))
def test_the_fast_path_accepts_only_what_the_exact_encoder_writes(obj: dict[str, Any]) -> None:
    line = canonical(obj) + b"\n"
    fast = _canonical_fast(line)
    if fast is not None:
        assert canonical(fast) + b"\n" == line
        assert json.dumps(fast, sort_keys=True) == json.dumps(json.loads(line), sort_keys=True)


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1e16}',  # orjson's spelling of 1e+16
        b'{"a":0.00001}',  # orjson's spelling of 1e-05
        b'{"a":"\x7f"}',  # the exact encoder escapes DEL
        b'{"a":"caf\xc3\xa9"}',  # the exact encoder escapes non-ASCII
        b'{"b":1,"a":2}',  # unsorted
        b'{"a":1,"a":2}',  # a duplicate key
        b'{"a": 1}',  # a space
        b'{"a":"\\u0041"}',  # an escape the encoder would not write
    ],
)
def test_lines_only_orjson_would_write_are_not_taken_as_canonical(text: bytes) -> None:
    line = text + b"\n"
    assert _canonical_fast(line) is None or canonical(_canonical_fast(line)) + b"\n" == line
    assert json.loads(line) is not None and canonical(json.loads(line)) + b"\n" != line


def _respelled(entry_line: bytes) -> bytes:
    """The audit line with a float in its fields spelt the orjson way (``1e16``) and its
    hash recomputed over those bytes, as a forger with disk access could write it."""
    entry = json.loads(entry_line)
    entry["fields"]["rate"] = 1e16
    del entry["hash"]
    entry["hash"] = hashlib.sha256(AUDIT.domain + _orjson_spelling(entry)).hexdigest()
    return _orjson_spelling(entry) + b"\n"


def _orjson_spelling(entry: dict[str, Any]) -> bytes:
    return canonical(entry).replace(b"1e+16", b"1e16")


def test_a_line_spelt_the_orjson_way_is_refused_as_not_canonical(tmp_path: Path) -> None:
    lines = golden.AUDIT_FILE.read_bytes().splitlines(keepends=True)
    forged = tmp_path / "audit.jsonl"
    forged.write_bytes(b"".join(lines[:-1]) + _respelled(lines[-1]))
    with pytest.raises(IntegrityError) as err:
        list(walk(forged, AUDIT))
    assert getattr(err.value, "reason", None) == Defect.NOT_CANONICAL


def test_canonical_lines_orjson_cannot_vouch_for_take_the_exact_path() -> None:
    for text in (b'{"a":18446744073709551616}', b'{"a":"Zo\\u00eb"}', b'{"a":1e-05}'):
        assert canonical(json.loads(text)) == text
        assert _canonical_fast(text + b"\n") is None


def test_the_golden_trail_verifies_over_both_paths() -> None:
    lines = golden.AUDIT_FILE.read_bytes().splitlines(keepends=True)
    fast = [_canonical_fast(line) is not None for line in lines]
    assert any(fast) and not all(fast)  # a note with non-ASCII text is on the exact path
    report = audit.verify(golden.AUDIT_FILE, golden.AUDIT_PUBLIC_KEY)
    assert report.entries == len(lines)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), VALUES | st.floats(), max_size=6))
@example({"a": 1e16, "b": [0.00001]})
def test_lines_spelt_the_orjson_way_pass_only_when_canonical(obj: dict[str, Any]) -> None:
    """Floats, the part the two encoders may spell apart, are checked only when the line
    has one: a line orjson wrote is taken as canonical exactly when the exact encoder
    writes the same bytes."""
    try:
        line = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS) + b"\n"
    except orjson.JSONEncodeError:  # integers beyond 64 bits: orjson writes no such line
        assume(False)
    fast = _canonical_fast(line)
    if fast is not None:
        assert canonical(fast) + b"\n" == line


@pytest.mark.parametrize("depth", [MAX_DEPTH, MAX_DEPTH + 1])
def test_the_fast_path_keeps_the_nesting_bound(depth: int) -> None:
    """A canonical line nested one level deeper than the bound is left to the exact path,
    which refuses it; one at the bound is taken."""
    line = b'{"a":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}\n"
    assert canonical(json.loads(line)) + b"\n" == line
    fast = _canonical_fast(line)
    if depth <= MAX_DEPTH:
        assert fast == json.loads(line)
    else:
        assert fast is None
        with pytest.raises(jsonsafe.JsonTooDeep):
            jsonsafe.loads(line)

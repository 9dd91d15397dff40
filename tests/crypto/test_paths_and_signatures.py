"""Derivation paths (the one parser and writer), Ed25519 signature values, and the rule that
``coldvault.crypto`` sits below every other package."""

from __future__ import annotations

import ast
from pathlib import Path

import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldvault.crypto import HARDENED, InvalidPath, parse_path, path_to_str
from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.paths import MAX_DEPTH, unhardened

H = HARDENED
CRYPTO = Path(__file__).resolve().parents[2] / "coldvault" / "crypto"


def test_paths_parse_every_hardened_marker() -> None:
    assert parse_path("m") == ()
    assert parse_path(" m/84h/0'/0H/0/5 ") == (84 | H, 0 | H, 0 | H, 0, 5)
    assert parse_path("m/2147483647h") == (0xFFFF_FFFF,)
    assert path_to_str((84 | H, 0 | H, 0 | H, 0, 5)) == "m/84h/0h/0h/0/5"
    assert path_to_str((44 | H, 60 | H), prefix="") == "44h/60h"
    assert path_to_str(()) == "m"
    assert unhardened(84 | H) == 84 and unhardened(5) == 5


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "it must start with 'm'"),
        ("84h/0h", "it must start with 'm'"),
        ("M/84h", "it must start with 'm'"),
        ("m/", "element '' is not a number with an optional h"),
        ("m/84hh", "element '84hh' is not a number with an optional h"),
        ("m/-1", "element '-1' is not a number with an optional h"),
        ("m/2147483648", "index 2147483648 is not below 2^31"),
        ("m" + "/0" * (MAX_DEPTH + 1), f"it is deeper than {MAX_DEPTH}"),
    ],
)
def test_bad_paths_name_the_problem(text: str, why: str) -> None:
    with pytest.raises(InvalidPath) as err:
        parse_path(text)
    assert err.value.path == text
    assert err.value.message == f"The derivation path {text!r} is invalid: {why}."


@given(st.lists(st.integers(0, 0xFFFF_FFFF), max_size=MAX_DEPTH))
def test_path_text_round_trips(path: list[int]) -> None:
    assert parse_path(path_to_str(path)) == tuple(path)


def test_path_elements_out_of_range_are_caller_bugs() -> None:
    for bad in (-1, 2**32):
        with pytest.raises(ValueError):
            path_to_str([bad])


def test_ed25519_signature_value() -> None:
    key = nacl.signing.SigningKey(b"\x03" * 32)
    public = bytes(key.verify_key)
    sig = Ed25519Signature(key.sign(b"message").signature)
    assert sig.verify(public, b"message")
    assert not sig.verify(public, b"messagE")
    assert not Ed25519Signature(bytes(64)).verify(public, b"message")
    for bad in (bytes(63), bytes(65), bytearray(64)):
        with pytest.raises(ValueError):
            Ed25519Signature(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sig.verify(public[:31], b"message")


def test_crypto_imports_nothing_above_it() -> None:
    """crypto is the lowest layer: it may import coldvault.errors and itself, nothing else."""
    offenders = []
    for path in sorted(CRYPTO.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("coldvault") and not (
                    name == "coldvault.errors" or name.startswith("coldvault.crypto")
                ):
                    offenders.append(f"{path.name}:{node.lineno} imports {name}")
    assert offenders == []

"""Hash-chained transcripts: append, close, witness signatures, tamper detection, HTML."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.signing import SigningKey

from coldvault.errors import IntegrityError
from coldvault.records.errors import (
    SecretInTranscript,
    TranscriptClosed,
    TranscriptDecodeError,
    TranscriptExists,
    TranscriptTampered,
    WitnessSignatureInvalid,
)
from coldvault.records.page import render_transcript_html
from coldvault.records.transcript import (
    Device,
    TranscriptWriter,
    WitnessSignature,
    check_public,
    verify,
)

XPRV = (
    "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRN"
    "NU3TGtRBeJgk33yuGBxrMPHi"
)


def ed25519_signer(serial: str, holder: str, seed: int = 1):
    key = SigningKey(bytes([seed]) * 32)

    def sign(message: bytes) -> WitnessSignature:
        return WitnessSignature(
            serial, holder, "admin", "ed25519", bytes(key.verify_key), key.sign(message).signature
        )

    return sign


def p256_signer(serial: str, holder: str):
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)

    def sign(message: bytes) -> WitnessSignature:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256())))
        return WitnessSignature(
            serial, holder, "admin", "nistp256", pub, r.to_bytes(32, "big") + s.to_bytes(32, "big")
        )

    return sign


def make(path: Path, witnesses: int = 2) -> TranscriptWriter:
    w = TranscriptWriter.create(
        path, "generate-seed", actor="Alice Operator", devices=[Device("hsm", "SN123")]
    )
    w.append("dice", actor="Alice Operator", data={"dice_rolls": 99, "dice_bits": 255.9})
    w.append(
        "provision",
        actor="Alice Operator",
        data={"master_fingerprint": "73c5da0a", "descriptor": "wpkh([73c5da0a/84h/0h/0h]xpub)"},
    )
    w.close(actor="Alice Operator")
    if witnesses:
        w.add_witness(ed25519_signer("0006:0001", "Bob"))
    if witnesses > 1:
        w.add_witness(p256_signer("0006:0002", "Carol"))
    return w


def test_roundtrip_verifies(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    w = make(path)
    result = verify(path, min_witnesses=2)
    assert result.entries == 6 and result.status == "completed"
    assert result.ceremony == "generate-seed" and result.ceremony_id == w.ceremony_id
    assert [x["holder"] for x in result.witnesses] == ["Bob", "Carol"]
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert set(lines[0]) == {
        "v", "index", "timestamp", "ceremony_id", "ceremony", "step", "actor", "devices",
        "data", "prev_hash", "hash",
    }  # fmt: skip


def test_every_byte_flip_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    make(path, witnesses=1)
    original = path.read_bytes()
    bad = tmp_path / "bad.jsonl"
    for pos in range(len(original)):
        changed = bytearray(original)
        changed[pos] ^= 0x01
        bad.write_bytes(changed)
        with pytest.raises(IntegrityError):
            verify(bad)


def test_removed_and_reordered_entries_detected(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    make(path, witnesses=0)
    lines = path.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(lines[:1] + lines[2:]))
    with pytest.raises(TranscriptTampered) as info:
        verify(bad)
    assert info.value.index == 1
    bad.write_bytes(b"".join([lines[0], lines[2], lines[1], lines[3]]))
    with pytest.raises(TranscriptTampered):
        verify(bad)
    bad.write_bytes(b"".join(lines)[:-1])
    with pytest.raises(TranscriptDecodeError):
        verify(bad)
    # truncation before the close is visible as an open transcript
    bad.write_bytes(b"".join(lines[:3]))
    assert verify(bad).status == "open"


def test_forged_witness_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    w = make(path, witnesses=0)

    def forger(message: bytes) -> WitnessSignature:
        good = ed25519_signer("0006:0009", "Mallory")(message)
        return WitnessSignature(
            good.card_serial, good.holder, good.role, good.algorithm, good.public_key,
            bytes(64),
        )  # fmt: skip

    with pytest.raises(WitnessSignatureInvalid):
        w.add_witness(forger)
    with pytest.raises(TranscriptTampered):
        verify(path, min_witnesses=1)


def test_closed_transcript_refuses_steps_and_abort_is_recorded(tmp_path: Path) -> None:
    w = make(tmp_path / "t.jsonl", witnesses=0)
    with pytest.raises(TranscriptClosed):
        w.append("late", actor="x")
    w2 = TranscriptWriter.create(tmp_path / "a.jsonl", "provision", actor="op")
    w2.abort("operator pressed Ctrl-C", actor="op")
    result = verify(tmp_path / "a.jsonl")
    assert result.status == "aborted"
    with pytest.raises(TranscriptExists):
        TranscriptWriter.create(tmp_path / "a.jsonl", "provision", actor="op")


@pytest.mark.parametrize(
    "data,key",
    [
        ({"user_pin": "123456"}, "user_pin"),
        ({"seed": "00ff"}, "seed"),
        ({"result": {"mnemonic": "x"}}, "mnemonic"),
        ({"shares": ["a"]}, "shares"),
        ({"dice": "123"}, "dice"),
        ({"passphrase": ""}, "passphrase"),
        ({"note": "abandon " * 11 + "about"}, "note"),
        (
            {"k": XPRV},
            "k",
        ),  # noqa: E501
    ],
)
def test_secret_guard(data: dict, key: str, tmp_path: Path) -> None:
    with pytest.raises(SecretInTranscript) as info:
        check_public(data)
    assert info.value.key == key
    w = TranscriptWriter.create(tmp_path / "t.jsonl", "x", actor="op")
    with pytest.raises(SecretInTranscript):
        w.append("step", actor="op", data=data)
    assert verify(tmp_path / "t.jsonl").entries == 1  # nothing was written


def test_metadata_names_allowed() -> None:
    check_public(
        {"dice_rolls": 99, "share_threshold": 3, "share_count": 5, "seed_fingerprint": "ab",
         "pin_tries": 3, "mix": "sha512-v1"}
    )  # fmt: skip


def test_render_html(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    make(path)
    page = render_transcript_html(path)
    assert page.startswith("<!DOCTYPE html>") and "VERIFIED: 6 entries" in page
    assert "NOT VERIFIED" not in page
    assert page.count("data:image/png;base64,") == 2  # descriptor + final hash
    raw = bytearray(path.read_bytes())
    raw[40] ^= 1
    path.write_bytes(raw)
    tampered = render_transcript_html(path)
    assert "NOT VERIFIED: Transcript entry 0 fails verification" in tampered
    assert '<p class="mark">NOT VERIFIED' in tampered


def test_hostile_lines_are_decode_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    for content in (b"[" * 100_000 + b"\n", b"{" + b'"a":' * 10 + b"1}\n", b"x" * 300_000 + b"\n"):
        path.write_bytes(content)
        with pytest.raises(TranscriptDecodeError):
            verify(path)

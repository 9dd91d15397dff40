"""``coldvault whitelist verify`` on proofs made by the libraries wallets use
(tests/vectors/interop/proofs.json, made by generate.mjs): bip322-js, bitcoinjs-message,
@metamask/eth-sig-util, ethers and tweetnacl.  Each proof is valid (exit 0, its format named);
the same proof over the message with one byte changed is refused with the reason (exit 1);
a Solana signature in an encoding the docs do not offer is refused as malformed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from appliance.cli import main
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_REFUSED

VECTORS = json.loads(
    (Path(__file__).parents[1] / "vectors" / "interop" / "proofs.json").read_text()
)
PROOFS = VECTORS["proofs"]
#: Schemes that recover the key from the signature report another key for a changed message.
RECOVERED = {"bip137": "address-mismatch", "eip191": "address-mismatch",
             "eip712": "address-mismatch", "bip322-simple": "bad-signature",
             "ed25519": "bad-signature"}  # fmt: skip


def verify(address: str, message: str, signature: str) -> tuple[Result, dict[str, Any]]:
    result = CliRunner().invoke(main, ["whitelist", "verify", "--address", address, "--message",
                                       message, "--signature", signature, "--json"])  # fmt: skip
    document, end = json.JSONDecoder().raw_decode(result.stdout)
    assert result.stdout[end:] == "\n", result.stdout
    return result, document


def name(proof: dict[str, Any]) -> str:
    producer = proof["producer"] if isinstance(proof["producer"], str) else proof["producer"][0]
    kind = proof.get("address_type") or proof.get("encoding") or proof["chain"]
    return f"{proof['format']}-{kind}-h{proof['header']}-{producer}" if "header" in proof \
        else f"{proof['format']}-{kind}-{producer}"


def test_the_vectors_cover_every_producer_and_format() -> None:
    producers = {p if isinstance(p, str) else p[0] for p in (e["producer"] for e in PROOFS)}
    assert {p.rsplit("@", 1)[0] for p in producers} == {
        "bip322-js", "bitcoinjs-message", "@metamask/eth-sig-util", "ethers", "tweetnacl"}
    assert {e["format"] for e in PROOFS} == set(RECOVERED)
    assert {e["header"] for e in PROOFS if e["format"] == "bip137"} == {28, 31, 32, 35, 39}


@pytest.mark.parametrize("proof", PROOFS, ids=name)
def test_wallet_proof_verifies(proof: dict[str, Any]) -> None:
    result, doc = verify(proof["address"], proof["message"], proof["signature"])
    assert result.exit_code == EXIT_DONE, result.stdout
    assert doc == {"ok": True, "valid": True, "chain": proof["chain"],
                   "address": proof["address"], "format": proof["format"]}  # fmt: skip


@pytest.mark.parametrize("proof", PROOFS, ids=name)
def test_one_byte_changed_message_is_refused_with_the_reason(proof: dict[str, Any]) -> None:
    message, tampered = proof["message"].encode(), proof["tampered_message"].encode()
    assert len(message) == len(tampered)
    assert sum(a != b for a, b in zip(message, tampered, strict=True)) == 1
    result, doc = verify(proof["address"], proof["tampered_message"], proof["signature"])
    assert result.exit_code == EXIT_REFUSED, result.stdout
    assert doc["valid"] is False and doc["error"] == "ownership-proof-not-valid"
    assert doc["reason"] == RECOVERED[proof["format"]]


@pytest.mark.parametrize("entry", VECTORS["rejected_encodings"], ids=lambda e: e["encoding"])
def test_solana_signature_in_another_encoding_is_refused_as_malformed(
    entry: dict[str, Any],
) -> None:
    result, doc = verify(entry["address"], entry["message"], entry["signature"])
    assert result.exit_code == EXIT_REFUSED
    assert doc["reason"] == "malformed-signature"
    assert "base58, base64 (standard alphabet, padded) or hex" in doc["message"]
    if entry["encoding"].startswith("json"):
        assert "looks like JSON" in doc["message"]


@pytest.mark.parametrize("producer", ["@metamask/eth-sig-util", "ethers"])
def test_typed_data_without_a_domain_type_is_refused_as_ambiguous(producer: str) -> None:
    """eth-sig-util (MetaMask) and ethers sign different digests for the same JSON when
    ``types`` lacks EIP712Domain; such a message is unreadable input (exit 2), never a guess."""
    entry = VECTORS["eip712_without_domain_type"][0]
    signatures = entry["signatures"]
    assert len(set(signatures.values())) == 2  # the libraries disagree
    signature = next(s for p, s in signatures.items() if p.rsplit("@", 1)[0] == producer)
    result, doc = verify(entry["address"], entry["message"], signature)
    assert result.exit_code == EXIT_BAD_INPUT, result.stdout
    assert doc["reason"] == "malformed-message"
    assert "must declare EIP712Domain" in doc["message"]

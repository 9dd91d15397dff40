"""``coldvault whitelist challenge`` and ``coldvault whitelist verify`` through the real click
tree: proofs made by independent signers (the BIP-322 vectors, eth-account, solders), the exit
statuses 0 (valid), 1 (not valid, with the reason) and 2 (unreadable address or message)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from eth_account import Account
from eth_account.messages import encode_defunct
from solders.keypair import Keypair

from appliance.cli import main
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_REFUSED

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "bip322_generated.json").read_text())


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["whitelist", *args])


def only_json(result: Result) -> dict:
    document, end = json.JSONDecoder().raw_decode(result.stdout)
    assert result.stdout[end:] == "\n", result.stdout
    return document


def verify(address: str, message: str, signature: str) -> Result:
    return run("verify", "--address", address, "--message", message, "--signature", signature,
               "--json")  # fmt: skip


def test_challenge_is_fresh_and_names_the_address() -> None:
    address = "bc1pss0zhytly75awhm6x2hhvd5lnzv3vssgrf9axfheq8ldyzn88ges79fler"
    one = run("challenge", "--client", "acme", "--wallet", "acme-btc", "--address", address,
              "--json")  # fmt: skip
    two = run("challenge", "--client", "acme", "--json")
    assert one.exit_code == two.exit_code == EXIT_DONE
    a, b = only_json(one), only_json(two)
    assert a["message"].startswith("coldvault ownership proof: client acme, wallet acme-btc, ")
    assert f"address {address}, nonce {a['nonce']}" in a["message"]
    assert len(a["nonce"]) == 32 and a["nonce"] != b["nonce"]
    human = run("challenge", "--client", "acme")
    assert human.stdout.startswith("coldvault ownership proof: client acme, nonce ")
    bad = run("challenge", "--client", "acme\nevil", "--json")
    assert bad.exit_code == EXIT_BAD_INPUT
    assert only_json(bad)["error"] == "ownership-challenge"


@pytest.mark.parametrize("variant", ["simple", "full"])
def test_bip322_vectors_verify_and_name_their_format(variant: str) -> None:
    for e in VECTORS[variant]:
        result = verify(e["address"], e["message"], e["bip322_signatures"][0])
        assert result.exit_code == EXIT_DONE, result.stdout
        assert only_json(result) == {
            "ok": True, "valid": True, "chain": "bitcoin", "address": e["address"],
            "format": f"bip322-{variant}",
        }  # fmt: skip


def test_not_valid_is_exit_1_with_the_reason() -> None:
    e = next(e for e in VECTORS["simple"] if e["type"] == "p2tr")
    result = verify(e["address"], e["message"] + "?", e["bip322_signatures"][0])
    assert result.exit_code == EXIT_REFUSED
    doc = only_json(result)
    assert doc["ok"] is False and doc["valid"] is False and doc["reason"] == "bad-signature"
    assert doc["error"] == "ownership-proof-not-valid"
    human = run("verify", "--address", e["address"], "--message", "x", "--signature", "AAAA")
    assert human.exit_code == EXIT_REFUSED
    assert human.stderr.startswith(f"refused: The proof does not prove control of {e['address']}")


def test_unreadable_address_is_exit_2() -> None:
    result = verify("not-an-address", "m", "AAAA")
    assert result.exit_code == EXIT_BAD_INPUT
    assert only_json(result)["reason"] == "malformed-address"


def test_ethereum_eip191_hex() -> None:
    key = b"\x11" * 32
    account = Account.from_key(key)
    message = "coldvault ownership proof: client globex, nonce 01"
    signature = Account.sign_message(encode_defunct(text=message), key).signature.hex()
    ok = verify(account.address, message, signature)
    assert ok.exit_code == EXIT_DONE and only_json(ok)["format"] == "eip191"
    other = Account.from_key(b"\x12" * 32).address
    refused = verify(other, message, signature)
    assert refused.exit_code == EXIT_REFUSED and only_json(refused)["reason"] == "address-mismatch"


def test_solana_ed25519_base58_and_base64() -> None:
    import base64

    keypair = Keypair.from_seed(bytes(range(32)))
    message = "coldvault ownership proof: client initech, nonce 02"
    sig = keypair.sign_message(message.encode())
    for text in (str(sig), base64.b64encode(bytes(sig)).decode()):
        ok = verify(str(keypair.pubkey()), message, text)
        assert ok.exit_code == EXIT_DONE and only_json(ok)["chain"] == "solana"
    refused = verify(str(keypair.pubkey()), message + ".", str(sig))
    assert refused.exit_code == EXIT_REFUSED and only_json(refused)["reason"] == "bad-signature"

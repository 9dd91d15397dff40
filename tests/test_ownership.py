"""Ownership proofs, checked against independently produced signatures.

Bitcoin: the BIP-322 test vectors (bitcoin/bips bip-0322.mediawiki, "Test vectors", key
L3VFeEujGtevx9w18HD1fhRbCH67Az2dpCymeRE1SoPK6XQtaN2k) and Bitcoin Core's legacy
``signmessage`` signatures for the same key and messages (src/test/util_tests.cpp,
message_sign); addresses derived with embit. Ethereum: eth-account. Solana: solders.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from embit import ec, script
from eth_account import Account
from eth_account.messages import encode_defunct
from solders.keypair import Keypair

from coldvault.errors import AuthError
from coldvault.policy.bip322 import to_spend_txid
from coldvault.policy.ownership import OwnershipProofInvalid, verify_ownership
from coldvault.requests.base import Chain

WIF = "L3VFeEujGtevx9w18HD1fhRbCH67Az2dpCymeRE1SoPK6XQtaN2k"
P2WPKH = "bc1q9vza2e8x573nczrlzms0wvx3gsqjx7vavgkx0l"
PUB = ec.PrivateKey.from_wif(WIF).get_public_key()
P2PKH = script.p2pkh(PUB).address()
P2SH_P2WPKH = script.p2sh(script.p2wpkh(PUB)).address()

BIP322 = {
    "": [
        "AkcwRAIgM2gBAQqvZX15ZiysmKmQpDrG83avLIT492QBzLnQIxYCIBaTpOaD20qRlEylyxFSeEA2ba9YOixpX8z"
        "46TSDtS40ASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=",
        "AkgwRQIhAPkJ1Q4oYS0htvyuSFHLxRQpFAY56b70UvE7Dxazen0ZAiAtZfFz1S6T6I23MWI2lK/pcNTWncuyL8U"
        "L+oMdydVgzAEhAsfxIAMZZEKUPYWI4BruhAQjzFT8FSFSajuFwrDL1Yhy",
    ],
    "Hello World": [
        "AkcwRAIgZRfIY3p7/DoVTty6YZbWS71bc5Vct9p9Fia83eRmw2QCICK/ENGfwLtptFluMGs2KsqoNSk89pO7F29"
        "zJLUx9a/sASECx/EgAxlkQpQ9hYjgGu6EBCPMVPwVIVJqO4XCsMvViHI=",
        "AkgwRQIhAOzyynlqt93lOKJr+wmmxIens//zPzl9tqIOua93wO6MAiBi5n5EyAcPScOjf1lAqIUIQtr3zKNeavY"
        "abHyR8eGhowEhAsfxIAMZZEKUPYWI4BruhAQjzFT8FSFSajuFwrDL1Yhy",
    ],
}
# Bitcoin Core signmessage (compressed-key header) for the same key
CORE_LEGACY = {
    "Hello World": (
        "IOW2xi+ebJLeBtr674l4QH76dqDoVjLV80R9EFKFQX5rBrlCXPIZaYs8Yuayg0ZqjyiCbLy9pzZIS7JWT65/nsU="
    ),
    "": "H0Gm/ylcjvGmj29D/r6ASHKKWAyGA/MEU/Eh+IhFw3ZxFxy9b/dJ8/XFsiutCV8DWlFGnO95m/KoZwFPJTF1qaM=",
}


def reason(chain: Chain, address: str, message: str, signature: str | bytes) -> str:
    with pytest.raises(OwnershipProofInvalid) as info:
        verify_ownership(chain, address, message, signature)
    assert str(info.value).endswith(".")
    return info.value.reason


def with_header(sig_b64: str, header: int) -> str:
    raw = bytearray(base64.b64decode(sig_b64))
    raw[0] = header
    return base64.b64encode(bytes(raw)).decode()


# --- Bitcoin ------------------------------------------------------------------------------


def test_bip322_message_hash_and_to_spend_vectors() -> None:
    spk = bytes.fromhex("00142b05d564e6a7a33c087f16e0f730d1440123799d")
    assert to_spend_txid(spk, b"")[::-1].hex() == (
        "c5680aa69bb8d860bf82d4e9cd3504b55dde018de765a91bb566283c545a99a7"
    )
    assert to_spend_txid(spk, b"Hello World")[::-1].hex() == (
        "b79d196740ad5217771c1098fc4a4b51e0535c32236c71f1ea4d61a2d603352b"
    )


@pytest.mark.parametrize(("message", "sig"), [(m, s) for m, sigs in BIP322.items() for s in sigs])
def test_bip322_simple_vectors_verify(message: str, sig: str) -> None:
    verify_ownership(Chain.BITCOIN, P2WPKH, message, sig)
    verify_ownership("bitcoin", P2WPKH, message, base64.b64decode(sig))


def test_bip322_negatives() -> None:
    sig = BIP322["Hello World"][0]
    assert reason(Chain.BITCOIN, P2WPKH, "Hello World!", sig) == "bad-signature"
    assert reason(Chain.BITCOIN, P2WPKH, "", sig) == "bad-signature"
    other = script.p2wpkh(ec.PrivateKey(hashlib.sha256(b"x").digest()).get_public_key()).address()
    assert reason(Chain.BITCOIN, other, "Hello World", sig) == "address-mismatch"
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 1  # inside the DER signature
    assert reason(Chain.BITCOIN, P2WPKH, "Hello World", bytes(raw)) in (
        "bad-signature",
        "malformed-signature",
    )
    assert reason(Chain.BITCOIN, P2WPKH, "Hello World", bytes(raw[:-3])) == "malformed-signature"
    assert reason(Chain.BITCOIN, P2WPKH, "Hello World", "not base64!") == "malformed-signature"
    # the same key's P2SH-P2WPKH address has another to_spend: the signature does not carry over
    assert reason(Chain.BITCOIN, P2SH_P2WPKH, "Hello World", sig) == "bad-signature"


def test_bip137_core_signatures_verify_for_single_key_addresses() -> None:
    assert P2PKH == "14vV3aCHBeStb5bkenkNHbe2YAFinYdXgc"
    for message, sig in CORE_LEGACY.items():
        for address in (P2PKH, P2WPKH, P2SH_P2WPKH):  # compressed header: any single-key type
            verify_ownership(Chain.BITCOIN, address, message, sig)


def test_bip137_segwit_headers() -> None:
    sig = CORE_LEGACY["Hello World"]
    recid = base64.b64decode(sig)[0] - 31
    p2sh_sig = with_header(sig, 35 + recid)
    p2wpkh_sig = with_header(sig, 39 + recid)
    verify_ownership(Chain.BITCOIN, P2SH_P2WPKH, "Hello World", p2sh_sig)
    verify_ownership(Chain.BITCOIN, P2WPKH, "Hello World", p2wpkh_sig)
    # a header that names one script type does not prove another
    assert reason(Chain.BITCOIN, P2PKH, "Hello World", p2wpkh_sig) == "address-mismatch"
    assert reason(Chain.BITCOIN, P2WPKH, "Hello World", p2sh_sig) == "address-mismatch"
    assert reason(Chain.BITCOIN, P2WPKH, "Hello World", with_header(sig, 27 + recid)) == (
        "address-mismatch"  # uncompressed key hashes to a different address
    )


def test_bip137_negatives() -> None:
    sig = CORE_LEGACY["Hello World"]
    assert reason(Chain.BITCOIN, P2PKH, "Hello world", sig) == "address-mismatch"
    assert reason(Chain.BITCOIN, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "Hello World", sig) == (
        "address-mismatch"
    )
    assert reason(Chain.BITCOIN, P2PKH, "Hello World", with_header(sig, 50)) == (
        "malformed-signature"
    )
    assert reason(Chain.BITCOIN, P2PKH + "x", "Hello World", sig) == "malformed-address"
    assert reason(Chain.BITCOIN, P2WPKH[:-1] + "m", "Hello World", sig) == "malformed-address"
    taproot = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    # a BIP-137 key can never hash to a taproot output
    assert reason(Chain.BITCOIN, taproot, "Hello World", sig) == "address-mismatch"
    segwit_v2 = "bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs"
    assert reason(Chain.BITCOIN, segwit_v2, "Hello World", sig) == "unsupported"


# --- Ethereum -----------------------------------------------------------------------------

ETH_KEY = hashlib.sha256(b"eth owner").digest()
ETH_ACCOUNT = Account.from_key(ETH_KEY)
CHALLENGE = "coldvault whitelist challenge 7f3a: I control this address."


def eth_sig(message: str = CHALLENGE) -> str:
    return Account.sign_message(encode_defunct(text=message), ETH_KEY).signature.hex()


def test_eth_personal_sign_verifies() -> None:
    sig = eth_sig()
    verify_ownership(Chain.ETHEREUM, ETH_ACCOUNT.address, CHALLENGE, sig)
    verify_ownership(Chain.ETHEREUM, ETH_ACCOUNT.address.lower(), CHALLENGE, "0x" + sig)
    raw = bytearray(bytes.fromhex(sig))
    raw[64] -= 27  # 0/1 form
    verify_ownership(Chain.ETHEREUM, ETH_ACCOUNT.address, CHALLENGE, bytes(raw))


def test_eth_negatives() -> None:
    sig = eth_sig()
    other = Account.from_key(hashlib.sha256(b"other").digest()).address
    assert reason(Chain.ETHEREUM, other, CHALLENGE, sig) == "address-mismatch"
    assert reason(Chain.ETHEREUM, ETH_ACCOUNT.address, CHALLENGE + ".", sig) == "address-mismatch"
    assert reason(Chain.ETHEREUM, ETH_ACCOUNT.address, CHALLENGE, sig[:-2]) == (
        "malformed-signature"
    )
    assert reason(Chain.ETHEREUM, ETH_ACCOUNT.address, CHALLENGE, sig[:-2] + "05") == (
        "malformed-signature"
    )
    assert reason(Chain.ETHEREUM, ETH_ACCOUNT.address, CHALLENGE, "zz" * 65) == (
        "malformed-signature"
    )
    bad_case = ETH_ACCOUNT.address[:2] + ETH_ACCOUNT.address[2:].swapcase()
    assert bad_case[2:] not in (bad_case[2:].lower(), bad_case[2:].upper())  # still mixed case
    assert reason(Chain.ETHEREUM, bad_case, CHALLENGE, sig) == "malformed-address"
    assert reason(Chain.ETHEREUM, "0x1234", CHALLENGE, sig) == "malformed-address"


TYPED = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "chainId", "type": "uint256"},
        ],
        "Ownership": [{"name": "address", "type": "address"}, {"name": "nonce", "type": "string"}],
    },
    "primaryType": "Ownership",
    "domain": {"name": "coldvault whitelist", "chainId": 1},
    "message": {"address": ETH_ACCOUNT.address, "nonce": "7f3a"},
}


def test_eth_eip712_typed_data_verifies_against_eth_account() -> None:
    import json

    from eth_account.messages import encode_typed_data

    signed = Account.sign_message(encode_typed_data(full_message=TYPED), ETH_KEY)
    text = json.dumps(TYPED)
    verify_ownership(Chain.ETHEREUM, ETH_ACCOUNT.address, text, signed.signature.hex())
    other = json.dumps({**TYPED, "message": {**TYPED["message"], "nonce": "7f3b"}})
    assert reason(Chain.ETHEREUM, ETH_ACCOUNT.address, other, signed.signature.hex()) == (
        "address-mismatch"
    )
    assert reason(Chain.ETHEREUM, ETH_ACCOUNT.address, "{not json", signed.signature.hex()) == (
        "malformed-message"
    )


# --- Solana -------------------------------------------------------------------------------

SOL = Keypair.from_seed(hashlib.sha256(b"sol owner").digest())


def test_solana_signature_verifies_in_every_encoding() -> None:
    sig = SOL.sign_message(CHALLENGE.encode())
    address = str(SOL.pubkey())
    verify_ownership(Chain.SOLANA, address, CHALLENGE, str(sig))  # base58
    verify_ownership(Chain.SOLANA, address, CHALLENGE, bytes(sig))
    verify_ownership(Chain.SOLANA, address, CHALLENGE, base64.b64encode(bytes(sig)).decode())
    verify_ownership(Chain.SOLANA, address, CHALLENGE, bytes(sig).hex())


def test_solana_negatives() -> None:
    sig = str(SOL.sign_message(CHALLENGE.encode()))
    address = str(SOL.pubkey())
    other = str(Keypair.from_seed(bytes(32)).pubkey())
    assert reason(Chain.SOLANA, other, CHALLENGE, sig) == "bad-signature"
    assert reason(Chain.SOLANA, address, CHALLENGE + "!", sig) == "bad-signature"
    assert reason(Chain.SOLANA, address, CHALLENGE, sig[:-5]) == "malformed-signature"
    assert reason(Chain.SOLANA, address, CHALLENGE, b"\x00" * 63) == "malformed-signature"
    assert reason(Chain.SOLANA, address[:-1] + "0", CHALLENGE, sig) == "malformed-address"
    assert reason(Chain.SOLANA, "abc", CHALLENGE, sig) == "malformed-address"


def test_error_family_and_bounds() -> None:
    assert issubclass(OwnershipProofInvalid, AuthError)
    assert reason(Chain.SOLANA, str(SOL.pubkey()), "x" * 5000, b"") == "malformed-message"
    assert reason(Chain.SOLANA, str(SOL.pubkey()), "\ud800", b"") == "malformed-message"
    with pytest.raises(ValueError):
        verify_ownership("dogecoin", "D...", "m", b"")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(Chain)),
    st.one_of(
        st.text(max_size=100),
        st.sampled_from([P2WPKH, P2PKH, P2SH_P2WPKH, ETH_ACCOUNT.address, str(SOL.pubkey())]),
    ),
    st.one_of(st.binary(max_size=120), st.text(max_size=200)),
)
def test_arbitrary_proofs_fail_cleanly(chain: Chain, address: str, signature: str | bytes) -> None:
    try:
        verify_ownership(chain, address, "challenge", signature)
    except OwnershipProofInvalid:
        pass


def test_the_address_decides_the_chain() -> None:
    from coldvault.policy.ownership import chain_of_address

    taproot = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    for address in (
        P2PKH,
        P2WPKH,
        P2SH_P2WPKH,
        taproot,
        "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",
        P2WPKH[:-1] + "m",
    ):  # a bad bech32 checksum is still a Bitcoin address
        assert chain_of_address(address) is Chain.BITCOIN
    assert chain_of_address(ETH_ACCOUNT.address) is Chain.ETHEREUM
    assert chain_of_address(str(SOL.pubkey())) is Chain.SOLANA
    for bad in ("", "0x1234", "hello", P2PKH[:-1] + "x"):
        with pytest.raises(OwnershipProofInvalid) as info:
            chain_of_address(bad)
        assert info.value.reason == "malformed-address"

"""Official vectors: BIP-32, SLIP-10, BIP-39, SLIP-39 (tests/vectors/SOURCES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldvault.crypto import mnemonics, slip10
from coldvault.crypto.bip32 import (
    HDKey,
    InvalidExtendedKey,
    Network,
    check_extended_key,
    public_child,
)
from coldvault.crypto.paths import HARDENED
from coldvault.crypto.slip10 import Curve, UnsupportedDerivation

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BIP32 = json.loads((VECTORS / "bip32.json").read_text())
SLIP10 = json.loads((VECTORS / "slip10.json").read_text())
BIP39 = json.loads((VECTORS / "bip39.json").read_text())["english"]
SLIP39 = json.loads((VECTORS / "slip39.json").read_text())


def _chains(data: list[dict]) -> list[tuple[str, str, dict]]:
    return [
        (v["seed_hex"], f"{v.get('name', v.get('vector'))}:{c['path']}", c)
        for v in data
        for c in v["chains"]
    ]


# -- BIP-32 ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "seed_hex,name,chain",
    [(s, n, c) for s, n, c in _chains(BIP32["valid"])],
    ids=[n for _, n, _ in _chains(BIP32["valid"])],
)
def test_bip32_chain(seed_hex: str, name: str, chain: dict) -> None:
    node = HDKey.from_seed(bytes.fromhex(seed_hex)).derive(chain["indices"])
    assert node.xprv() == chain["ext_prv"]
    assert node.xpub() == chain["ext_pub"]
    # both serialisations import back to the same node
    assert HDKey.from_extended_key(chain["ext_prv"]).xpub() == chain["ext_pub"]
    pub = HDKey.from_extended_key(chain["ext_pub"])
    assert not pub.is_private and pub.public_key == node.public_key
    assert node.public().xpub() == chain["ext_pub"]


def test_public_child_is_the_vectors_public_derivation() -> None:
    """Every non-hardened step of the BIP-32 vectors, derived from the parent's public key
    and chain code alone, gives the vector's child key and chain code."""
    steps = 0
    for seed_hex, _, chain in _chains(BIP32["valid"]):
        if not chain["indices"] or chain["indices"][-1] & HARDENED:
            continue
        *parent_path, last = chain["indices"]
        parent = HDKey.from_seed(bytes.fromhex(seed_hex)).derive(parent_path)
        child = HDKey.from_extended_key(chain["ext_pub"])
        assert public_child(parent.public_key, parent.chain_code, last) == (
            child.public_key,
            child.chain_code,
        )
        steps += 1
    assert steps >= 4
    node = HDKey.from_seed(bytes(range(32))).derive("m/84h/1h/0h/1")
    for index in (0, 1, 999, HARDENED - 1):
        assert public_child(node.public_key, node.chain_code, index)[0] == (
            node.public().derive((index,)).public_key
        )
    with pytest.raises(ValueError, match="non-hardened"):
        public_child(node.public_key, node.chain_code, HARDENED)


def test_bip32_path_text_equals_indices() -> None:
    chain = BIP32["valid"][0]["chains"][-1]
    root = HDKey.from_seed(bytes.fromhex(BIP32["valid"][0]["seed_hex"]))
    assert root.derive(chain["path"].replace("H", "h")).xpub() == chain["ext_pub"]


EXPECTED_REASON = {
    "pubkey version / prvkey mismatch": "public-key-prefix",
    "prvkey version / pubkey mismatch": "private-key-prefix",
    "invalid pubkey prefix 04": "public-key-prefix",
    "invalid prvkey prefix 04": "private-key-prefix",
    "invalid pubkey prefix 01": "public-key-prefix",
    "invalid prvkey prefix 01": "private-key-prefix",
    "zero depth with non-zero parent fingerprint": "depth-zero-parent",
    "zero depth with non-zero index": "depth-zero-index",
    "unknown extended key version": "version",
    "private key 0 not in 1..n-1": "private-key-range",
    "private key n not in 1..n-1": "private-key-range",
    "invalid pubkey 020000000000000000000000000000000000000000000000000000000000000007": (
        "public-key-point"
    ),
    "invalid checksum": "checksum",
}


@pytest.mark.parametrize("case", BIP32["invalid_extended_keys"], ids=lambda c: c["reason"])
def test_bip32_invalid_keys_refused(case: dict) -> None:
    with pytest.raises(InvalidExtendedKey) as info:
        HDKey.from_extended_key(case["key"])
    assert info.value.reason == EXPECTED_REASON[case["reason"]]
    assert case["key"] not in str(info.value)


def test_bip32_all_sixteen_invalid_keys_present() -> None:
    assert len(BIP32["invalid_extended_keys"]) == 16


def test_tpub_for_test_networks() -> None:
    seed = bytes.fromhex(BIP32["valid"][0]["seed_hex"])
    tpub = HDKey.from_seed(seed, Network.TEST).xpub()
    assert tpub.startswith("tpub")
    fields = check_extended_key(tpub)
    assert fields.network is Network.TEST and not fields.is_private


# -- SLIP-10 --------------------------------------------------------------------------------
def _slip10_cases() -> list[tuple[str, str, str, dict]]:
    out = []
    for curve, vectors in SLIP10["by_curve"].items():
        for seed, name, chain in _chains(vectors):
            out.append((curve, seed, f"{curve}:{name}", chain))
    return out


@pytest.mark.parametrize(
    "curve,seed_hex,name,chain", _slip10_cases(), ids=[c[2] for c in _slip10_cases()]
)
def test_slip10_chain(curve: str, seed_hex: str, name: str, chain: dict) -> None:
    key = slip10.derive(Curve(curve), bytes.fromhex(seed_hex), chain["indices"])
    assert key.parent_fingerprint.hex() == chain["fingerprint"]
    assert key.chain_code.hex() == chain["chain_code"]
    assert bytes(key.private_key).hex() == chain["private"]
    assert key.public_key.hex() == chain["public"]
    assert chain["private"] not in repr(key)
    key.wipe()
    assert key.private_key == bytearray(32)


def test_slip10_retry_vectors_are_exercised() -> None:
    kinds = {v["kind"] for v in SLIP10["by_curve"]["nist256p1"]}
    assert {"derivation_retry", "seed_retry"} <= kinds


@pytest.mark.parametrize("curve", [Curve.ED25519, Curve.CURVE25519])
def test_slip10_hardened_only(curve: Curve) -> None:
    with pytest.raises(UnsupportedDerivation) as info:
        slip10.derive(curve, bytes(16), [0x80000000, 1])
    assert info.value.index == 1


# -- BIP-39 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("entropy_hex,words,seed_hex,xprv", BIP39, ids=range(len(BIP39)))
def test_bip39(entropy_hex: str, words: str, seed_hex: str, xprv: str) -> None:
    assert mnemonics.entropy_to_mnemonic(bytes.fromhex(entropy_hex)) == words
    assert mnemonics.mnemonic_to_entropy(words).hex() == entropy_hex
    seed = mnemonics.mnemonic_to_seed(words, "TREZOR")
    assert isinstance(seed, bytearray) and seed.hex() == seed_hex
    assert HDKey.from_seed(seed).xprv() == xprv


def test_bip39_errors_name_no_word() -> None:
    words = BIP39[0][1].split()
    with pytest.raises(mnemonics.InvalidMnemonic) as info:
        mnemonics.validate_mnemonic(" ".join(words[:11]))
    assert info.value.reason == "word-count"
    with pytest.raises(mnemonics.InvalidMnemonic) as info:
        mnemonics.validate_mnemonic(" ".join(words[:11] + ["zzzz"]))
    assert info.value.reason == "unknown-word" and "zzzz" not in str(info.value)
    with pytest.raises(mnemonics.InvalidMnemonic) as info:
        mnemonics.validate_mnemonic(" ".join(words[:11] + ["zoo"]))
    assert info.value.reason == "checksum"


# -- SLIP-39 --------------------------------------------------------------------------------
SLIP39_ERROR = {
    "Mnemonic with invalid checksum": mnemonics.ShareChecksumError,
    "Mnemonic with invalid padding": mnemonics.ShareFormatError,
    "Basic sharing 2-of-3": mnemonics.InsufficientShares,
    "Mnemonics with different identifiers": mnemonics.SharesMismatch,
    "Mnemonics with different iteration exponents": mnemonics.SharesMismatch,
    "Mnemonics with mismatching group thresholds": mnemonics.SharesMismatch,
    "Mnemonics with mismatching group counts": mnemonics.SharesMismatch,
    "Mnemonics with greater group threshold than group counts": mnemonics.ShareParameterError,
    "Mnemonics with duplicate member indices": mnemonics.DuplicateShare,
    "Mnemonics with mismatching member thresholds": mnemonics.SharesMismatch,
    "Mnemonics giving an invalid digest": mnemonics.ShareDigestError,
    "Insufficient number of groups": mnemonics.InsufficientShares,
    "Threshold number of groups, but insufficient number of members in one group": (
        mnemonics.InsufficientShares
    ),
    "Mnemonic with insufficient length": mnemonics.ShareFormatError,
    "Mnemonic with invalid master secret length": mnemonics.ShareFormatError,
}
SLIP39_DETAIL = {
    "Mnemonics with different identifiers": ("parameter", "identifier"),
    "Mnemonics with different iteration exponents": ("parameter", "iteration-exponent"),
    "Mnemonics with mismatching group thresholds": ("parameter", "group-threshold"),
    "Mnemonics with mismatching group counts": ("parameter", "group-count"),
    "Mnemonics with mismatching member thresholds": ("parameter", "member-threshold"),
    "Mnemonic with invalid padding": ("reason", "padding"),
    "Mnemonic with insufficient length": ("reason", "length"),
    "Mnemonic with invalid master secret length": ("reason", "length"),
}


def _kind(description: str) -> str:
    text = description.split(". ", 1)[1]
    return text.split(" (")[0]


def test_slip39_has_45_cases() -> None:
    assert len(SLIP39) == 45
    assert sum(1 for case in SLIP39 if case[2]) == 15


@pytest.mark.parametrize("case", SLIP39, ids=[c[0].split(".")[0] for c in SLIP39])
def test_slip39(case: list) -> None:
    description, shares, secret_hex, xprv = case
    if secret_hex:
        secret = mnemonics.recover_secret(shares, "TREZOR")
        assert secret.hex() == secret_hex
        assert HDKey.from_seed(secret).xprv() == xprv
        return
    kind = _kind(description)
    with pytest.raises(mnemonics.ShareError) as info:
        mnemonics.recover_secret(shares, "TREZOR")
    assert type(info.value) is SLIP39_ERROR[kind], description
    if kind in SLIP39_DETAIL:
        attr, value = SLIP39_DETAIL[kind]
        assert getattr(info.value, attr) == value
    for share in shares:
        for word in share.split()[:3]:
            assert f" {word} " not in f" {info.value} "


def test_slip39_split_roundtrip() -> None:
    secret = bytes(range(32))
    shares = mnemonics.split_secret(secret, 3, 5, "pass")
    assert len(shares) == 5
    assert mnemonics.recover_secret(shares[1:4], "pass") == bytearray(secret)
    assert mnemonics.recover_secret(shares, "pass") == bytearray(secret)
    summary = mnemonics.share_summary(shares[0])
    assert summary["member_threshold"] == 3 and summary["group_count"] == 1
    with pytest.raises(mnemonics.InsufficientShares) as info:
        mnemonics.recover_secret(shares[:2], "pass")
    assert (info.value.needed, info.value.given) == (3, 2)


def test_wipe_zeroes_and_refuses_bytes() -> None:
    from coldvault.crypto import wipe

    buf = bytearray(b"secret")
    wipe(buf)
    assert buf == bytearray(6)
    wipe(None)
    with pytest.raises(TypeError):
        wipe(b"immutable")  # type: ignore[arg-type]

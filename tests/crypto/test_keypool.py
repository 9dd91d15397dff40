"""Key-pool derivation and exports, checked against independent libraries and known vectors."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from bip_utils import Base58Decoder, Base58Encoder, Bip44, Bip44Changes, Bip44Coins
from embit import bip32 as embit_bip32
from embit.descriptor import Descriptor
from embit.networks import NETWORKS

from coldvault.crypto.bip32 import HDKey, Network
from coldvault.crypto.descriptors import InvalidCosigner, parse_key_origin, sortedmulti_descriptor
from coldvault.crypto.mnemonics import mnemonic_to_seed
from coldvault.keys.keystore import derived_key_id
from coldvault.keys.pool import AccountSpec, Template, derive_pool, wallet_registry_toml
from coldvault.requests.wallets import load_wallets

ABANDON = "abandon " * 11 + "about"
SEED = bytes(mnemonic_to_seed(ABANDON))
FP = bytes.fromhex("73c5da0a")
# BIP-84 test vectors (bitcoin/bips bip-0084.mediawiki)
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf"
    "31mGDtKsAYz2oz2AGutZYs"
)
BIP84_FIRST_RECEIVE = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
BIP84_FIRST_CHANGE = "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
ETH_FIRST = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"


def _as_xpub(zpub: str) -> str:
    raw = Base58Decoder.CheckDecode(zpub)
    return Base58Encoder.CheckEncode(bytes.fromhex("0488b21e") + raw[4:])


SPECS = [
    AccountSpec(Template.BIP84),
    AccountSpec(Template.BIP48_WSH),
    AccountSpec(Template.ETH),
    AccountSpec(Template.SOL),
]


@pytest.fixture(scope="module")
def pool():
    return derive_pool(SEED, SPECS, 5)


def test_pool_shape_and_ids(pool) -> None:
    exports, keys = pool
    by_wallet = {e.spec.name: [k for k in keys if k.wallet == e.spec.name] for e in exports}
    sizes = [len(v) for v in by_wallet.values()]
    assert sizes == [10, 10, 5, 5]  # receive+change for bitcoin, receive for ETH, 5 SOL keys
    for key in keys:
        assert key.fingerprint == FP
        assert key.key_id == derived_key_id(FP, key.path)
        assert key.label.startswith("73c5da0a/")
    labels = {k.label for k in keys}
    assert "73c5da0a/84h/0h/0h/1/4" in labels
    assert "73c5da0a/48h/0h/0h/2h/0/0" in labels
    assert "73c5da0a/44h/60h/0h/0/4" in labels
    assert "73c5da0a/44h/501h/3h/0h" in labels


def test_bip84_matches_official_vectors(pool) -> None:
    exports, keys = pool
    bip84 = exports[0]
    assert bip84.key_origin is not None
    assert bip84.key_origin.xpub == _as_xpub(BIP84_ZPUB)
    assert str(bip84.key_origin).startswith("[73c5da0a/84h/0h/0h]xpub")
    assert bip84.first_addresses[0] == BIP84_FIRST_RECEIVE
    # the exported descriptor, parsed by embit, derives the official addresses
    desc = Descriptor.from_string(bip84.descriptor)
    assert desc.derive(0, branch_index=0).address(NETWORKS["main"]) == BIP84_FIRST_RECEIVE
    assert desc.derive(0, branch_index=1).address(NETWORKS["main"]) == BIP84_FIRST_CHANGE
    # and every receive/change pool key is the descriptor's key at that index
    for key in keys:
        if key.wallet != bip84.spec.name:
            continue
        derived = desc.derive(key.path[-1], branch_index=key.path[-2])
        assert (
            derived.address() == Descriptor.from_string(f"wpkh({key.public_key.hex()})").address()
        )


def test_independent_bip_utils_bip44(pool) -> None:
    exports, keys = pool
    eth = Bip44.FromSeed(SEED, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    eth0 = eth.Change(Bip44Changes.CHAIN_EXT).AddressIndex(0)
    assert eth0.PublicKey().ToAddress() == ETH_FIRST
    assert exports[2].first_addresses[0] == ETH_FIRST
    eth_keys = [k for k in keys if k.wallet == exports[2].spec.name]
    for i, key in enumerate(eth_keys):
        node = eth.Change(Bip44Changes.CHAIN_EXT).AddressIndex(i)
        assert key.public_key == node.PublicKey().RawCompressed().ToBytes()
    sol_keys = [k for k in keys if k.wallet == exports[3].spec.name]
    for i, key in enumerate(sol_keys):
        node = Bip44.FromSeed(SEED, Bip44Coins.SOLANA).Purpose().Coin().Account(i)
        node = node.Change(Bip44Changes.CHAIN_EXT)  # m/44'/501'/i'/0'
        assert key.public_key == node.PublicKey().RawCompressed().ToBytes()[1:]
        if i < len(exports[3].first_addresses):  # the preview: the first receive addresses
            assert exports[3].first_addresses[i] == node.PublicKey().ToAddress()
    assert len(exports[3].first_addresses) == min(len(sol_keys), 3)
    assert exports[3].first_addresses[0] == (
        Bip44.FromSeed(SEED, Bip44Coins.SOLANA)
        .Purpose()
        .Coin()
        .Account(0)
        .Change(Bip44Changes.CHAIN_EXT)
        .PublicKey()
        .ToAddress()
    )


def test_testnet_uses_tpub_and_coin_type_1() -> None:
    exports, keys = derive_pool(SEED, [AccountSpec(Template.BIP84, network="test")], 2)
    origin = exports[0].key_origin
    assert origin is not None and origin.xpub.startswith("tpub")
    assert str(origin).startswith("[73c5da0a/84h/1h/0h]tpub")
    root = embit_bip32.HDKey.from_seed(SEED, version=NETWORKS["test"]["xprv"])
    expected = root.derive("m/84h/1h/0h/0/0").to_public()
    desc = Descriptor.from_string(exports[0].descriptor)
    assert desc.derive(0, branch_index=0).address(NETWORKS["test"]) == Descriptor.from_string(
        f"wpkh({expected.key.sec().hex()})"
    ).address(NETWORKS["test"])
    assert exports[0].first_addresses[0].startswith("tb1q")


def test_multisig_descriptor_from_cosigners(pool) -> None:
    exports, _ = pool
    ours = exports[1].cosigner()
    assert ours["key"].startswith("[73c5da0a/48h/0h/0h/2h]xpub")
    other_seed = bytes(range(64))
    other_root = HDKey.from_seed(other_seed)
    other_acct = other_root.derive("m/48h/0h/0h/2h")
    other = f"[{other_root.fingerprint.hex()}/48h/0h/0h/2h]{other_acct.xpub()}"
    desc_text = sortedmulti_descriptor(2, [ours["key"], other], Network.MAIN)
    assert desc_text.startswith("wsh(sortedmulti(2,[73c5da0a/48h/0h/0h/2h]xpub")
    desc = Descriptor.from_string(desc_text)
    # embit derives the same script as the cosigners' own children sorted by pubkey
    a = HDKey.from_seed(SEED).derive("m/48h/0h/0h/2h/0/7").public_key
    b = other_acct.derive([0, 7]).public_key
    manual = Descriptor.from_string(f"wsh(sortedmulti(2,{a.hex()},{b.hex()}))")
    assert desc.derive(7, branch_index=0).address() == manual.address()
    with pytest.raises(InvalidCosigner) as info:
        sortedmulti_descriptor(2, [ours["key"], ours["key"]], Network.MAIN)
    assert info.value.position == 2
    with pytest.raises(InvalidCosigner):
        sortedmulti_descriptor(1, [ours["key"]], Network.TEST)
    with pytest.raises(InvalidCosigner):
        parse_key_origin("[73c5da0a/48h/0h]" + other_acct.xpub())  # depth mismatch
    with pytest.raises(InvalidCosigner):
        parse_key_origin(f"[73c5da0a/48h/0h/0h/2h]{other_acct.xprv()}")


def test_wallet_registry_toml_loads(pool, tmp_path: Path) -> None:
    exports, _ = pool
    path = tmp_path / "wallets.toml"
    path.write_text(wallet_registry_toml(exports))
    wallets = load_wallets(path)
    assert set(wallets) == {s.name for s in SPECS}
    w = wallets["house-bip84-main-0"]
    assert w.master_fingerprint == "73c5da0a" and w.account_path == "m/84h/0h/0h"
    assert w.descriptor == exports[0].descriptor and w.max_index == 4
    assert tomllib.loads(path.read_text())["wallet"][2]["chain"] == "ethereum"


def test_exports_are_public_only(pool) -> None:
    exports, keys = pool
    blob = json.dumps([e.to_dict() for e in exports] + [k.to_dict() for k in keys])
    root = HDKey.from_seed(SEED)
    assert root.xprv()[:20] not in blob and "xprv" not in blob and "tprv" not in blob
    assert root.derive("m/84h/0h/0h/0/0").private_key().hex() not in blob


def test_ur_exports_decode_back(pool) -> None:
    from coldvault.keys.pool import ur_account, ur_output
    from coldvault.transport.registry import decode_registry
    from coldvault.transport.ur import decode_single

    exports, _ = pool
    text = ur_output(exports[0])
    assert text is not None and text.startswith("ur:crypto-output/")
    out = decode_registry(decode_single(text))
    assert out.to_descriptor() == "wpkh([73c5da0a/84'/0'/0']" + exports[0].key_origin.xpub + ")"
    cosigner = decode_registry(decode_single(ur_output(exports[1])))
    assert cosigner.to_descriptor().startswith("wsh(cosigner([73c5da0a/48'/0'/0'/2']xpub")
    assert ur_output(exports[2]) is None
    account = decode_registry(decode_single(ur_account(exports)))
    assert account.master_fingerprint == 0x73C5DA0A and len(account.outputs) == 2


def test_bip84_descriptor_with_bip_utils(pool) -> None:
    from bip_utils import Bip32Secp256k1, P2WPKHAddrEncoder

    exports, _ = pool
    account = Bip32Secp256k1.FromExtendedKey(exports[0].key_origin.xpub)  # plain xpub
    addresses = [
        P2WPKHAddrEncoder.EncodeKey(
            account.ChildKey(branch).ChildKey(0).PublicKey().RawCompressed().ToBytes(),
            hrp="bc",
            wit_ver=0,
        )
        for branch in (0, 1)
    ]
    assert addresses == [BIP84_FIRST_RECEIVE, BIP84_FIRST_CHANGE]


def test_multisig_wallet_entry_takes_the_full_descriptor(pool, tmp_path: Path) -> None:
    exports, _ = pool
    other_root = HDKey.from_seed(bytes(range(64)))
    other = (
        f"[{other_root.fingerprint.hex()}/48h/0h/0h/2h]{other_root.derive('m/48h/0h/0h/2h').xpub()}"
    )
    desc = sortedmulti_descriptor(2, [exports[1].cosigner()["key"], other], Network.MAIN)
    path = tmp_path / "w.toml"
    import tomli_w

    path.write_text(tomli_w.dumps({"wallet": [exports[1].wallet_entry(desc)]}))
    assert load_wallets(path)["house-bip48-wsh-sortedmulti-main-0"].descriptor == desc


@pytest.mark.lab
def test_provision_into_softhsm(keystore) -> None:
    """Keys imported into the lab token equal the derivations; re-running only checks."""
    from coldvault.keys.keystore import KeyAlgorithm
    from coldvault.keys.pool import PoolMismatch, provision

    record = provision(keystore, SEED, SPECS, 2)
    assert record.imported == len(record.keys) == 12 and record.already_present == 0
    held = {k.key_id: k for k in keystore.list_keys()}
    for key in record.keys:
        info = held[key.key_id]
        assert info.public_key == key.public_key and info.label == key.label
        assert info.sensitive and not info.extractable
    # a signature by the HSM key verifies against the derived public key
    import hashlib

    import coincurve

    digest = hashlib.sha256(b"coldvault keypool test").digest()
    sig = keystore.sign_ecdsa(record.keys[0].key_id, digest)
    assert coincurve.PublicKey(record.keys[0].public_key).verify(sig.der, digest, hasher=None)
    again = provision(keystore, SEED, SPECS, 2)
    assert (again.imported, again.already_present) == (0, 12)
    # a foreign key under a pool CKA_ID is detected, never silently accepted
    third = derive_pool(SEED, [SPECS[0]], 3)[1][2]
    keystore.generate_key(KeyAlgorithm.SECP256K1, third.key_id, "foreign")
    with pytest.raises(PoolMismatch) as info:
        provision(keystore, SEED, [SPECS[0]], 3)
    assert info.value.label == third.label

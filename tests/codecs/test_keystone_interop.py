"""Our Keystone-style exports against Keystone's own registry (tests/vectors/interop/
keystone.json, made by generate.mjs with @keystonehq/bc-ur-registry): what a Keystone
reader finds in our QR, field by field, and a Keystone-encoded multi-accounts read by ours."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import cbor2
import pytest
from solders.pubkey import Pubkey

from coldvault.transport.registry import decode_registry
from coldvault.transport.registry.cbor import FieldError, Tag
from coldvault.transport.registry.keys import HDKey, Keypath
from coldvault.transport.registry.keystone import MultiAccounts
from coldvault.transport.ur import UR, decode_single, encode_single

INTEROP = Path(__file__).parents[1] / "vectors" / "interop"
KEYSTONE = json.loads((INTEROP / "keystone.json").read_text())
EXPORT = runpy.run_path(str(INTEROP / "our_export.py"), run_name="vectors")["export"]()


def keystone_path(key: HDKey) -> str:
    """``m/44'/60'/0'`` as the Keystone readers print a path."""
    assert key.origin is not None
    return "m/" + key.origin.path


def as_keystone_sdk_reads(key: HDKey) -> dict[str, Any]:
    """Our decoding of one key, in the shape of keystone.json's ``keystone_sdk.keys``."""
    assert key.origin is not None and key.origin.source_fingerprint is not None
    return {
        "coin_type": key.origin.components[1].index,
        "path": keystone_path(key),
        "source_fingerprint": f"{key.origin.source_fingerprint:08x}",
        "public_key": key.key_data.hex(),
        "chain_code": key.chain_code.hex() if key.chain_code else None,
        "extended_public_key": key.to_base58() if key.chain_code and key.parent_fingerprint
        else None,
        "name": key.name,
        "note": key.note,
    }


def decoded(ur_text: str) -> MultiAccounts:
    value = decode_registry(decode_single(ur_text))
    assert isinstance(value, MultiAccounts)
    return value


def test_the_vectors_were_made_from_our_current_export() -> None:
    """If our encoder changes, the vectors must be regenerated (generate.mjs)."""
    assert EXPORT == json.loads((INTEROP / "our_export.json").read_text())
    assert KEYSTONE["ours"]["ur"] == EXPORT["ur"]
    assert KEYSTONE["ours_ethereum_account"]["ur"] == EXPORT["ethereum_account_ur"]
    assert KEYSTONE["ours_solana_account"]["ur"] == EXPORT["solana_account_ur"]


def test_our_export_reads_in_keystone_as_in_ours_field_by_field() -> None:
    read = KEYSTONE["ours"]["read"]["keystone_sdk"]
    ours = decoded(EXPORT["ur"])
    assert read["master_fingerprint"] == f"{ours.master_fingerprint:08x}" == "73c5da0a"
    assert read["device"] == ours.device == "coldvault"
    assert [as_keystone_sdk_reads(k) for k in ours.keys] == read["keys"]
    eth, *sol = read["keys"]
    assert (eth["coin_type"], eth["path"], eth["note"]) == (60, "m/44'/60'/0'", "account.standard")
    assert eth["extended_public_key"] == EXPORT["ethereum"]["xpub"]
    assert [k["public_key"] for k in sol] == EXPORT["solana"]["public_keys"]
    assert [k["path"] for k in sol] == [f"m/44'/501'/{i}'/0'" for i in range(3)]
    assert all(k["chain_code"] is None and k["coin_type"] == 501 for k in sol)


def test_wallet_readers_see_our_addresses() -> None:
    """MetaMask's Keystone keyring reads the Ethereum file; Solflare's the Solana file."""
    metamask = KEYSTONE["ours_ethereum_account"]["read"]
    assert metamask == {
        "ur_type": "crypto-hdkey", "xfp": "73c5da0a", "hd_path": "m/44'/60'/0'",
        "children_path": "0/*", "xpub": EXPORT["ethereum"]["xpub"], "note": "account.standard",
        "name": None,
    }  # fmt: skip
    solflare = KEYSTONE["ours_solana_account"]["read"]["sol_keyring"]
    assert solflare["xfp"] == "73c5da0a"
    assert [a["pub_key"] for a in solflare["accounts"]] == EXPORT["solana"]["addresses"]
    assert [a["hd_path"] for a in solflare["accounts"]] == [f"44'/501'/{i}'/0'" for i in range(3)]
    # the mixed QR is not for Solflare: it takes the Ethereum key as a Solana account too
    mixed = KEYSTONE["ours"]["read"]["sol_keyring"]["accounts"]
    assert [a["pub_key"] for a in mixed[1:]] == EXPORT["solana"]["addresses"]
    assert mixed[0]["hd_path"] == "44'/60'/0'"


def test_keystone_made_multi_accounts_decodes_with_ours() -> None:
    made = KEYSTONE["keystone_made"]
    value = decoded(made["ur"])
    read = made["read"]["keystone_sdk"]
    assert f"{value.master_fingerprint:08x}" == read["master_fingerprint"] == "73c5da0a"
    assert (value.device, value.device_id, value.version) == (
        read["device"], read["device_id"], read["device_version"])
    assert [as_keystone_sdk_reads(k) for k in value.keys] == read["keys"]
    eth, *sol = value.keys
    assert eth.to_base58() == EXPORT["ethereum"]["xpub"] and not eth.ed25519
    assert [str(Pubkey.from_bytes(k.key_data)) for k in sol] == EXPORT["solana"]["addresses"]
    assert all(k.ed25519 for k in sol)
    # and re-encodes byte for byte as Keystone's registry did
    assert encode_single(value.to_ur()) == made["ur"]


def test_ed25519_hdkey_round_trips_and_stays_public() -> None:
    key = HDKey(key_data=bytes(range(32)), origin=Keypath.from_path("m/44h/501h/0h/0h", 1))
    ur = key.to_ur()
    back = decode_registry(UR("crypto-hdkey", ur.cbor))
    assert back == key and isinstance(back, HDKey) and back.ed25519
    with pytest.raises(ValueError, match="Ed25519"):
        HDKey(key_data=bytes(32), chain_code=bytes(32)).to_base58()
    private = cbor2.dumps({2: True, 3: bytes(32)})
    with pytest.raises(FieldError, match="public key only"):
        decode_registry(UR("crypto-hdkey", private))


def test_ed25519_key_is_refused_inside_a_bitcoin_output() -> None:
    hdkey = cbor2.CBORTag(Tag.HDKEY, {3: bytes(32)})
    output = cbor2.dumps(cbor2.CBORTag(404, hdkey))  # wpkh(<32-byte key>)
    with pytest.raises(FieldError, match="33 bytes"):
        decode_registry(UR("crypto-output", output))


def test_multi_accounts_field_errors_name_the_field() -> None:
    with pytest.raises(FieldError, match="keys"):
        decode_registry(UR("crypto-multi-accounts", cbor2.dumps({1: 1, 2: []})))
    with pytest.raises(FieldError, match="not a tagged crypto-hdkey"):
        decode_registry(UR("crypto-multi-accounts", cbor2.dumps({1: 1, 2: [{3: bytes(32)}]})))
    with pytest.raises(FieldError, match="master-fingerprint"):
        decode_registry(UR("crypto-multi-accounts", cbor2.dumps({2: []})))


def test_provisioning_writes_the_wallet_readers_files(tmp_path: Path) -> None:
    """The per-account files a provisioning run writes are the URs checked above."""
    from coldvault.ceremonies.exports import write_exports
    from coldvault.keys.pool import ProvisioningRecord, derive_pool

    module = runpy.run_path(str(INTEROP / "our_export.py"), run_name="vectors")
    exports, keys = derive_pool(module["TEST_SEED"], module["SPECS"], module["POOL_SIZE"])
    record = ProvisioningRecord(exports[0].master_fingerprint, 3, tuple(exports), tuple(keys))
    written = write_exports(record, tmp_path)

    def text(name: str) -> str:
        assert name in written
        return (tmp_path / name).read_text().strip()

    assert text("globex-eth.ur.txt") == KEYSTONE["ours_ethereum_account"]["ur"]
    assert text("initech-sol.ur.txt") == KEYSTONE["ours_solana_account"]["ur"]
    assert text("crypto-multi-accounts.ur.txt") == KEYSTONE["ours"]["ur"]
    assert text("acme-btc.ur.txt").startswith("ur:crypto-output/")
    for name in ("globex-eth.ur.png", "initech-sol.ur.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")

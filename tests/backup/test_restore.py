"""What a rebuilt seed is compared with: the provisioning record and the wallet registry."""

from __future__ import annotations

import json

import pytest

from coldvault.backup.errors import ProvisioningRecordInvalid, RecoveredSeedMismatch
from coldvault.backup.restore import (
    FreshTokenNotEmpty,
    compare_wallets,
    expectations_from_provisioning,
    expectations_from_wallets,
    restore_into,
)
from coldvault.crypto.bip32 import Network
from coldvault.crypto.descriptors import sortedmulti_descriptor
from coldvault.keys.pool import AccountSpec, ProvisioningRecord, Template, derive_pool
from coldvault.requests.wallets import parse_wallets

SEED = bytes(range(32))
OTHER = bytes(range(1, 33))
SPECS = [
    AccountSpec(Template.BIP84, network="test"),
    AccountSpec(Template.BIP48_WSH, network="main"),
    AccountSpec(Template.ETH),
    AccountSpec(Template.SOL, account=0),
]


def _record(seed: bytes = SEED) -> ProvisioningRecord:
    exports, keys = derive_pool(seed, SPECS, 3)
    return ProvisioningRecord(exports[0].master_fingerprint, 3, tuple(exports), tuple(keys))


def test_the_provisioning_record_matches_its_seed_only() -> None:
    expected = expectations_from_provisioning(json.dumps(_record().to_dict()).encode())
    assert expected.pool_size == 3 and len(expected.keys) == 6 + 6 + 3 + 3
    checks = compare_wallets(SEED, expected)
    assert [c.ok for c in checks] == [True] * 4
    assert [(c.xpub_ok, c.addresses_ok) for c in checks] == [
        (True, True),
        (True, None),
        (True, True),
        (None, True),
    ]  # multisig accounts have no single-key addresses
    wrong = compare_wallets(OTHER, expected)
    assert [c.ok for c in wrong] == [False] * 4
    assert [c.fingerprint_ok for c in wrong] == [False] * 4


def test_the_wallet_registry_matches_by_descriptor_xpub() -> None:
    record = _record()
    bip48 = record.accounts[1]
    other = derive_pool(OTHER, [SPECS[1]], 1)[0][0]
    assert bip48.key_origin is not None and other.key_origin is not None
    multisig = sortedmulti_descriptor(1, [bip48.key_origin, other.key_origin], Network.MAIN)
    entries = [a.wallet_entry(multisig if a is bip48 else None) for a in record.accounts]
    toml = "\n".join(
        "[[wallet]]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in e.items()) for e in entries
    )
    wallets = parse_wallets(toml.encode())
    fp = record.master_fingerprint.hex()
    expected = expectations_from_wallets(wallets, fp)
    assert [a.xpub is not None for a in expected.accounts] == [True, True, False, False]
    checks = compare_wallets(SEED, expected)
    assert all(c.ok for c in checks)
    assert [c.xpub_ok for c in checks] == [True, True, None, None]
    assert expectations_from_wallets(wallets, "00000000").accounts == ()


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda d: d.update(master_fingerprint="XY"), "master_fingerprint"),
        (lambda d: d.update(accounts=[]), "accounts"),
        (lambda d: d["accounts"][0].update(template="bip99"), "accounts[0].template"),
        (lambda d: d["accounts"][1].pop("xpub"), None),  # xpub may be absent
        (lambda d: d["keys"][0].update(public_key="zz"), "keys[0]"),
        (lambda d: d["keys"][0].update(algorithm="rsa"), "keys[0]"),
        (lambda d: d.update(pool_size="3"), "pool_size"),
    ],
)
def test_bad_provisioning_records(change, field) -> None:
    doc = _record().to_dict()
    change(doc)
    data = json.dumps(doc).encode()
    if field is None:
        expectations_from_provisioning(data)
        return
    with pytest.raises(ProvisioningRecordInvalid) as info:
        expectations_from_provisioning(data)
    assert info.value.field == field


@pytest.mark.lab
def test_restore_refuses_a_token_that_is_not_empty(keystore) -> None:
    from coldvault.keys.pool import provision

    record = provision(keystore, SEED, SPECS[:1], 1)
    expected = expectations_from_provisioning(json.dumps(record.to_dict()).encode())
    with pytest.raises(FreshTokenNotEmpty) as info:
        restore_into(keystore, SEED, expected, challenge=b"x")
    assert info.value.label == "coldvault-appliance"


@pytest.mark.lab
def test_a_drill_restore_leaves_the_fresh_token_empty(fresh_token, softhsm_lab) -> None:
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    expected = expectations_from_provisioning(json.dumps(_record().to_dict()).encode())
    label, pin = fresh_token
    with Pkcs11Keystore.open(softhsm_lab.module_path, label, pin, allow_emulated=True) as fresh:
        result = restore_into(fresh, SEED, expected, challenge=b"drill-1")
        assert result.ok and result.keys_imported == 18 and not result.keys_kept
        assert [s.verified for s in result.signatures] == [True] * 4
        assert fresh.list_keys() == []
        with pytest.raises(RecoveredSeedMismatch):  # another seed: nothing is imported
            restore_into(fresh, OTHER, expected, challenge=b"drill-2")
        assert fresh.list_keys() == []

"""UR registry types against ur_registry.json: decode UR -> CBOR -> fields -> encode back."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import cbor2
import pytest

from coldvault.transport import registry as reg
from coldvault.transport.registry import (
    EthSignature,
    EthSignRequest,
    Keypath,
    SolSignature,
    SolSignRequest,
    UnsupportedType,
    decode_registry,
)
from coldvault.transport.registry.bitcoin import PSBT, Account, Address, Bytes, Output, Seed
from coldvault.transport.registry.cbor import FieldError, MalformedCbor, ScriptKind
from coldvault.transport.registry.keys import ECKey, HDKey, base58check_decode
from coldvault.transport.registry.keystone import EthDataType, SolSignType
from coldvault.transport.ur import UR, decode_single, encode_single

V = json.loads((Path(__file__).parents[1] / "vectors" / "ur_registry.json").read_text())
FOUNDATION = V["foundation_rs"]
PAPERS = V["bcr_papers"]
KEYSTONE = V["keystone"]


def roundtrip(ur_text: str, cbor_hex: str, *, emitted_type: str | None = None):
    """Decode ``ur_text``, check its CBOR, decode the value, and re-encode it exactly."""
    ur = decode_single(ur_text)
    assert ur.cbor.hex() == cbor_hex.lower()
    value = decode_registry(ur)
    back = value.to_ur()
    assert back.cbor == ur.cbor
    assert back.type == (emitted_type or ur.type)
    if emitted_type is None:
        assert encode_single(back) == ur_text
    return value


# ------------------------------------------------------ foundation-rs (BCR-2020-006..009)


def test_bytes_vector_and_known_quirk() -> None:
    case = FOUNDATION["bcr-2020-006"][0]
    value = roundtrip(case["as-ur"], case["as-cbor"])
    assert isinstance(value, Bytes)
    assert value.data.hex() == "00112233445566778899aabbccddeeff"
    # known_upstream_quirks: the 'ur.bytes' field is a copy error upstream (the PSBT).
    assert any("bcr-2020-006[0]" in q for q in V["known_upstream_quirks"])
    assert value.data.hex().upper() != case["ur"]["bytes"]


def test_seed_vector() -> None:
    case = FOUNDATION["bcr-2020-006"][1]
    value = roundtrip(case["as-ur"], case["as-cbor"])
    assert isinstance(value, Seed)
    assert value.payload.hex().upper() == case["ur"]["seed"]["payload"]
    assert value.creation_date == case["ur"]["seed"]["creation-date"]
    assert value.payload.hex() not in repr(value)  # secret stays out of reprs


def test_paper_seed_example() -> None:
    case = PAPERS["bcr-2020-005_single_part_example"]["vectors"][0]
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, Seed) and value.creation_date is None
    assert value.payload.hex() == "c7098580125e2ab0981253468b2dbc52"


def test_psbt_type_is_accepted_and_emitted_as_crypto_psbt() -> None:
    case = FOUNDATION["bcr-2020-006"][2]
    value = roundtrip(case["as-ur"], case["as-cbor"], emitted_type="crypto-psbt")
    assert isinstance(value, PSBT)
    assert value.data.hex().upper() == case["ur"]["psbt"]
    assert reg.encode_psbt(value.data) == UR("crypto-psbt", decode_single(case["as-ur"]).cbor)


@pytest.mark.parametrize("tag", [310, 40310])
def test_psbt_tagged_byte_string_accepted(tag: int) -> None:
    data = bytes.fromhex("70736274ff01")
    ur = UR("psbt", cbor2.dumps(cbor2.CBORTag(tag, data)))
    assert decode_registry(ur) == PSBT(data)
    assert decode_registry(UR("crypto-psbt", ur.cbor)) == PSBT(data)


@pytest.mark.parametrize("index", [0, 1])
def test_hdkey_vectors(index: int) -> None:
    case = FOUNDATION["bcr-2020-007"][index]
    value = roundtrip(case["as-ur"], case["as-cbor"])
    assert isinstance(value, HDKey)
    expected = case["ur"]["hdkey"]
    if "xprv" in expected:
        assert value.is_master and value.private
        assert value.to_base58() == expected["xprv"]["key"]
        assert value.key_data.hex() not in repr(value)
    else:
        assert not value.private and value.testnet
        assert value.to_base58() == expected["xpub"]["key"]
        assert "m/" + value.origin.path == expected["xpub"]["origin"]
        assert value.parent_fingerprint == 0xE9181CF3
        # from_base58 recovers the same key material.
        again = HDKey.from_base58(expected["xpub"]["key"], origin=value.origin)
        assert again.key_data == value.key_data and again.chain_code == value.chain_code


def test_eckey_vector() -> None:
    case = FOUNDATION["bcr-2020-008"][0]
    value = roundtrip(case["as-ur"], case["as-cbor"])
    assert isinstance(value, ECKey)
    assert value.is_private is True
    assert value.data.hex().upper() == case["ur"]["eckey"]["data"]
    assert value.data.hex() not in repr(value)


@pytest.mark.parametrize("index", [0, 1])
def test_address_vectors(index: int) -> None:
    case = FOUNDATION["bcr-2020-009"][index]
    value = roundtrip(case["as-ur"], case["as-cbor"])
    assert isinstance(value, Address)
    (expected,) = case["ur"]["address"].values()
    assert value.to_string() == expected


# ----------------------------------------------------------------- BCR papers: output / account


OUTPUTS = PAPERS["bcr-2020-010_crypto-output"]["vectors"]


def _strip_origins(descriptor: str) -> str:
    return re.sub(r"\[[0-9a-f]{8}(/[0-9'h/]+)?\]", "", descriptor)


@pytest.mark.parametrize("case", OUTPUTS, ids=lambda c: c["name"])
def test_crypto_output_vectors(case: dict) -> None:
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, Output)
    got = value.to_descriptor()
    if case["name"].endswith("4"):
        # The paper's xpub text says depth 4 / child 0xfffffffe, which the CBOR (origin
        # 44'/0'/0', parent 78412e3a) cannot produce; key, chain code and parent agree.
        paper_xpub = re.search(r"xpub\w+", case["descriptor"]).group(0)
        ours = re.search(r"xpub\w+", got).group(0)
        a, b = base58check_decode(paper_xpub), base58check_decode(ours)
        assert a[5:9] == b[5:9] and a[13:] == b[13:]
        assert got.replace(ours, paper_xpub) == case["descriptor"]
    elif case["name"].endswith("5"):
        # The paper omits the second key's origin [bd16bee5/0]; the CBOR carries it.
        assert "[bd16bee5/0]" in got
        assert _strip_origins(got) == case["descriptor"]
    else:
        assert got == case["descriptor"]


def test_crypto_account_paper_vector() -> None:
    (case,) = PAPERS["bcr-2020-015_crypto-account"]["vectors"]
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, Account)
    decoded = case["decoded"]
    assert value.master_fingerprint == decoded["master_fingerprint_uint32"]
    assert len(value.outputs) == decoded["output_descriptor_count"]
    assert value.tag_outputs is True
    assert [o.scripts[0] for o in value.outputs] == decoded["first_script_tag_per_descriptor"]
    assert [o.to_descriptor() for o in value.outputs] == case["output_descriptors"]


@pytest.mark.parametrize("case", KEYSTONE["crypto-account"], ids=lambda c: c["name"])
def test_keystone_crypto_account(case: dict) -> None:
    value = roundtrip(case["ur"], case["cbor_hex"])
    decoded = case["decoded"]
    assert f"{value.master_fingerprint:08x}" == decoded["master_fingerprint_hex"]
    assert len(value.outputs) == decoded["output_count"]
    assert value.tag_outputs == all(decoded["items_tagged_308"])
    assert [o.scripts for o in value.outputs] == [
        (ScriptKind.PKH,), (ScriptKind.SH, ScriptKind.WPKH), (ScriptKind.SH, ScriptKind.MULTI)
    ]


def test_keystone_crypto_output_taproot() -> None:
    (case,) = KEYSTONE["crypto-output"]
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert [int(s) for s in value.scripts] + [306] == case["decoded"]["tag_chain"]
    assert value.key.data.hex() == case["decoded"]["key_data_hex"]
    assert value.to_descriptor() == f"tr({case['decoded']['key_data_hex']})"


def test_keystone_crypto_psbt() -> None:
    (case,) = KEYSTONE["crypto-psbt"]
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert value.data.hex() == case["decoded"]["psbt_hex"]


# ----------------------------------------------------------------- Keystone eth / sol


def _check_path(path: Keypath, expected: dict) -> None:
    assert path.path == expected["path"]
    flat = []
    for c in path.components:
        flat += [c.index, c.hardened]
    assert flat == expected["components"]
    assert f"{path.source_fingerprint:08x}" == expected["source_fingerprint_hex"]


@pytest.mark.parametrize("case", KEYSTONE["eth-sign-request"], ids=lambda c: c["name"])
def test_eth_sign_request(case: dict) -> None:
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, EthSignRequest)
    d = case["decoded"]
    assert str(value.request_id) == d["request_id_uuid"]
    assert value.sign_data.hex() == d["sign_data_hex"]
    assert value.data_type == d["data_type"]
    assert value.data_type.name.lower().replace("_", "-") == d["data_type_name"]
    assert value.chain_id == d["chain_id"]
    assert value.origin == d.get("origin")
    _check_path(value.derivation_path, d["derivation_path"])
    assert sorted(cbor2.loads(value.to_ur().cbor)) == d["cbor_map_keys"]


@pytest.mark.parametrize("case", KEYSTONE["eth-signature"], ids=lambda c: c["name"])
def test_eth_signature(case: dict) -> None:
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, EthSignature)
    d = case["decoded"]
    assert str(value.request_id) == d["request_id_uuid"]
    assert value.signature.hex() == d["signature_hex"]
    assert value.origin == d["origin"]
    again = reg.encode_eth_signature(value.signature, uuid.UUID(d["request_id_uuid"]), "keystone")
    assert again.cbor.hex() == case["cbor_hex"]


@pytest.mark.parametrize("case", KEYSTONE["sol-sign-request"], ids=lambda c: c["name"])
def test_sol_sign_request(case: dict) -> None:
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, SolSignRequest)
    d = case["decoded"]
    assert str(value.request_id) == d["request_id_uuid"]
    assert value.sign_data.hex() == d["sign_data_hex"]
    assert value.sign_type == d["sign_type"]
    assert value.sign_type.name.lower() == d["sign_type_name"]
    assert value.origin == d["origin"]
    _check_path(value.derivation_path, d["derivation_path"])
    assert sorted(cbor2.loads(value.to_ur().cbor)) == d["cbor_map_keys"]


@pytest.mark.parametrize("case", KEYSTONE["sol-signature"], ids=lambda c: c["name"])
def test_sol_signature(case: dict) -> None:
    value = roundtrip(case["ur"], case["cbor_hex"])
    assert isinstance(value, SolSignature)
    assert str(value.request_id) == case["decoded"]["request_id_uuid"]
    assert value.signature.hex() == case["decoded"]["signature_hex"]
    again = reg.encode_sol_signature(value.signature, value.request_id)
    assert again.cbor.hex() == case["cbor_hex"]


# ----------------------------------------------------------------- construction helpers


def test_keypath_from_path() -> None:
    path = Keypath.from_path("M/44'/1'/1'/0/1", 0x12345678)
    assert path.path == "44'/1'/1'/0/1"
    assert path.indices == (44 | 2**31, 1 | 2**31, 1 | 2**31, 0, 1)
    request = EthSignRequest(
        sign_data=bytes.fromhex(KEYSTONE["eth-sign-request"][1]["decoded"]["sign_data_hex"]),
        data_type=EthDataType.TRANSACTION, derivation_path=path, chain_id=1,
        request_id=uuid.UUID("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"),
    )
    assert request.to_ur().cbor.hex() == KEYSTONE["eth-sign-request"][1]["cbor_hex"]
    with pytest.raises(ValueError):
        Keypath.from_path("44'/x")
    with pytest.raises(ValueError):
        Keypath.from_path("0/*").indices  # noqa: B018


def test_build_account_export() -> None:
    (case,) = PAPERS["bcr-2020-015_crypto-account"]["vectors"]
    paper = decode_registry(decode_single(case["ur"]))
    rebuilt = reg.encode_account(paper.master_fingerprint, paper.outputs)
    assert rebuilt.cbor.hex() == case["cbor_hex"]
    key = paper.outputs[2].key
    from_text = HDKey.from_base58(
        key.to_base58(), origin=key.origin
    )
    assert from_text.key_data == key.key_data and from_text.parent_fingerprint == (
        key.parent_fingerprint
    )
    assert Output((ScriptKind.WPKH,), from_text).to_descriptor() == case["output_descriptors"][2]


def test_sol_sign_type_message() -> None:
    assert decode_registry(decode_single(KEYSTONE["sol-sign-request"][2]["ur"])).sign_type is (
        SolSignType.MESSAGE
    )


# ----------------------------------------------------------------- negative cases


def _ur(ur_type: str, value: object) -> UR:
    return UR(ur_type, cbor2.dumps(value))


def test_dispatch_is_by_type_string_not_tag() -> None:
    # Tag 401 is both Keystone eth-sign-request and BC wsh(); the type string decides.
    wsh = KEYSTONE["crypto-output"][0]["cbor_hex"].replace("d90199", "d90191d90193", 1)
    value = decode_registry(UR("crypto-output", bytes.fromhex(wsh)))
    assert value.scripts == (ScriptKind.WSH, ScriptKind.PKH)
    with pytest.raises(FieldError):
        decode_registry(UR("eth-sign-request", bytes.fromhex(wsh)))


def test_unsupported_type() -> None:
    with pytest.raises(UnsupportedType):
        decode_registry(UR("crypto-sskr", b"\x40"))


@pytest.mark.parametrize(
    ("ur_type", "cbor_hex", "reason"),
    [
        ("bytes", "41", "truncated"),
        ("bytes", "4100ff", "trailing"),
        ("bytes", "5f4100ff", "indefinite"),
        ("crypto-psbt", "c24100", "bignum tag"),
        ("eth-signature", "a1d81c01", "shareable tag"),
        ("eth-signature", "a201010101", "duplicate key"),
        ("eth-signature", "a14100f6", "bytes map key"),
        ("bytes", "81" * 40 + "00", "too deep"),
        ("eth-signature", "a10262ff00", "bad utf-8"),
        ("bytes", "f7", "undefined"),
        ("bytes", "9b7fffffffffffffff", "huge array"),
        ("crypto-account", "9a00010001" + "00" * 65537, "too many items"),
    ],
)
def test_malformed_cbor(ur_type: str, cbor_hex: str, reason: str) -> None:
    with pytest.raises(MalformedCbor):
        decode_registry(UR(ur_type, bytes.fromhex(cbor_hex)))


def test_size_bound() -> None:
    with pytest.raises(MalformedCbor):
        decode_registry(_ur("bytes", bytes(2000)), max_len=1000)


@pytest.mark.parametrize(
    ("ur_type", "value", "field"),
    [
        ("eth-sign-request", [1, 2], "eth-sign-request"),
        ("eth-sign-request", {2: b"x", 3: 9, 5: cbor2.CBORTag(304, {1: []})},
         "eth-sign-request.data-type"),
        ("eth-sign-request", {2: b"x", 3: 1}, "eth-sign-request.derivation-path"),
        ("eth-sign-request", {2: "x", 3: 1, 5: cbor2.CBORTag(304, {1: []})},
         "eth-sign-request.sign-data"),
        ("eth-sign-request", {2: b"x", 3: 1, 4: -1, 5: cbor2.CBORTag(304, {1: []})},
         "eth-sign-request.chain-id"),
        ("eth-sign-request", {1: cbor2.CBORTag(37, b"short"), 2: b"x", 3: 1,
                              5: cbor2.CBORTag(304, {1: []})}, "eth-sign-request.request-id"),
        ("eth-sign-request", {2: b"x", 3: 1, 5: cbor2.CBORTag(304, {1: [44]})},
         "eth-sign-request.derivation-path.components"),
        ("eth-sign-request", {2: b"x", 3: 1, 5: cbor2.CBORTag(303, {1: []})},
         "eth-sign-request.derivation-path"),
        ("eth-signature", {2: b"\x00" * 64}, "eth-signature.signature"),
        ("sol-signature", {1: cbor2.CBORTag(37, bytes(16))}, "sol-signature.signature"),
        ("sol-sign-request", {2: b"x", 3: cbor2.CBORTag(304, {1: []}), 6: 3},
         "sol-sign-request.type"),
        ("crypto-hdkey", {3: b"\x02" * 31}, "hdkey.key-data"),
        # 32 bytes is Keystone's Ed25519 public key: never a private one
        ("crypto-hdkey", {2: True, 3: b"\x02" * 32}, "hdkey.key-data"),
        ("crypto-hdkey", {1: True, 3: b"\x00" * 33}, "hdkey.chain-code"),
        ("crypto-hdkey", {2: True, 3: b"\x02" * 33}, "hdkey.key-data"),
        ("crypto-hdkey", {3: b"\x04" * 33}, "hdkey.key-data"),
        ("crypto-hdkey", {3: b"\x02" * 33, 6: {1: []}}, "hdkey.origin"),
        ("crypto-seed", {2: 5}, "seed.payload"),
        ("crypto-account", {1: 1, 2: [cbor2.CBORTag(401, cbor2.CBORTag(404, 5))]},
         "account.output-descriptors[0].key"),
        ("crypto-output", cbor2.CBORTag(404, cbor2.CBORTag(400, {})), "output"),
        ("crypto-output", cbor2.CBORTag(406, {1: 3, 2: []}), "output.multi.keys"),
        ("crypto-output", b"\x00", "output"),
        ("crypto-psbt", "text", "psbt"),
        ("bytes", 5, "bytes"),
    ],
)
def test_field_errors_name_the_field(ur_type: str, value: object, field: str) -> None:
    with pytest.raises(FieldError) as info:
        decode_registry(_ur(ur_type, value))
    assert info.value.field == field
    assert field in str(info.value)


def test_programmer_errors() -> None:
    with pytest.raises(ValueError):
        reg.encode_sol_signature(b"\x00" * 63, None)
    with pytest.raises(ValueError):
        reg.encode_eth_signature(b"\x00" * 64, None)

"""Pre-parser and BIP-370 locktime against the official BIP-174/BIP-370 vectors."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from coldvault.errors import ColdvaultError, InputError
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.errors import (
    PsbtBadKey,
    PsbtBadLocktime,
    PsbtBadValue,
    PsbtDuplicateKey,
    PsbtError,
    PsbtFieldNotAllowed,
    PsbtMissingField,
    PsbtNonCanonical,
    PsbtNotPsbt,
    PsbtTooLarge,
    PsbtTruncated,
    PsbtUnsignedTxNotEmpty,
    PsbtUnsupportedVersion,
)
from coldvault.requests.bitcoin.locktime import LocktimeUndeterminable, determine_locktime
from coldvault.requests.bitcoin.maps import G_UNSIGNED_TX, Limits
from coldvault.requests.bitcoin.tx import compact_size, parse_tx

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
BIP174 = json.loads((VECTORS / "bip174_psbt.json").read_text())
BIP370 = json.loads((VECTORS / "bip370_psbtv2.json").read_text())
FOUNDATION = json.loads((VECTORS / "foundation_bip174.json").read_text())

#: description -> the exact error the pre-parser must raise
BIP174_INVALID: dict[str, type[PsbtError]] = {
    "Network transaction, not PSBT format": PsbtNotPsbt,
    "PSBT missing outputs": PsbtTruncated,
    "PSBT where one input has a filled scriptSig in the unsigned tx": PsbtUnsignedTxNotEmpty,
    "PSBT where inputs and outputs are provided but without an unsigned tx": PsbtMissingField,
    "PSBT with duplicate keys in an input": PsbtDuplicateKey,
    "PSBT with invalid global transaction typed key": PsbtBadKey,
    "PSBT with invalid input witness utxo typed key": PsbtBadKey,
    "PSBT with invalid pubkey length for input partial signature typed key": PsbtBadKey,
    "PSBT with invalid redeemscript typed key": PsbtBadKey,
    "PSBT with invalid witnessscript typed key": PsbtBadKey,
    "PSBT with invalid pubkey in input BIP 32 derivation paths typed key": PsbtBadKey,
    "PSBT with invalid non-witness utxo typed key": PsbtBadKey,
    "PSBT with invalid final scriptsig typed key": PsbtBadKey,
    "PSBT with invalid final script witness typed key": PsbtBadKey,
    "PSBT with invalid pubkey in output BIP 32 derivation paths typed key": PsbtBadKey,
    "PSBT with invalid input sighash type typed key": PsbtBadKey,
    "PSBT with invalid output redeemScript typed key": PsbtBadKey,
    "PSBT with invalid output witnessScript typed key": PsbtBadKey,
    "PSBT with unsigned tx serialized with witness serialization format": PsbtUnsignedTxNotEmpty,
    "PSBT with an invalid value data due to its size being not the stated size": PsbtBadValue,
}

BIP370_INVALID: dict[str, type[PsbtError]] = {
    "PSBTv0 but with PSBT_GLOBAL_VERSION set to 2.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_GLOBAL_TX_VERSION.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_GLOBAL_FALLBACK_LOCKTIME.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_GLOBAL_INPUT_COUNT.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_GLOBAL_OUTPUT_COUNT.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_GLOBAL_TX_MODIFIABLE.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_IN_PREVIOUS_TXID.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_IN_OUTPUT_INDEX.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_IN_SEQUENCE.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_IN_REQUIRED_TIME_LOCKTIME.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_IN_REQUIRED_HEIGHT_LOCKTIME.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_OUT_AMOUNT.": PsbtFieldNotAllowed,
    "PSBTv0 but with PSBT_OUT_SCRIPT.": PsbtFieldNotAllowed,
    "PSBTv2 but with PSBT_GLOBAL_UNSIGNED_TX.": PsbtFieldNotAllowed,
    "PSBTv2 missing PSBT_GLOBAL_INPUT_COUNT.": PsbtMissingField,
    "PSBTv2 missing PSBT_GLOBAL_OUTPUT_COUNT.": PsbtMissingField,
    "PSBTv2 missing PSBT_GLOBAL_TX_VERSION.": PsbtMissingField,
    "PSBTv2 missing PSBT_IN_PREVIOUS_TXID.": PsbtMissingField,
    "PSBTv2 missing PSBT_IN_OUTPUT_INDEX.": PsbtMissingField,
    "PSBTv2 missing PSBT_OUT_AMOUNT.": PsbtMissingField,
    "PSBTv2 missing PSBT_OUT_SCRIPT.": PsbtMissingField,
    "PSBTv2 with PSBT_IN_REQUIRED_TIME_LOCKTIME less than 500000000.": PsbtBadLocktime,
    "PSBTv2 with PSBT_IN_REQUIRED_HEIGHT_LOCKTIME greater than or equal to 500000000.": (
        PsbtBadLocktime
    ),
    "PSBTv2 with PSBT_IN_REQUIRED_HEIGHT_LOCKTIME of 0.": PsbtBadLocktime,
}


def _cases(doc: dict, *categories: str) -> list:
    cases = [c for c in doc["cases"] if c["category"] in categories]
    return [pytest.param(c, id=c["description"][:70]) for c in cases]


def test_vector_counts() -> None:
    cats = [c["category"] for c in BIP174["cases"]]
    assert (cats.count("invalid"), cats.count("valid"), cats.count("fails_signer_checks")) == (
        20,
        10,
        4,
    )
    cats = [c["category"] for c in BIP370["cases"]]
    assert (cats.count("invalid"), cats.count("valid"), cats.count("locktime")) == (24, 14, 10)
    assert len(BIP174_INVALID) == 20 and len(BIP370_INVALID) == 24


@pytest.mark.parametrize("case", _cases(BIP174, "invalid") + _cases(BIP370, "invalid"))
def test_invalid_vectors_rejected_with_exact_error(case: dict) -> None:
    expected = {**BIP174_INVALID, **BIP370_INVALID}[case["description"]]
    for form in (bytes.fromhex(case["hex"]), case["base64"]):
        with pytest.raises(PsbtError) as info:
            pp.parse_psbt(form)
        assert type(info.value) is expected
        assert isinstance(info.value, InputError)
        assert str(info.value).endswith(".")


@pytest.mark.parametrize(
    "case", _cases(BIP174, "valid", "fails_signer_checks") + _cases(BIP370, "valid", "locktime")
)
def test_valid_vectors_roundtrip_byte_identical(case: dict) -> None:
    raw = bytes.fromhex(case["hex"])
    assert base64.b64decode(case["base64"]) == raw
    for form in (raw, case["base64"], case["base64"].encode()):
        psbt = pp.parse_psbt(form)
        assert psbt.serialize() == raw
    assert len(psbt.inputs) == len(psbt.tx_inputs)
    assert len(psbt.outputs) == len(psbt.tx_outputs)


@pytest.mark.parametrize("case", _cases(BIP370, "locktime"))
def test_bip370_locktime(case: dict) -> None:
    psbt = pp.parse_psbt(bytes.fromhex(case["hex"]))
    assert psbt.version == 2
    if case["locktime_computable"]:
        assert determine_locktime(psbt) == case["expected_locktime"]
    else:
        assert case["expected_locktime"] is None
        with pytest.raises(LocktimeUndeterminable):
            determine_locktime(psbt)


def test_bip370_all_locktime_cases_covered() -> None:
    assert len(_cases(BIP370, "locktime")) == 10
    assert (
        sum(
            1
            for c in BIP370["cases"]
            if c["category"] == "locktime" and not c["locktime_computable"]
        )
        == 1
    )


def test_v0_locktime_is_unsigned_tx_locktime() -> None:
    case = next(c for c in BIP174["cases"] if c["category"] == "valid")
    psbt = pp.parse_psbt(bytes.fromhex(case["hex"]))
    assert psbt.v0_locktime == int.from_bytes(
        (psbt.globals.get(G_UNSIGNED_TX) or b"")[-4:], "little"
    )
    assert determine_locktime(psbt) == psbt.v0_locktime


def _foundation_b64(s: str) -> str:
    return s.replace("&#61;", "=")


def test_foundation_vectors() -> None:
    for case in FOUNDATION["invalid"]:
        raw = bytes.fromhex(case["as-hex"])
        with pytest.raises(PsbtError) as info:
            pp.parse_psbt(raw)
        assert type(info.value) is BIP174_INVALID[case["description"].rstrip(".")]
        if case["as-base64"]:  # upstream left one case's base64 empty
            with pytest.raises(type(info.value)):
                pp.parse_psbt(_foundation_b64(case["as-base64"]))
    for case in FOUNDATION["valid"] + FOUNDATION["fails-signer-checks"]:
        raw = bytes.fromhex(case["as-hex"])
        assert pp.parse_psbt(raw).serialize() == raw
        assert pp.parse_psbt(_foundation_b64(case["as-base64"])).serialize() == raw
    assert len(FOUNDATION["invalid"]) == 19 and len(FOUNDATION["valid"]) == 10


# ---------------------------------------------------------------- bounds and edge cases

V0 = bytes.fromhex(next(c for c in BIP174["cases"] if c["category"] == "valid")["hex"])


def test_size_limit() -> None:
    with pytest.raises(PsbtTooLarge):
        pp.parse_psbt(V0, limits=Limits(max_bytes=len(V0) - 1))
    with pytest.raises(PsbtTooLarge):
        pp.parse_psbt(
            base64.b64encode(V0 + b"\0" * 64).decode(), limits=Limits(max_bytes=len(V0))
        )
    assert pp.parse_psbt(V0, limits=Limits(max_bytes=len(V0))).serialize() == V0


def test_input_count_limit() -> None:
    with pytest.raises(PsbtTooLarge):
        pp.parse_psbt(V0, limits=Limits(max_inputs=0))


def test_non_canonical_compact_size() -> None:
    # key length 1 written as fd 01 00
    bad = V0[:5] + b"\xfd\x01\x00" + V0[6:]
    with pytest.raises(PsbtNonCanonical):
        pp.parse_psbt(bad)


def test_trailing_bytes() -> None:
    with pytest.raises(PsbtTruncated):
        pp.parse_psbt(V0 + b"\x00")


def test_unsupported_version() -> None:
    bad = V0[:5] + b"\x01\xfb\x04" + (1).to_bytes(4, "little") + V0[5:]
    with pytest.raises(PsbtUnsupportedVersion):
        pp.parse_psbt(bad)


def test_garbage_text() -> None:
    for junk in ("", "not base64 !", base64.b64encode(b"hello").decode(), b"\xff\xfe"):
        with pytest.raises(PsbtNotPsbt):
            pp.parse_psbt(junk)


def test_errors_carry_field_and_offset() -> None:
    case = next(
        c for c in BIP174["cases"] if c["description"] == "PSBT with duplicate keys in an input"
    )
    with pytest.raises(PsbtDuplicateKey) as info:
        pp.parse_psbt(bytes.fromhex(case["hex"]))
    err = info.value
    assert isinstance(err, ColdvaultError)
    assert err.field == "input 0" and isinstance(err.offset, int)
    assert err.to_dict()["offset"] == err.offset


def _v2_globals(n_in: bytes, n_out: bytes) -> bytes:
    def kv(t: int, v: bytes) -> bytes:
        return b"\x01" + bytes([t]) + compact_size(len(v)) + v

    body = kv(2, (2).to_bytes(4, "little")) + kv(4, n_in) + kv(5, n_out)
    body += kv(0xFB, (2).to_bytes(4, "little"))
    return pp.MAGIC + body + b"\x00"


def test_v2_counts_bounded_before_reading_maps() -> None:
    with pytest.raises(PsbtTooLarge):
        pp.parse_psbt(_v2_globals(compact_size(5001), b"\x00"))
    with pytest.raises(PsbtTooLarge):
        pp.parse_psbt(_v2_globals(b"\x00", b"\xff" + b"\xff" * 8))
    with pytest.raises(PsbtTruncated):
        pp.parse_psbt(_v2_globals(compact_size(5000), b"\x00"))
    assert pp.parse_psbt(_v2_globals(b"\x00", b"\x00")).tx_inputs == ()


def test_v2_count_must_be_canonical() -> None:
    with pytest.raises(PsbtBadValue):
        pp.parse_psbt(_v2_globals(b"\xfd\x01\x00", b"\x00"))


def test_tx_claiming_more_inputs_than_bytes() -> None:
    tx = (2).to_bytes(4, "little") + b"\xfe" + (10**6).to_bytes(4, "little") + b"\x00" * 50
    with pytest.raises(PsbtTooLarge):
        parse_tx(tx, what="tx", allow_witness=True)

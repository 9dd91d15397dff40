"""Ethereum sign requests: built and verified with eth-account / rlp (independent)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from pathlib import Path

import cbor2
import coincurve
import pytest
import rlp as ref_rlp
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.typed_transactions import TypedTransaction
from eth_utils import to_checksum_address
from hexbytes import HexBytes

from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.paths import parse_path
from coldvault.crypto.secp256k1 import SECP256K1_N, EcdsaSignature
from coldvault.errors import InputError, Refused
from coldvault.keys.keystore import KeyAlgorithm, KeyInfo
from coldvault.requests.base import Chain, MovementKind
from coldvault.requests.ethereum import rlp
from coldvault.requests.ethereum.eip712 import Eip712Error
from coldvault.requests.ethereum.request import prepare_eth
from coldvault.requests.ethereum.rlp import RlpError
from coldvault.requests.ethereum.tx import (
    ChainIdMismatch,
    EthRequestError,
    UnsupportedTransactionType,
    checksum_address,
    eth_address,
)
from coldvault.requests.keys import AddressMismatch, KeyNotOurs, ResponseSignatureInvalid
from coldvault.requests.wallets import Wallet

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
H = 0x8000_0000
FP = bytes.fromhex("d34db33f")
PATH = (44 | H, 60 | H, 0 | H, 0, 5)
REQ_ID = uuid.UUID("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d").bytes
DIGEST = hashlib.sha256(b"request").digest()


class SoftKeys:
    """Software stand-in for the HSM keystore (pure-library tests only)."""

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    @staticmethod
    def private(key_id: bytes) -> coincurve.PrivateKey:
        return coincurve.PrivateKey(hashlib.sha256(b"test-seed/" + key_id).digest())

    def lookup(self, key_id: bytes) -> KeyInfo | None:
        self.calls.append(key_id)
        pub = self.private(key_id).public_key.format(compressed=True)
        return KeyInfo(key_id, "test", KeyAlgorithm.SECP256K1, pub)

    def sign_ecdsa(self, key_id: bytes, digest: bytes) -> EcdsaSignature:
        sig = self.private(key_id).sign_recoverable(digest, hasher=None)
        return EcdsaSignature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"))


KEYS = SoftKeys()


def wallet(chain_id: int = 1, fp: bytes = FP, account: str = "m/44h/60h/0h") -> Wallet:
    return Wallet(
        name="eth-treasury",
        client="acme",
        chain=Chain.ETHEREUM,
        network=str(chain_id),
        template="bip44-eth",
        master_fingerprint=fp.hex(),
        account_path=account,
    )


def our_address(path: tuple[int, ...] = PATH, fp: bytes = FP) -> str:
    key_id = b"K" + fp + b"".join(i.to_bytes(4, "big") for i in path)
    return Account.from_key(SoftKeys.private(key_id).secret).address


def prepare(sign_data: bytes, data_type: int, chain_id: int | None = 1, **kw):  # type: ignore[no-untyped-def]
    args = dict(
        sign_data=sign_data,
        data_type=data_type,
        chain_id=chain_id,
        path=PATH,
        source_fingerprint=FP,
        address=None,
        request_id=REQ_ID,
        wallet=wallet(chain_id or 1),
        lookup_key=KEYS.lookup,
        request_digest=DIGEST,
        origin="test wallet",
    )
    args.update(kw)
    return prepare_eth(**args)


def sign(prepared) -> bytes:  # type: ignore[no-untyped-def]
    (job,) = prepared.jobs
    assert job.algorithm is KeyAlgorithm.SECP256K1 and len(job.payload) == 32
    response = cbor2.loads(prepared.finish([KEYS.sign_ecdsa(job.key_id, job.payload)]))
    assert response[1] == uuid.UUID(bytes=REQ_ID)  # cbor2 decodes tag 37 as UUID
    assert response[3] == "test wallet"
    return response[2]


def split(sig: bytes) -> tuple[int, int, int]:
    return (
        int.from_bytes(sig[64:], "big"),
        int.from_bytes(sig[:32], "big"),
        int.from_bytes(sig[32:64], "big"),
    )


TOKEN = to_checksum_address("0x" + "a0" * 20)
RECIPIENT = to_checksum_address("0x" + "be" * 20)


def eip1559(**over: object) -> dict:  # type: ignore[type-arg]
    tx = {
        "type": 2,
        "chainId": 1,
        "nonce": 7,
        "maxPriorityFeePerGas": 2_000_000_000,
        "maxFeePerGas": 30_000_000_000,
        "gas": 21_000,
        "to": RECIPIENT,
        "value": 1_230_000_000_000_000_000,
        "data": b"",
        "accessList": [],
    }
    tx.update(over)
    return tx


def unsigned_1559(tx: dict) -> bytes:  # type: ignore[type-arg]
    fields = [
        tx["chainId"],
        tx["nonce"],
        tx["maxPriorityFeePerGas"],
        tx["maxFeePerGas"],
        tx["gas"],
        bytes.fromhex(tx["to"][2:]) if tx["to"] else b"",
        tx["value"],
        tx["data"],
        [
            [bytes.fromhex(e["address"][2:]), [bytes.fromhex(k[2:]) for k in e["storageKeys"]]]
            for e in tx["accessList"]
        ],
    ]
    return b"\x02" + ref_rlp.encode(fields)


def signed_1559(unsigned: bytes, sig: bytes) -> bytes:
    fields = ref_rlp.decode(unsigned[1:])
    v, r, s = split(sig)
    return b"\x02" + ref_rlp.encode([*fields, v, r, s])


# --- happy paths, verified by eth-account -------------------------------------------------


def test_eip1559_transfer_signature_recovers_our_address() -> None:
    tx = eip1559(accessList=[{"address": TOKEN, "storageKeys": ["0x" + "00" * 31 + "01"]}])
    unsigned = unsigned_1559(tx)
    prepared = prepare(unsigned, 4)
    assert prepared.jobs[0].payload == TypedTransaction.from_dict(tx).hash()
    sig = sign(prepared)
    assert len(sig) == 65 and sig[64] in (0, 1)
    assert Account.recover_transaction(signed_1559(unsigned, sig)) == our_address()
    review = prepared.review
    assert prepared.response_type == "eth-signature"
    assert review.kind == "eth-transaction" and review.network == "1"
    assert review.fee == 21_000 * 30_000_000_000
    (move,) = review.movements
    assert move.kind is MovementKind.EXTERNAL and move.asset == "ETH"
    assert move.amount == 1_230_000_000_000_000_000
    assert move.destination == checksum_address(bytes.fromhex(RECIPIENT[2:]))
    details = dict(review.details)
    assert details["value"] == "1.230000000000000000 ETH (1,230,000,000,000,000,000 wei)"
    assert details["nonce"] == "7" and details["chain id"] == "1"
    assert details["access list"] == "1 addresses, 1 storage keys"
    assert details["signing address"] == our_address()
    assert details["requested by"] == "test wallet"
    assert review.request_digest == DIGEST


def test_erc20_transfer_and_approve_become_movements() -> None:
    transfer = (
        bytes.fromhex("a9059cbb")
        + bytes(12)
        + bytes.fromhex("be" * 20)
        + (10**6).to_bytes(32, "big")
    )
    prepared = prepare(unsigned_1559(eip1559(to=TOKEN, value=0, data=transfer, gas=60_000)), 4)
    kinds = {(m.kind, m.asset) for m in prepared.review.movements}
    token = f"ERC20:{checksum_address(bytes.fromhex(TOKEN[2:]))}"
    assert (MovementKind.CONTRACT_CALL, "ETH") in kinds
    erc = [m for m in prepared.review.movements if m.asset == token]
    assert erc[0].kind is MovementKind.EXTERNAL and erc[0].amount == 10**6
    assert erc[0].destination == checksum_address(bytes.fromhex("be" * 20))

    approve = bytes.fromhex("095ea7b3") + bytes(12) + bytes.fromhex("cd" * 20) + b"\xff" * 32
    prepared = prepare(unsigned_1559(eip1559(to=TOKEN, value=0, data=approve)), 4)
    assert any("UNLIMITED" in w for w in prepared.review.warnings)
    appr = [m for m in prepared.review.movements if m.asset == token]
    assert appr[0].kind is MovementKind.CONTRACT_CALL and appr[0].amount == 2**256 - 1

    other = bytes.fromhex("12345678") + bytes(32)
    prepared = prepare(unsigned_1559(eip1559(data=other)), 4)
    assert any("0x12345678" in w for w in prepared.review.warnings)


def test_contract_creation_is_flagged() -> None:
    prepared = prepare(unsigned_1559(eip1559(to=b"", data=b"\x60\x00", gas=100_000)), 4)
    (move,) = prepared.review.movements
    assert move.destination == "(contract creation)"
    assert any("creates a contract" in w for w in prepared.review.warnings)


@pytest.mark.parametrize("chain", [1, 137, 2**40 + 7])
@pytest.mark.parametrize("form", ["eip155", "zeros", "six"])
def test_legacy_eip155_signature_recovers_our_address(form: str, chain: int) -> None:
    base = [9, 50_000_000_000, 21_000, bytes.fromhex(RECIPIENT[2:]), 10**17, b""]
    tail = {"eip155": [chain, 0, 0], "zeros": [0, 0, 0], "six": []}[form]
    prepared = prepare(ref_rlp.encode(base + tail), 1, chain_id=chain)
    sig = sign(prepared)
    v, r, s = split(sig)
    assert v in (chain * 2 + 35, chain * 2 + 36)
    raw = ref_rlp.encode([*base, v, r, s])
    assert Account.recover_transaction(raw) == our_address()
    assert prepared.review.fee == 21_000 * 50_000_000_000
    assert ("chain id", str(chain)) in prepared.review.details


def test_personal_message_recovers_our_address() -> None:
    msg = b"I control this address for Acme Custody, 2026-11-22"
    prepared = prepare(msg, 3)
    sig = sign(prepared)
    assert sig[64] in (27, 28)
    assert Account.recover_message(encode_defunct(primitive=msg), signature=sig) == our_address()
    assert ("message", msg.decode()) in prepared.review.details
    assert prepared.review.fee is None and prepared.review.movements == ()


MAIL = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}


def test_typed_data_recovers_our_address() -> None:
    prepared = prepare(json.dumps(MAIL).encode(), 2)
    # the EIP-712 spec's published digest for the Mail example
    assert prepared.jobs[0].payload.hex() == (
        "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    )
    sig = sign(prepared)
    assert sig[64] in (27, 28)
    signable = encode_typed_data(full_message=MAIL)
    assert Account.recover_message(signable, signature=sig) == our_address()
    details = dict(prepared.review.details)
    assert details["Mail.contents"] == "Hello, Bob!"
    assert details["domain.name"] == "Ether Mail"


def test_matching_request_address_is_accepted() -> None:
    ours = bytes.fromhex(our_address()[2:])
    assert (
        eth_address(
            KEYS.lookup(b"K" + FP + b"".join(i.to_bytes(4, "big") for i in PATH)).public_key
        )
        == ours
    )  # type: ignore[union-attr]
    prepare(b"hello", 3, address=ours)


# --- Keystone registry vectors ------------------------------------------------------------


def keystone(kind: str) -> list[dict]:  # type: ignore[type-arg]
    return json.loads((VECTORS / "ur_registry.json").read_text())["keystone"][kind]


def vector_args(vec: dict) -> dict:  # type: ignore[type-arg]
    dec = vec["decoded"]
    comps = dec["derivation_path"]["components"]
    path = tuple(comps[i] | (H if comps[i + 1] else 0) for i in range(0, len(comps), 2))
    fp = bytes.fromhex(dec["derivation_path"]["source_fingerprint_hex"])
    account = "m/" + "/".join(f"{i & ~H}h" if i & H else str(i) for i in path[:3])
    return dict(
        sign_data=bytes.fromhex(dec["sign_data_hex"]),
        data_type=dec["data_type"],
        chain_id=dec["chain_id"],
        path=path,
        source_fingerprint=fp,
        wallet=wallet(dec["chain_id"], fp, account),
        request_id=uuid.UUID(dec["request_id_uuid"]).bytes,
        origin=dec.get("origin"),
    )


def test_keystone_legacy_vector_reviews() -> None:
    for vec in keystone("eth-sign-request")[:2]:
        prepared = prepare(**vector_args(vec))
        details = dict(prepared.review.details)
        assert details["to"] == "0x" + "00" * 20
        assert details["gas price"] == "10000000000000 wei"
        assert details["gas limit"] == "10000" and details["nonce"] == "0"
        assert details["calldata"].startswith("36 bytes, selector 0x7f746573")
        assert any("zero address" in w for w in prepared.review.warnings)
        assert any("no chain id" in w for w in prepared.review.warnings)
        response = cbor2.loads(
            prepared.finish([KEYS.sign_ecdsa(prepared.jobs[0].key_id, prepared.jobs[0].payload)])
        )
        assert response[1] == uuid.UUID(vec["decoded"]["request_id_uuid"])
        assert response.get(3) == vec["decoded"].get("origin")
        assert int.from_bytes(response[2][64:], "big") in (37, 38)


def test_keystone_avalanche_vector_reviews() -> None:
    vec = keystone("eth-sign-request")[2]
    prepared = prepare(**vector_args(vec))
    details = dict(prepared.review.details)
    assert details["chain id"] == "43113" and details["type"] == "EIP-1559"
    assert details["to"].lower() == "0x46a836a6d5800dd3ab9a6b914c904ef8017b48c8"
    assert details["value"] == "0.993821433000000000 ETH (993,821,433,000,000,000 wei)"
    assert prepared.review.fee == 0x5208 * 0x9502F900
    assert any("already carried a signature" in w for w in prepared.review.warnings)
    # we sign the 9 unsigned fields, exactly as eth-account hashes them
    signed = TypedTransaction.from_bytes(HexBytes(vec["decoded"]["sign_data_hex"]))
    assert prepared.jobs[0].payload == signed.hash()


def test_keystone_eth_signature_layout() -> None:
    vec = keystone("eth-signature")[0]
    from coldvault.requests.ethereum.request import eth_signature_cbor

    sig = bytes.fromhex(vec["decoded"]["signature_hex"])
    built = eth_signature_cbor(uuid.UUID(vec["decoded"]["request_id_uuid"]).bytes, sig, "keystone")
    assert built.hex() == vec["cbor_hex"]


# --- negatives ----------------------------------------------------------------------------


def test_wrong_chain_ids_are_refused() -> None:
    with pytest.raises(ChainIdMismatch):  # tx says 5, request and wallet say 1
        prepare(unsigned_1559(eip1559(chainId=5)), 4)
    with pytest.raises(ChainIdMismatch):  # request says 5, wallet 1
        prepare(unsigned_1559(eip1559()), 4, wallet=wallet(1), chain_id=5)
    base = [9, 1, 21_000, bytes(20), 1, b"", 5, 0, 0]
    with pytest.raises(ChainIdMismatch):  # legacy placeholder says chain 5
        prepare(ref_rlp.encode(base), 1, chain_id=1)
    with pytest.raises(EthRequestError):  # legacy tx that is already signed
        prepare(ref_rlp.encode([*base[:6], 37, 1, 1]), 1, chain_id=1)
    wrong_domain = json.loads(json.dumps(MAIL))
    wrong_domain["domain"]["chainId"] = 10
    with pytest.raises(ChainIdMismatch):
        prepare(json.dumps(wrong_domain).encode(), 2)
    with pytest.raises(EthRequestError):
        prepare(unsigned_1559(eip1559()), 4, chain_id=None)


def test_address_and_key_not_ours_are_refused() -> None:
    with pytest.raises(AddressMismatch):
        prepare(b"hello", 3, address=bytes(20))
    with pytest.raises(KeyNotOurs):
        prepare(b"hello", 3, source_fingerprint=bytes.fromhex("00112233"))
    with pytest.raises(KeyNotOurs):
        prepare(b"hello", 3, path=(44 | H, 60 | H, 1 | H, 0, 0))
    with pytest.raises(KeyNotOurs):
        prepare(b"hello", 3, path=(*PATH[:4], 100))
    with pytest.raises(KeyNotOurs):
        prepare(b"hello", 3, lookup_key=lambda key_id: None)
    with pytest.raises(EthRequestError):
        prepare(b"hello", 3, source_fingerprint=b"\x01")


DEEP: list = []  # type: ignore[type-arg]
for _ in range(12):
    DEEP = [DEEP]


@pytest.mark.parametrize(
    "sign_data",
    [
        unsigned_1559(eip1559()) + b"\x00",  # trailing byte
        b"\x02\xf8\x05" + bytes(5),  # long form used for a short list
        b"\x02\xc9\x81\x01" + bytes(7),  # single byte < 0x80 wrapped
        b"\x02\xb8\x01\x01",  # string long form with 1 byte
        b"\x02" + ref_rlp.encode(DEEP),  # nested too deep
        b"\x02\xc5\x01",  # list runs past the end
    ],
)
def test_malformed_rlp_is_refused(sign_data: bytes) -> None:
    with pytest.raises(RlpError) as info:
        prepare(sign_data, 4)
    assert str(info.value).endswith(".")


def test_noncanonical_scalar_and_bad_shapes() -> None:
    fields = ref_rlp.decode(unsigned_1559(eip1559())[1:])
    fields[1] = b"\x00\x07"  # nonce with leading zero
    with pytest.raises(RlpError):
        prepare(b"\x02" + ref_rlp.encode(fields), 4)
    with pytest.raises(EthRequestError):
        prepare(b"\x02" + ref_rlp.encode([1, 2, 3]), 4)
    fields = ref_rlp.decode(unsigned_1559(eip1559())[1:])
    fields[5] = b"\x01" * 19
    with pytest.raises(EthRequestError):
        prepare(b"\x02" + ref_rlp.encode(fields), 4)
    with pytest.raises(EthRequestError):  # legacy bytes sent as typed
        prepare(ref_rlp.encode([1, 2, 3, b"", 0, b"", 1, 0, 0]), 4)
    with pytest.raises(EthRequestError):  # typed bytes sent as legacy
        prepare(unsigned_1559(eip1559()), 1)


@pytest.mark.parametrize("tx_type", [0x01, 0x03, 0x04])
def test_unsupported_typed_transactions_are_refused(tx_type: int) -> None:
    with pytest.raises(UnsupportedTransactionType) as info:
        prepare(bytes([tx_type]) + ref_rlp.encode([1, 2, 3]), 4)
    assert isinstance(info.value, Refused)
    assert info.value.tx_type == tx_type


def test_oversized_and_unknown_requests() -> None:
    with pytest.raises(EthRequestError):
        prepare(b"x" * (128 * 1024 + 1), 3)
    with pytest.raises(EthRequestError):
        prepare(b"hello", 9)
    with pytest.raises(EthRequestError):
        prepare(b"hello", 3, request_id=b"short")
    with pytest.raises(EthRequestError):
        prepare(b"hello", 3, chain_id=2**63)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(primaryType="Nope"),
        lambda d: d["message"].update(extra="not signed"),
        lambda d: d["message"]["from"].update(wallet="0x1234"),
        lambda d: d["types"]["Mail"].append({"name": "x", "type": "Unknown"}),
        lambda d: d["message"].pop("contents"),
        lambda d: d["domain"].update(chainId="one"),
    ],
)
def test_malformed_typed_data(mutate) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(MAIL))
    mutate(data)
    with pytest.raises(Eip712Error):
        prepare(json.dumps(data).encode(), 2)


def test_typed_data_not_json_or_too_deep() -> None:
    with pytest.raises(Eip712Error):
        prepare(b"{not json", 2)
    with pytest.raises(Eip712Error):
        prepare(b"[" * 100_000, 2)


def test_bad_keystore_signature_is_caught() -> None:
    prepared = prepare(b"hello", 3)
    other = KEYS.sign_ecdsa(b"K" + bytes(4), prepared.jobs[0].payload)
    with pytest.raises(ResponseSignatureInvalid):
        prepared.finish([other])
    good = KEYS.sign_ecdsa(prepared.jobs[0].key_id, prepared.jobs[0].payload)
    high = EcdsaSignature(good.r, SECP256K1_N - good.s)
    assert good.is_low_s and not high.is_low_s and high.low_s() == good
    with pytest.raises(ResponseSignatureInvalid, match="high-S"):
        prepared.finish([high])
    with pytest.raises(ValueError, match="EcdsaSignature"):
        prepared.finish([Ed25519Signature(bytes(64))])
    with pytest.raises(ValueError, match="EcdsaSignature"):
        prepared.finish([good, good])


def test_rlp_roundtrip_against_reference() -> None:
    for item in [b"", b"\x7f", b"\x80", b"z" * 56, [b"a", [b"", [b"b" * 100]]], [[]] * 3]:
        encoded = ref_rlp.encode(item)
        assert rlp.encode(item) == encoded
        assert rlp.decode(encoded) == item
    assert issubclass(RlpError, InputError)


def test_registry_adapter_from_keystone_ur() -> None:
    from coldvault.requests.ethereum.request import prepare_eth_request
    from coldvault.transport.registry import EthSignature, EthSignRequest, decode_registry
    from coldvault.transport.ur import UR, decode_single

    vec = keystone("eth-sign-request")[2]
    request = decode_registry(decode_single(vec["ur"]))
    assert isinstance(request, EthSignRequest)
    args = vector_args(vec)
    ours = dataclasses.replace(args["wallet"], name="avalanche")
    fp, account = args["source_fingerprint"], ours.account_path
    wallets = {  # same seed and account on another chain; another seed on the same chain
        "mainnet": dataclasses.replace(ours, name="mainnet", network="1"),
        "other-seed": dataclasses.replace(ours, name="other-seed", master_fingerprint="00112233"),
        "avalanche": ours,
    }
    assert wallets["mainnet"].account == ours.account == parse_path(account)
    assert fp.hex() == ours.master_fingerprint
    seen: list[bytes] = []

    def lookup(key_id: bytes) -> KeyInfo | None:
        seen.append(key_id)
        return KEYS.lookup(key_id)

    prepared = prepare_eth_request(
        request, wallets=wallets, lookup_key=lookup, request_digest=DIGEST
    )
    assert prepared.review.wallet == "avalanche"
    assert seen == [b"K" + args["source_fingerprint"] + b"".join(
        i.to_bytes(4, "big") for i in args["path"]
    )]
    assert ("chain id", "43113") in prepared.review.details
    job = prepared.jobs[0]
    response = decode_registry(
        UR("eth-signature", prepared.finish([KEYS.sign_ecdsa(job.key_id, job.payload)]))
    )
    assert isinstance(response, EthSignature)
    assert response.request_id == uuid.UUID(vec["decoded"]["request_id_uuid"])
    assert response.origin == "core wallet" and response.signature[64] in (0, 1)


def test_registry_request_path_is_resolved_to_one_wallet_or_refused() -> None:
    from coldvault.requests.ethereum.request import prepare_eth_request
    from coldvault.requests.keys import MissingPath, NoWalletForRequest
    from coldvault.transport.registry import EthDataType, EthSignRequest, Keypath

    fp = int.from_bytes(FP, "big")
    wallets = {"eth-treasury": wallet()}

    def request(keypath: Keypath, chain_id: int | None = 1) -> EthSignRequest:
        return EthSignRequest(b"hello", EthDataType.PERSONAL_MESSAGE, keypath, chain_id)

    def run(req: EthSignRequest):  # type: ignore[no-untyped-def]
        return prepare_eth_request(
            req, wallets=wallets, lookup_key=KEYS.lookup, request_digest=DIGEST
        )

    prepared = run(request(Keypath.from_path("m/44'/60'/0'/0/5", fp)))
    assert ("path", "m/44h/60h/0h/0/5") in prepared.review.details
    with pytest.raises(MissingPath, match="no source fingerprint"):
        run(request(Keypath.from_path("m/44'/60'/0'/0/5")))
    with pytest.raises(MissingPath, match="wildcard"):
        run(request(Keypath.from_path("m/44'/60'/0'/0/*", fp)))
    with pytest.raises(NoWalletForRequest) as err:  # another seed
        run(request(Keypath.from_path("m/44'/60'/0'/0/5", 0x00112233)))
    assert err.value.path == "m/44h/60h/0h/0/5" and err.value.fingerprint == "00112233"
    with pytest.raises(NoWalletForRequest):  # our seed, another account
        run(request(Keypath.from_path("m/44'/60'/1'/0/5", fp)))
    with pytest.raises(NoWalletForRequest):  # our seed and account, another chain
        run(request(Keypath.from_path("m/44'/60'/0'/0/5", fp), chain_id=5))


# --- robustness: arbitrary bytes only ever raise domain errors ----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from coldvault.errors import ColdvaultError  # noqa: E402

VALID_1559 = unsigned_1559(eip1559(data=b"\xa9\x05\x9c\xbb" + bytes(64)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_rlp_decode_never_crashes(data: bytes) -> None:
    try:
        item = rlp.decode(data)
    except RlpError:
        return
    assert rlp.encode(item) == data  # whatever decodes is canonical


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(VALID_1559) - 1), st.integers(0, 255)), max_size=4),
    st.sampled_from([1, 2, 3, 4]),
)
def test_mutated_requests_raise_only_domain_errors(flips: list, data_type: int) -> None:  # type: ignore[type-arg]
    data = bytearray(VALID_1559)
    for pos, value in flips:
        data[pos] = value
    try:
        prepare(bytes(data), data_type)
    except ColdvaultError:
        pass


def test_response_carries_the_audit_head_and_stays_decodable() -> None:
    """Key 100 of the eth-signature map holds [audit seq, 32-byte head] (docs/audit.md);
    the registry decoder reads it back and a response without it still decodes."""
    from coldvault.requests.base import AuditStamp
    from coldvault.transport.registry.codec import decode_registry
    from coldvault.transport.ur import UR

    prepared = prepare(unsigned_1559(eip1559()), 4)
    (job,) = prepared.jobs
    sig = KEYS.sign_ecdsa(job.key_id, job.payload)
    stamp = AuditStamp(41, bytes(range(32)))
    stamped = prepared.finish([sig], audit=stamp)
    raw = cbor2.loads(stamped)
    assert raw[100] == [41, bytes(range(32))]
    assert raw[2] == cbor2.loads(prepared.finish([sig]))[2]  # the same signature
    value = decode_registry(UR("eth-signature", stamped))
    assert value.audit == (41, bytes(range(32)))  # type: ignore[union-attr]
    plain = decode_registry(UR("eth-signature", prepared.finish([sig])))
    assert plain.audit is None  # type: ignore[union-attr]

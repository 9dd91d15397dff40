"""Solana sign requests: messages built and signatures verified with solders (independent)."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import cbor2
import nacl.signing
import pytest
from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0, VersionedMessage, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction

from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.errors import Refused
from coldvault.keys.keystore import KeyAlgorithm, KeyInfo
from coldvault.requests.base import Chain, MovementKind
from coldvault.requests.keys import AddressMismatch, KeyNotOurs, ResponseSignatureInvalid
from coldvault.requests.solana.message import SolanaRequestError, parse_message
from coldvault.requests.solana.request import (
    MessageLooksLikeTransaction,
    SignerNotOurs,
    UnshowableDestination,
    prepare_sol,
    sol_signature_cbor,
)
from coldvault.requests.wallets import Wallet

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
H = 0x8000_0000
FP = bytes.fromhex("d34db33f")
PATH = (44 | H, 501 | H, 0 | H, 0 | H)
REQ_ID = uuid.UUID("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d").bytes
DIGEST = hashlib.sha256(b"sol request").digest()
BLOCKHASH = Hash(hashlib.sha256(b"blockhash").digest())
DEST = Keypair.from_seed(hashlib.sha256(b"dest").digest()).pubkey()


def seed_for(key_id: bytes) -> bytes:
    return hashlib.sha256(b"sol-test/" + key_id).digest()


class SoftKeys:
    """Software stand-in for the HSM keystore (pure-library tests only)."""

    def lookup(self, key_id: bytes) -> KeyInfo | None:
        pub = bytes(nacl.signing.SigningKey(seed_for(key_id)).verify_key)
        return KeyInfo(key_id, "test", KeyAlgorithm.ED25519, pub)

    def sign_ed25519(self, key_id: bytes, message: bytes) -> Ed25519Signature:
        return Ed25519Signature(nacl.signing.SigningKey(seed_for(key_id)).sign(message).signature)


KEYS = SoftKeys()
OUR_KEY_ID = b"K" + FP + b"".join(i.to_bytes(4, "big") for i in PATH)
OURS = Keypair.from_seed(seed_for(OUR_KEY_ID))


def wallet(fp: bytes = FP, account: str = "m/44h/501h/0h") -> Wallet:
    return Wallet(
        name="sol-ops",
        client="acme",
        chain=Chain.SOLANA,
        network="mainnet-beta",
        template="sol",
        master_fingerprint=fp.hex(),
        account_path=account,
    )


def prepare(sign_data: bytes, sign_type: int = 1, **kw):  # type: ignore[no-untyped-def]
    args = dict(
        sign_data=sign_data,
        sign_type=sign_type,
        path=PATH,
        source_fingerprint=FP,
        address=None,
        request_id=REQ_ID,
        wallet=wallet(),
        lookup_key=KEYS.lookup,
        request_digest=DIGEST,
    )
    args.update(kw)
    return prepare_sol(**args)


def sign(prepared) -> bytes:  # type: ignore[no-untyped-def]
    (job,) = prepared.jobs
    assert job.algorithm is KeyAlgorithm.ED25519
    response = cbor2.loads(prepared.finish([KEYS.sign_ed25519(job.key_id, job.payload)]))
    assert response[1] == uuid.UUID(bytes=REQ_ID)
    assert set(response) == {1, 2}
    return response[2]


def transfer_message(lamports: int = 1_500_000_000, payer: Pubkey | None = None) -> Message:
    ix = transfer(TransferParams(from_pubkey=OURS.pubkey(), to_pubkey=DEST, lamports=lamports))
    return Message.new_with_blockhash([ix], payer or OURS.pubkey(), BLOCKHASH)


def test_legacy_transfer_signed_and_verified_by_solders() -> None:
    msg = transfer_message()
    prepared = prepare(bytes(msg))
    assert prepared.response_type == "sol-signature"
    assert prepared.jobs[0].payload == bytes(msg)
    sig = sign(prepared)
    assert Signature.from_bytes(sig).verify(OURS.pubkey(), bytes(msg))
    tx = Transaction.populate(msg, [Signature.from_bytes(sig)])
    tx.verify()  # raises if the signature does not verify
    review = prepared.review
    assert review.kind == "sol-transaction" and review.network == "mainnet-beta"
    (move,) = review.movements
    assert move.kind is MovementKind.EXTERNAL and move.asset == "SOL"
    assert move.amount == 1_500_000_000 and move.destination == str(DEST)
    assert review.fee == 5000
    details = dict(review.details)
    assert details["fee payer"] == str(OURS.pubkey())
    assert details["recent blockhash"] == str(BLOCKHASH)
    assert details["instruction 0"].endswith(
        f"1.500000000 SOL (1,500,000,000 lamports) {OURS.pubkey()} -> {DEST}"
    )
    assert review.warnings == ()


def test_parsed_accounts_match_solders() -> None:
    msg = transfer_message(42)
    parsed = parse_message(bytes(msg))
    assert [bytes(k) for k in msg.account_keys] == list(parsed.account_keys)
    assert parsed.num_required_signatures == msg.header.num_required_signatures
    assert parsed.instructions[0].data == bytes(msg.instructions[0].data)
    assert list(parsed.instructions[0].accounts) == list(msg.instructions[0].accounts)


def test_v0_with_compute_budget_and_lookup_table() -> None:
    table_key = Pubkey.from_bytes(hashlib.sha256(b"table").digest())
    extra = Pubkey.from_bytes(hashlib.sha256(b"extra").digest())
    program = Pubkey.from_bytes(hashlib.sha256(b"program").digest())
    other = Instruction(program, b"\x01\x02", [AccountMeta(extra, False, False)])
    table = AddressLookupTableAccount(table_key, [extra])
    ixs = [
        set_compute_unit_limit(300_000),
        set_compute_unit_price(10_000),
        transfer(TransferParams(from_pubkey=OURS.pubkey(), to_pubkey=DEST, lamports=7)),
        other,
    ]
    msg = MessageV0.try_compile(OURS.pubkey(), ixs, [table], BLOCKHASH)
    raw = to_bytes_versioned(
        VersionedMessage(msg) if not isinstance(msg, VersionedMessage) else msg
    )
    prepared = prepare(raw)
    sig = sign(prepared)
    vtx = VersionedTransaction.populate(msg, [Signature.from_bytes(sig)])
    assert vtx.verify_with_results() == [True]
    review = prepared.review
    assert review.fee == 5000 + 3000  # 300k CU * 10k micro-lamports
    assert [m.amount for m in review.movements] == [7]
    assert any("address lookup tables" in w for w in review.warnings)
    assert any(str(program) in w for w in review.warnings)
    assert dict(review.details)["message version"] == "v0"


def test_keystone_sol_vectors_decode() -> None:
    vectors = json.loads((VECTORS / "ur_registry.json").read_text())["keystone"]
    for vec in vectors["sol-sign-request"]:
        dec = vec["decoded"]
        data = bytes.fromhex(dec["sign_data_hex"])
        parsed = parse_message(data)
        solders_msg = Message.from_bytes(data)
        assert [bytes(k) for k in solders_msg.account_keys] == list(parsed.account_keys)
        comps = dec["derivation_path"]["components"]
        path = tuple(comps[i] | (H if comps[i + 1] else 0) for i in range(0, len(comps), 2))
        fp = bytes.fromhex(dec["derivation_path"]["source_fingerprint_hex"])
        signer = parsed.account_keys[0]

        def lookup(key_id: bytes, signer: bytes = signer) -> KeyInfo:
            return KeyInfo(key_id, "x", KeyAlgorithm.ED25519, signer)

        kw = dict(path=path, source_fingerprint=fp, wallet=wallet(fp), lookup_key=lookup)
        if dec["sign_type"] == 2:  # the vector's "message" is a transaction: refused
            with pytest.raises(MessageLooksLikeTransaction):
                prepare(data, 2, **kw)
            continue
        review = prepare(data, 1, **kw).review
        (move,) = review.movements
        assert move.amount == 100_000_000 and move.asset == "SOL"
        assert move.destination == str(solders_msg.account_keys[1])
    expected = vectors["sol-signature"][0]
    built = sol_signature_cbor(
        uuid.UUID(expected["decoded"]["request_id_uuid"]).bytes,
        bytes.fromhex(expected["decoded"]["signature_hex"]),
    )
    assert built.hex() == expected["cbor_hex"]


def test_off_chain_message_is_shown() -> None:
    prepared = prepare(b"Sign in to Acme custody portal", 2)
    sig = sign(prepared)
    assert Signature.from_bytes(sig).verify(OURS.pubkey(), b"Sign in to Acme custody portal")
    assert ("message", "Sign in to Acme custody portal") in prepared.review.details
    assert prepared.review.kind == "sol-message" and prepared.review.fee is None
    body = b"hello"
    offchain = (
        b"\xffsolana offchain"
        + b"\x00"
        + bytes(32)
        + b"\x00"
        + b"\x01"
        + bytes(OURS.pubkey())
        + len(body).to_bytes(2, "little")
        + body
    )
    details = dict(prepare(offchain, 2).review.details)
    assert details["message"] == "hello" and details["signer 0"] == str(OURS.pubkey())
    assert details["format"].startswith("Solana off-chain message")
    binary = dict(prepare(b"\x00\x01\xfe", 2).review.details)
    assert binary["message"] == "0x0001fe"


# --- negatives ----------------------------------------------------------------------------


def test_truncated_and_trailing() -> None:
    raw = bytes(transfer_message())
    for cut in (1, 10, 40, len(raw) - 1):
        with pytest.raises(SolanaRequestError):
            prepare(raw[:cut])
    with pytest.raises(SolanaRequestError):
        prepare(raw + b"\x00")


def test_compact_u16_overflow_and_noncanonical() -> None:
    header = b"\x01\x00\x01"
    with pytest.raises(SolanaRequestError, match="overflows 16 bits"):
        prepare(header + b"\xff\xff\x04")
    with pytest.raises(SolanaRequestError, match="not minimally encoded"):
        prepare(header + b"\x83\x00")


def test_too_many_accounts() -> None:
    with pytest.raises(SolanaRequestError, match="limit is 64") as info:
        prepare(b"\x01\x00\x01" + b"\x41" + bytes(32 * 30))
    assert info.value.field == "account keys"


def test_index_out_of_range() -> None:
    raw = bytearray(bytes(transfer_message()))
    # layout: header 3, count 1, 3 keys, blockhash, ix count 1, program index
    program_at = 3 + 1 + 3 * 32 + 32 + 1
    assert raw[program_at] == 2
    raw[program_at] = 3
    with pytest.raises(SolanaRequestError, match="program index 3"):
        prepare(bytes(raw))
    raw[program_at] = 2
    raw[program_at + 2] = 9  # first account index of the transfer
    with pytest.raises(SolanaRequestError, match="account index beyond"):
        prepare(bytes(raw))


def test_signer_not_ours_and_address_mismatch() -> None:
    stranger = Keypair.from_seed(hashlib.sha256(b"stranger").digest()).pubkey()
    ix = transfer(TransferParams(from_pubkey=stranger, to_pubkey=DEST, lamports=1))
    msg = Message.new_with_blockhash([ix], stranger, BLOCKHASH)
    with pytest.raises(SignerNotOurs):
        prepare(bytes(msg))
    with pytest.raises(AddressMismatch):
        prepare(bytes(transfer_message()), address=bytes(stranger))
    with pytest.raises(KeyNotOurs):
        prepare(bytes(transfer_message()), path=(44 | H, 501 | H, 1 | H, 0 | H))
    assert issubclass(SignerNotOurs, Refused)


def test_unshowable_lookup_destination_is_refused() -> None:
    table_key = Pubkey.from_bytes(hashlib.sha256(b"table").digest())
    table = AddressLookupTableAccount(table_key, [DEST])
    ix = transfer(TransferParams(from_pubkey=OURS.pubkey(), to_pubkey=DEST, lamports=1))
    msg = MessageV0.try_compile(OURS.pubkey(), [ix], [table], BLOCKHASH)
    with pytest.raises(UnshowableDestination):
        prepare(to_bytes_versioned(msg))


def test_bad_signature_and_sign_type() -> None:
    prepared = prepare(bytes(transfer_message()))
    with pytest.raises(ResponseSignatureInvalid):
        prepared.finish([Ed25519Signature(bytes(64))])
    with pytest.raises(ValueError, match="Ed25519Signature"):  # raw bytes are not a signature
        prepared.finish([bytes(64)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="Ed25519Signature"):
        prepared.finish([EcdsaSignature(1, 1)])
    with pytest.raises(ValueError):
        Ed25519Signature(bytes(63))
    with pytest.raises(SolanaRequestError):
        prepare(b"hi", 3)
    with pytest.raises(SolanaRequestError):
        prepare(b"x" * 1300)


def test_registry_adapter_from_keystone_ur() -> None:
    from coldvault.requests.solana.request import prepare_sol_request
    from coldvault.transport.registry import SolSignature, SolSignRequest, decode_registry
    from coldvault.transport.ur import UR, decode_single

    vec = json.loads((VECTORS / "ur_registry.json").read_text())["keystone"]["sol-sign-request"][1]
    request = decode_registry(decode_single(vec["ur"]))
    assert isinstance(request, SolSignRequest)
    fee_payer = parse_message(request.sign_data).account_keys[0]
    seen: list[bytes] = []

    def lookup(key_id: bytes) -> KeyInfo:
        seen.append(key_id)
        return KeyInfo(key_id, "x", KeyAlgorithm.ED25519, fee_payer)

    wallets = {"sol-ops": wallet(bytes.fromhex("12345678")), "other": wallet()}
    prepared = prepare_sol_request(
        request, wallets=wallets, lookup_key=lookup, request_digest=DIGEST
    )
    assert seen == [b"K\x12\x34\x56\x78" + b"".join(i.to_bytes(4, "big") for i in PATH)]
    assert prepared.review.movements[0].amount == 100_000_000
    assert ("requested by", "solflare") in prepared.review.details
    # the vector's key is not ours, so the response is built from a software signature
    # of our own and must be refused by the host-side check
    with pytest.raises(ResponseSignatureInvalid):
        prepared.finish([KEYS.sign_ed25519(b"x", request.sign_data)])
    sig = bytes(64)
    encoded = sol_signature_cbor(request.request_id.bytes if request.request_id else None, sig)
    decoded = decode_registry(UR("sol-signature", encoded))
    assert isinstance(decoded, SolSignature) and decoded.request_id == request.request_id


def test_transfer_source_from_lookup_table_is_flagged() -> None:
    table_key = Pubkey.from_bytes(hashlib.sha256(b"table").digest())
    funder = Pubkey.from_bytes(hashlib.sha256(b"funder").digest())
    ix = Instruction(
        Pubkey.from_string("11111111111111111111111111111111"),
        (2).to_bytes(4, "little") + (5).to_bytes(8, "little"),
        [AccountMeta(funder, False, True), AccountMeta(DEST, False, True)],
    )
    msg = MessageV0.try_compile(
        OURS.pubkey(), [ix], [AddressLookupTableAccount(table_key, [funder])], BLOCKHASH
    )
    review = prepare(to_bytes_versioned(msg)).review
    (move,) = review.movements
    assert move.destination == str(DEST) and "not our key" in move.note
    assert any("address-table account" in w for w in review.warnings)


# --- robustness: arbitrary bytes only ever raise domain errors ----------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from coldvault.errors import ColdvaultError  # noqa: E402

VALID = bytes(transfer_message())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=4),
    st.sampled_from([1, 2]),
)
def test_mutated_messages_raise_only_domain_errors(flips: list, sign_type: int) -> None:  # type: ignore[type-arg]
    data = bytearray(VALID)
    for pos, value in flips:
        data[pos] = value
    try:
        prepare(bytes(data), sign_type)
    except ColdvaultError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        parse_message(data)
    except SolanaRequestError:
        pass


def test_response_carries_the_audit_head_and_stays_decodable() -> None:
    """Key 100 of the sol-signature map holds [audit seq, 32-byte head] (docs/audit.md)."""
    from coldvault.requests.base import AuditStamp
    from coldvault.transport.registry.codec import decode_registry
    from coldvault.transport.ur import UR

    msg = transfer_message()
    prepared = prepare(bytes(msg))
    (job,) = prepared.jobs
    sig = KEYS.sign_ed25519(job.key_id, job.payload)
    stamped = prepared.finish([sig], audit=AuditStamp(7, b"\x11" * 32))
    assert cbor2.loads(stamped)[100] == [7, b"\x11" * 32]
    value = decode_registry(UR("sol-signature", stamped))
    assert value.audit == (7, b"\x11" * 32)  # type: ignore[union-attr]
    assert Signature.from_bytes(value.signature).verify(OURS.pubkey(), bytes(msg))  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        AuditStamp(-1, b"\x11" * 32)

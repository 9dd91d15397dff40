"""Ethereum sign requests (Keystone ``eth-sign-request``): decode, check, review, respond.

Four kinds of data (the registry's ``data-type``):

1. legacy transaction: RLP ``[nonce, gasPrice, gasLimit, to, value, data]`` optionally
   followed by the EIP-155 placeholder ``v=chainId, r=0, s=0`` (or ``0, 0, 0`` as older
   wallets write it). Always signed as EIP-155 with the request's chain id: a signature
   without replay protection is never made.
2. EIP-712 typed data (JSON, see :mod:`coldvault.requests.ethereum.eip712`).
3. personal message (EIP-191 version 0x45, ``personal_sign``).
4. typed transaction: only EIP-1559 (``0x02``). Types 0x01 (EIP-2930), 0x03 (EIP-4844 blob)
   and 0x04 (EIP-7702 delegation) are refused.

The response ``eth-signature`` carries ``r || s || v``: ``v`` is the recovery id for typed
transactions, ``recid + 2 * chainId + 35`` (minimal big-endian) for legacy transactions and
``27 + recid`` for messages and typed data, as Keystone and MetaMask expect.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from coldvault.crypto.hashes import keccak256
from coldvault.crypto.paths import path_to_str
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.errors import ConfigError
from coldvault.keys.keystore import KeyAlgorithm, Signature
from coldvault.requests.amounts import format_amount
from coldvault.requests.base import AuditStamp, Chain, Movement, PreparedRequest, Review, SignJob
from coldvault.requests.display import message_text, origin_text
from coldvault.requests.ethereum.eip712 import parse_typed_data
from coldvault.requests.ethereum.tx import (
    ChainIdMismatch,
    EthRequestError,
    checksum_address,
    decode_transaction,
    describe_calldata,
    eth_address,
)
from coldvault.requests.keys import (
    AddressMismatch,
    KeyLookup,
    RequestKey,
    ResponseSignatureInvalid,
    find_wallet,
    resolve_wallet_key,
)
from coldvault.requests.wallets import Wallet
from coldvault.transport.registry import EthDataType, EthSignRequest, encode_eth_signature

__all__ = [
    "MAX_CHAIN_ID",
    "MAX_SIGN_DATA",
    "eth_signature_cbor",
    "prepare_eth",
    "prepare_eth_request",
    "recovery_id",
]

MAX_SIGN_DATA = 128 * 1024
#: EIP-2294's bound, so an EIP-155 ``v`` always fits in 8 bytes.
MAX_CHAIN_ID = (2**64 - 1) // 2 - 36


def _minimal(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def recovery_id(signature: EcdsaSignature, digest: bytes, public_key: bytes) -> int:
    """The recovery id (0/1) that recovers ``public_key``; refuse a signature that does not."""
    if not signature.is_low_s:
        raise ResponseSignatureInvalid("The keystore returned a high-S signature.")
    recid = signature.recovery_id(public_key, digest)
    if recid is None:
        raise ResponseSignatureInvalid("The keystore's signature does not verify against our key.")
    return recid


def eth_signature_cbor(
    request_id: bytes | None,
    signature: bytes,
    origin: str | None,
    audit: AuditStamp | None = None,
) -> bytes:
    """The ``eth-signature`` CBOR map: {1: uuid (tag 37), 2: r||s||v, 3: origin,
    100: [audit seq, audit head]}."""
    rid = uuid.UUID(bytes=request_id) if request_id is not None else None
    stamp = None if audit is None else (audit.seq, audit.head)
    return encode_eth_signature(signature, rid, origin or None, stamp).cbor


def prepare_eth(
    *,
    sign_data: bytes,
    data_type: int,
    chain_id: int | None,
    path: tuple[int, ...],
    source_fingerprint: bytes,
    address: bytes | None,
    request_id: bytes | None,
    wallet: Wallet,
    lookup_key: KeyLookup,
    request_digest: bytes,
    origin: str | None = None,
) -> PreparedRequest:
    """Decode and check an Ethereum sign request; see the module docstring."""
    if wallet.chain is not Chain.ETHEREUM:
        raise ValueError(f"wallet {wallet.name} is not an Ethereum wallet")
    try:
        wallet_chain = int(wallet.network)
    except ValueError as exc:
        raise ConfigError(f"Wallet {wallet.name} network must be a chain id.") from exc
    if len(sign_data) > MAX_SIGN_DATA:
        raise EthRequestError(
            f"The sign data is {len(sign_data)} bytes; the limit is {MAX_SIGN_DATA}.",
            field="sign_data",
        )
    if request_id is not None and len(request_id) != 16:
        raise EthRequestError("The request id must be a 16-byte UUID.", field="request_id")
    try:
        kind = EthDataType(data_type)
    except ValueError as exc:
        raise EthRequestError(
            f"Unknown Ethereum data type {data_type}.", field="data_type"
        ) from exc
    if chain_id is not None and not 0 < chain_id <= MAX_CHAIN_ID:
        raise EthRequestError(f"Chain id {chain_id} is out of range.", field="chain_id")
    if chain_id is not None and chain_id != wallet_chain:
        raise ChainIdMismatch("request", chain_id, wallet_chain)
    key = resolve_wallet_key(
        wallet=wallet,
        path=path,
        source_fingerprint=source_fingerprint,
        lookup_key=lookup_key,
        algorithm=KeyAlgorithm.SECP256K1,
        error=EthRequestError,
    )
    ours = eth_address(key.public_key)
    if address is not None and address != ours:
        raise AddressMismatch(
            "0x" + address.hex() if len(address) == 20 else repr(address),
            checksum_address(ours),
            path_to_str(path),
        )
    details: list[tuple[str, str]] = [
        ("signing address", checksum_address(ours)),
        ("path", path_to_str(path)),
    ]
    if origin:
        details.append(("requested by", origin_text(origin)))
    warnings: list[str] = []
    movements: list[Movement] = []
    fee: int | None = None
    if kind in (EthDataType.TRANSACTION, EthDataType.TYPED_TRANSACTION):
        if chain_id is None:
            raise EthRequestError("A transaction request must name its chain id.", field="chain_id")
        tx = decode_transaction(sign_data, kind, chain_id)
        if tx.chain_id != chain_id:
            raise ChainIdMismatch("transaction", tx.chain_id, wallet_chain)
        movements, call_warnings, call_details = describe_calldata(tx)
        warnings += [*tx.notes, *call_warnings]
        fee = tx.max_fee_wei
        details += [
            ("chain id", str(tx.chain_id)),
            ("type", "EIP-1559" if tx.tx_type == 2 else "legacy (EIP-155)"),
            ("to", checksum_address(tx.to) if tx.to else "(contract creation)"),
            ("value", format_amount("ETH", tx.value)),
            ("nonce", str(tx.nonce)),
            ("gas limit", str(tx.gas_limit)),
        ]
        if tx.max_fee is not None and tx.max_priority_fee is not None:  # EIP-1559
            details += [
                ("max fee per gas", f"{tx.max_fee} wei"),
                ("max priority fee per gas", f"{tx.max_priority_fee} wei"),
                (
                    "access list",
                    f"{tx.access_list_addresses} addresses, {tx.access_list_keys} storage keys",
                ),
            ]
            if tx.max_priority_fee > tx.max_fee:
                warnings.append("The priority fee exceeds the max fee; the network rejects it.")
        else:
            details.append(("gas price", f"{tx.gas_price} wei"))
        details += [("max network fee", format_amount("ETH", fee)), *call_details]
        digest = keccak256(tx.signing_payload)
        review_kind, purpose = "eth-transaction", "transaction"
    elif kind is EthDataType.PERSONAL_MESSAGE:
        prefix = b"\x19Ethereum Signed Message:\n" + str(len(sign_data)).encode()
        digest = keccak256(prefix + sign_data)
        details.append(("message", message_text(sign_data)))
        if len(sign_data) == 32:
            warnings.append("The message is 32 bytes: it may be a hash signed blindly.")
        review_kind, purpose = "eth-personal-message", "message"
    else:
        typed = parse_typed_data(sign_data)
        digest = typed.digest
        if typed.chain_id is None:
            warnings.append("The typed data's domain has no chain id.")
        elif typed.chain_id != wallet_chain:
            raise ChainIdMismatch("typed-data domain", typed.chain_id, wallet_chain)
        details += [("primary type", typed.primary_type)]
        details += [(f"domain.{k}", v) for k, v in typed.domain]
        details += list(typed.lines)
        if "permit" in typed.primary_type.lower():
            warnings.append(
                f"{typed.primary_type} is a permit: it can authorise spending tokens without "
                "a transaction from this wallet."
            )
        review_kind, purpose = "eth-typed-data", "typed data"
    review = Review(
        chain=Chain.ETHEREUM,
        network=wallet.network,
        kind=review_kind,
        wallet=wallet.name,
        client=wallet.client,
        movements=tuple(movements),
        fee=fee,
        details=tuple(details),
        warnings=tuple(warnings),
        request_digest=request_digest,
    )
    job = SignJob(
        key_id=key.key_id, algorithm=KeyAlgorithm.SECP256K1, payload=digest, purpose=purpose
    )
    public_key = key.public_key
    legacy_chain = chain_id if kind is EthDataType.TRANSACTION else None

    def finish(signatures: Sequence[Signature], /, *, audit: AuditStamp | None = None) -> bytes:
        if len(signatures) != 1 or not isinstance(signatures[0], EcdsaSignature):
            raise ValueError("finish() needs exactly one EcdsaSignature")
        sig = signatures[0]
        recid = recovery_id(sig, digest, public_key)
        if kind is EthDataType.TYPED_TRANSACTION:
            v = bytes([recid])
        elif legacy_chain is not None:
            v = _minimal(recid + 2 * legacy_chain + 35)
        else:
            v = bytes([27 + recid])
        return eth_signature_cbor(request_id, sig.compact + v, origin, audit)

    return PreparedRequest(review=review, jobs=(job,), finish=finish, response_type="eth-signature")


def prepare_eth_request(
    request: EthSignRequest,
    *,
    wallets: Mapping[str, Wallet],
    lookup_key: KeyLookup,
    request_digest: bytes,
) -> PreparedRequest:
    """:func:`prepare_eth` for a decoded registry ``eth-sign-request``.

    The request's derivation path is resolved once (:class:`RequestKey`, or
    :class:`~coldvault.requests.keys.MissingPath`); it selects the one registered Ethereum
    wallet on the request's chain whose seed and account cover it
    (:class:`~coldvault.requests.keys.NoWalletForRequest` otherwise)."""
    key = RequestKey.from_keypath(request.derivation_path)
    network = None if request.chain_id is None else str(request.chain_id)
    wallet = find_wallet(wallets, Chain.ETHEREUM, key, network=network)
    return prepare_eth(
        sign_data=request.sign_data,
        data_type=int(request.data_type),
        chain_id=request.chain_id,
        path=key.path,
        source_fingerprint=key.fingerprint,
        address=request.address,
        request_id=request.request_id.bytes if request.request_id is not None else None,
        wallet=wallet,
        lookup_key=lookup_key,
        request_digest=request_digest,
        origin=request.origin,
    )

"""Ethereum sign requests (Keystone ``eth-sign-request``): decode, check, review, respond.

Four kinds of data (the registry's ``data-type``):

1. legacy transaction: RLP ``[nonce, gasPrice, gasLimit, to, value, data]`` optionally
   followed by the EIP-155 placeholder ``v=chainId, r=0, s=0`` (or ``0, 0, 0`` as older
   wallets write it). Always signed as EIP-155 with the request's chain id: a signature
   without replay protection is never made.
2. EIP-712 typed data (JSON, see :mod:`coldvault.requests.eip712`).
3. personal message (EIP-191 version 0x45, ``personal_sign``).
4. typed transaction: only EIP-1559 (``0x02``). Types 0x01 (EIP-2930), 0x03 (EIP-4844 blob)
   and 0x04 (EIP-7702 delegation) are refused.

The response ``eth-signature`` carries ``r || s || v``: ``v`` is the recovery id for typed
transactions, ``recid + 2 * chainId + 35`` (minimal big-endian) for legacy transactions and
``27 + recid`` for messages and typed data, as Keystone and MetaMask expect.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import coincurve

from coldvault.codecs.ur_registry import EthSignRequest, encode_eth_signature
from coldvault.errors import ConfigError, InputError, IntegrityError, Refused
from coldvault.keystore import EcdsaSignature, KeyAlgorithm, KeyInfo, derived_key_id, path_to_str
from coldvault.requests import rlp
from coldvault.requests.base import (
    Chain,
    Movement,
    MovementKind,
    PreparedRequest,
    Review,
    SignJob,
)
from coldvault.requests.eip712 import keccak256, parse_typed_data
from coldvault.wallets import Wallet

MAX_SIGN_DATA = 128 * 1024
MAX_PATH_DEPTH = 10
MAX_ACCESS_LIST = 256
#: EIP-2294's bound, so an EIP-155 ``v`` always fits in 8 bytes.
MAX_CHAIN_ID = (2**64 - 1) // 2 - 36
SECP256K1_N = 0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364141
WEI_PER_ETH = 10**18
ERC20_TRANSFER = bytes.fromhex("a9059cbb")
ERC20_APPROVE = bytes.fromhex("095ea7b3")
ERC20_TRANSFER_FROM = bytes.fromhex("23b872dd")
UNLIMITED = 2**256 - 1


class EthDataType(enum.IntEnum):
    LEGACY_TRANSACTION = 1
    TYPED_DATA = 2
    PERSONAL_MESSAGE = 3
    TYPED_TRANSACTION = 4


class EthRequestError(InputError):
    """An Ethereum sign request is malformed or inconsistent."""

    code = "eth-request"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnsupportedTransactionType(Refused):
    """A typed transaction of a type the appliance does not sign."""

    code = "eth-unsupported-tx-type"

    def __init__(self, tx_type: int) -> None:
        names = {1: "EIP-2930 access-list", 3: "EIP-4844 blob", 4: "EIP-7702 set-code"}
        name = names.get(tx_type, "unknown")
        super().__init__(
            f"Transaction type 0x{tx_type:02x} ({name}) is not supported; only EIP-1559 (0x02) "
            "and legacy EIP-155 transactions are signed."
        )
        self.tx_type = tx_type


class ChainIdMismatch(Refused):
    """The chain id of the transaction, request and wallet do not all agree."""

    code = "chain-id-mismatch"

    def __init__(self, what: str, got: int, expected: int) -> None:
        super().__init__(f"The {what} chain id is {got} but wallet is on chain {expected}.")
        self.what = what
        self.got = got
        self.expected = expected


class AddressMismatch(Refused):
    """The request names an address that is not the one our key at that path controls."""

    code = "address-mismatch"

    def __init__(self, requested: str, ours: str, path: str) -> None:
        super().__init__(
            f"The request names address {requested}, but our key at {path} controls {ours}."
        )
        self.requested = requested
        self.ours = ours
        self.path = path


class KeyNotOurs(Refused):
    """The request's derivation path is not a key of the selected wallet."""

    code = "key-not-ours"

    def __init__(self, reason: str, *, path: str) -> None:
        super().__init__(reason)
        self.path = path


class SignatureCheckFailed(IntegrityError):
    """A signature from the keystore does not verify against our public key."""

    code = "signature-check"


def parse_path(text: str) -> tuple[int, ...]:
    """``"m/44h/60h/0h"`` -> indices (``h``, ``H`` or ``'`` mark hardened)."""
    parts = text.strip().split("/")
    if not parts or parts[0] not in ("m", "M"):
        raise ConfigError(f"Account path {text!r} must start with 'm/'.")
    out = []
    for part in parts[1:]:
        hardened = part[-1:] in ("h", "H", "'")
        digits = part[:-1] if hardened else part
        if not digits.isdigit() or int(digits) >= 0x8000_0000:
            raise ConfigError(f"Account path {text!r} has an invalid element {part!r}.")
        out.append(int(digits) | (0x8000_0000 if hardened else 0))
    return tuple(out)


def resolve_wallet_key(
    *,
    wallet: Wallet,
    path: Sequence[int],
    source_fingerprint: bytes,
    lookup_key: Callable[[bytes], KeyInfo | None],
    algorithm: KeyAlgorithm,
    error: Callable[..., InputError],
) -> KeyInfo:
    """Check the path belongs to ``wallet`` and return our key for it (or refuse)."""
    if len(source_fingerprint) != 4:
        raise error("The source fingerprint must be 4 bytes.", field="source_fingerprint")
    if not 0 < len(path) <= MAX_PATH_DEPTH or any(not 0 <= i <= 0xFFFF_FFFF for i in path):
        raise error("The derivation path is empty, too long or invalid.", field="path")
    shown = path_to_str(path)
    if source_fingerprint.hex() != wallet.master_fingerprint.lower():
        raise KeyNotOurs(
            f"The request is for seed {source_fingerprint.hex()}, but wallet {wallet.name} "
            f"uses seed {wallet.master_fingerprint}.",
            path=shown,
        )
    account = parse_path(wallet.account_path)
    tail = tuple(path[len(account) :])
    if tuple(path[: len(account)]) != account or len(tail) > 2:
        raise KeyNotOurs(
            f"Path {shown} is not under wallet {wallet.name}'s account {wallet.account_path}.",
            path=shown,
        )
    if any((i & 0x7FFF_FFFF) > wallet.max_index for i in tail):
        raise KeyNotOurs(
            f"Path {shown} goes beyond index {wallet.max_index} of wallet {wallet.name}.",
            path=shown,
        )
    info = lookup_key(derived_key_id(source_fingerprint, path))
    if info is None or info.algorithm is not algorithm:
        raise KeyNotOurs(f"The keystore holds no {algorithm} key for {shown}.", path=shown)
    return info


def eth_address(public_key: bytes) -> bytes:
    """The 20-byte address of a secp256k1 public key (compressed or not)."""
    point = coincurve.PublicKey(public_key).format(compressed=False)
    return keccak256(point[1:])[-20:]


def checksum_address(address: bytes) -> str:
    """EIP-55 mixed-case hex."""
    plain = address.hex()
    digest = keccak256(plain.encode()).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(plain)
    )


def format_eth(wei: int) -> str:
    whole, frac = divmod(wei, WEI_PER_ETH)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    return f"{text} ETH"


@dataclass(frozen=True)
class EthTransaction:
    """A decoded unsigned transaction and the exact bytes whose keccak256 is signed."""

    tx_type: int  # 0 legacy, 2 EIP-1559
    chain_id: int
    nonce: int
    gas_limit: int
    gas_price: int | None
    max_priority_fee: int | None
    max_fee: int | None
    to: bytes | None  # None: contract creation
    value: int
    data: bytes
    access_list_addresses: int
    access_list_keys: int
    signing_payload: bytes
    notes: tuple[str, ...] = ()

    @property
    def max_fee_wei(self) -> int:
        per_gas = self.max_fee if self.max_fee is not None else self.gas_price or 0
        return self.gas_limit * per_gas


def _scalar(item: rlp.RlpItem, name: str) -> int:
    return rlp.to_int(item, field=name)


def _to(item: rlp.RlpItem) -> bytes | None:
    if not isinstance(item, bytes) or len(item) not in (0, 20):
        raise EthRequestError("Field 'to' must be empty or a 20-byte address.", field="to")
    return item or None


def _data(item: rlp.RlpItem) -> bytes:
    if not isinstance(item, bytes):
        raise EthRequestError("Field 'data' must be a byte string.", field="data")
    return item


def _access_list(item: rlp.RlpItem) -> tuple[int, int]:
    if not isinstance(item, list) or len(item) > MAX_ACCESS_LIST:
        raise EthRequestError("The access list is malformed or too long.", field="accessList")
    keys = 0
    for entry in item:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], bytes)
            or len(entry[0]) != 20
            or not isinstance(entry[1], list)
            or any(not isinstance(k, bytes) or len(k) != 32 for k in entry[1])
        ):
            raise EthRequestError(
                "An access-list entry is not [address, [32-byte keys]].", field="accessList"
            )
        keys += len(entry[1])
    return len(item), keys


def decode_transaction(sign_data: bytes, data_type: int, request_chain_id: int) -> EthTransaction:
    """Decode an unsigned transaction; ``request_chain_id`` is used for legacy EIP-155."""
    if data_type == EthDataType.TYPED_TRANSACTION:
        if not sign_data:
            raise EthRequestError("The typed transaction is empty.", field="sign_data")
        if sign_data[0] >= 0xC0:
            raise EthRequestError(
                "A legacy transaction was sent as a typed transaction (data type 4).",
                field="data_type",
            )
        if sign_data[0] != 0x02:
            raise UnsupportedTransactionType(sign_data[0])
        fields = rlp.decode(sign_data[1:])
        if not isinstance(fields, list) or len(fields) not in (9, 12):
            raise EthRequestError(
                "An EIP-1559 transaction must be an RLP list of 9 fields.", field="sign_data"
            )
        notes: tuple[str, ...] = ()
        if len(fields) == 12:
            for i, name in ((9, "yParity"), (10, "r"), (11, "s")):
                _scalar(fields[i], name)
            notes = ("The request already carried a signature; it is ignored and replaced.",)
        addrs, keys = _access_list(fields[8])
        return EthTransaction(
            tx_type=2,
            chain_id=_scalar(fields[0], "chainId"),
            nonce=_scalar(fields[1], "nonce"),
            max_priority_fee=_scalar(fields[2], "maxPriorityFeePerGas"),
            max_fee=_scalar(fields[3], "maxFeePerGas"),
            gas_price=None,
            gas_limit=_scalar(fields[4], "gasLimit"),
            to=_to(fields[5]),
            value=_scalar(fields[6], "value"),
            data=_data(fields[7]),
            access_list_addresses=addrs,
            access_list_keys=keys,
            signing_payload=b"\x02" + rlp.encode(fields[:9]),
            notes=notes,
        )
    if not sign_data or sign_data[0] < 0xC0:
        raise EthRequestError(
            "A legacy transaction must be an RLP list; typed transactions use data type 4.",
            field="data_type",
        )
    fields = rlp.decode(sign_data)
    if not isinstance(fields, list) or len(fields) not in (6, 9):
        raise EthRequestError(
            "A legacy transaction must be an RLP list of 6 or 9 fields.", field="sign_data"
        )
    notes = ()
    chain_id = request_chain_id
    if len(fields) == 9:
        v, r, s = (_scalar(fields[i], n) for i, n in ((6, "v"), (7, "r"), (8, "s")))
        if r or s:
            raise EthRequestError(
                "The legacy transaction's v/r/s must be the EIP-155 placeholder (chainId, 0, 0).",
                field="sign_data",
            )
        if v not in (0, request_chain_id):
            raise ChainIdMismatch("transaction", v, request_chain_id)
        if v == 0:
            notes = ("The transaction has no chain id; it is signed for the request's chain.",)
    else:
        notes = ("The transaction has no chain id; it is signed for the request's chain.",)
    unsigned = [*fields[:6], chain_id.to_bytes((chain_id.bit_length() + 7) // 8, "big"), b"", b""]
    return EthTransaction(
        tx_type=0,
        chain_id=chain_id,
        nonce=_scalar(fields[0], "nonce"),
        gas_price=_scalar(fields[1], "gasPrice"),
        max_priority_fee=None,
        max_fee=None,
        gas_limit=_scalar(fields[2], "gasLimit"),
        to=_to(fields[3]),
        value=_scalar(fields[4], "value"),
        data=_data(fields[5]),
        access_list_addresses=0,
        access_list_keys=0,
        signing_payload=rlp.encode(unsigned),
        notes=notes,
    )


def _word_address(word: bytes) -> bytes | None:
    return word[12:] if word[:12] == bytes(12) else None


def _calldata(tx: EthTransaction) -> tuple[list[Movement], list[str], list[tuple[str, str]]]:
    """Movements, warnings and detail lines for the value and calldata of ``tx``."""
    movements: list[Movement] = []
    warnings: list[str] = []
    details: list[tuple[str, str]] = []
    if tx.to is None:
        warnings.append("This transaction creates a contract; its init code is not decoded.")
        movements.append(
            Movement(
                MovementKind.CONTRACT_CALL,
                "ETH",
                tx.value,
                "(contract creation)",
                note=f"{len(tx.data)} bytes of init code",
            )
        )
        return movements, warnings, details
    to = checksum_address(tx.to)
    if tx.to == bytes(20):
        warnings.append("The destination is the zero address; value sent there is burnt.")
    if not tx.data:
        movements.append(Movement(MovementKind.EXTERNAL, "ETH", tx.value, to))
        return movements, warnings, details
    selector = tx.data[:4]
    details.append(("calldata", f"{len(tx.data)} bytes, selector 0x{selector.hex()}"))
    movements.append(
        Movement(MovementKind.CONTRACT_CALL, "ETH", tx.value, to, note=f"call 0x{selector.hex()}")
    )
    args = tx.data[4:]
    token = f"ERC20:{to}"
    if selector in (ERC20_TRANSFER, ERC20_APPROVE) and len(args) == 64:
        who = _word_address(args[:32])
        amount = int.from_bytes(args[32:], "big")
        if who is None:
            warnings.append("The ERC-20 call has a malformed address argument; review carefully.")
            return movements, warnings, details
        dest = checksum_address(who)
        if selector == ERC20_TRANSFER:
            details.append(("ERC-20 transfer", f"{amount} base units of {to} to {dest}"))
            movements.append(
                Movement(
                    MovementKind.EXTERNAL,
                    token,
                    amount,
                    dest,
                    note="ERC-20 transfer (token decimals not known)",
                )
            )
        else:
            shown = "UNLIMITED" if amount == UNLIMITED else f"{amount} base units"
            details.append(("ERC-20 approve", f"{dest} may spend {shown} of {to}"))
            warnings.append(f"ERC-20 approval: {dest} may spend {shown} of token {to}.")
            movements.append(
                Movement(
                    MovementKind.CONTRACT_CALL,
                    token,
                    amount,
                    dest,
                    note="ERC-20 approval (allowance)",
                )
            )
    elif selector == ERC20_TRANSFER_FROM:
        warnings.append("transferFrom call: moves tokens on an allowance; arguments not checked.")
    else:
        warnings.append(
            f"Contract call with selector 0x{selector.hex()} to {to}; arguments are not decoded."
        )
    return movements, warnings, details


def _minimal(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def recovery_id(signature: EcdsaSignature, digest: bytes, public_key: bytes) -> int:
    """The recovery id (0/1) that recovers ``public_key``; refuse a signature that does not."""
    if not (0 < signature.r < SECP256K1_N and 0 < signature.s <= SECP256K1_N // 2):
        raise SignatureCheckFailed("The keystore returned an out-of-range or high-S signature.")
    ours = coincurve.PublicKey(public_key).format(compressed=True)
    for recid in (0, 1):
        try:
            recovered = coincurve.PublicKey.from_signature_and_message(
                signature.compact + bytes([recid]), digest, hasher=None
            )
        except ValueError:
            continue
        if recovered.format(compressed=True) == ours:
            return recid
    raise SignatureCheckFailed("The keystore's signature does not verify against our key.")


def eth_signature_cbor(request_id: bytes | None, signature: bytes, origin: str | None) -> bytes:
    """The ``eth-signature`` CBOR map: {1: uuid (tag 37), 2: r||s||v, 3: origin}."""
    rid = uuid.UUID(bytes=request_id) if request_id is not None else None
    return encode_eth_signature(signature, rid, origin or None).cbor


def _message_text(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + data.hex()
    if all(c.isprintable() or c in "\n\t" for c in text):
        return text
    return "0x" + data.hex()


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
    lookup_key: Callable[[bytes], KeyInfo | None],
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
        details.append(("requested by", origin[:64] if origin.isprintable() else repr(origin)[:64]))
    warnings: list[str] = []
    movements: list[Movement] = []
    fee: int | None = None
    if kind in (EthDataType.LEGACY_TRANSACTION, EthDataType.TYPED_TRANSACTION):
        if chain_id is None:
            raise EthRequestError("A transaction request must name its chain id.", field="chain_id")
        tx = decode_transaction(sign_data, kind, chain_id)
        if tx.chain_id != chain_id:
            raise ChainIdMismatch("transaction", tx.chain_id, wallet_chain)
        movements, call_warnings, call_details = _calldata(tx)
        warnings += [*tx.notes, *call_warnings]
        fee = tx.max_fee_wei
        details += [
            ("chain id", str(tx.chain_id)),
            ("type", "EIP-1559" if tx.tx_type == 2 else "legacy (EIP-155)"),
            ("to", checksum_address(tx.to) if tx.to else "(contract creation)"),
            ("value", f"{tx.value} wei ({format_eth(tx.value)})"),
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
        details += [("max network fee", f"{fee} wei ({format_eth(fee)})"), *call_details]
        digest = keccak256(tx.signing_payload)
        review_kind, purpose = "eth-transaction", "transaction"
    elif kind is EthDataType.PERSONAL_MESSAGE:
        prefix = b"\x19Ethereum Signed Message:\n" + str(len(sign_data)).encode()
        digest = keccak256(prefix + sign_data)
        details.append(("message", _message_text(sign_data)))
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
    legacy_chain = chain_id if kind is EthDataType.LEGACY_TRANSACTION else None

    def finish(signatures: Sequence[object]) -> bytes:
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
        return eth_signature_cbor(request_id, sig.compact + v, origin)

    return PreparedRequest(review=review, jobs=(job,), finish=finish, response_type="eth-signature")


def prepare_eth_request(
    request: EthSignRequest,
    *,
    wallet: Wallet,
    lookup_key: Callable[[bytes], KeyInfo | None],
    request_digest: bytes,
) -> PreparedRequest:
    """:func:`prepare_eth` for a decoded registry ``eth-sign-request``."""
    path = request.derivation_path
    try:
        indices = path.indices
    except ValueError as exc:
        raise EthRequestError(
            "The derivation path has a wildcard or range.", field="derivation_path"
        ) from exc
    if path.source_fingerprint is None:
        raise EthRequestError(
            "The derivation path has no source fingerprint.", field="derivation_path"
        )
    return prepare_eth(
        sign_data=request.sign_data,
        data_type=int(request.data_type),
        chain_id=request.chain_id,
        path=indices,
        source_fingerprint=path.source_fingerprint.to_bytes(4, "big"),
        address=request.address,
        request_id=request.request_id.bytes if request.request_id is not None else None,
        wallet=wallet,
        lookup_key=lookup_key,
        request_digest=request_digest,
        origin=request.origin,
    )

"""Ethereum unsigned transactions: RLP decoding (legacy EIP-155, EIP-1559), addresses, and
what a transaction's value and calldata do (ETH and ERC-20 movements)."""

from __future__ import annotations

from dataclasses import dataclass

import coincurve

from coldvault.crypto.hashes import keccak256
from coldvault.errors import InputError, Refused
from coldvault.requests.base import Movement, MovementKind
from coldvault.requests.ethereum import rlp
from coldvault.transport.registry import EthDataType

MAX_ACCESS_LIST = 256
ERC20_TRANSFER = bytes.fromhex("a9059cbb")
ERC20_APPROVE = bytes.fromhex("095ea7b3")
ERC20_TRANSFER_FROM = bytes.fromhex("23b872dd")
UNLIMITED = 2**256 - 1


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


def describe_calldata(
    tx: EthTransaction,
) -> tuple[list[Movement], list[str], list[tuple[str, str]]]:
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

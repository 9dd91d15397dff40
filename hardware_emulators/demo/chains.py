"""Demo coordinators for Ethereum and Solana, built on independent libraries.

Transactions are built and signatures verified with eth-account / rlp and solders; only the
Keystone UR envelope (``eth-sign-request``, ``sol-sign-request``) uses coldvault's registry
codec, which is itself checked against Keystone's published vectors.
"""

from __future__ import annotations

import uuid

import cbor2
import rlp
from eth_account import Account

from coldvault.transport.registry import EthSignRequest, Keypath, SolSignRequest
from coldvault.transport.registry.keystone import EthDataType, SolSignType

CHAIN_ID = 1


def _fingerprint(account: dict[str, object]) -> int:
    return int(str(account["master_fingerprint"]), 16)


def eth_request(account: dict[str, object], *, to: str, value: int, chain_id: int = CHAIN_ID
                ) -> tuple[bytes, list[object]]:
    """An EIP-1559 transfer from the account's first address, as eth-sign-request CBOR."""
    fields: list[object] = [
        chain_id, 7, 2 * 10**9, 30 * 10**9, 21_000, bytes.fromhex(to[2:]), value, b"", [],
    ]
    unsigned = b"\x02" + rlp.encode(fields)
    request = EthSignRequest(
        sign_data=unsigned,
        data_type=EthDataType.TYPED_TRANSACTION,
        derivation_path=Keypath.from_path("m/44'/60'/0'/0/0", _fingerprint(account)),
        chain_id=chain_id,
        request_id=uuid.UUID(int=0x0C01D0A17),
        address=bytes.fromhex(str(account["first_addresses"][0])[2:]),  # type: ignore[index]
        origin="coldvault demo coordinator",
    )
    return request.to_ur().cbor, fields


def eth_verify(fields: list[object], signature_cbor: bytes) -> str:
    """Recover the sender of the signed transaction with eth-account."""
    decoded = cbor2.loads(signature_cbor)
    signature = decoded[2]
    r, s, v = signature[:32], signature[32:64], signature[64:]
    y_parity = int.from_bytes(v, "big")
    if y_parity > 1:
        raise RuntimeError(f"typed-transaction v must be 0 or 1, got {y_parity}")
    signed = b"\x02" + rlp.encode(
        [*fields, y_parity, int.from_bytes(r, "big"), int.from_bytes(s, "big")]
    )
    return str(Account.recover_transaction(signed))


def sol_request(
    account: dict[str, object], *, to: str, lamports: int
) -> tuple[bytes, bytes, str]:
    """A system transfer from the account's first key (m/44'/501'/0'/0'), as CBOR."""
    from solders.hash import Hash
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.system_program import TransferParams, transfer

    payer = Pubkey.from_string(str(account["first_addresses"][0]))  # type: ignore[index]
    instruction = transfer(
        TransferParams(from_pubkey=payer, to_pubkey=Pubkey.from_string(to), lamports=lamports)
    )
    message = Message.new_with_blockhash([instruction], payer, Hash.new_unique())
    raw = bytes(message)
    request = SolSignRequest(
        sign_data=raw,
        derivation_path=Keypath.from_path("m/44'/501'/0'/0'", _fingerprint(account)),
        sign_type=SolSignType.TRANSACTION,
        request_id=uuid.UUID(int=0x501D0A17),
        address=bytes(payer),
        origin="coldvault demo coordinator",
    )
    return request.to_ur().cbor, raw, str(payer)


def sol_verify(message: bytes, signer: str, signature_cbor: bytes) -> None:
    """Verify the returned signature over the message with solders."""
    from solders.message import Message
    from solders.pubkey import Pubkey
    from solders.signature import Signature
    from solders.transaction import Transaction

    decoded = cbor2.loads(signature_cbor)
    signature = Signature.from_bytes(decoded[2])
    if not signature.verify(Pubkey.from_string(signer), message):
        raise RuntimeError("solders: the signature does not verify")
    tx = Transaction.populate(Message.from_bytes(message), [signature])
    tx.verify()

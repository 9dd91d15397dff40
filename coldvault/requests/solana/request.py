"""Solana sign requests (Keystone ``sol-sign-request``): parse, check, review, respond.

``sign_type`` 1 is a transaction *message* (what the signatures cover): legacy or v0::

    [0x80 | version]            v0 only
    header                      num_required_signatures, num_readonly_signed, num_readonly_unsigned
    compact-u16 n, n x 32       static account keys (signers first, fee payer at 0)
    32                          recent blockhash
    compact-u16 m, m x          instructions: program index u8, compact-u16 k + k account
                                indices u8, compact-u16 len + data
    compact-u16 t, t x          v0 only: address-table lookups (table key, writable and
                                readonly index lists)

Parsing is bounded (message size, account/instruction/lookup counts, canonical compact-u16)
and every index is range-checked. System Program transfers become EXTERNAL movements of
SOL; Compute Budget instructions set the fee; every other instruction is listed by program
id with a warning. ``sign_type`` 2 is an arbitrary message, shown as text or hex; a raw
message that parses as a transaction message is refused (it would be a blind transaction
signature). The signature is Ed25519 over the exact bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from embit import base58

from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.paths import path_to_str
from coldvault.errors import Refused
from coldvault.keys.keystore import KeyAlgorithm, Signature
from coldvault.requests.amounts import format_amount
from coldvault.requests.base import (
    AuditStamp,
    Chain,
    Movement,
    MovementKind,
    PreparedRequest,
    Review,
    SignJob,
)
from coldvault.requests.display import message_text, origin_text
from coldvault.requests.keys import (
    AddressMismatch,
    KeyLookup,
    RequestKey,
    ResponseSignatureInvalid,
    find_wallet,
    resolve_wallet_key,
)
from coldvault.requests.solana.message import (
    SolanaRequestError,
    SolMessage,
    b58,
    parse_message,
)
from coldvault.requests.wallets import Wallet
from coldvault.transport.registry import SolSignRequest, SolSignType, encode_sol_signature

__all__ = [
    "BASE_FEE_PER_SIGNATURE",
    "COMPUTE_BUDGET_PROGRAM",
    "DEFAULT_CU_PER_INSTRUCTION",
    "MAX_CU",
    "MAX_OFFCHAIN_MESSAGE",
    "OFFCHAIN_PREFIX",
    "SYSTEM_PROGRAM",
    "MessageLooksLikeTransaction",
    "SignerNotOurs",
    "UnshowableDestination",
    "prepare_sol",
    "prepare_sol_request",
    "sol_signature_cbor",
]

MAX_OFFCHAIN_MESSAGE = 64 * 1024
BASE_FEE_PER_SIGNATURE = 5000
DEFAULT_CU_PER_INSTRUCTION = 200_000
MAX_CU = 1_400_000
OFFCHAIN_PREFIX = b"\xffsolana offchain"

SYSTEM_PROGRAM = bytes(32)
COMPUTE_BUDGET_PROGRAM = base58.decode("ComputeBudget111111111111111111111111111111")


class SignerNotOurs(Refused):
    """Our key is not among the transaction's required signers."""

    code = "sol-signer-not-ours"

    def __init__(self, ours: str) -> None:
        super().__init__(f"Our key {ours} is not a required signer of this transaction.")
        self.ours = ours


class UnshowableDestination(Refused):
    """A transfer pays an account loaded from an address table, which cannot be shown."""

    code = "sol-unshowable-destination"

    def __init__(self, instruction: int) -> None:
        super().__init__(
            f"The transfer in instruction {instruction} pays an account loaded from an address "
            "lookup table, which cannot be shown offline; it is refused."
        )
        self.instruction = instruction


class MessageLooksLikeTransaction(Refused):
    """A 'message' sign request whose bytes are a valid transaction message."""

    code = "sol-message-is-transaction"

    def __init__(self) -> None:
        super().__init__(
            "The message to sign is a valid Solana transaction; it is refused as a message. "
            "Send it as a transaction so it can be reviewed."
        )


def _review_instructions(
    msg: SolMessage, ours: bytes
) -> tuple[list[Movement], list[str], list[tuple[str, str]], int]:
    """Movements, warnings, details and the fee (lamports) of a parsed message."""
    movements: list[Movement] = []
    warnings: list[str] = []
    details: list[tuple[str, str]] = []
    cu_limit: int | None = None
    cu_price = 0
    for i, ix in enumerate(msg.instructions):
        program = msg.account_keys[ix.program_index]
        label = f"instruction {i}"
        if program == SYSTEM_PROGRAM and ix.data[:4] == (2).to_bytes(4, "little"):
            if len(ix.data) != 12 or len(ix.accounts) != 2:
                raise SolanaRequestError(
                    f"System transfer in instruction {i} is malformed.", field="instructions"
                )
            lamports = int.from_bytes(ix.data[4:], "little")
            src, dst = ix.accounts
            if dst >= len(msg.account_keys):
                raise UnshowableDestination(i)
            source = msg.account_name(src)
            dest = msg.account_name(dst)
            ours_pays = src < len(msg.account_keys) and msg.account_keys[src] == ours
            note = "" if ours_pays else f"from {source} (not our key)"
            movements.append(Movement(MovementKind.EXTERNAL, "SOL", lamports, dest, note=note))
            shown = format_amount("SOL", lamports)
            details.append((label, f"System transfer {shown} {source} -> {dest}"))
            if note:
                warnings.append(f"Instruction {i} transfers from {source}, which is not our key.")
        elif program == COMPUTE_BUDGET_PROGRAM and ix.data[:1] in (b"\x02", b"\x03"):
            if ix.data[0] == 2 and len(ix.data) == 5:
                cu_limit = int.from_bytes(ix.data[1:], "little")
                details.append((label, f"Compute unit limit {cu_limit}"))
            elif ix.data[0] == 3 and len(ix.data) == 9:
                cu_price = int.from_bytes(ix.data[1:], "little")
                details.append((label, f"Compute unit price {cu_price} micro-lamports"))
            else:
                raise SolanaRequestError(
                    f"Compute budget instruction {i} is malformed.", field="instructions"
                )
        else:
            details.append(
                (
                    label,
                    f"program {b58(program)}, {len(ix.accounts)} accounts, "
                    f"{len(ix.data)} data bytes: 0x{ix.data[:64].hex()}",
                )
            )
            warnings.append(
                f"Instruction {i} calls program {b58(program)}; its effect is not decoded."
            )
    if cu_limit is None:
        others = sum(
            1
            for ix in msg.instructions
            if msg.account_keys[ix.program_index] != COMPUTE_BUDGET_PROGRAM
        )
        cu_limit = min(MAX_CU, DEFAULT_CU_PER_INSTRUCTION * others)
    priority = -(-cu_limit * cu_price // 1_000_000)
    fee = BASE_FEE_PER_SIGNATURE * msg.num_required_signatures + priority
    return movements, warnings, details, fee


def _describe_message(data: bytes) -> tuple[list[tuple[str, str]], list[str]]:
    details: list[tuple[str, str]] = []
    warnings: list[str] = []
    body = data
    if data.startswith(OFFCHAIN_PREFIX):
        details.append(("format", "Solana off-chain message (signing-domain prefix present)"))
        rest = data[len(OFFCHAIN_PREFIX) :]
        # version 0 header: version, 32-byte application domain, format, signer count,
        # signers, u16 length; parsed only when it fits exactly.
        if len(rest) >= 36 and rest[0] == 0:
            n_signers = rest[34]
            head = 35 + 32 * n_signers
            if len(rest) >= head + 2:
                length = int.from_bytes(rest[head : head + 2], "little")
                if len(rest) == head + 2 + length:
                    details.append(("application domain", b58(rest[1:33])))
                    details.append(("message format", str(rest[33])))
                    for k in range(n_signers):
                        signer = rest[35 + 32 * k : 67 + 32 * k]
                        details.append((f"signer {k}", b58(signer)))
                    body = rest[head + 2 :]
        if body is data:
            warnings.append("The off-chain message header was not recognised; shown as bytes.")
    else:
        warnings.append("The message has no off-chain signing prefix; the raw bytes are signed.")
    details.append(("message", message_text(body)))
    return details, warnings


def sol_signature_cbor(
    request_id: bytes | None, signature: bytes, audit: AuditStamp | None = None
) -> bytes:
    """The ``sol-signature`` CBOR map: {1: uuid (tag 37), 2: 64-byte signature,
    100: [audit seq, audit head]}."""
    rid = uuid.UUID(bytes=request_id) if request_id is not None else None
    stamp = None if audit is None else (audit.seq, audit.head)
    return encode_sol_signature(signature, rid, stamp).cbor


def prepare_sol(
    *,
    sign_data: bytes,
    sign_type: int,
    path: tuple[int, ...],
    source_fingerprint: bytes,
    address: bytes | None,
    request_id: bytes | None,
    wallet: Wallet,
    lookup_key: KeyLookup,
    request_digest: bytes,
    origin: str | None = None,
) -> PreparedRequest:
    """Decode and check a Solana sign request; see the module docstring."""
    if wallet.chain is not Chain.SOLANA:
        raise ValueError(f"wallet {wallet.name} is not a Solana wallet")
    if request_id is not None and len(request_id) != 16:
        raise SolanaRequestError("The request id must be a 16-byte UUID.", field="request_id")
    try:
        kind = SolSignType(sign_type)
    except ValueError as exc:
        raise SolanaRequestError(
            f"Unknown Solana sign type {sign_type}.", field="sign_type"
        ) from exc
    key = resolve_wallet_key(
        wallet=wallet,
        path=path,
        source_fingerprint=source_fingerprint,
        lookup_key=lookup_key,
        algorithm=KeyAlgorithm.ED25519,
        error=SolanaRequestError,
    )
    ours = key.public_key
    if len(ours) != 32:
        raise ValueError("an Ed25519 public key must be 32 bytes")
    if address is not None and address != ours:
        shown = b58(address) if len(address) == 32 else "0x" + address.hex()
        raise AddressMismatch(shown, b58(ours), path_to_str(path))
    details: list[tuple[str, str]] = [("signing address", b58(ours)), ("path", path_to_str(path))]
    if origin:
        details.append(("requested by", origin_text(origin)))
    warnings: list[str] = []
    movements: list[Movement] = []
    fee: int | None = None
    if kind is SolSignType.TRANSACTION:
        msg = parse_message(sign_data)
        if ours not in msg.signers:
            raise SignerNotOurs(b58(ours))
        movements, ix_warnings, ix_details, fee = _review_instructions(msg, ours)
        details += [
            ("message version", "legacy" if msg.version is None else f"v{msg.version}"),
            ("fee payer", b58(msg.account_keys[0])),
            ("recent blockhash", b58(msg.recent_blockhash)),
            ("required signatures", str(msg.num_required_signatures)),
            ("estimated fee", format_amount("SOL", fee)),
            *ix_details,
        ]
        if msg.account_keys[0] != ours:
            warnings.append(f"The fee payer is {b58(msg.account_keys[0])}, not our key.")
        if msg.num_required_signatures > 1:
            warnings.append(
                f"The transaction needs {msg.num_required_signatures} signatures; "
                "this appliance provides one."
            )
        if msg.lookups:
            details.append(
                ("address tables", f"{len(msg.lookups)} tables, {msg.loaded_count} accounts")
            )
            warnings.append(
                f"The transaction loads {msg.loaded_count} accounts from {len(msg.lookups)} "
                "address lookup tables; their addresses cannot be shown offline."
            )
        warnings = ix_warnings + warnings
        review_kind, purpose = "sol-transaction", "transaction"
    else:
        if len(sign_data) > MAX_OFFCHAIN_MESSAGE:
            raise SolanaRequestError(
                f"The message is {len(sign_data)} bytes; the limit is {MAX_OFFCHAIN_MESSAGE}.",
                field="sign_data",
            )
        try:
            parse_message(sign_data)
        except SolanaRequestError:
            pass
        else:
            raise MessageLooksLikeTransaction()
        msg_details, warnings = _describe_message(sign_data)
        details += msg_details
        review_kind, purpose = "sol-message", "message"
    review = Review(
        chain=Chain.SOLANA,
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
    payload = bytes(sign_data)
    job = SignJob(
        key_id=key.key_id, algorithm=KeyAlgorithm.ED25519, payload=payload, purpose=purpose
    )

    def finish(signatures: Sequence[Signature], /, *, audit: AuditStamp | None = None) -> bytes:
        if len(signatures) != 1 or not isinstance(signatures[0], Ed25519Signature):
            raise ValueError("finish() needs exactly one Ed25519Signature")
        sig = signatures[0]
        if not sig.verify(ours, payload):
            raise ResponseSignatureInvalid(
                "The keystore's Ed25519 signature does not verify against our key."
            )
        return sol_signature_cbor(request_id, sig.raw, audit)

    return PreparedRequest(review=review, jobs=(job,), finish=finish, response_type="sol-signature")


def prepare_sol_request(
    request: SolSignRequest,
    *,
    wallets: Mapping[str, Wallet],
    lookup_key: KeyLookup,
    request_digest: bytes,
) -> PreparedRequest:
    """:func:`prepare_sol` for a decoded registry ``sol-sign-request``.

    The request's derivation path is resolved once (:class:`RequestKey`, or
    :class:`~coldvault.requests.keys.MissingPath`); it selects the one registered Solana
    wallet whose seed and account cover it
    (:class:`~coldvault.requests.keys.NoWalletForRequest` otherwise)."""
    key = RequestKey.from_keypath(request.derivation_path)
    wallet = find_wallet(wallets, Chain.SOLANA, key)
    return prepare_sol(
        sign_data=request.sign_data,
        sign_type=int(request.sign_type),
        path=key.path,
        source_fingerprint=key.fingerprint,
        address=request.address,
        request_id=request.request_id.bytes if request.request_id is not None else None,
        wallet=wallet,
        lookup_key=lookup_key,
        request_digest=request_digest,
        origin=request.origin,
    )

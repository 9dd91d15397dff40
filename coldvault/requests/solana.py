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

import enum
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nacl.exceptions
import nacl.signing
from embit import base58

from coldvault.codecs.ur_registry import SolSignRequest, encode_sol_signature
from coldvault.errors import InputError, Refused
from coldvault.keystore import KeyAlgorithm, KeyInfo, path_to_str
from coldvault.requests.base import Chain, Movement, MovementKind, PreparedRequest, Review, SignJob
from coldvault.requests.ethereum import (
    AddressMismatch,
    SignatureCheckFailed,
    resolve_wallet_key,
)
from coldvault.wallets import Wallet

MAX_MESSAGE = 1232  # Solana's packet-size limit for a whole transaction
MAX_OFFCHAIN_MESSAGE = 64 * 1024
MAX_ACCOUNTS = 64
MAX_INSTRUCTIONS = 64
MAX_LOOKUPS = 16
LAMPORTS_PER_SOL = 10**9
BASE_FEE_PER_SIGNATURE = 5000
DEFAULT_CU_PER_INSTRUCTION = 200_000
MAX_CU = 1_400_000
OFFCHAIN_PREFIX = b"\xffsolana offchain"

SYSTEM_PROGRAM = bytes(32)
COMPUTE_BUDGET_PROGRAM = base58.decode("ComputeBudget111111111111111111111111111111")


class SolSignType(enum.IntEnum):
    TRANSACTION = 1
    MESSAGE = 2


class SolanaRequestError(InputError):
    """A Solana sign request or message is malformed or exceeds a bound."""

    code = "sol-request"

    def __init__(self, message: str, *, field: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.offset = offset


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


def b58(data: bytes) -> str:
    return str(base58.encode(data))


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise SolanaRequestError(
                f"The message is truncated while reading {what} at offset {self.pos}.",
                field=what,
                offset=self.pos,
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def compact_u16(self, what: str) -> int:
        """Solana's shortvec: 1-3 bytes, 7 bits each, canonical, at most 0xffff."""
        start = self.pos
        value = 0
        for i in range(3):
            byte = self.u8(what)
            if i == 2 and byte > 0x03:
                raise SolanaRequestError(
                    f"The compact-u16 {what} at offset {start} overflows 16 bits.",
                    field=what,
                    offset=start,
                )
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i > 0 and byte == 0:
                    raise SolanaRequestError(
                        f"The compact-u16 {what} at offset {start} is not minimally encoded.",
                        field=what,
                        offset=start,
                    )
                return value
        raise SolanaRequestError(  # unreachable: the third byte never has 0x80 set here
            f"The compact-u16 {what} at offset {start} overflows 16 bits.", field=what, offset=start
        )

    def count(self, what: str, limit: int) -> int:
        start = self.pos
        n = self.compact_u16(what)
        if n > limit:
            raise SolanaRequestError(
                f"The message has {n} {what}; the limit is {limit}.", field=what, offset=start
            )
        return n


@dataclass(frozen=True)
class Instruction:
    program_index: int
    accounts: tuple[int, ...]
    data: bytes


@dataclass(frozen=True)
class SolMessage:
    version: int | None  # None: legacy
    num_required_signatures: int
    num_readonly_signed: int
    num_readonly_unsigned: int
    account_keys: tuple[bytes, ...]
    recent_blockhash: bytes
    instructions: tuple[Instruction, ...]
    #: v0 lookups: (table address, writable count, readonly count)
    lookups: tuple[tuple[bytes, int, int], ...]

    @property
    def signers(self) -> tuple[bytes, ...]:
        return self.account_keys[: self.num_required_signatures]

    @property
    def loaded_count(self) -> int:
        return sum(w + r for _, w, r in self.lookups)

    def account_name(self, index: int) -> str:
        if index < len(self.account_keys):
            return b58(self.account_keys[index])
        return f"(address-table account #{index - len(self.account_keys)})"


def parse_message(data: bytes) -> SolMessage:
    """Parse a legacy or v0 transaction message with explicit bounds."""
    if len(data) > MAX_MESSAGE:
        raise SolanaRequestError(
            f"The message is {len(data)} bytes; the limit is {MAX_MESSAGE}.", field="sign_data"
        )
    r = _Reader(data)
    version: int | None = None
    first = r.u8("header")
    if first & 0x80:
        version = first & 0x7F
        if version != 0:
            raise SolanaRequestError(
                f"Message version {version} is not supported (only legacy and v0).",
                field="version",
                offset=0,
            )
        first = r.u8("header")
    req, ro_signed, ro_unsigned = first, r.u8("header"), r.u8("header")
    n_keys = r.count("account keys", MAX_ACCOUNTS)
    keys = tuple(r.take(32, "account keys") for _ in range(n_keys))
    if req == 0 or ro_signed >= req or req + ro_unsigned > n_keys:
        raise SolanaRequestError(
            "The message header is inconsistent with its account keys.", field="header"
        )
    if len(set(keys)) != len(keys):
        raise SolanaRequestError("The message lists an account key twice.", field="account keys")
    blockhash = r.take(32, "recent blockhash")
    n_ix = r.count("instructions", MAX_INSTRUCTIONS)
    raw_ix = []
    for _ in range(n_ix):
        program = r.u8("instructions")
        accounts = tuple(r.u8("instructions") for _ in range(r.count("instruction accounts", 255)))
        ix_data = r.take(r.compact_u16("instruction data"), "instruction data")
        raw_ix.append(Instruction(program, accounts, ix_data))
    lookups: list[tuple[bytes, int, int]] = []
    if version == 0:
        for _ in range(r.count("address table lookups", MAX_LOOKUPS)):
            table = r.take(32, "address table lookups")
            writable = r.take(r.count("lookup indexes", 255), "lookup indexes")
            readonly = r.take(r.count("lookup indexes", 255), "lookup indexes")
            lookups.append((table, len(writable), len(readonly)))
    if r.pos != len(data):
        raise SolanaRequestError(
            f"The message has {len(data) - r.pos} trailing bytes.", field="sign_data", offset=r.pos
        )
    total = n_keys + sum(w + ro for _, w, ro in lookups)
    if total > 256:
        raise SolanaRequestError("The message loads more than 256 accounts.", field="accounts")
    for i, ix in enumerate(raw_ix):
        if ix.program_index >= n_keys or ix.program_index == 0:
            raise SolanaRequestError(
                f"Instruction {i} names program index {ix.program_index}, which is not a "
                "static non-payer account.",
                field="instructions",
            )
        if any(a >= total for a in ix.accounts):
            raise SolanaRequestError(
                f"Instruction {i} names an account index beyond the {total} accounts.",
                field="instructions",
            )
    return SolMessage(
        version=version,
        num_required_signatures=req,
        num_readonly_signed=ro_signed,
        num_readonly_unsigned=ro_unsigned,
        account_keys=keys,
        recent_blockhash=blockhash,
        instructions=tuple(raw_ix),
        lookups=tuple(lookups),
    )


def format_sol(lamports: int) -> str:
    whole, frac = divmod(lamports, LAMPORTS_PER_SOL)
    return f"{whole}.{frac:09d}".rstrip("0").rstrip(".") + " SOL"


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
            details.append((label, f"System transfer {format_sol(lamports)} {source} -> {dest}"))
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
    try:
        text = body.decode("utf-8")
        shown = text if all(c.isprintable() or c in "\n\t" for c in text) else None
    except UnicodeDecodeError:
        shown = None
    details.append(("message", shown if shown is not None else "0x" + body.hex()))
    return details, warnings


def sol_signature_cbor(request_id: bytes | None, signature: bytes) -> bytes:
    """The ``sol-signature`` CBOR map: {1: uuid (tag 37), 2: 64-byte signature}."""
    rid = uuid.UUID(bytes=request_id) if request_id is not None else None
    return encode_sol_signature(signature, rid).cbor


def prepare_sol(
    *,
    sign_data: bytes,
    sign_type: int,
    path: tuple[int, ...],
    source_fingerprint: bytes,
    address: bytes | None,
    request_id: bytes | None,
    wallet: Wallet,
    lookup_key: Callable[[bytes], KeyInfo | None],
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
        details.append(("requested by", origin[:64] if origin.isprintable() else repr(origin)[:64]))
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
            ("estimated fee", f"{fee} lamports ({format_sol(fee)})"),
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

    def finish(signatures: Sequence[object]) -> bytes:
        if len(signatures) != 1 or not isinstance(signatures[0], bytes | bytearray):
            raise ValueError("finish() needs exactly one 64-byte Ed25519 signature")
        sig = bytes(signatures[0])
        try:
            nacl.signing.VerifyKey(ours).verify(payload, sig)
        except (nacl.exceptions.BadSignatureError, ValueError) as exc:
            raise SignatureCheckFailed(
                "The keystore's Ed25519 signature does not verify against our key."
            ) from exc
        return sol_signature_cbor(request_id, sig)

    return PreparedRequest(review=review, jobs=(job,), finish=finish, response_type="sol-signature")


def prepare_sol_request(
    request: SolSignRequest,
    *,
    wallet: Wallet,
    lookup_key: Callable[[bytes], KeyInfo | None],
    request_digest: bytes,
) -> PreparedRequest:
    """:func:`prepare_sol` for a decoded registry ``sol-sign-request``."""
    path = request.derivation_path
    try:
        indices = path.indices
    except ValueError as exc:
        raise SolanaRequestError(
            "The derivation path has a wildcard or range.", field="derivation_path"
        ) from exc
    if path.source_fingerprint is None:
        raise SolanaRequestError(
            "The derivation path has no source fingerprint.", field="derivation_path"
        )
    return prepare_sol(
        sign_data=request.sign_data,
        sign_type=int(request.sign_type),
        path=indices,
        source_fingerprint=path.source_fingerprint.to_bytes(4, "big"),
        address=request.address,
        request_id=request.request_id.bytes if request.request_id is not None else None,
        wallet=wallet,
        lookup_key=lookup_key,
        request_digest=request_digest,
        origin=request.origin,
    )

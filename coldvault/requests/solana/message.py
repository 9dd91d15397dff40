"""Solana transaction messages (legacy and v0): the bounded parser and its value types."""

from __future__ import annotations

from dataclasses import dataclass

from embit import base58

from coldvault.errors import InputError

MAX_MESSAGE = 1232  # Solana's packet-size limit for a whole transaction
MAX_ACCOUNTS = 64
MAX_INSTRUCTIONS = 64
MAX_LOOKUPS = 16


class SolanaRequestError(InputError):
    """A Solana sign request or message is malformed or exceeds a bound."""

    code = "sol-request"

    def __init__(self, message: str, *, field: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.offset = offset


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

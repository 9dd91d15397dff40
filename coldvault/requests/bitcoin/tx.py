"""Bitcoin transaction bytes for the PSBT pre-parser: the bounded reader, compact sizes,
inputs/outputs and whole-transaction parsing (txid included)."""

from __future__ import annotations

from dataclasses import dataclass

from coldvault.crypto.hashes import sha256d
from coldvault.requests.bitcoin.errors import (
    PsbtBadValue,
    PsbtNonCanonical,
    PsbtTooLarge,
    PsbtTruncated,
)

MAX_MONEY = 21_000_000 * 100_000_000


# --------------------------------------------------------------------------- reader


class Reader:
    __slots__ = ("data", "pos", "end", "what")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None, what: str = "") -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.what = what

    def remaining(self) -> int:
        return self.end - self.pos

    def read(self, n: int, what: str) -> bytes:
        if n > self.end - self.pos:
            raise PsbtTruncated(
                f"{what} needs {n} bytes but only {self.end - self.pos} remain",
                field=self.what,
                offset=self.pos,
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self, what: str) -> int:
        return int.from_bytes(self.read(4, what), "little")

    def compact(self, what: str) -> int:
        start = self.pos
        if start >= self.end:
            self.read(1, what)  # raises PsbtTruncated
        first = self.data[start]
        self.pos = start + 1
        if first < 0xFD:
            return first
        size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
        value = int.from_bytes(self.read(size, what), "little")
        if value < {2: 0xFD, 4: 0x1_0000, 8: 0x1_0000_0000}[size]:
            raise PsbtNonCanonical(
                f"{what} is a non-minimal compact size", field=self.what, offset=start
            )
        return value


def compact_size(n: int) -> bytes:
    """Canonical compact-size encoding of ``n``."""
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFF_FFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


# --------------------------------------------------------------------------- transactions


@dataclass(frozen=True)
class TxIn:
    txid: bytes  # internal byte order (as serialised)
    vout: int
    sequence: int
    script_sig: bytes = b""

    @property
    def txid_hex(self) -> str:
        return self.txid[::-1].hex()


@dataclass(frozen=True)
class TxOut:
    amount: int
    script: bytes

    def serialize(self) -> bytes:
        return self.amount.to_bytes(8, "little") + compact_size(len(self.script)) + self.script


@dataclass(frozen=True)
class Tx:
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    txid: bytes  # internal byte order
    has_witness: bool


def read_output(r: Reader, what: str) -> TxOut:
    start = r.pos
    amount = int.from_bytes(r.read(8, what + " amount"), "little", signed=True)
    if not 0 <= amount <= MAX_MONEY:
        raise PsbtBadValue(
            f"{what} amount {amount} is outside 0..21e14 sat", field=r.what, offset=start
        )
    script = r.read(r.compact(what + " script length"), what + " script")
    return TxOut(amount, script)


def parse_output(value: bytes, what: str = "output") -> TxOut:
    """One serialised output (amount + script) that must use every byte of ``value``."""
    r = Reader(value, what=what)
    out = read_output(r, what)
    if r.remaining():
        raise PsbtBadValue(f"{what} has {r.remaining()} bytes after its end", field=what)
    return out


def parse_tx(data: bytes, *, what: str, allow_witness: bool, base_offset: int = 0) -> Tx:
    """Parse a whole serialised transaction (every byte must be used)."""
    r = Reader(data, what=what)
    version = r.u32("tx version")
    has_witness = False
    if allow_witness and data[4:6] == b"\x00\x01":
        has_witness = True
        r.pos += 2
    body_start = r.pos
    n_in = r.compact("input count")
    if n_in > r.remaining() // 41:
        raise PsbtTooLarge(
            f"{what} claims {n_in} inputs, more than its size allows",
            field=what,
            offset=base_offset,
        )
    ins = []
    for _ in range(n_in):
        txid = r.read(32, "prevout txid")
        vout = r.u32("prevout index")
        script_sig = r.read(r.compact("scriptSig length"), "scriptSig")
        ins.append(TxIn(txid, vout, r.u32("sequence"), script_sig))
    n_out = r.compact("output count")
    if n_out > r.remaining() // 9:
        raise PsbtTooLarge(
            f"{what} claims {n_out} outputs, more than its size allows",
            field=what,
            offset=base_offset,
        )
    outs = tuple(read_output(r, f"output {i}") for i in range(n_out))
    body_end = r.pos
    if has_witness:
        for _ in range(n_in):
            for _ in range(r.compact("witness item count")):
                r.read(r.compact("witness item length"), "witness item")
    locktime = r.u32("locktime")
    if r.remaining():
        raise PsbtBadValue(
            f"{what} has {r.remaining()} bytes after its end",
            field=what,
            offset=base_offset + r.pos,
        )
    txid = (
        sha256d(data[:4] + data[body_start:body_end] + data[-4:])
        if has_witness
        else sha256d(data)
    )
    return Tx(version, tuple(ins), outs, locktime, txid, has_witness)

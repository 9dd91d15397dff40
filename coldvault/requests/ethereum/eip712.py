"""EIP-712 typed structured data: bounded parsing, hashing and a display rendering.

The request carries the JSON object a wallet passes to ``eth_signTypedData_v4``::

    {"types": {...}, "primaryType": "Mail", "domain": {...}, "message": {...}}

We compute ``hashStruct(EIP712Domain, domain)`` (the domain separator), ``hashStruct(primary,
message)`` and the signing digest ``keccak256(0x19 0x01 || domainSeparator || messageHash)``
ourselves, and flatten every value into labelled lines so the operator sees everything that
is hashed. Values not described by the types are refused (they would be shown but not signed).

Supported types: ``uint<N>``/``int<N>`` (N = 8..256 step 8), ``address``, ``bool``,
``bytes<N>`` (1..32), ``bytes``, ``string``, structs declared in ``types`` (recursion
allowed), and arrays of any of these, dynamic (``T[]``) or fixed (``T[k]``), nested.
Integers may be JSON numbers, decimal strings or ``0x`` hex strings; bytes are ``0x`` hex.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from coldvault.crypto.hashes import keccak256
from coldvault.errors import InputError
from coldvault.jsonsafe import json_depth

MAX_JSON_SIZE = 64 * 1024
MAX_TYPES = 64
MAX_FIELDS = 64
MAX_DEPTH = 10  # struct/array nesting of values
MAX_JSON_DEPTH = 2 * MAX_DEPTH + 8
MAX_ARRAY = 1024
MAX_VALUES = 10_000
MAX_NAME = 64

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")
_ARRAY = re.compile(r"^(.+)\[(\d{0,4})\]$")
_INT = re.compile(r"^(u?)int(\d{1,3})$")
_NUMBER = re.compile(r"^-?(0[xX][0-9a-fA-F]{1,64}|[0-9]{1,78})$")
_BYTESN = re.compile(r"^bytes(\d{1,2})$")


class Eip712Error(InputError):
    """The typed data is malformed, inconsistent with its types, or exceeds a bound."""

    code = "eip712"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TypedData:
    primary_type: str
    domain_separator: bytes
    message_hash: bytes | None  # None when primaryType is EIP712Domain
    digest: bytes
    domain: tuple[tuple[str, str], ...]
    lines: tuple[tuple[str, str], ...]  # flattened message fields, for display
    chain_id: int | None
    verifying_contract: str | None


def parse_typed_data(raw: bytes) -> TypedData:
    """Parse and hash EIP-712 JSON from untrusted bytes."""
    if len(raw) > MAX_JSON_SIZE:
        raise Eip712Error(f"Typed data is {len(raw)} bytes; the limit is {MAX_JSON_SIZE}.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Eip712Error("Typed data is not valid UTF-8.") from exc
    if json_depth(text) > MAX_JSON_DEPTH:
        raise Eip712Error(f"Typed data JSON is nested too deeply (over {MAX_JSON_DEPTH} levels).")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Eip712Error(f"Typed data is not valid JSON: {exc}.") from exc
    return hash_typed_data(obj)


def hash_typed_data(obj: Any) -> TypedData:
    if not isinstance(obj, dict):
        raise Eip712Error("Typed data must be a JSON object.")
    unknown = set(obj) - {"types", "primaryType", "domain", "message"}
    if unknown:
        raise Eip712Error(f"Typed data has unknown top-level keys {sorted(unknown)}.")
    domain = obj.get("domain")
    primary = obj.get("primaryType")
    if not isinstance(domain, dict):
        raise Eip712Error("Typed data 'domain' must be an object.", field="domain")
    if not isinstance(primary, str):
        raise Eip712Error("Typed data 'primaryType' must be a string.", field="primaryType")
    enc = _Encoder(_check_types(obj.get("types"), domain))
    if primary not in enc.types:
        raise Eip712Error(
            f"Primary type {primary!r} is not declared in types.", field="primaryType"
        )
    dom_lines: list[tuple[str, str]] = []
    dom_sep = enc.hash_struct("EIP712Domain", domain, "domain", 0, dom_lines)
    lines: list[tuple[str, str]] = []
    if primary == "EIP712Domain":
        msg_hash = None
        digest = keccak256(b"\x19\x01" + dom_sep)
    else:
        message = obj.get("message")
        if not isinstance(message, dict):
            raise Eip712Error("Typed data 'message' must be an object.", field="message")
        msg_hash = enc.hash_struct(primary, message, primary, 0, lines)
        digest = keccak256(b"\x19\x01" + dom_sep + msg_hash)
    chain_id = (
        enc.parse_int(domain["chainId"], "uint256", "domain.chainId")
        if ("chainId" in domain)
        else None
    )
    contract = domain.get("verifyingContract")
    return TypedData(
        primary_type=primary,
        domain_separator=dom_sep,
        message_hash=msg_hash,
        digest=digest,
        domain=tuple((k.removeprefix("domain."), v) for k, v in dom_lines),
        lines=tuple(lines),
        chain_id=chain_id,
        verifying_contract=contract.lower() if isinstance(contract, str) else None,
    )


def _check_types(types: Any, domain: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    if not isinstance(types, dict):
        raise Eip712Error("Typed data 'types' must be an object.", field="types")
    if len(types) > MAX_TYPES:
        raise Eip712Error(f"Typed data declares more than {MAX_TYPES} types.", field="types")
    out: dict[str, list[tuple[str, str]]] = {}
    for name, fields in types.items():
        if not isinstance(name, str) or not _IDENT.match(name) or _is_atomic_or_dynamic(name):
            raise Eip712Error(f"Type name {name!r} is not a valid struct name.", field="types")
        if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
            raise Eip712Error(
                f"Type {name} must be a list of at most {MAX_FIELDS} fields.", field=name
            )
        seen: set[str] = set()
        members = []
        for f in fields:
            if not isinstance(f, dict) or set(f) != {"name", "type"}:
                raise Eip712Error(f"A field of type {name} is not {{name, type}}.", field=name)
            fname, ftype = f["name"], f["type"]
            if not isinstance(fname, str) or not _IDENT.match(fname) or fname in seen:
                raise Eip712Error(f"Type {name} has an invalid or repeated field name.", field=name)
            if not isinstance(ftype, str) or len(ftype) > MAX_NAME:
                raise Eip712Error(f"Field {name}.{fname} has an invalid type.", field=name)
            seen.add(fname)
            members.append((fname, ftype))
        out[name] = members
    if "EIP712Domain" not in out:
        # Wallets disagree on such a message: eth-sig-util (MetaMask) hashes an empty domain,
        # ethers and eth-account one built from the domain's fields. One JSON, two digests.
        raise Eip712Error(
            "Typed data must declare EIP712Domain in its types (wallets hash the domain of one "
            "that does not in different ways).",
            field="types",
        )
    for name, members in out.items():
        for fname, ftype in members:
            base = ftype
            while (m := _ARRAY.match(base)) is not None:
                base = m.group(1)
            if base not in out and not _is_atomic_or_dynamic(base):
                raise Eip712Error(
                    f"Field {name}.{fname} has unknown type {ftype!r}.", field=f"{name}.{fname}"
                )
    return out


def _is_atomic_or_dynamic(t: str) -> bool:
    if t in ("address", "bool", "bytes", "string"):
        return True
    if (m := _INT.match(t)) is not None:
        bits = int(m.group(2))
        return 8 <= bits <= 256 and bits % 8 == 0 and m.group(2)[0] != "0"
    if (m := _BYTESN.match(t)) is not None:
        n = int(m.group(1))
        return 1 <= n <= 32 and m.group(1)[0] != "0"
    return False


class _Encoder:
    def __init__(self, types: dict[str, list[tuple[str, str]]]) -> None:
        self.types = types
        self.values = 0

    def _deps(self, primary: str) -> list[str]:
        found: set[str] = set()
        stack = [primary]
        while stack:
            t = stack.pop()
            if t in found:
                continue
            found.add(t)
            for _, ftype in self.types[t]:
                base = ftype.split("[", 1)[0]
                if base in self.types and base not in found:
                    stack.append(base)
        found.discard(primary)
        return [primary, *sorted(found)]

    def encode_type(self, primary: str) -> bytes:
        return "".join(
            t + "(" + ",".join(f"{ft} {fn}" for fn, ft in self.types[t]) + ")"
            for t in self._deps(primary)
        ).encode()

    def hash_struct(
        self, name: str, value: Any, path: str, depth: int, lines: list[tuple[str, str]]
    ) -> bytes:
        if not isinstance(value, dict):
            raise Eip712Error(f"{path} must be an object of type {name}.", field=path)
        members = self.types[name]
        extra = set(value) - {fn for fn, _ in members}
        if extra:
            raise Eip712Error(
                f"{path} has fields {sorted(extra)} not declared in type {name}.", field=path
            )
        parts = [keccak256(self.encode_type(name))]
        for fname, ftype in members:
            if fname not in value:
                raise Eip712Error(f"{path}.{fname} is missing.", field=f"{path}.{fname}")
            parts.append(self.encode_value(ftype, value[fname], f"{path}.{fname}", depth, lines))
        return keccak256(b"".join(parts))

    def encode_value(
        self, ftype: str, value: Any, path: str, depth: int, lines: list[tuple[str, str]]
    ) -> bytes:
        self.values += 1
        if self.values > MAX_VALUES:
            raise Eip712Error(f"Typed data holds more than {MAX_VALUES} values.", field=path)
        if depth > MAX_DEPTH:
            raise Eip712Error(f"{path} is nested deeper than {MAX_DEPTH} levels.", field=path)
        if (m := _ARRAY.match(ftype)) is not None:
            inner, size = m.group(1), m.group(2)
            if not isinstance(value, list) or len(value) > MAX_ARRAY:
                raise Eip712Error(
                    f"{path} must be an array of at most {MAX_ARRAY} items.", field=path
                )
            if size and len(value) != int(size):
                raise Eip712Error(
                    f"{path} has {len(value)} items; type {ftype} needs {int(size)}.", field=path
                )
            if not value:
                lines.append((path, "[] (empty)"))
            enc = b"".join(
                self.encode_value(inner, v, f"{path}[{i}]", depth + 1, lines)
                for i, v in enumerate(value)
            )
            return keccak256(enc)
        if ftype in self.types:
            return self.hash_struct(ftype, value, path, depth + 1, lines)
        if ftype == "string":
            if not isinstance(value, str):
                raise Eip712Error(f"{path} must be a string.", field=path)
            # control/format characters (newlines, bidi overrides) are shown escaped
            lines.append((path, value if value.isprintable() else json.dumps(value)))
            try:
                return keccak256(value.encode("utf-8"))
            except UnicodeEncodeError as exc:
                raise Eip712Error(f"{path} is not valid Unicode text.", field=path) from exc
        if ftype == "bytes":
            raw = self._hex(value, path)
            lines.append((path, "0x" + raw.hex()))
            return keccak256(raw)
        if ftype == "bool":
            if not isinstance(value, bool):
                raise Eip712Error(f"{path} must be true or false.", field=path)
            lines.append((path, "true" if value else "false"))
            return int(value).to_bytes(32, "big")
        if ftype == "address":
            raw = self._hex(value, path)
            if len(raw) != 20:
                raise Eip712Error(f"{path} must be a 20-byte address.", field=path)
            lines.append((path, "0x" + raw.hex()))
            return raw.rjust(32, b"\x00")
        if (m := _BYTESN.match(ftype)) is not None:
            raw = self._hex(value, path)
            if len(raw) != int(m.group(1)):
                raise Eip712Error(f"{path} must be exactly {m.group(1)} bytes.", field=path)
            lines.append((path, "0x" + raw.hex()))
            return raw.ljust(32, b"\x00")
        number = self.parse_int(value, ftype, path)
        lines.append((path, str(number)))
        return (number % (1 << 256)).to_bytes(32, "big")

    @staticmethod
    def _hex(value: Any, path: str) -> bytes:
        if not isinstance(value, str) or not value.startswith(("0x", "0X")):
            raise Eip712Error(f"{path} must be a 0x-prefixed hex string.", field=path)
        try:
            return bytes.fromhex(value[2:])
        except ValueError as exc:
            raise Eip712Error(f"{path} is not valid hex.", field=path) from exc

    @staticmethod
    def parse_int(value: Any, ftype: str, path: str) -> int:
        m = _INT.match(ftype)
        if m is None:
            raise Eip712Error(f"{path} has unsupported type {ftype!r}.", field=path)
        if isinstance(value, bool):
            raise Eip712Error(f"{path} must be an integer, not a boolean.", field=path)
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and _NUMBER.match(value) is not None:
            neg = value.startswith("-")
            digits = value.lstrip("-")
            number = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 10)
            number = -number if neg else number
        else:
            raise Eip712Error(f"{path} must be an integer.", field=path)
        bits = int(m.group(2))
        if m.group(1):
            low, high = 0, (1 << bits) - 1
        else:
            low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        if not low <= number <= high:
            raise Eip712Error(f"{path} = {number} does not fit {ftype}.", field=path)
        return number

"""UR registry key types: base58check, ``keypath``, ``coin-info``, ``eckey`` and ``hdkey``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from coldvault.crypto.hashes import sha256d
from coldvault.crypto.paths import HARDENED
from coldvault.transport.registry.cbor import (
    UINT32,
    Fields,
    Tag,
    cbor_map,
    is_v2,
    tag_for,
)
from coldvault.transport.ur import UR

# --------------------------------------------------------------------------- base58


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58check_encode(payload: bytes) -> str:
    data = payload + sha256d(payload)[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def base58check_decode(text: str) -> bytes:
    """Decode base58check; raises ``ValueError`` on bad characters or checksum."""
    if len(text) > 200:
        raise ValueError("base58 text too long")
    n = 0
    for ch in text:
        index = _B58.find(ch)
        if index < 0:
            raise ValueError("invalid base58 character")
        n = n * 58 + index
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    data = b"\0" * (len(text) - len(text.lstrip("1"))) + body
    if len(data) < 4 or sha256d(data[:-4])[:4] != data[-4:]:
        raise ValueError("base58 checksum mismatch")
    return data[:-4]


# --------------------------------------------------------------------------- keypath


@dataclass(frozen=True)
class PathComponent:
    """One derivation step: an index, a wildcard (``index is None``) or a range."""

    index: int | None
    hardened: bool = False
    range_end: int | None = None

    def __str__(self) -> str:
        if self.index is None:
            text = "*"
        elif self.range_end is not None:
            text = f"<{self.index}-{self.range_end}>"
        else:
            text = str(self.index)
        return text + ("'" if self.hardened else "")


@dataclass(frozen=True)
class Keypath:
    """``crypto-keypath`` (BCR-2020-007): components, source fingerprint, depth."""

    components: tuple[PathComponent, ...] = ()
    source_fingerprint: int | None = None
    depth: int | None = None

    @classmethod
    def from_path(cls, path: str, source_fingerprint: int | None = None) -> Keypath:
        """From ``"m/44'/60'/0'/0/0"`` (``h``/``H`` also mark hardening)."""
        parts = [p for p in path.strip().split("/") if p]
        if parts and parts[0] in ("m", "M"):
            parts = parts[1:]
        comps = []
        for part in parts:
            hardened = part[-1] in "'hH"
            digits = part[:-1] if hardened else part
            if digits == "*":
                comps.append(PathComponent(None, hardened))
                continue
            if not digits.isdigit() or int(digits) >= HARDENED:
                raise ValueError(f"invalid path component {part!r}")
            comps.append(PathComponent(int(digits), hardened))
        return cls(tuple(comps), source_fingerprint)

    @property
    def path(self) -> str:
        """E.g. ``"44'/60'/0'/0/0"`` (no ``m/`` prefix)."""
        return "/".join(str(c) for c in self.components)

    @property
    def indices(self) -> tuple[int, ...]:
        """BIP-32 indices with the hardened bit; ``ValueError`` for wildcards/ranges."""
        out = []
        for c in self.components:
            if c.index is None or c.range_end is not None:
                raise ValueError("keypath has a wildcard or range")
            out.append(c.index | (HARDENED if c.hardened else 0))
        return tuple(out)

    @property
    def effective_depth(self) -> int:
        return self.depth if self.depth is not None else len(self.components)

    def to_cbor_value(self) -> dict[int, Any]:
        flat: list[Any] = []
        for c in self.components:
            if c.index is None:
                flat.append([])
            elif c.range_end is not None:
                flat.append([c.index, c.range_end])
            else:
                flat.append(c.index)
            flat.append(c.hardened)
        return cbor_map((1, flat), (2, self.source_fingerprint), (3, self.depth))

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str = "keypath") -> Keypath:
        f = Fields(obj, ur_type, what, {1: "components", 2: "source-fingerprint", 3: "depth"})
        flat = f.get(1, lambda v: isinstance(v, list) and len(v) % 2 == 0 and len(v) <= 512,
                     "an even-length array", True)
        comps = []
        for i in range(0, len(flat), 2):
            item, hardened = flat[i], flat[i + 1]
            if not isinstance(hardened, bool):
                raise f.err(1, f"component {i // 2} hardened flag is not a boolean")
            if type(item) is int and 0 <= item < HARDENED:
                comps.append(PathComponent(item, hardened))
            elif item == []:
                comps.append(PathComponent(None, hardened))
            elif (isinstance(item, list) and len(item) == 2
                  and all(type(x) is int and 0 <= x < HARDENED for x in item)):
                comps.append(PathComponent(item[0], hardened, item[1]))
            else:
                raise f.err(1, f"component {i // 2} is not an index, [] or [low, high]")
        return cls(tuple(comps), f.uint(2, limit=UINT32), f.uint(3, limit=255))


# --------------------------------------------------------------------------- small types


@dataclass(frozen=True)
class CoinInfo:
    """``crypto-coin-info``: SLIP-44 coin type (0 BTC, 60 ETH) and network (0 main, 1 test).
    ``None`` means the field was absent (the default, 0)."""

    coin_type: int | None = None
    network: int | None = None

    def to_cbor_value(self) -> dict[int, Any]:
        return cbor_map((1, self.coin_type), (2, self.network))

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str) -> CoinInfo:
        f = Fields(obj, ur_type, what, {1: "type", 2: "network"})
        network = f.get(2, lambda v: type(v) is int and -(2**31) <= v < 2**31, "an int", False)
        return cls(f.uint(1, limit=UINT32), network)


@dataclass(frozen=True)
class ECKey:
    """``crypto-eckey`` (BCR-2020-008)."""

    data: bytes
    curve: int | None = None
    is_private: bool | None = None
    ur_type: str = "crypto-eckey"

    def __repr__(self) -> str:
        shown = "<private>" if self.is_private else self.data.hex()
        return f"ECKey(data={shown}, curve={self.curve})"

    def to_cbor_value(self, v2: bool | None = None) -> dict[int, Any]:
        return cbor_map((1, self.curve), (2, self.is_private), (3, self.data))

    @classmethod
    def from_cbor_value(cls, obj: Any, ur_type: str, what: str = "eckey") -> ECKey:
        f = Fields(obj, ur_type, what, {1: "curve", 2: "is-private", 3: "data"})
        return cls(f.bytes_(3, True, (32, 33)), f.uint(1, limit=255), f.boolean(2), ur_type)

    def to_ur(self) -> UR:
        return UR(self.ur_type, cbor2.dumps(self.to_cbor_value()))


#: Length of a bare Ed25519 public key in ``crypto-hdkey`` key data (Keystone's Solana keys).
ED25519_KEY_LEN = 32

_XPUB_VERSIONS = {  # (private, testnet) -> version
    (False, False): 0x0488B21E,
    (True, False): 0x0488ADE4,
    (False, True): 0x043587CF,
    (True, True): 0x04358394,
}


@dataclass(frozen=True)
class HDKey:
    """``crypto-hdkey`` (BCR-2020-007).  ``None`` fields were absent.

    ``key_data`` is a 33-byte secp256k1 key (BCR-2020-007), or a bare 32-byte Ed25519
    public key as Keystone writes Solana keys (no curve field exists: the 32-byte length
    is what marks it, as Keystone's readers take it, e.g. ``bs58(key)`` for the address).
    """

    key_data: bytes
    chain_code: bytes | None = None
    is_master: bool | None = None
    is_private: bool | None = None
    use_info: CoinInfo | None = None
    origin: Keypath | None = None
    children: Keypath | None = None
    parent_fingerprint: int | None = None
    name: str | None = None
    note: str | None = None
    ur_type: str = "crypto-hdkey"

    def __repr__(self) -> str:
        key = "<private>" if self.private else self.key_data.hex()
        return f"HDKey(key={key}, origin={self.origin}, children={self.children})"

    @property
    def private(self) -> bool:
        return bool(self.is_master or self.is_private)

    @property
    def ed25519(self) -> bool:
        """A bare 32-byte Ed25519 public key (Keystone's Solana keys), not secp256k1."""
        return len(self.key_data) == ED25519_KEY_LEN

    @property
    def testnet(self) -> bool:
        return self.use_info is not None and self.use_info.network == 1

    def to_base58(self) -> str:
        """The BIP-32 serialisation (``xpub``/``xprv``/``tpub``/``tprv``)."""
        if self.chain_code is None:
            raise ValueError("an hdkey without chain code has no BIP-32 serialisation")
        if self.ed25519:
            raise ValueError("an Ed25519 hdkey has no BIP-32 serialisation")
        depth, parent, child = 0, 0, 0
        if not self.is_master and self.origin is not None:
            depth = self.origin.effective_depth
            if self.origin.components and self.origin.components[-1].index is not None:
                last = self.origin.components[-1]
                child = last.index | (HARDENED if last.hardened else 0)  # type: ignore[operator]
            if self.parent_fingerprint is not None:
                parent = self.parent_fingerprint
            elif depth == 1 and self.origin.source_fingerprint is not None:
                parent = self.origin.source_fingerprint
        payload = (
            _XPUB_VERSIONS[(self.private, self.testnet)].to_bytes(4, "big")
            + bytes([depth & 0xFF]) + parent.to_bytes(4, "big") + child.to_bytes(4, "big")
            + self.chain_code + self.key_data
        )
        return base58check_encode(payload)

    @classmethod
    def from_base58(
        cls, text: str, *, origin: Keypath | None = None, children: Keypath | None = None,
        ur_type: str = "crypto-hdkey",
    ) -> HDKey:
        """From an xpub/tpub (public keys only; ``ValueError`` on bad input)."""
        raw = base58check_decode(text)
        if len(raw) != 78:
            raise ValueError("extended key must be 78 bytes")
        version = int.from_bytes(raw[:4], "big")
        testnet = {0x0488B21E: False, 0x043587CF: True}.get(version)
        if testnet is None:
            raise ValueError("only xpub/tpub extended public keys are accepted")
        parent = int.from_bytes(raw[5:9], "big")
        return cls(
            key_data=raw[45:], chain_code=raw[13:45],
            use_info=CoinInfo(None, 1) if testnet else None, origin=origin,
            children=children, parent_fingerprint=parent or None, ur_type=ur_type,
        )

    def to_cbor_value(self, v2: bool | None = None) -> dict[int, Any]:
        v2 = is_v2(self.ur_type) if v2 is None else v2

        def tagged(base: Tag, value: Any) -> Any:
            return None if value is None else cbor2.CBORTag(tag_for(base, v2), value)

        return cbor_map(
            (1, self.is_master), (2, self.is_private), (3, self.key_data), (4, self.chain_code),
            (5, tagged(Tag.COIN_INFO, self.use_info and self.use_info.to_cbor_value())),
            (6, tagged(Tag.KEYPATH, self.origin and self.origin.to_cbor_value())),
            (7, tagged(Tag.KEYPATH, self.children and self.children.to_cbor_value())),
            (8, self.parent_fingerprint), (9, self.name), (10, self.note),
        )

    @classmethod
    def from_cbor_value(
        cls, obj: Any, ur_type: str, what: str = "hdkey", *, ed25519_ok: bool = False
    ) -> HDKey:
        """Decode an hdkey map; ``ed25519_ok`` accepts a bare 32-byte Ed25519 public key
        (a standalone hdkey or a multi-accounts entry; never inside a Bitcoin output)."""
        names = {1: "is-master", 2: "is-private", 3: "key-data", 4: "chain-code",
                 5: "use-info", 6: "origin", 7: "children", 8: "parent-fingerprint",
                 9: "name", 10: "note"}
        f = Fields(obj, ur_type, what, names)
        use_info = f.tagged(5, Tag.COIN_INFO)
        origin = f.tagged(6, Tag.KEYPATH)
        children = f.tagged(7, Tag.KEYPATH)
        key = cls(
            key_data=f.bytes_(3, True, (33, ED25519_KEY_LEN) if ed25519_ok else (33,)),
            chain_code=f.bytes_(4, False, (32,)),
            is_master=f.boolean(1), is_private=f.boolean(2),
            use_info=None if use_info is None else CoinInfo.from_cbor_value(
                use_info, ur_type, f"{what}.use-info"),
            origin=None if origin is None else Keypath.from_cbor_value(
                origin, ur_type, f"{what}.origin"),
            children=None if children is None else Keypath.from_cbor_value(
                children, ur_type, f"{what}.children"),
            parent_fingerprint=f.uint(8, limit=UINT32), name=f.text(9), note=f.text(10),
            ur_type=ur_type,
        )
        if key.is_master and key.chain_code is None:
            raise f.err(4, "a master key needs a chain code")
        if key.ed25519:
            if key.private:
                raise f.err(3, "a 32-byte (Ed25519) key is accepted as a public key only")
        elif key.key_data[0] not in ((0,) if key.private else (2, 3)):
            raise f.err(3, "key data prefix does not match is-private")
        return key

    def to_ur(self) -> UR:
        return UR(self.ur_type, cbor2.dumps(self.to_cbor_value()))

    def key_expression(self) -> str:
        """Descriptor key expression: ``[fp/path]xpub.../children``."""
        text = self.to_base58()
        if self.origin is not None and self.origin.source_fingerprint is not None:
            path = "/" + self.origin.path if self.origin.components else ""
            text = f"[{self.origin.source_fingerprint:08x}{path}]" + text
        if self.children is not None and self.children.components:
            text += "/" + self.children.path
        return text

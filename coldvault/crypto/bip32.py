"""BIP-32 secp256k1 extended keys: derivation, strict import, xpub/tpub export.

Derivation is bip-utils' ``Bip32Secp256k1``.  Serialised keys from outside (operator files,
coordinator exports) are first checked field by field here, so every flaw listed in BIP-32
test vector 5 is refused with :class:`InvalidExtendedKey` naming the reason, before the
library sees the key.

Secret hygiene: bip-utils keeps private keys as immutable ``bytes`` inside its objects and
takes the seed as ``bytes``; those copies cannot be wiped and live until garbage
collection.  :meth:`HDKey.private_key` hands the caller a ``bytearray`` copy to wipe.
"""

from __future__ import annotations

import enum
import functools
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

import coincurve
from bip_utils import Base58ChecksumError, Base58Decoder, Bip32KeyNetVersions, Bip32Secp256k1

from coldvault.crypto.errors import CryptoInputError
from coldvault.crypto.paths import HARDENED, parse_path
from coldvault.crypto.secp256k1 import SECP256K1_N, is_scalar

SERIALISED_LENGTH = 78


class Network(enum.StrEnum):
    """Bitcoin networks; ``test`` and ``regtest`` share the tpub/tprv versions."""

    MAIN = "main"
    TEST = "test"
    REGTEST = "regtest"

    @property
    def versions(self) -> tuple[bytes, bytes]:
        """(public, private) 4-byte version prefixes (BIP-32; no SLIP-132)."""
        return (XPUB, XPRV) if self is Network.MAIN else (TPUB, TPRV)

    @property
    def coin_type(self) -> int:
        """BIP-44 coin type: 0 for mainnet, 1 for every test network."""
        return 0 if self is Network.MAIN else 1


XPUB = bytes.fromhex("0488b21e")
XPRV = bytes.fromhex("0488ade4")
TPUB = bytes.fromhex("043587cf")
TPRV = bytes.fromhex("04358394")
_VERSIONS: dict[bytes, tuple[Network, bool]] = {
    XPUB: (Network.MAIN, False),
    XPRV: (Network.MAIN, True),
    TPUB: (Network.TEST, False),
    TPRV: (Network.TEST, True),
}


class InvalidExtendedKey(CryptoInputError):
    """A serialised extended key is malformed; ``reason`` is a stable short code."""

    code = "invalid-extended-key"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"The extended key is invalid: {message}.")
        self.reason = reason


@dataclass(frozen=True)
class ExtendedKeyFields:
    """The decoded fields of a serialised key (public keys only; no secret in here)."""

    network: Network
    is_private: bool
    depth: int
    parent_fingerprint: bytes
    child_index: int
    chain_code: bytes


def check_extended_key(text: str) -> ExtendedKeyFields:
    """Validate a serialised xpub/xprv/tpub/tprv; raise :class:`InvalidExtendedKey`."""
    try:
        raw = Base58Decoder.CheckDecode(text.strip())
    except Base58ChecksumError:
        raise InvalidExtendedKey("checksum", "its Base58Check checksum does not match") from None
    except (ValueError, TypeError):
        raise InvalidExtendedKey("base58", "it is not Base58Check text") from None
    if len(raw) != SERIALISED_LENGTH:
        raise InvalidExtendedKey("length", f"it decodes to {len(raw)} bytes, not 78")
    version, depth, parent, index = raw[:4], raw[4], raw[5:9], int.from_bytes(raw[9:13], "big")
    chain_code, key = raw[13:45], raw[45:78]
    if version not in _VERSIONS:
        raise InvalidExtendedKey("version", f"version {version.hex()} is not xpub/xprv/tpub/tprv")
    network, is_private = _VERSIONS[version]
    if depth == 0 and parent != b"\x00" * 4:
        raise InvalidExtendedKey("depth-zero-parent", "a master key has a parent fingerprint")
    if depth == 0 and index != 0:
        raise InvalidExtendedKey("depth-zero-index", "a master key has a child index")
    if is_private:
        if key[0] != 0:
            raise InvalidExtendedKey(
                "private-key-prefix", "a private version carries no 0x00-prefixed private key"
            )
        if not is_scalar(int.from_bytes(key[1:], "big")):
            raise InvalidExtendedKey("private-key-range", "the private key is not in 1..n-1")
    else:
        if key[0] not in (2, 3):
            raise InvalidExtendedKey(
                "public-key-prefix", f"the public key prefix {key[0]:02x} is not 02 or 03"
            )
        try:
            coincurve.PublicKey(key)
        except ValueError:
            raise InvalidExtendedKey(
                "public-key-point", "the public key is not a point on secp256k1"
            ) from None
    return ExtendedKeyFields(network, is_private, depth, parent, index, chain_code)


class HDKey:
    """A BIP-32 secp256k1 node (private or public-only). Never shows key material in repr."""

    __slots__ = ("_node", "_network")

    def __init__(self, node: Bip32Secp256k1, network: Network) -> None:
        self._node = node
        self._network = network

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_seed(cls, seed: bytes | bytearray, network: Network = Network.MAIN) -> HDKey:
        """Master key from a BIP-39/SLIP-39 seed (16..64 bytes)."""
        if not 16 <= len(seed) <= 64:
            raise ValueError("a BIP-32 seed must be 16 to 64 bytes")
        pub, prv = network.versions
        node = Bip32Secp256k1.FromSeed(bytes(seed), Bip32KeyNetVersions(pub, prv))
        return cls(node, network)

    @classmethod
    def from_extended_key(cls, text: str) -> HDKey:
        """Strictly import a serialised key (see :func:`check_extended_key`)."""
        fields = check_extended_key(text)
        pub, prv = fields.network.versions
        node = Bip32Secp256k1.FromExtendedKey(text.strip(), Bip32KeyNetVersions(pub, prv))
        return cls(node, fields.network)

    # -- properties ---------------------------------------------------------------------
    @property
    def network(self) -> Network:
        return self._network

    @property
    def is_private(self) -> bool:
        return not self._node.IsPublicOnly()

    @property
    def depth(self) -> int:
        return int(self._node.Depth().ToInt())

    @property
    def child_index(self) -> int:
        return int(self._node.Index().ToInt())

    @property
    def parent_fingerprint(self) -> bytes:
        return bytes(self._node.ParentFingerPrint().ToBytes())

    @property
    def fingerprint(self) -> bytes:
        """First 4 bytes of HASH160 of this node's compressed public key."""
        return bytes(self._node.FingerPrint().ToBytes())

    @property
    def chain_code(self) -> bytes:
        return bytes(self._node.ChainCode().ToBytes())

    @property
    def public_key(self) -> bytes:
        """33-byte compressed SEC1 public key."""
        return bytes(self._node.PublicKey().RawCompressed().ToBytes())

    # -- derivation / export ------------------------------------------------------------
    def derive(self, path: Sequence[int] | str) -> HDKey:
        """Child at a relative path (indices with hardened bit, or ``"m/..."`` text)."""
        indices = parse_path(path) if isinstance(path, str) else tuple(path)
        node = self._node
        for index in indices:
            if not 0 <= index <= 0xFFFF_FFFF:
                raise ValueError(f"child index {index} out of range")
            if index & HARDENED and node.IsPublicOnly():
                raise ValueError("a public key cannot derive a hardened child")
            node = node.ChildKey(index)
        return HDKey(node, self._network)

    def public(self) -> HDKey:
        """The public-only twin of this node."""
        pub, prv = self._network.versions
        return HDKey(
            Bip32Secp256k1.FromExtendedKey(self.xpub(), Bip32KeyNetVersions(pub, prv)),
            self._network,
        )

    def xpub(self) -> str:
        """xpub (mainnet) or tpub (test networks) serialisation."""
        return str(self._node.PublicKey().ToExtended())

    def xprv(self) -> str:
        """xprv/tprv serialisation.  SECRET, returned as an immutable str: tests only."""
        if not self.is_private:
            raise ValueError("public-only key has no xprv")
        return str(self._node.PrivateKey().ToExtended())

    def private_key(self) -> bytearray:
        """A fresh ``bytearray`` copy of the 32-byte private scalar; the caller wipes it."""
        if not self.is_private:
            raise ValueError("public-only key has no private key")
        return bytearray(self._node.PrivateKey().Raw().ToBytes())

    def __repr__(self) -> str:
        kind = "private" if self.is_private else "public"
        fp = self.fingerprint.hex()
        return f"HDKey({kind}, network={self._network}, depth={self.depth}, fp={fp})"


def public_child(public_key: bytes, chain_code: bytes, index: int) -> tuple[bytes, bytes]:
    """BIP-32 CKDpub: the compressed public key and the chain code of the non-hardened
    child ``index`` of the node (``public_key``, ``chain_code``), by HMAC-SHA512 and one
    libsecp256k1 tweak.  It is what :meth:`HDKey.derive` computes for such a child, without
    building bip-utils' key objects (a wallet re-derives one key per input it proves)."""
    if not 0 <= index < HARDENED:
        raise ValueError("a public derivation takes a non-hardened index")
    if len(chain_code) != 32:
        raise ValueError("a chain code is 32 bytes")
    digest = hmac.digest(chain_code, public_key + index.to_bytes(4, "big"), "sha512")
    tweak = digest[:32]
    if int.from_bytes(tweak, "big") >= SECP256K1_N:  # BIP-32: no child at this index
        raise ValueError(f"index {index} has no valid child")
    # ValueError for a key that is not a point, or a child at infinity (BIP-32: no child)
    child = _parent_point(bytes(public_key)).add(tweak)
    return child.format(compressed=True), digest[32:]


@functools.lru_cache(maxsize=64)
def _parent_point(public_key: bytes) -> coincurve.PublicKey:
    """The parsed parent key (public data): a wallet derives every input's key from the
    same few branch nodes, so each is parsed once, not once per child."""
    return coincurve.PublicKey(public_key)


def master_fingerprint(seed: bytes | bytearray) -> bytes:
    """4-byte fingerprint of the master key of ``seed`` (the wallet's public identity)."""
    return HDKey.from_seed(seed).fingerprint


__all__ = [
    "HDKey",
    "ExtendedKeyFields",
    "InvalidExtendedKey",
    "Network",
    "check_extended_key",
    "master_fingerprint",
    "public_child",
]

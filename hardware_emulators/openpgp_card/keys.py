"""Key algorithms of the virtual card: attribute encodings, generation, signing and ECDH.

Only elliptic-curve keys are emulated (no RSA): signature/authentication keys Ed25519
(EdDSA, algorithm id 22), NIST P-256 and secp256k1 (ECDSA, algorithm id 19); decryption keys
cv25519 and NIST P-256 (ECDH, algorithm id 18), used by PSO:DECIPHER.  Algorithm attributes
follow the OpenPGP card spec v3.4 §4.4.3.9: one algorithm-id byte followed by the curve OID
*value* (no tag or length), optionally followed by 0xFF ("public key import format").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils, x25519


class AlgoId(enum.IntEnum):
    RSA = 0x01
    ECDH = 0x12
    ECDSA = 0x13
    EDDSA = 0x16


OID_ED25519 = bytes.fromhex("2B06010401DA470F01")
OID_CV25519 = bytes.fromhex("2B060104019755010501")
OID_P256 = bytes.fromhex("2A8648CE3D030107")
OID_SECP256K1 = bytes.fromhex("2B8104000A")


@dataclass(frozen=True)
class Algorithm:
    name: str
    attributes: bytes


ED25519 = Algorithm("ed25519", bytes([AlgoId.EDDSA]) + OID_ED25519)
NIST_P256 = Algorithm("nistp256", bytes([AlgoId.ECDSA]) + OID_P256)
SECP256K1 = Algorithm("secp256k1", bytes([AlgoId.ECDSA]) + OID_SECP256K1)
CV25519 = Algorithm("cv25519", bytes([AlgoId.ECDH]) + OID_CV25519)
ECDH_P256 = Algorithm("ecdh-nistp256", bytes([AlgoId.ECDH]) + OID_P256)

SIGNING = {a.attributes: a for a in (ED25519, NIST_P256, SECP256K1)}
DECRYPTION = {a.attributes: a for a in (CV25519, ECDH_P256)}

_CURVES: dict[str, ec.EllipticCurve] = {
    "nistp256": ec.SECP256R1(),
    "secp256k1": ec.SECP256K1(),
    "ecdh-nistp256": ec.SECP256R1(),
}
_PREHASH: dict[int, hashes.HashAlgorithm] = {
    20: hashes.SHA1(),  # noqa: S303 - the card signs whatever digest the host chose
    28: hashes.SHA224(),
    32: hashes.SHA256(),
    48: hashes.SHA384(),
    64: hashes.SHA512(),
}


def normalise(attributes: bytes) -> bytes:
    """Strip the optional trailing import-format byte (0xFF)."""
    if len(attributes) > 1 and attributes[-1] == 0xFF:
        return attributes[:-1]
    return attributes


def generate(algorithm: Algorithm) -> bytes:
    """A fresh private key as raw bytes (32-byte seed or scalar)."""
    if algorithm.name == "cv25519":
        return x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    if algorithm.name == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
        return key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    priv = ec.generate_private_key(_CURVES[algorithm.name])
    return priv.private_numbers().private_value.to_bytes(32, "big")


def public_point(algorithm: Algorithm, private: bytes) -> bytes:
    """The public key as the card returns it in DO 86 (raw 32 bytes or 04||X||Y)."""
    if algorithm.name == "cv25519":
        xpub = x25519.X25519PrivateKey.from_private_bytes(private).public_key()
        return xpub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if algorithm.name == "ed25519":
        pub = ed25519.Ed25519PrivateKey.from_private_bytes(private).public_key()
        return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    priv = ec.derive_private_key(int.from_bytes(private, "big"), _CURVES[algorithm.name])
    return priv.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class BadInput(Exception):
    """The data to sign has a length the algorithm cannot take."""


def sign(algorithm: Algorithm, private: bytes, data: bytes) -> bytes:
    """EdDSA over the message, or ECDSA over a given digest (returned as r || s)."""
    if algorithm.name == "ed25519":
        return ed25519.Ed25519PrivateKey.from_private_bytes(private).sign(data)
    digest_alg = _PREHASH.get(len(data))
    if digest_alg is None:
        raise BadInput(f"ECDSA input must be a digest, got {len(data)} bytes")
    priv = ec.derive_private_key(int.from_bytes(private, "big"), _CURVES[algorithm.name])
    der = priv.sign(data, ec.ECDSA(utils.Prehashed(digest_alg)))
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def ecdh(algorithm: Algorithm, private: bytes, peer: bytes) -> bytes:
    """The ECDH shared secret with the peer's (ephemeral) public point, as PSO:DECIPHER
    returns it: X25519 output for cv25519 (peer: 32 bytes, or 33 with the OpenPGP ``40``
    prefix), the 32-byte x-coordinate for NIST P-256 (peer: ``04||X||Y``)."""
    if algorithm.name == "cv25519":
        if len(peer) == 33 and peer[0] == 0x40:
            peer = peer[1:]
        if len(peer) != 32:
            raise BadInput(f"a cv25519 point is 32 bytes, got {len(peer)}")
        own = x25519.X25519PrivateKey.from_private_bytes(private)
        try:
            return own.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
        except ValueError as err:  # a low-order point gives an all-zero secret
            raise BadInput("the point gives no shared secret") from err
    if algorithm.name == "ecdh-nistp256":
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer)
        except ValueError as err:
            raise BadInput("not a point on P-256") from err
        priv = ec.derive_private_key(int.from_bytes(private, "big"), ec.SECP256R1())
        return priv.exchange(ec.ECDH(), public)
    raise BadInput(f"{algorithm.name} is not a key-agreement algorithm")

"""Sealed shares: a SLIP-39 share encrypted to a key that never leaves its target.

Sealing happens on the host with only the target's *public* key: an ephemeral key pair on
the target's curve, ECDH with the target's key, HKDF-SHA256, ChaCha20-Poly1305.  Opening
needs the target itself: the backup HSM token computes the ECDH (``CKM_ECDH1_DERIVE``) or
the custodian's card does (PSO:DECIPHER), each behind its PIN; the host then derives the
same AEAD key and decrypts.  The stored blob alone is useless.

Blob layout (all integers big-endian)::

    "CVSS" | version 0x01 | u16 header length | header (canonical JSON, public)
    | u8 ephemeral point length | ephemeral point | 12-byte nonce
    | u16 ciphertext length | ciphertext (share words, UTF-8) || 16-byte tag

* the header names the plan, the SLIP-39 share set, group and member, the target and the
  recipient key (token label/serial/CKA_ID or card id, curve, SHA-256 of the public key);
* the associated data is every byte before the ciphertext length: header, ephemeral point
  and nonce are all authenticated, so any change is detected;
* ``key = HKDF-SHA256(ikm = shared secret, salt = SHA-256(header),
  info = "coldvault/sealed-share/v1" || ephemeral point || recipient public key)``.

Secret hygiene: the shared secret and the decrypted words are ``bytearray`` the caller (or
this module) wipes; ``cryptography`` takes immutable ``bytes`` for the key and plaintext, so
short-lived copies exist inside it (see :mod:`coldvault.crypto`).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coldvault.backup.errors import SealedShareMalformed, SealedShareTampered, WrongShareTarget
from coldvault.backup.plan import TargetKind
from coldvault.crypto import wipe
from coldvault.jsonsafe import JsonRejected, loads

FORMAT = "coldvault-sealed-share/1"
MAGIC = b"CVSS"
VERSION = 1
MAX_BLOB = 4096
MAX_HEADER = 2048
MAX_PLAINTEXT = 1024
NONCE_BYTES = 12
TAG_BYTES = 16
KDF_INFO = b"coldvault/sealed-share/v1"


class Curve(enum.StrEnum):
    """Key-agreement curves: X25519 (cards' cv25519 keys) and NIST P-256 (tokens, cards)."""

    X25519 = "x25519"
    P256 = "p256"

    @property
    def point_length(self) -> int:
        return 32 if self is Curve.X25519 else 65


@dataclass(frozen=True)
class Recipient:
    """The public side of a target's key: what a share is sealed to, and what a device
    presents when it is asked to open one.  ``serial`` is the token serial or the card id;
    ``key_id`` the token's ``CKA_ID`` (empty for a card: its one decryption key)."""

    kind: TargetKind
    curve: Curve
    public_key: bytes
    serial: str
    label: str = ""
    key_id: bytes = b""

    def __post_init__(self) -> None:
        if self.kind is TargetKind.PAPER:
            raise ValueError("a paper target has no key to seal to")
        if len(self.public_key) != self.curve.point_length:
            raise ValueError(f"a {self.curve} public key is {self.curve.point_length} bytes")

    @property
    def key_fingerprint(self) -> str:
        return hashlib.sha256(self.public_key).hexdigest()

    def binding(self) -> dict[str, str]:
        """The public facts bound into a sealed share's header."""
        return {
            "kind": self.kind.value,
            "curve": self.curve.value,
            "label": self.label,
            "serial": self.serial,
            "key_id": self.key_id.hex(),
            "key_sha256": self.key_fingerprint,
        }

    def describe(self) -> str:
        return describe_binding(self.binding())


def describe_binding(binding: dict[str, str]) -> str:
    """An operator-readable name of a recipient binding."""
    fp = binding.get("key_sha256", "")[:16]
    if binding.get("kind") == TargetKind.HSM.value:
        return (
            f"HSM token {binding.get('label', '')!r} serial {binding.get('serial', '')!r} "
            f"key {binding.get('key_id', '')} (public key {fp}...)"
        )
    return f"card {binding.get('serial', '')} (decryption key {fp}...)"


@dataclass(frozen=True)
class ShareHeader:
    """Public metadata of one sealed share (authenticated, never secret)."""

    plan_id: str
    set_id: int
    group: int
    member: int
    target: str
    site: str
    recipient: dict[str, str]

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "plan": self.plan_id,
            "set_id": self.set_id,
            "group": self.group,
            "member": self.member,
            "target": self.target,
            "site": self.site,
            "recipient": self.recipient,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


class KeyAgreement(Protocol):
    """A device that can open sealed shares: a backup HSM key or a custodian's card."""

    @property
    def identity(self) -> tuple[str, str]:
        """``(token label, token serial)``, or ``("", card id)``: which device this is."""
        ...

    @property
    def recipient(self) -> Recipient:
        """What the device holds, read from the device itself."""
        ...

    def shared_secret(self, ephemeral_point: bytes) -> bytearray:
        """ECDH of the device's key with ``ephemeral_point`` (computed on the device)."""
        ...


@dataclass(frozen=True)
class SealedShare:
    """A parsed blob: the public header and what is needed to open it."""

    header: ShareHeader
    header_bytes: bytes
    ephemeral_point: bytes
    nonce: bytes
    ciphertext: bytes
    associated_data: bytes
    sha256: str


# -- host-side ECDH ---------------------------------------------------------------------------
def _ephemeral(curve: Curve, public_key: bytes) -> tuple[bytes, bytearray]:
    """A fresh ephemeral point and the shared secret with ``public_key``."""
    if curve is Curve.X25519:
        x_eph = x25519.X25519PrivateKey.generate()
        point = x_eph.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        peer = x25519.X25519PublicKey.from_public_bytes(public_key)
        return point, bytearray(x_eph.exchange(peer))
    ec_eph = ec.generate_private_key(ec.SECP256R1())
    point = ec_eph.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    ec_peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
    return point, bytearray(ec_eph.exchange(ec.ECDH(), ec_peer))


def _aead(shared: bytearray, header: bytes, point: bytes, recipient_key: bytes) -> ChaCha20Poly1305:
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=hashlib.sha256(header).digest(),
        info=KDF_INFO + point + recipient_key,
    ).derive(bytes(shared))
    return ChaCha20Poly1305(key)


# -- sealing ----------------------------------------------------------------------------------
def seal(words: bytes | bytearray, recipient: Recipient, header: ShareHeader) -> bytes:
    """Encrypt one share's words (UTF-8) to ``recipient``; returns the blob."""
    if not 0 < len(words) <= MAX_PLAINTEXT:
        raise ValueError(f"a share is 1..{MAX_PLAINTEXT} bytes of words")
    if header.recipient != recipient.binding():
        raise ValueError("the header must bind the recipient it is sealed to")
    head = header.to_bytes()
    if len(head) > MAX_HEADER:
        raise ValueError("sealed-share header too long")
    point, shared = _ephemeral(recipient.curve, recipient.public_key)
    try:
        nonce = os.urandom(NONCE_BYTES)
        prefix = (
            MAGIC
            + bytes([VERSION])
            + len(head).to_bytes(2, "big")
            + head
            + bytes([len(point)])
            + point
            + nonce
        )
        ciphertext = _aead(shared, head, point, recipient.public_key).encrypt(
            nonce, bytes(words), prefix
        )
    finally:
        wipe(shared)
    return prefix + len(ciphertext).to_bytes(2, "big") + ciphertext


# -- parsing and opening ----------------------------------------------------------------------
def _header(raw: bytes, where: str) -> ShareHeader:
    try:
        doc = loads(raw, max_depth=3)
    except JsonRejected:
        raise SealedShareMalformed(where, "its header is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SealedShareMalformed(where, f"its header is not a {FORMAT} header")
    recipient = doc.get("recipient")
    ints = [doc.get(k) for k in ("set_id", "group", "member")]
    strs = [doc.get(k) for k in ("plan", "target", "site")]
    if (
        not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**16 for v in ints)
        or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in strs)
        or not isinstance(recipient, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in recipient.items())
    ):
        raise SealedShareMalformed(where, "its header fields have the wrong types")
    return ShareHeader(
        plan_id=str(doc["plan"]),
        set_id=int(doc["set_id"]),
        group=int(doc["group"]),
        member=int(doc["member"]),
        target=str(doc["target"]),
        site=str(doc["site"]),
        recipient=dict(recipient),
    )


def parse_sealed(blob: bytes, *, where: str = "blob") -> SealedShare:
    """Parse a blob (bounded); raise :class:`SealedShareMalformed` naming the problem."""
    if not isinstance(blob, bytes | bytearray):
        raise TypeError("blob must be bytes")
    blob = bytes(blob)
    if len(blob) > MAX_BLOB:
        raise SealedShareMalformed(where, f"it is larger than {MAX_BLOB} bytes")
    if blob[:4] != MAGIC:
        raise SealedShareMalformed(where, "it does not start with the sealed-share marker")
    if len(blob) < 7 or blob[4] != VERSION:
        raise SealedShareMalformed(where, "it has an unknown version")
    head_len = int.from_bytes(blob[5:7], "big")
    at = 7 + head_len
    if head_len > MAX_HEADER or len(blob) < at + 1:
        raise SealedShareMalformed(where, "it is truncated in its header")
    header = _header(blob[7:at], where)
    point_len = blob[at]
    point = blob[at + 1 : at + 1 + point_len]
    at += 1 + point_len
    nonce = blob[at : at + NONCE_BYTES]
    at += NONCE_BYTES
    if len(point) != point_len or point_len not in (32, 65) or len(blob) < at + 2:
        raise SealedShareMalformed(where, "it is truncated in its key material")
    ct_len = int.from_bytes(blob[at : at + 2], "big")
    ciphertext = blob[at + 2 :]
    if len(ciphertext) != ct_len or not TAG_BYTES < ct_len <= MAX_PLAINTEXT + TAG_BYTES:
        raise SealedShareMalformed(where, "its ciphertext length does not match")
    return SealedShare(
        header=header,
        header_bytes=blob[7 : 7 + head_len],
        ephemeral_point=point,
        nonce=nonce,
        ciphertext=ciphertext,
        associated_data=blob[:at],
        sha256=hashlib.sha256(blob).hexdigest(),
    )


def _valid_point(curve: Curve, point: bytes) -> bool:
    if len(point) != curve.point_length:
        return False
    if curve is Curve.P256:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError:
            return False
    return True


def open_sealed(sealed: SealedShare, device: KeyAgreement) -> bytearray:
    """Decrypt a sealed share on its device; returns the words (UTF-8) to wipe after use.

    Raises :class:`WrongShareTarget` when the device is not the recipient named in the
    header, and :class:`SealedShareTampered` when authentication fails on the right one."""
    header = sealed.header
    label, serial = device.identity
    bound = (header.recipient.get("label", ""), header.recipient.get("serial", ""))
    if (label, serial) != bound:
        what = f"HSM token {label!r} serial {serial!r}" if label else f"card {serial}"
        raise WrongShareTarget(header.target, describe_binding(header.recipient), what)
    presented = device.recipient
    if presented.binding() != header.recipient:
        raise WrongShareTarget(
            header.target, describe_binding(header.recipient), presented.describe()
        )
    if not _valid_point(presented.curve, sealed.ephemeral_point):
        raise SealedShareTampered(header.target)  # authenticated data that no longer fits
    shared = device.shared_secret(sealed.ephemeral_point)
    try:
        aead = _aead(shared, sealed.header_bytes, sealed.ephemeral_point, presented.public_key)
        words = bytearray(aead.decrypt(sealed.nonce, sealed.ciphertext, sealed.associated_data))
    except InvalidTag:
        raise SealedShareTampered(header.target) from None
    finally:
        wipe(shared)
    return words


__all__ = [
    "Curve",
    "KeyAgreement",
    "Recipient",
    "SealedShare",
    "ShareHeader",
    "describe_binding",
    "open_sealed",
    "parse_sealed",
    "seal",
]

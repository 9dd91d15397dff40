"""Share keys on a backup HSM token: a P-256 key pair generated inside the token, used only
for ECDH (``CKM_ECDH1_DERIVE``) so that shares sealed to it open only on that token.

The private key is a token object, ``CKA_SENSITIVE``, never ``CKA_EXTRACTABLE``, with
``CKA_DERIVE`` as its only use (no signing, decryption or unwrapping).  Opening a share
derives the ECDH shared secret into a *session* object (``CKD_NULL``: the raw x-coordinate),
reads it once and destroys the object; the host turns it into the AEAD key
(:mod:`coldvault.backup.envelope`).  A token that computes HKDF or AEAD itself could keep
even that inside; PKCS#11 2.40 tokens such as SoftHSM 2.6.1 offer neither for ECDH output.

Works on an open :class:`~coldvault.backends.pkcs11.keystore.Pkcs11Keystore` (its login,
emulation refusal, serial pinning and process-wide lock), so a site's token is opened the
same way as the appliance's.  Errors go through the one translation,
:func:`coldvault.backends.pkcs11.errors.translated`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11.mechanisms import KDF

from coldvault.backends.pkcs11.errors import DuplicateKey, Pkcs11Error, translated
from coldvault.backends.pkcs11.keystore import _LOCK, KeyAttributes, Pkcs11Keystore
from coldvault.keys.keystore import KeyNotFound

#: DER of OID 1.2.840.10045.3.1.7 (NIST P-256, prime256v1): ``CKA_EC_PARAMS`` of share keys.
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
P256_POINT_BYTES = 65
SHARED_SECRET_BYTES = 32


@dataclass(frozen=True)
class ShareKeyInfo:
    """Public facts about one share key on a token."""

    token_label: str
    token_serial: str
    key_id: bytes
    label: str
    #: uncompressed SEC1 point ``04||X||Y``
    public_key: bytes


def _point(ec_point: bytes) -> bytes:
    """``CKA_EC_POINT`` (DER OCTET STRING, or bare on some HSMs) -> ``04||X||Y``."""
    if len(ec_point) == P256_POINT_BYTES and ec_point[0] == 0x04:
        return ec_point
    if len(ec_point) == P256_POINT_BYTES + 2 and ec_point[:2] == b"\x04\x41":
        return ec_point[2:]
    raise ValueError("not an uncompressed P-256 point")


class Pkcs11ShareKeys:
    """Share keys on the token of one open keystore (backup HSM at a site)."""

    def __init__(self, keystore: Pkcs11Keystore) -> None:
        self._keystore = keystore

    @property
    def token_label(self) -> str:
        return self._keystore.token_info.label

    @property
    def token_serial(self) -> str:
        return self._keystore.token_info.serial

    def random(self, length: int) -> bytes:
        """``length`` bytes from the token's random number generator."""
        return self._keystore.random(length)

    def _session(self) -> Any:
        return self._keystore._live()

    def _objects(self, object_class: ObjectClass, key_id: bytes) -> list[Any]:
        attrs = {Attribute.CLASS: object_class, Attribute.ID: key_id}
        return list(self._session().get_objects(attrs))

    def _pair(self, key_id: bytes) -> tuple[Any, Any]:
        label = self.token_label
        with translated(label, key_id=key_id, purpose=f"look up share key {key_id.hex()}"):
            private = self._objects(ObjectClass.PRIVATE_KEY, key_id)
            public = self._objects(ObjectClass.PUBLIC_KEY, key_id)
            if not private or not public:
                raise KeyNotFound(label, key_id)
            if len(private) > 1 or len(public) > 1:
                raise Pkcs11Error(
                    f"HSM token {label!r} holds several keys with id {key_id.hex()!r}."
                )
            if bytes(private[0][Attribute.EC_PARAMS]) != P256_PARAMS:
                raise Pkcs11Error(
                    f"Key {key_id.hex()!r} on HSM token {label!r} is not a P-256 share key."
                )
        return private[0], public[0]

    def find(self, key_id: bytes) -> ShareKeyInfo:
        """The share key ``key_id`` (:class:`KeyNotFound` if the token lacks it)."""
        with _LOCK:
            private, public = self._pair(key_id)
            with translated(self.token_label, key_id=key_id, purpose="read a share key"):
                point = _point(bytes(public[Attribute.EC_POINT]))
                label = str(private[Attribute.LABEL])
        return ShareKeyInfo(self.token_label, self.token_serial, key_id, label, point)

    def share_public_key(self, key_id: bytes) -> bytes:
        return self.find(key_id).public_key

    def generate(self, key_id: bytes, label: str) -> ShareKeyInfo:
        """Generate a share key pair inside the token (refuses an existing ``key_id``)."""
        if not 0 < len(key_id) <= 64:
            raise ValueError("key_id must be 1..64 bytes")
        if not label or len(label.encode()) > 128:
            raise ValueError("label must be 1..128 bytes of UTF-8")
        token = self.token_label
        with _LOCK:
            self._keystore.require(Mechanism.EC_KEY_PAIR_GEN, "generate share keys")
            self._keystore.require(Mechanism.ECDH1_DERIVE, "open sealed shares")
            with translated(token, key_id=key_id, purpose="look up keys"):
                if self._objects(ObjectClass.PRIVATE_KEY, key_id) or self._objects(
                    ObjectClass.PUBLIC_KEY, key_id
                ):
                    raise DuplicateKey(token, key_id)
            with translated(
                token,
                key_id=key_id,
                purpose="generate a share key",
                mechanism="CKM_EC_KEY_PAIR_GEN",
            ):
                self._session().generate_keypair(
                    KeyType.EC,
                    mechanism=Mechanism.EC_KEY_PAIR_GEN,
                    store=True,
                    id=key_id,
                    label=label,
                    capabilities=MechanismFlag.DERIVE,
                    public_template={
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: False,
                        Attribute.EC_PARAMS: P256_PARAMS,
                        Attribute.VERIFY: False,
                        Attribute.ENCRYPT: False,
                        Attribute.WRAP: False,
                        Attribute.DERIVE: False,
                        Attribute.ID: key_id,
                        Attribute.LABEL: label,
                    },
                    private_template={
                        Attribute.TOKEN: True,
                        Attribute.PRIVATE: True,
                        Attribute.SENSITIVE: True,
                        Attribute.EXTRACTABLE: False,
                        Attribute.DERIVE: True,
                        Attribute.SIGN: False,
                        Attribute.DECRYPT: False,
                        Attribute.UNWRAP: False,
                        Attribute.ID: key_id,
                        Attribute.LABEL: label,
                    },
                )
            return self.find(key_id)

    def ensure_share_key(self, key_id: bytes, label: str) -> bytes:
        """The share key's public point, generating the key pair when the token lacks it."""
        with _LOCK:
            try:
                return self.find(key_id).public_key
            except KeyNotFound:
                return self.generate(key_id, label).public_key

    def attributes(self, key_id: bytes) -> KeyAttributes:
        """The private share key's security attributes, as the token reports them."""
        with _LOCK:
            private, _ = self._pair(key_id)
            names = {
                "sensitive": Attribute.SENSITIVE,
                "extractable": Attribute.EXTRACTABLE,
                "always_sensitive": Attribute.ALWAYS_SENSITIVE,
                "never_extractable": Attribute.NEVER_EXTRACTABLE,
                "local": Attribute.LOCAL,
                "token": Attribute.TOKEN,
                "private": Attribute.PRIVATE,
                "sign": Attribute.SIGN,
                "derive": Attribute.DERIVE,
            }
            with translated(self.token_label, key_id=key_id, purpose="read key attributes"):
                values = private.get_attributes(list(names.values()))
        return KeyAttributes(**{k: bool(values[a]) for k, a in names.items()})

    def derive_shared_secret(self, key_id: bytes, peer_point: bytes) -> bytearray:
        """ECDH of the share key with ``peer_point`` on the token; the caller wipes it."""
        if len(peer_point) != P256_POINT_BYTES or peer_point[0] != 0x04:
            raise ValueError("peer_point must be an uncompressed P-256 point")
        with _LOCK:
            private, _ = self._pair(key_id)
            with translated(
                self.token_label,
                key_id=key_id,
                purpose="compute a share key agreement",
                mechanism="CKM_ECDH1_DERIVE",
            ):
                derived = private.derive_key(
                    KeyType.GENERIC_SECRET,
                    SHARED_SECRET_BYTES * 8,
                    mechanism=Mechanism.ECDH1_DERIVE,
                    mechanism_param=(KDF.NULL, None, bytes(peer_point)),
                    template={
                        Attribute.TOKEN: False,
                        Attribute.PRIVATE: True,
                        Attribute.SENSITIVE: False,
                        Attribute.EXTRACTABLE: True,
                    },
                )
                try:
                    secret = bytearray(derived[Attribute.VALUE])
                finally:
                    derived.destroy()
        if len(secret) != SHARED_SECRET_BYTES:
            raise Pkcs11Error(f"HSM token {self.token_label!r} returned a malformed ECDH result.")
        return secret

    def delete(self, key_id: bytes) -> None:
        """Destroy the share key pair (re-sharing, tests)."""
        with _LOCK:
            self._pair(key_id)
            with translated(self.token_label, key_id=key_id, purpose="delete a share key"):
                for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                    for obj in self._objects(cls, key_id):
                        obj.destroy()


__all__ = ["P256_PARAMS", "Pkcs11ShareKeys", "ShareKeyInfo"]

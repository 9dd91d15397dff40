"""Software stand-ins for approvers' OpenPGP cards in the pure-library tests.

A :class:`SoftCard` behaves like a card's PSO:CDS as the front end drives it: it is given
``coldvault.cards.signatures.card_input(algorithm, data)`` (the data for Ed25519, SHA-256 of it for
ECDSA) and returns the raw signature (64 bytes, ``r || s`` for ECDSA).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import coincurve
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from nacl.signing import SigningKey

from coldvault.cards.signatures import card_input
from coldvault.crypto.secp256k1 import SECP256K1_N
from coldvault.quorum.roster import CardHolder, CardStatus, Role


@dataclass
class SoftCard:
    serial: str
    algorithm: str
    seed: bytes

    def __post_init__(self) -> None:
        seed32 = hashlib.sha256(self.seed + self.serial.encode()).digest()
        if self.algorithm == "ed25519":
            self._ed = SigningKey(seed32)
            self.public_key = bytes(self._ed.verify_key)
        elif self.algorithm == "nistp256":
            self._p256 = ec.derive_private_key(int.from_bytes(seed32, "big"), ec.SECP256R1())
            self.public_key = self._p256.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        else:
            self._k1 = coincurve.PrivateKey(seed32)
            self.public_key = self._k1.public_key.format(compressed=False)

    def pso_cds(self, card_data: bytes, *, high_s: bool = False) -> bytes:
        if self.algorithm == "ed25519":
            return self._ed.sign(card_data).signature
        if self.algorithm == "nistp256":
            der = self._p256.sign(card_data, ec.ECDSA(Prehashed(hashes.SHA256())))
        else:
            der = self._k1.sign(card_data, hasher=None)
        r, s = decode_dss_signature(der)
        if high_s and self.algorithm == "secp256k1":
            s = SECP256K1_N - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def sign(self, data: bytes, *, high_s: bool = False) -> bytes:
        """What the front end gets back when it approves ``data`` with this card."""
        return self.pso_cds(card_input(self.algorithm, data), high_s=high_s)

    def holder(
        self, holder: str, role: Role, site: str = "hk", status: CardStatus = CardStatus.ACTIVE
    ) -> CardHolder:
        return CardHolder(self.serial, holder, role, site, self.algorithm, self.public_key, status)

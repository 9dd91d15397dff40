"""The signature-key algorithms coldvault uses on OpenPGP cards.

Their values are the names GnuPG uses and rosters store (``"ed25519"``, ``"nistp256"``,
``"secp256k1"``); their :attr:`CardAlgorithm.attributes` are the algorithm attributes of
the OpenPGP card spec v3.4 §4.4.3.10 (algorithm id, then the curve OID without its DER
tag and length), as PUT DATA C1 writes them and DO 6E reports them.
"""

from __future__ import annotations

import enum


class CardAlgorithm(enum.StrEnum):
    """A card's signature-key algorithm (a wire value in rosters and transcripts)."""

    ED25519 = "ed25519"
    NIST_P256 = "nistp256"
    SECP256K1 = "secp256k1"

    @property
    def attributes(self) -> bytes:
        """Algorithm attributes: algorithm id (22 EdDSA, 19 ECDSA) || curve OID."""
        return _ATTRIBUTES[self]

    @property
    def openpgp_algo(self) -> int:
        """The OpenPGP public-key algorithm id (RFC 4880bis: 22 EdDSA, 19 ECDSA)."""
        return self.attributes[0]

    @property
    def oid(self) -> bytes:
        """The curve OID (DER contents only)."""
        return self.attributes[1:]

    @classmethod
    def from_attributes(cls, data: bytes) -> CardAlgorithm | None:
        """The algorithm of attributes a card reports, or None for one coldvault does not use
        (RSA, brainpool...).  An optional trailing import-format byte ``FF`` is ignored."""
        if len(data) > 1 and data[-1] == 0xFF:
            data = data[:-1]
        for algo, attrs in _ATTRIBUTES.items():
            if attrs == data:
                return algo
        return None


_ATTRIBUTES = {
    CardAlgorithm.ED25519: bytes.fromhex("16") + bytes.fromhex("2B06010401DA470F01"),
    CardAlgorithm.NIST_P256: bytes.fromhex("13") + bytes.fromhex("2A8648CE3D030107"),
    CardAlgorithm.SECP256K1: bytes.fromhex("13") + bytes.fromhex("2B8104000A"),
}

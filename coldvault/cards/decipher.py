"""The card's decryption key: generation on the card and PSO:DECIPHER for ECDH keys.

A custodian's OpenPGP card holds a decryption key (slot 2, CRT ``B8``) generated on the card.
A share is sealed to it on the host with an ephemeral key; only the card can compute the
shared secret again (PSO:DECIPHER, OpenPGP card spec 3.4 §7.2.11), after the holder's user
PIN is verified in mode 82::

    session.verify_pin(pin, Pw.USER)                  # PW1 in mode 82
    secret = decipher(session, ephemeral_point)       # bytearray: wipe after use

The command data is the cipher DO ``A6 { 7F49 { 86 <ephemeral public point> } }``; the card
answers with the shared secret (cv25519: the X25519 output; NIST P-256: the x-coordinate),
which is what gpg's scdaemon expects too.  Commands go over the session's connection with
:func:`coldvault.cards.iso7816.transmit` (chaining and ``61xx`` handled there); status words
that mean something specific for the decryption slot are mapped here, the rest by the
OpenPGP application's one mapping function (:func:`coldvault.cards.openpgp.status_error`).
"""

from __future__ import annotations

import enum
import hashlib
import time

from coldvault.cards import tlv
from coldvault.cards.errors import CardProtocolError, CardRejectedData, DataNotFound
from coldvault.cards.fingerprints import mpi
from coldvault.cards.iso7816 import Ins, Sw, transmit
from coldvault.cards.openpgp import Do, OpenPgpSession, status_error

#: Control reference template of the decryption key (GENERATE ASYMMETRIC KEY PAIR data).
CRT_DECRYPTION = b"\xb8\x00"
#: DOs of the decryption slot: algorithm attributes, fingerprint, generation time.
DO_ALGO_DEC = 0xC2
DO_FP_DEC = 0xC8
DO_TIME_DEC = 0xCF
#: OpenPGP public-key algorithm id of ECDH (RFC 6637).
ALGO_ECDH = 0x12
#: KDF parameters written into the OpenPGP key packet for the fingerprint: SHA-256 and
#: AES-128, gpg's defaults for cv25519 and NIST P-256 keys.
KDF_PARAMS = bytes([0x03, 0x01, 0x08, 0x07])
#: Cipher DO tag (spec 3.4 §7.2.11).
CIPHER_DO = 0xA6


class DecryptionCurve(enum.Enum):
    """Curves of card decryption keys coldvault uses, with their attribute encodings."""

    CV25519 = "cv25519"
    NIST_P256 = "nistp256"

    @property
    def oid(self) -> bytes:
        return _OIDS[self]

    @property
    def attributes(self) -> bytes:
        return bytes([ALGO_ECDH]) + self.oid

    @property
    def point_length(self) -> int:
        return 32 if self is DecryptionCurve.CV25519 else 65

    @classmethod
    def from_attributes(cls, data: bytes) -> DecryptionCurve | None:
        if len(data) > 1 and data[-1] == 0xFF:
            data = data[:-1]
        for curve in cls:
            if curve.attributes == data:
                return curve
        return None


_OIDS = {
    DecryptionCurve.CV25519: bytes.fromhex("2B060104019755010501"),
    DecryptionCurve.NIST_P256: bytes.fromhex("2A8648CE3D030107"),
}


class NoDecryptionKey(DataNotFound):
    """The card has no decryption key (or it uses an algorithm other than ECDH)."""

    code = "card-no-decryption-key"

    def __init__(self, sw: int, ins: int, detail: str = "") -> None:
        super().__init__(
            sw,
            ins,
            "The card has no ECDH decryption key"
            + (f" ({detail})" if detail else "")
            + "; generate one on the card first.",
        )


class DecipherRejected(CardRejectedData):
    """The card refused the ephemeral point (wrong curve, not on the curve, low order)."""

    code = "card-decipher-rejected"

    def __init__(self, sw: int, ins: int) -> None:
        super().__init__(
            sw,
            ins,
            "The card refused to decipher: the sealed share's ephemeral key does not fit the "
            "card's decryption key (another curve, or a corrupted point).",
        )


def decryption_curve(session: OpenPgpSession) -> DecryptionCurve | None:
    """The curve of the decryption slot's attributes (C2), or None if not ECDH."""
    return DecryptionCurve.from_attributes(session.application_data().algorithm_attributes[1])


class KeyOrigin(enum.IntEnum):
    """Key status in DO DE (Key Information, spec 3.4 §4.4.3.8)."""

    ABSENT = 0x00
    GENERATED = 0x01
    IMPORTED = 0x02


def _send(session: OpenPgpSession, ins: int, p1: int, p2: int, data: bytes) -> tuple[bytes, int]:
    return transmit(session.connection, ins, p1, p2, data)


def _do(tag: int, value: bytes) -> bytes:
    """One BER-TLV data object (short or ``81`` length), for the cipher DO."""
    if len(value) > 0xFF:
        raise ValueError("data object too long")
    head = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    length = bytes([len(value)]) if len(value) < 0x80 else bytes([0x81, len(value)])
    return head + length + value


def decryption_key_origin(session: OpenPgpSession) -> KeyOrigin | None:
    """Whether the decryption key was generated on the card or imported (None when the card
    does not report key information)."""
    data, sw = _send(session, Ins.GET_DATA, 0x00, 0xDE, b"")
    if sw != Sw.OK:
        return None
    pairs = dict(zip(data[0::2], data[1::2], strict=False))
    status = pairs.get(0x02)
    try:
        return None if status is None else KeyOrigin(status)
    except ValueError:
        return None


def _point(data: bytes, curve: DecryptionCurve | None) -> bytes:
    point = tlv.find(data, Do.PUBLIC_KEY, Do.POINT)
    if point is None:
        raise CardProtocolError("The card's public key response has no EC point (86).")
    if curve is not None and len(point) != curve.point_length:
        raise CardProtocolError(
            f"The card returned a {len(point)}-byte {curve.value} point; "
            f"{curve.point_length} bytes expected."
        )
    return point


def decryption_public_key(session: OpenPgpSession) -> bytes:
    """The decryption key's public point (cv25519: 32 bytes; P-256: ``04||X||Y``)."""
    data, sw = _send(session, Ins.GENERATE_ASYMMETRIC_KEY_PAIR, 0x81, 0x00, CRT_DECRYPTION)
    if sw == Sw.DATA_NOT_FOUND:
        raise NoDecryptionKey(sw, Ins.GENERATE_ASYMMETRIC_KEY_PAIR)
    if sw != Sw.OK:
        raise status_error(sw, Ins.GENERATE_ASYMMETRIC_KEY_PAIR)
    return _point(data, decryption_curve(session))


def generate_decryption_key(
    session: OpenPgpSession, curve: DecryptionCurve, *, timestamp: int | None = None
) -> bytes:
    """Generate the decryption key on the card (admin PIN verified); returns its public
    point.  Writes the generation time (CF) and OpenPGP v4 fingerprint (C8) like gpg.
    Replaces any earlier decryption key: shares sealed to that key become unreadable."""
    if session.application_data().algorithm_attributes[1] != curve.attributes:
        session.put_data(DO_ALGO_DEC, curve.attributes)
    data, sw = _send(session, Ins.GENERATE_ASYMMETRIC_KEY_PAIR, 0x80, 0x00, CRT_DECRYPTION)
    if sw != Sw.OK:
        raise status_error(sw, Ins.GENERATE_ASYMMETRIC_KEY_PAIR)
    point = _point(data, curve)
    created = int(time.time()) if timestamp is None else timestamp
    session.put_data(DO_TIME_DEC, created.to_bytes(4, "big"))
    session.put_data(DO_FP_DEC, decryption_key_fingerprint(curve, point, created))
    return point


def decipher(session: OpenPgpSession, ephemeral_point: bytes) -> bytearray:
    """PSO:DECIPHER: the shared secret of the card's decryption key and ``ephemeral_point``.

    Needs the user PIN verified as :attr:`Pw.USER` (mode 82).  The result is a secret:
    the caller wipes it."""
    if not 32 <= len(ephemeral_point) <= 133:
        raise ValueError("an ephemeral EC point is 32 to 133 bytes")
    cipher = _do(CIPHER_DO, _do(Do.PUBLIC_KEY, _do(Do.POINT, ephemeral_point)))
    data, sw = _send(session, Ins.PSO, 0x80, 0x86, cipher)
    if sw == Sw.DATA_NOT_FOUND:
        raise NoDecryptionKey(sw, Ins.PSO)
    if sw == Sw.FUNC_UNSUPPORTED:
        raise NoDecryptionKey(sw, Ins.PSO, "its algorithm is not ECDH")
    if sw == Sw.WRONG_DATA:
        raise DecipherRejected(sw, Ins.PSO)
    if sw != Sw.OK:
        raise status_error(sw, Ins.PSO)
    if len(data) != 32:
        raise CardProtocolError(
            f"The card returned a {len(data)}-byte shared secret; 32 bytes expected."
        )
    return bytearray(data)


def decryption_key_fingerprint(curve: DecryptionCurve, point: bytes, created: int) -> bytes:
    """RFC 4880/6637 v4 fingerprint of the ECDH key packet (KDF SHA-256, AES-128)."""
    if curve is DecryptionCurve.CV25519:
        point = b"\x40" + point  # native point format prefix for Curve25519 in OpenPGP
    oid = curve.oid
    body = (
        b"\x04"
        + created.to_bytes(4, "big")
        + bytes([ALGO_ECDH, len(oid)])
        + oid
        + mpi(point)
        + KDF_PARAMS
    )
    return hashlib.sha1(b"\x99" + len(body).to_bytes(2, "big") + body).digest()  # noqa: S324


__all__ = [
    "DecipherRejected",
    "DecryptionCurve",
    "KeyOrigin",
    "NoDecryptionKey",
    "decipher",
    "decryption_curve",
    "decryption_key_origin",
    "decryption_key_fingerprint",
    "decryption_public_key",
    "generate_decryption_key",
]

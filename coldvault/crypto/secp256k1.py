"""secp256k1 in one place: the group order, scalar range checks, and ECDSA signatures.

:class:`EcdsaSignature` is a frozen value that is valid by construction (``0 < r, s < n``).
Constructing one from integers is for callers that already hold checked values (a
``ValueError`` otherwise); untrusted bytes go through :meth:`EcdsaSignature.from_compact`
or :meth:`EcdsaSignature.from_der`, which raise :class:`InvalidSignature`.

Low-S (BIP-62, BIP-146): ``s <= n // 2``.  libsecp256k1 verifies low-S signatures only, and
Bitcoin's standardness rules and Ethereum (EIP-2) accept only those, so every signature the
appliance hands out is low-S; :meth:`EcdsaSignature.low_s` normalises one (``s -> n - s``
verifies for the same key and digest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import coincurve

from coldvault.crypto.errors import CryptoInputError

#: The order n of the secp256k1 group (SEC 2 v2, section 2.4.1).
SECP256K1_N = 0xFFFFFFFF_FFFFFFFF_FFFFFFFF_FFFFFFFE_BAAEDCE6_AF48A03B_BFD25E8C_D0364141
#: The largest low-S value: a signature is low-S when ``s <= LOW_S_MAX``.
LOW_S_MAX = SECP256K1_N // 2
#: Strict DER of two 33-byte INTEGERs: 2 + 2 * (2 + 33).
MAX_DER_LENGTH = 72


class InvalidSignature(CryptoInputError):
    """Signature bytes from outside (an HSM, a card, a file) are malformed or out of range."""

    code = "ecdsa-signature-malformed"

    def __init__(self, problem: str) -> None:
        super().__init__(f"The secp256k1 signature is malformed: {problem}.")
        self.problem = problem


def is_scalar(value: int) -> bool:
    """Whether ``value`` is a valid non-zero secp256k1 scalar: ``0 < value < n``."""
    return type(value) is int and 0 < value < SECP256K1_N


@dataclass(frozen=True)
class EcdsaSignature:
    """A secp256k1 ECDSA signature ``(r, s)`` with ``0 < r, s < n`` (checked on construction)."""

    r: int
    s: int
    #: the one (public key, digest) this signature was verified for: a request's signature
    #: is checked by the keystore and again before it is inserted into the response, with
    #: the same key and digest; the second answer is this one (see :meth:`verify`)
    _verified: tuple[bytes, bytes] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not (is_scalar(self.r) and is_scalar(self.s)):
            raise ValueError("an ECDSA signature needs integers 0 < r, s < n")

    # -- low-S -------------------------------------------------------------------------
    @property
    def is_low_s(self) -> bool:
        return self.s <= LOW_S_MAX

    def low_s(self) -> EcdsaSignature:
        """This signature with ``s`` normalised to the lower half (itself when already low)."""
        return self if self.is_low_s else EcdsaSignature(self.r, SECP256K1_N - self.s)

    # -- encodings ---------------------------------------------------------------------
    @property
    def compact(self) -> bytes:
        """64 bytes ``r || s`` (what PKCS#11 CKM_ECDSA and OpenPGP cards return)."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big")

    @property
    def der(self) -> bytes:
        """Strict DER (BIP-66): ``30 len 02 len r 02 len s``, minimal positive integers."""
        body = _der_int(self.r) + _der_int(self.s)
        return b"\x30" + bytes([len(body)]) + body

    @classmethod
    def from_compact(cls, data: bytes) -> EcdsaSignature:
        """Parse 64 bytes ``r || s``; raise :class:`InvalidSignature` on a bad length or range."""
        if len(data) != 64:
            raise InvalidSignature(f"it is {len(data)} bytes, not 64 (r || s)")
        return cls._checked(int.from_bytes(data[:32], "big"), int.from_bytes(data[32:], "big"))

    @classmethod
    def from_der(cls, data: bytes) -> EcdsaSignature:
        """Parse strict DER (BIP-66 rules, at most 72 bytes); raise :class:`InvalidSignature`."""
        if not 8 <= len(data) <= MAX_DER_LENGTH:
            raise InvalidSignature(f"a DER signature is 8 to {MAX_DER_LENGTH} bytes")
        if data[0] != 0x30 or data[1] != len(data) - 2:
            raise InvalidSignature("the DER sequence header is wrong")
        r, rest = _read_der_int(data[2:], "r")
        s, rest = _read_der_int(rest, "s")
        if rest:
            raise InvalidSignature("bytes follow the DER sequence")
        return cls._checked(r, s)

    @classmethod
    def _checked(cls, r: int, s: int) -> EcdsaSignature:
        if not is_scalar(r):
            raise InvalidSignature("r is not in 1..n-1")
        if not is_scalar(s):
            raise InvalidSignature("s is not in 1..n-1")
        return cls(r, s)

    # -- checks ------------------------------------------------------------------------
    def verify(self, public_key: bytes, digest: bytes) -> bool:
        """Whether this signature verifies for the SEC1 ``public_key`` over the 32-byte
        ``digest``.  libsecp256k1 accepts low-S only: a high-S signature is ``False``."""
        if len(digest) != 32:
            raise ValueError("an ECDSA digest is 32 bytes")
        if self._verified == (public_key, digest):
            return True  # the same question, already answered yes for this (r, s)
        ok = bool(coincurve.PublicKey(public_key).verify(self.der, digest, hasher=None))
        if ok:
            object.__setattr__(self, "_verified", (bytes(public_key), bytes(digest)))
        return ok

    def recovery_id(self, public_key: bytes, digest: bytes) -> int | None:
        """The recovery id (0 or 1) that recovers ``public_key`` from this signature over
        ``digest``, or ``None`` when neither does (the signature is not ``public_key``'s)."""
        if len(digest) != 32:
            raise ValueError("an ECDSA digest is 32 bytes")
        ours = coincurve.PublicKey(public_key).format(compressed=True)
        for recid in (0, 1):
            try:
                recovered = coincurve.PublicKey.from_signature_and_message(
                    self.compact + bytes([recid]), digest, hasher=None
                )
            except ValueError:
                continue
            if recovered.format(compressed=True) == ours:
                return recid
        return None


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(32, "big").lstrip(b"\x00") or b"\x00"
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return b"\x02" + bytes([len(raw)]) + raw


def _read_der_int(data: bytes, name: str) -> tuple[int, bytes]:
    if len(data) < 2 or data[0] != 0x02:
        raise InvalidSignature(f"{name} is not a DER INTEGER")
    length = data[1]
    if not 1 <= length <= 33 or len(data) < 2 + length:
        raise InvalidSignature(f"{name} has a bad length")
    raw = data[2 : 2 + length]
    if raw[0] & 0x80:
        raise InvalidSignature(f"{name} is negative")
    if length > 1 and raw[0] == 0 and not raw[1] & 0x80:
        raise InvalidSignature(f"{name} has excess leading zero bytes")
    return int.from_bytes(raw, "big"), data[2 + length :]

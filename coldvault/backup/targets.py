"""Share targets as devices: a backup HSM token's share key, or a custodian's card.

Both implement :class:`coldvault.backup.envelope.KeyAgreement` (the recipient they hold,
read from the device, and ECDH computed on the device).  Neither asks for a PIN: the front
end opens the token with its user PIN, or verifies the card's user PIN (PW1 in mode 82),
before handing the device here.

* :class:`HsmTarget` works over any :class:`HsmShareKeys` (the PKCS#11 implementation is
  :class:`coldvault.backends.pkcs11.shares.Pkcs11ShareKeys`);
* :class:`CardTarget` works over an :class:`~coldvault.cards.openpgp.OpenPgpSession`.

Share-key ids on a token follow one scheme (:func:`share_key_id`), so a re-run of a backup
finds the key it generated before.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from coldvault.backup.envelope import Curve, Recipient
from coldvault.backup.errors import ImportedCardKey, PlanInvalid, WrongShareTarget
from coldvault.backup.plan import CardCurve, Target, TargetKind
from coldvault.cards.decipher import (
    DecryptionCurve,
    KeyOrigin,
    NoDecryptionKey,
    decipher,
    decryption_curve,
    decryption_key_origin,
    decryption_public_key,
    generate_decryption_key,
)
from coldvault.cards.iso7816 import Ins, Sw
from coldvault.cards.openpgp import OpenPgpSession

#: The card decryption curve for each plan curve.
_CARD_CURVES = {
    CardCurve.CV25519: DecryptionCurve.CV25519,
    CardCurve.NIST_P256: DecryptionCurve.NIST_P256,
}


def share_key_id(plan_id: str, target_id: str) -> bytes:
    """``CKA_ID`` of a target's share key: ``b"S"`` + 8 bytes of SHA-256(plan/target)."""
    return b"S" + hashlib.sha256(f"{plan_id}/{target_id}".encode()).digest()[:8]


def share_key_label(plan_id: str, target_id: str) -> str:
    """``CKA_LABEL`` of a target's share key, e.g. ``share/house-2025/a-hsm``."""
    return f"share/{plan_id}/{target_id}"[:128]


class HsmShareKeys(Protocol):
    """What a backup HSM token offers for share keys (one logged-in token)."""

    @property
    def token_label(self) -> str: ...

    @property
    def token_serial(self) -> str: ...

    def share_public_key(self, key_id: bytes) -> bytes:
        """The share key's uncompressed P-256 point (``KeyNotFound`` if absent)."""
        ...

    def derive_shared_secret(self, key_id: bytes, peer_point: bytes) -> bytearray:
        """ECDH on the token; the caller wipes the result."""
        ...


class HsmShareKeyAdmin(HsmShareKeys, Protocol):
    """A backup HSM token that can also create share keys (the backup ceremony)."""

    def ensure_share_key(self, key_id: bytes, label: str) -> bytes:
        """The share key's public point, generating the key inside the token if absent."""
        ...


def enrol_hsm(keys: HsmShareKeyAdmin, plan_id: str, target: Target) -> Recipient:
    """Make a backup token ready to receive a share: its share key for this plan and target
    (generated inside the token, or found from an earlier run).  Refuses a token whose
    label or serial is not the one the plan names."""
    if target.kind is not TargetKind.HSM:
        raise ValueError(f"target {target.id!r} is not an HSM target")
    if not target.serial:
        raise PlanInvalid(
            f"{plan_id!r}",
            f"target {target.id}.serial",
            "must name the token serial before a backup",
        )
    if (keys.token_label, keys.token_serial) != (target.label, target.serial):
        raise WrongShareTarget(
            target.id,
            f"HSM token {target.label!r} serial {target.serial!r}",
            f"HSM token {keys.token_label!r} serial {keys.token_serial!r}",
        )
    key_id = share_key_id(plan_id, target.id)
    keys.ensure_share_key(key_id, share_key_label(plan_id, target.id))
    return HsmTarget(keys, key_id).recipient


class HsmTarget:
    """One share key on a logged-in backup HSM token."""

    def __init__(self, keys: HsmShareKeys, key_id: bytes) -> None:
        self._keys = keys
        self._key_id = key_id

    @classmethod
    def for_target(cls, keys: HsmShareKeys, plan_id: str, target: Target) -> HsmTarget:
        if target.kind is not TargetKind.HSM:
            raise ValueError(f"target {target.id!r} is not an HSM target")
        return cls(keys, share_key_id(plan_id, target.id))

    @property
    def identity(self) -> tuple[str, str]:
        return (self._keys.token_label, self._keys.token_serial)

    @property
    def recipient(self) -> Recipient:
        return Recipient(
            kind=TargetKind.HSM,
            curve=Curve.P256,
            public_key=self._keys.share_public_key(self._key_id),
            serial=self._keys.token_serial,
            label=self._keys.token_label,
            key_id=self._key_id,
        )

    def shared_secret(self, ephemeral_point: bytes) -> bytearray:
        return self._keys.derive_shared_secret(self._key_id, ephemeral_point)


class CardTarget:
    """A custodian's selected card; its user PIN (mode 82) is verified by the caller."""

    def __init__(self, session: OpenPgpSession) -> None:
        self._session = session

    @property
    def identity(self) -> tuple[str, str]:
        return ("", self._session.card_id)

    @property
    def recipient(self) -> Recipient:
        curve = decryption_curve(self._session)
        if curve is None:
            raise NoDecryptionKey(Sw.DATA_NOT_FOUND, Ins.PSO, "its algorithm is not ECDH")
        envelope_curve = Curve.X25519 if curve is DecryptionCurve.CV25519 else Curve.P256
        return Recipient(
            kind=TargetKind.CARD,
            curve=envelope_curve,
            public_key=decryption_public_key(self._session),
            serial=self._session.card_id,
        )

    def shared_secret(self, ephemeral_point: bytes) -> bytearray:
        return decipher(self._session, ephemeral_point)


def enrol_card(
    session: OpenPgpSession, target: Target, *, timestamp: int | None = None
) -> Recipient:
    """Make the card ready to receive a share: its decryption key on the plan's curve.

    An existing decryption key on that curve is kept (shares sealed to it stay readable);
    otherwise one is generated on the card, which needs the admin PIN verified.  Refuses a
    card other than the one the plan names."""
    if target.kind is not TargetKind.CARD or target.curve is None:
        raise ValueError(f"target {target.id!r} is not a card target")
    if session.card_id != target.card:
        raise WrongShareTarget(target.id, f"card {target.card}", f"card {session.card_id}")
    curve = _CARD_CURVES[target.curve]
    try:
        present = decryption_curve(session) is curve and bool(decryption_public_key(session))
    except NoDecryptionKey:
        present = False
    if present and decryption_key_origin(session) is KeyOrigin.IMPORTED:
        raise ImportedCardKey(session.card_id)
    if not present:
        generate_decryption_key(session, curve, timestamp=timestamp)
    return CardTarget(session).recipient


__all__ = [
    "CardTarget",
    "HsmShareKeyAdmin",
    "HsmShareKeys",
    "HsmTarget",
    "enrol_card",
    "enrol_hsm",
    "share_key_id",
    "share_key_label",
]

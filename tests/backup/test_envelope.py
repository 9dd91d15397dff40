"""Sealed shares: round trip, binding to the recipient, tamper detection, bounded parsing.

The device here is a host-side key pair (the hardware devices are tested in
test_targets.py); what is checked is the envelope's own logic."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.backup.envelope import (
    Curve,
    Recipient,
    ShareHeader,
    open_sealed,
    parse_sealed,
    seal,
)
from coldvault.backup.errors import SealedShareMalformed, SealedShareTampered, WrongShareTarget
from coldvault.backup.plan import TargetKind

WORDS = b"academic acid acrobat romp chubby quarter ruler alpha"  # not a real share


class SoftDevice:
    """A key-agreement device in software (test stand-in for a token or card)."""

    def __init__(self, curve: Curve, kind: TargetKind = TargetKind.CARD, serial: str = "C1"):
        self.curve, self.kind, self.serial = curve, kind, serial
        if curve is Curve.X25519:
            self._x = x25519.X25519PrivateKey.generate()
            public = self._x.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        else:
            self._p = ec.generate_private_key(ec.SECP256R1())
            public = self._p.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        label, key_id = ("tok", b"S1") if kind is TargetKind.HSM else ("", b"")
        self.recipient = Recipient(kind, curve, public, serial, label, key_id)
        self.identity = (label, serial)
        self.calls = 0

    def shared_secret(self, point: bytes) -> bytearray:
        self.calls += 1
        if self.curve is Curve.X25519:
            return bytearray(self._x.exchange(x25519.X25519PublicKey.from_public_bytes(point)))
        peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        return bytearray(self._p.exchange(ec.ECDH(), peer))


def _header(device: SoftDevice, **changes: object) -> ShareHeader:
    values: dict[str, object] = {
        "plan_id": "plan-1",
        "set_id": 4242,
        "group": 1,
        "member": 0,
        "target": "b-card",
        "site": "site-b",
        "recipient": device.recipient.binding(),
    }
    values.update(changes)
    return ShareHeader(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("curve", list(Curve))
@pytest.mark.parametrize("kind", [TargetKind.CARD, TargetKind.HSM])
def test_round_trip(curve: Curve, kind: TargetKind) -> None:
    device = SoftDevice(curve, kind)
    blob = seal(bytearray(WORDS), device.recipient, _header(device))
    assert WORDS not in blob
    sealed = parse_sealed(blob)
    assert sealed.header == _header(device)
    words = open_sealed(sealed, device)
    assert isinstance(words, bytearray) and bytes(words) == WORDS
    assert seal(WORDS, device.recipient, _header(device)) != blob  # fresh ephemeral key


def test_the_wrong_device_is_refused_before_it_is_used() -> None:
    right, other = SoftDevice(Curve.X25519), SoftDevice(Curve.X25519, serial="C2")
    sealed = parse_sealed(seal(WORDS, right.recipient, _header(right)))
    with pytest.raises(WrongShareTarget) as info:
        open_sealed(sealed, other)
    assert other.calls == 0
    assert "card C1" in info.value.expected and "card C2" in info.value.presented
    same_serial_new_key = SoftDevice(Curve.X25519)  # e.g. the card's key was regenerated
    with pytest.raises(WrongShareTarget):
        open_sealed(sealed, same_serial_new_key)


def test_every_byte_is_authenticated() -> None:
    device = SoftDevice(Curve.P256, TargetKind.HSM)
    blob = seal(WORDS, device.recipient, _header(device))
    outcomes = set()
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        try:
            open_sealed(parse_sealed(bytes(bad)), device)
        except (SealedShareMalformed, SealedShareTampered, WrongShareTarget) as err:
            outcomes.add(type(err).__name__)
            continue
        pytest.fail(f"a flipped bit at offset {i} went unnoticed")
    assert outcomes == {"SealedShareMalformed", "SealedShareTampered", "WrongShareTarget"}


def test_a_changed_header_field_fails_authentication() -> None:
    device = SoftDevice(Curve.X25519)
    blob = seal(WORDS, device.recipient, _header(device, member=0))
    forged = blob.replace(b'"member":0', b'"member":5')
    assert forged != blob and len(forged) == len(blob)
    with pytest.raises(SealedShareTampered) as info:
        open_sealed(parse_sealed(forged), device)
    assert info.value.target == "b-card"


def test_sealing_refuses_a_header_for_another_recipient() -> None:
    a, b = SoftDevice(Curve.X25519), SoftDevice(Curve.X25519, serial="C2")
    with pytest.raises(ValueError):
        seal(WORDS, a.recipient, _header(b))
    with pytest.raises(ValueError):
        Recipient(TargetKind.PAPER, Curve.X25519, bytes(32), "x")


@pytest.mark.parametrize(
    "blob,problem",
    [
        (b"", "marker"),
        (b"XXXX\x01", "marker"),
        (b"CVSS\x02\x00\x00", "version"),
        (b"CVSS\x01\x00\x10{}", "truncated"),
        (b"CVSS\x01\x00\x02{}" + bytes(100), "header"),
        (b"CVSS" + bytes(5000), "larger"),
    ],
)
def test_malformed_blobs(blob: bytes, problem: str) -> None:
    with pytest.raises(SealedShareMalformed) as info:
        parse_sealed(blob, where="of target 'x'")
    assert problem in info.value.problem
    assert str(info.value).startswith("The sealed share of target 'x' is malformed")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parsing_random_bytes_only_raises_malformed(data: bytes) -> None:
    for blob in (data, b"CVSS\x01" + data):
        try:
            parse_sealed(blob)
        except SealedShareMalformed:
            pass

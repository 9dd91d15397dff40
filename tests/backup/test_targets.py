"""Share targets on real emulated hardware: the lab's SoftHSM backup tokens (ECDH on the
token) and the virtual OpenPGP card (PSO:DECIPHER), in process."""

from __future__ import annotations

import uuid

import pytest
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11

from coldvault.backends.pkcs11.errors import WrongPin
from coldvault.backup.envelope import Curve, ShareHeader, open_sealed, parse_sealed, seal
from coldvault.backup.errors import (
    ImportedCardKey,
    PlanInvalid,
    SealedShareTampered,
    WrongShareTarget,
)
from coldvault.backup.plan import parse_plan
from coldvault.backup.targets import (
    CardTarget,
    HsmTarget,
    enrol_card,
    enrol_hsm,
    share_key_id,
)
from coldvault.cards.openpgp import PinRequired, Pw
from coldvault.cards.openpgp import WrongPin as CardWrongPin
from coldvault.keys.keystore import KeyNotFound
from tests.backup.conftest import ADMIN_PIN, USER_PIN
from tests.backup.plans import lab_plan

pytestmark = pytest.mark.lab
WORDS = b"duckling enlarge academic academic agency result length solution fridge kidney"


def _plan(backup_tokens):
    text = lab_plan(backup_tokens.serials).replace("lab-2of3", f"t-{uuid.uuid4().hex[:8]}")
    return parse_plan(text)


def _header(plan, target_id, recipient, member=0):
    target = plan.target(target_id)
    return ShareHeader(
        plan.id,
        77,
        plan.position(target_id).group,
        member,
        target_id,
        target.site,
        recipient.binding(),
    )


def test_share_key_is_generated_inside_the_token_and_never_extractable(backup_tokens) -> None:
    plan = _plan(backup_tokens)
    target = plan.target("a-hsm")
    with backup_tokens.open("site-a") as keys:
        recipient = enrol_hsm(keys, plan.id, target)
        assert (recipient.label, recipient.serial) == (target.label, target.serial)
        assert recipient.curve is Curve.P256 and len(recipient.public_key) == 65
        key_id = share_key_id(plan.id, "a-hsm")
        attrs = keys.attributes(key_id)
        assert attrs.sensitive and attrs.never_extractable and attrs.always_sensitive
        assert attrs.local and attrs.token and attrs.private and attrs.derive
        assert not attrs.extractable and not attrs.sign
        private = next(
            keys._session().get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id}
            )
        )
        with pytest.raises(p11.AttributeSensitive):
            private[Attribute.VALUE]
        again = enrol_hsm(keys, plan.id, target)  # a re-run finds the same key
        assert again == recipient


def test_hsm_round_trip_and_tamper(backup_tokens) -> None:
    plan = _plan(backup_tokens)
    with backup_tokens.open("site-b") as keys:
        recipient = enrol_hsm(keys, plan.id, plan.target("b-hsm"))
        blob = seal(WORDS, recipient, _header(plan, "b-hsm", recipient))
        device = HsmTarget.for_target(keys, plan.id, plan.target("b-hsm"))
        assert bytes(open_sealed(parse_sealed(blob), device)) == WORDS
        bad = bytearray(blob)
        bad[-20] ^= 0x80
        with pytest.raises(SealedShareTampered) as info:
            open_sealed(parse_sealed(bytes(bad)), device)
        assert info.value.target == "b-hsm"


def test_the_wrong_token_is_refused(backup_tokens) -> None:
    plan = _plan(backup_tokens)
    with backup_tokens.open("site-a") as keys:
        recipient = enrol_hsm(keys, plan.id, plan.target("a-hsm"))
    blob = seal(WORDS, recipient, _header(plan, "a-hsm", recipient))
    with backup_tokens.open("site-c") as keys:
        with pytest.raises(WrongShareTarget) as info:
            open_sealed(parse_sealed(blob), HsmTarget(keys, share_key_id(plan.id, "a-hsm")))
        assert "'backup-site-a'" in info.value.expected
        assert "'backup-site-c'" in info.value.presented
        with pytest.raises(WrongShareTarget):  # enrolling site A's target on site C's token
            enrol_hsm(keys, plan.id, plan.target("a-hsm"))
        with pytest.raises(KeyNotFound):
            keys.find(share_key_id(plan.id, "a-hsm"))


def test_the_token_pin_is_needed(backup_tokens) -> None:
    with pytest.raises(WrongPin) as info:
        with backup_tokens.open("site-a", pin="not-the-pin"):
            pass
    assert info.value.token_label == "backup-site-a"


def test_a_plan_without_the_token_serial_cannot_be_written(backup_tokens) -> None:
    plan = parse_plan(lab_plan())
    with backup_tokens.open("site-a") as keys, pytest.raises(PlanInvalid) as info:
        enrol_hsm(keys, plan.id, plan.target("a-hsm"))
    assert info.value.field == "target a-hsm.serial"


@pytest.mark.parametrize("target_id,curve", [("a-card", Curve.X25519), ("b-card", Curve.P256)])
def test_card_round_trip(direct_card, backup_tokens, target_id, curve) -> None:
    plan = _plan(backup_tokens)
    target = plan.target(target_id)
    session = direct_card(int(target.card[4:], 16))
    with pytest.raises(PinRequired):  # generating the decryption key needs the admin PIN
        enrol_card(session, target)
    session.verify_pin(ADMIN_PIN, Pw.ADMIN)
    recipient = enrol_card(session, target, timestamp=1_750_000_000)
    assert recipient.curve is curve and recipient.serial == target.card
    assert enrol_card(session, target) == recipient  # the existing key is kept
    blob = seal(WORDS, recipient, _header(plan, target_id, recipient))
    device = CardTarget(session)
    with pytest.raises(PinRequired):
        open_sealed(parse_sealed(blob), device)
    with pytest.raises(CardWrongPin) as info:
        session.verify_pin("654321", Pw.USER)
    assert info.value.tries_left == 2
    session.verify_pin(USER_PIN, Pw.USER)
    assert bytes(open_sealed(parse_sealed(blob), device)) == WORDS


def test_the_wrong_card_is_refused(direct_card, backup_tokens) -> None:
    plan = _plan(backup_tokens)
    a_card = direct_card(0xC0DE0001)
    c_card = direct_card(0xC0DE0003)
    for session in (a_card, c_card):
        session.verify_pin(ADMIN_PIN, Pw.ADMIN)
    recipient = enrol_card(a_card, plan.target("a-card"))
    with pytest.raises(WrongShareTarget):
        enrol_card(c_card, plan.target("a-card"))
    enrol_card(c_card, plan.target("c-card"))
    c_card.verify_pin(USER_PIN, Pw.USER)
    blob = seal(WORDS, recipient, _header(plan, "a-card", recipient))
    with pytest.raises(WrongShareTarget) as info:
        open_sealed(parse_sealed(blob), CardTarget(c_card))
    assert "card FFFFC0DE0001" in info.value.expected
    assert info.value.presented == "card FFFFC0DE0003"


class _ImportedKeyCard:
    """A connection that reports the decryption key as imported (DO DE status 02)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        data, sw = self.inner.send_and_receive(apdu)
        if apdu[1:4] == bytes.fromhex("CA00DE") and sw == 0x9000:
            data = bytes([1, data[1], 2, 2, 3, data[5]])
        return data, sw


def test_an_imported_card_key_is_refused(direct_card, backup_tokens) -> None:
    from coldvault.cards.openpgp import OpenPgpSession

    plan = _plan(backup_tokens)
    session = direct_card(0xC0DE0001)
    session.verify_pin(ADMIN_PIN, Pw.ADMIN)
    enrol_card(session, plan.target("a-card"))
    imported = OpenPgpSession(_ImportedKeyCard(session.connection))
    imported.select()
    with pytest.raises(ImportedCardKey) as info:
        enrol_card(imported, plan.target("a-card"))
    assert info.value.card == "FFFFC0DE0001"

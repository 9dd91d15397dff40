"""A whole backup to the lab plan (three SoftHSM backup tokens, three virtual cards) and
its read-back through each target; the record holds public data only."""

from __future__ import annotations

import json

import pytest

from coldvault.backup.errors import (
    BackupRecordInvalid,
    ForeignShare,
    SealedShareTampered,
    WrongShareSet,
)
from coldvault.backup.plan import TargetKind
from coldvault.backup.record import open_share, parse_record
from coldvault.backup.shares import combine
from coldvault.backup.targets import CardTarget, HsmTarget
from coldvault.cards.openpgp import Pw
from coldvault.crypto import wipe
from coldvault.crypto.bip32 import master_fingerprint
from tests.backup.conftest import USER_PIN
from tests.backup.lab_backup import direct_sessions, lab_backup

pytestmark = pytest.mark.lab
SEED = bytes.fromhex("bb54aac4b89dc868ba37d9cc21b2cece" * 2)


@pytest.fixture
def backup(backup_tokens, direct_card):
    cards = direct_sessions(direct_card)
    written = lab_backup(backup_tokens, cards, SEED, passphrase="TREZOR")
    return written, cards


def _device(backup_tokens, cards, plan, target_id, stack):
    target = plan.target(target_id)
    if target.kind is TargetKind.HSM:
        keys = stack.enter_context(backup_tokens.open(target.label.removeprefix("backup-")))
        return HsmTarget.for_target(keys, plan.id, target)
    session = stack.enter_context(cards(target.card))
    session.verify_pin(USER_PIN, Pw.USER)
    return CardTarget(session)


def test_every_share_reads_back_through_its_own_target(backup, backup_tokens) -> None:
    from contextlib import ExitStack

    written, cards = backup
    record = written.record
    assert set(written.blobs) == {t.id for t in written.plan.targets}
    words = []
    for target in written.plan.targets:
        with ExitStack() as stack:
            device = _device(backup_tokens, cards, written.plan, target.id, stack)
            words.append(open_share(record, target.id, written.blobs[target.id], device))
    secret = combine(words, "TREZOR")
    try:
        assert bytes(secret) == SEED
        assert master_fingerprint(secret).hex() == record.master_fingerprint
    finally:
        wipe(secret)
        for w in words:
            wipe(w)
    assert all(w == bytearray(len(w)) for w in words)


def test_the_record_is_public_and_round_trips(backup) -> None:
    written, _ = backup
    record = written.record
    data = record.to_json()
    assert parse_record(data) == record
    doc = json.loads(data)
    assert doc["share_set"]["groups"] == [[1, 1], [1, 1], [1, 1]]
    assert doc["passphrase_protected"] is True
    entry = record.entry("b-card")
    assert (entry.site, entry.group, entry.member) == ("site-b", 1, 0)
    assert entry.recipient["serial"] == "FFFFC0DE0002" and entry.recipient["curve"] == "p256"
    assert record.entry("c-hsm").recipient["label"] == "backup-site-c"
    text = data.decode()
    for blob in written.blobs.values():
        assert blob.hex() not in text
    assert "TREZOR" not in text and SEED.hex() not in text


def test_a_blob_of_another_target_is_foreign(backup, backup_tokens) -> None:
    from contextlib import ExitStack

    written, cards = backup
    with ExitStack() as stack:
        device = _device(backup_tokens, cards, written.plan, "a-hsm", stack)
        with pytest.raises(ForeignShare) as info:
            open_share(written.record, "a-hsm", written.blobs["b-hsm"], device)
    assert info.value.site == "site-a"
    assert "sealed share of 'b-hsm'" in str(info.value)


def test_a_blob_of_another_backup_is_named(backup, backup_tokens, direct_card) -> None:
    from contextlib import ExitStack

    written, cards = backup
    other = lab_backup(backup_tokens, cards, bytes(32), text=None)
    with ExitStack() as stack:
        device = _device(backup_tokens, cards, written.plan, "c-card", stack)
        with pytest.raises(WrongShareSet) as info:
            open_share(written.record, "c-card", other.blobs["c-card"], device)
    assert info.value.expected == written.record.share_set.identifier
    assert info.value.found == other.record.share_set.identifier


def test_a_tampered_blob(backup, backup_tokens) -> None:
    from contextlib import ExitStack

    written, cards = backup
    bad = bytearray(written.blobs["a-card"])
    bad[-1] ^= 1
    with ExitStack() as stack:
        device = _device(backup_tokens, cards, written.plan, "a-card", stack)
        with pytest.raises(SealedShareTampered) as info:
            open_share(written.record, "a-card", bytes(bad), device)
    assert info.value.target == "a-card"


@pytest.mark.parametrize(
    "change,field",
    [
        (lambda d: d.update(format="x"), "format"),
        (lambda d: d.update(master_fingerprint="XYZ"), "master_fingerprint"),
        (lambda d: d["share_set"].update(groups=[[1, 99]]), "share_set.groups"),
        (lambda d: d["entries"][0].update(kind="usb"), "entries[0].kind"),
        (lambda d: d["entries"][0].update(blob_sha256=""), "entries[0].blob_sha256"),
        (lambda d: d["entries"][1].update(group=True), "entries[1].group"),
    ],
)
def test_bad_records_name_the_field(backup, change, field) -> None:
    written, _ = backup
    doc = json.loads(written.record.to_json())
    change(doc)
    with pytest.raises(BackupRecordInvalid) as info:
        parse_record(json.dumps(doc).encode())
    assert info.value.field == field

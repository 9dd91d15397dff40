"""Write a real backup of a seed to the lab plan: three SoftHSM backup tokens and three
virtual cards (in process, or any card sessions the caller gives)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from coldvault.backup.envelope import Recipient
from coldvault.backup.plan import Plan, TargetKind, parse_plan
from coldvault.backup.record import BackupRecord, seal_backup
from coldvault.backup.shares import split_for_plan
from coldvault.backup.targets import enrol_card, enrol_hsm
from coldvault.cards.openpgp import OpenPgpSession, Pw
from coldvault.crypto.bip32 import master_fingerprint
from tests.backup.conftest import ADMIN_PIN
from tests.backup.plans import lab_plan


@dataclass(frozen=True)
class LabBackup:
    plan: Plan
    record: BackupRecord
    blobs: dict[str, bytes]


def lab_backup(
    backup_tokens,
    card_session: Callable[[str], OpenPgpSession],
    secret: bytes,
    *,
    passphrase: str = "",
    text: str | None = None,
) -> LabBackup:
    """``card_session(card_id)`` gives a selected session of that card."""
    text = text or lab_plan(backup_tokens.serials)
    plan = parse_plan(text.replace('id = "lab-2of3"', f'id = "lab-{uuid.uuid4().hex[:8]}"'))
    recipients: dict[str, Recipient] = {}
    for target in plan.targets:
        if target.kind is TargetKind.HSM:
            site = target.label.removeprefix("backup-")
            with backup_tokens.open(site) as keys:
                recipients[target.id] = enrol_hsm(keys, plan.id, target)
        elif target.kind is TargetKind.CARD:
            session = card_session(target.card)
            session.verify_pin(ADMIN_PIN, Pw.ADMIN)
            recipients[target.id] = enrol_card(session, target)
    shares = split_for_plan(plan, secret, passphrase)
    try:
        record, blobs = seal_backup(
            shares,
            recipients,
            master_fingerprint=master_fingerprint(secret),
            passphrase_protected=bool(passphrase),
        )
    finally:
        shares.wipe()
    return LabBackup(plan, record, blobs)


def card_number(card_id: str) -> int:
    """The OpenPGP serial of a roster card id ``FFFF<serial>``."""
    return int(card_id[4:], 16)


def sessions(direct_card) -> Callable[[str], OpenPgpSession]:
    cache: dict[str, OpenPgpSession] = {}

    def get(card_id: str) -> OpenPgpSession:
        if card_id not in cache:
            cache[card_id] = direct_card(card_number(card_id))
        return cache[card_id]

    return get


def blobs_except(backup: LabBackup, lost: Mapping[str, object]) -> dict[str, bytes]:
    return {t: b for t, b in backup.blobs.items() if t not in lost}

"""Write a real backup of a seed to the lab plan, and reach its targets in a drill: three
SoftHSM backup tokens, and three virtual cards (in process, or through pcscd)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from coldvault.backup.envelope import KeyAgreement, Recipient
from coldvault.backup.plan import Plan, Target, TargetKind, parse_plan
from coldvault.backup.record import BackupRecord, seal_backup
from coldvault.backup.shares import split_for_plan
from coldvault.backup.targets import CardTarget, HsmTarget, enrol_card, enrol_hsm
from coldvault.cards.openpgp import OpenPgpSession, Pw
from coldvault.crypto.bip32 import master_fingerprint
from tests.backup.conftest import ADMIN_PIN, USER_PIN
from tests.backup.plans import lab_plan

#: card id -> a context manager giving a selected session of that card
CardSessions = Callable[[str], AbstractContextManager[OpenPgpSession]]


@dataclass(frozen=True)
class LabBackup:
    plan: Plan
    record: BackupRecord
    blobs: dict[str, bytes]


def _site(target: Target) -> str:
    return target.label.removeprefix("backup-")


def lab_backup(
    backup_tokens,
    cards: CardSessions,
    secret: bytes,
    *,
    passphrase: str = "",
    text: str | None = None,
    paper: Mapping[str, list[bytearray]] | None = None,
) -> LabBackup:
    """Enrol every target, split, seal.  Paper words are appended to ``paper[target]``."""
    text = text or lab_plan(backup_tokens.serials)
    plan = parse_plan(text.replace('id = "lab-2of3"', f'id = "lab-{uuid.uuid4().hex[:8]}"'))
    recipients: dict[str, Recipient] = {}
    for target in plan.targets:
        if target.kind is TargetKind.HSM:
            with backup_tokens.open(_site(target)) as keys:
                recipients[target.id] = enrol_hsm(keys, plan.id, target)
        elif target.kind is TargetKind.CARD:
            with cards(target.card) as session:
                session.verify_pin(ADMIN_PIN, Pw.ADMIN)
                recipients[target.id] = enrol_card(session, target)
    shares = split_for_plan(plan, secret, passphrase)
    try:
        for target in plan.targets:
            if target.kind is TargetKind.PAPER and paper is not None:
                paper[target.id].append(shares.words(target.id))
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


def direct_sessions(direct_card) -> CardSessions:
    """In-process cards (one session per card, kept for the test)."""
    cache: dict[str, OpenPgpSession] = {}

    @contextmanager
    def get(card_id: str) -> Iterator[OpenPgpSession]:
        if card_id not in cache:
            cache[card_id] = direct_card(card_number(card_id))
        yield cache[card_id]

    return get


def pcsc_sessions(readers: Mapping[str, str]) -> CardSessions:
    """Cards in the lab's readers (card id -> reader name), through pcscd: every use is a
    new exclusive connection, reset when it closes (so a verified PIN never outlives it)."""
    from coldvault.backends.pcsc import PcscConnection

    @contextmanager
    def get(card_id: str) -> Iterator[OpenPgpSession]:
        with PcscConnection(readers[card_id]) as conn:
            session = OpenPgpSession(conn)
            session.select()
            yield session

    return get


@dataclass
class LabAccess:
    """The front end's part of a drill, scripted: token PINs, card PINs, typed paper words."""

    backup_tokens: object
    cards: CardSessions
    plan_id: str
    pins: dict[str, str] = field(default_factory=dict)  # target id -> PIN (default: right)
    paper: dict[str, bytearray] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)

    @contextmanager
    def open(self, target: Target) -> Iterator[KeyAgreement]:
        self.opened.append(target.id)
        if target.kind is TargetKind.HSM:
            pin = self.pins.get(target.id)
            with self.backup_tokens.open(_site(target), pin) as keys:  # type: ignore[attr-defined]
                yield HsmTarget.for_target(keys, self.plan_id, target)
            return
        with self.cards(target.card) as session:
            session.verify_pin(self.pins.get(target.id, USER_PIN), Pw.USER)
            yield CardTarget(session)

    def typed_words(self, target: Target) -> bytearray:
        return self.paper[target.id]

"""Fixtures for the backup tests: backup HSM tokens of the lab, in-process virtual cards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pkcs11 import Attribute, ObjectClass

from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backends.pkcs11.shares import Pkcs11ShareKeys
from coldvault.cards.openpgp import OpenPgpSession
from hardware_emulators.openpgp_card import state as card_state
from hardware_emulators.openpgp_card.card import OpenPgpCard
from tests.ceremony import conftest as ceremony_fixtures
from tests.integrity import conftest as integrity_fixtures

SITES = ("site-a", "site-b", "site-c")
USER_PIN, ADMIN_PIN = "123456", "12345678"


class DirectConnection:
    """The virtual card's state machine behind the CardConnection interface (no pcscd)."""

    def __init__(self, path: Path, serial: int) -> None:
        state = card_state.load_or_create(path, serial=serial)
        self.card = OpenPgpCard(state, persist=lambda s: card_state.save(s, path))

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        out = self.card.process(apdu)
        return out[:-2], int.from_bytes(out[-2:], "big")


@pytest.fixture
def direct_card(tmp_path: Path) -> Callable[[int], OpenPgpSession]:
    """``direct_card(serial)`` -> a selected session with an in-process virtual card; the
    same serial gives the same card (state under tmp_path)."""

    def make(serial: int) -> OpenPgpSession:
        session = OpenPgpSession(DirectConnection(tmp_path / f"card-{serial:08X}.json", serial))
        session.select()
        return session

    return make


class BackupTokens:
    """The lab's backup tokens (``backup-site-a/-b/-c``), opened one at a time."""

    def __init__(self, softhsm_lab: Any, lab_config: Any) -> None:
        self.module = softhsm_lab.module_path
        self.specs = {t.site: t.spec for t in lab_config.tokens if t.role == "backup"}
        self.serials = {
            site: next(s.serial for s in softhsm_lab.status() if s.label == spec.label)
            for site, spec in self.specs.items()
        }

    def label(self, site: str) -> str:
        return self.specs[site].label

    def pin(self, site: str) -> str:
        return self.specs[site].user_pin

    @contextmanager
    def open(self, site: str, pin: str | None = None) -> Iterator[Pkcs11ShareKeys]:
        with Pkcs11Keystore.open(
            self.module, self.label(site), pin or self.pin(site), allow_emulated=True
        ) as keystore:
            yield Pkcs11ShareKeys(keystore)

    def key_ids(self, site: str) -> set[bytes]:
        with Pkcs11Keystore.open(
            self.module, self.label(site), self.pin(site), allow_emulated=True
        ) as keystore:
            objects = keystore._live().get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY})
            return {bytes(o[Attribute.ID]) for o in objects}


@pytest.fixture
def backup_tokens(softhsm_lab: Any, lab_config: Any) -> Iterator[BackupTokens]:
    """The backup tokens; share keys a test creates are deleted afterwards."""
    tokens = BackupTokens(softhsm_lab, lab_config)
    before = {site: tokens.key_ids(site) for site in SITES}
    yield tokens
    for site in SITES:
        new = tokens.key_ids(site) - before[site]
        if new:
            with tokens.open(site) as keys:
                for key_id in new:
                    keys.delete(key_id)


@pytest.fixture
def fresh_token(softhsm_lab: Any) -> Iterator[tuple[str, str]]:
    """A new, empty SoftHSM token for disaster recovery: ``(label, user PIN)``.

    Request it before any fixture that opens a keystore: SoftHSM sees tokens created while
    the PKCS#11 module is initialised only after it is finalised."""
    import os
    import subprocess
    import uuid

    label = f"drill-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, SOFTHSM2_CONF=str(softhsm_lab.conf_path))
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            "drill-so-pin",
            "--pin",
            "drill-user-pin",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield label, "drill-user-pin"
    finally:
        subprocess.run(
            ["softhsm2-util", "--delete-token", "--token", label],
            env=env,
            check=False,
            capture_output=True,
            timeout=60,
        )


# the lab's virtual cards in reader 0 (admin cards sign records and reports through pcscd),
# and the in-process appliance world (its start-up warns when a drill is overdue)
lab_cards = ceremony_fixtures.lab_cards
slot = ceremony_fixtures.slot
world = integrity_fixtures.world


#: Dave and Erin (admins) and Alice (an approver) of the lab cards
ADMINS_AND_APPROVER = ("C0DE0004", "C0DE0005", "C0DE0001")


@pytest.fixture
def chain(lab_cards: dict[str, Any], pcsc_lab: Any, tmp_path: Path) -> Any:
    """Dave and Erin (admins, threshold 2) and Alice (approver) on lab cards in reader 0;
    roster version 1 signed by both admins (``chain.genesis``, ``chain.path``)."""
    from tests.ceremony.chain import CARDS, make_genesis

    (tmp_path / "trust").mkdir()
    cards = [c for c in CARDS if c[0] in ADMINS_AND_APPROVER]
    return make_genesis(tmp_path / "trust", "vault-backup-1", lab_cards, pcsc_lab, cards)

"""Fixtures for in-process ceremonies, on the root lab fixtures (tests/conftest.py).

* ``hsm_token``  a fresh SoftHSM token of its own on the session's ``softhsm_lab``
                 (ceremonies change PINs and create keys; nothing else sees this token),
                 as the :class:`Pkcs11Token` the front end would hand to a ceremony.
* ``lab_cards``  the lab file's blank virtual cards by serial, outside the readers.
* ``slot``       reader 0 of the session's ``pcsc_lab`` as a :class:`CardSlot`.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ceremony_scripts.hardware import Pkcs11Token
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.keys.keystore import KeyInfo
from hardware_emulators.lab import LabConfig
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec, softhsm_util

from .support import CardSlot

SO_PIN, USER_PIN = "lab-so-ceremony", "lab-user-ceremony"  # TEST ONLY


@dataclass(frozen=True)
class LabToken:
    """A private SoftHSM token and its PINs (test-only values)."""

    token: Pkcs11Token
    so_pin: str
    user_pin: str
    conf: Path

    def private_key_flags(self, user_pin: str | None = None) -> dict[str, set[str]] | None:
        """OpenSC ``pkcs11-tool``'s view (an independent PKCS#11 client) of every private
        key: label -> its "Access:" flags; None when OpenSC is not installed."""
        tool = shutil.which("pkcs11-tool")
        if tool is None:
            return None
        out = subprocess.run(
            [tool, "--module", self.token.module, "--token-label", self.label, "--login",
             "--pin", user_pin or self.user_pin, "--list-objects", "--type", "privkey"],
            env={"SOFTHSM2_CONF": str(self.conf), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
        flags = {}
        for block in out.split("Private Key Object")[1:]:
            label = block.split("label:")[1].splitlines()[0].strip()
            access = block.split("Access:")[1].splitlines()[0]
            flags[label] = {f.strip() for f in access.split(",")}
        return flags

    @property
    def label(self) -> str:
        return self.token.label

    def keys(self, user_pin: str | None = None) -> dict[bytes, KeyInfo]:
        with Pkcs11Keystore.open(
            self.token.module, self.label, user_pin or self.user_pin, allow_emulated=True
        ) as keystore:
            return {k.key_id: k for k in keystore.list_keys()}


@pytest.fixture
def hsm_token(softhsm_lab: SoftHsmLab) -> Iterator[LabToken]:
    label = f"cv-cer-{secrets.token_hex(4)}"
    SoftHsmLab(state_dir=softhsm_lab.state_dir, tokens=[TokenSpec(label, SO_PIN, USER_PIN)]).setup()
    try:
        token = Pkcs11Token(softhsm_lab.module_path, label, True)
        yield LabToken(token, SO_PIN, USER_PIN, softhsm_lab.conf_path)
    finally:
        subprocess.run(
            [softhsm_util(), "--delete-token", "--token", label],
            env=dict(os.environ, SOFTHSM2_CONF=str(softhsm_lab.conf_path)),
            capture_output=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def lab_cards(pcsc_lab: Any, lab_config: LabConfig, tmp_path: Path) -> Iterator[dict[str, Any]]:
    from hardware_emulators.openpgp_card.controller import VirtualCard

    (tmp_path / "cards").mkdir(exist_ok=True)
    cards = {
        spec.serial: VirtualCard(
            state_file=tmp_path / "cards" / f"card-{spec.serial}.json",
            serial=int(spec.serial, 16),
            pw1=spec.pin,
            pw3=spec.admin_pin,
        )
        for spec in lab_config.cards
    }
    try:
        yield cards
    finally:
        for card in cards.values():
            card.remove()


@pytest.fixture
def slot(pcsc_lab: Any) -> Iterator[CardSlot]:
    reader = CardSlot(pcsc_lab.reader_ports[0])
    try:
        yield reader
    finally:
        if reader.current is not None:
            reader.current.remove()

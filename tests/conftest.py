"""Root fixtures: the emulated hardware lab for every test suite (docs/lab.md).

* ``lab_config``      the default lab file (hardware_emulators/lab.toml) parsed.
* ``softhsm_lab``     session: private SoftHSM2 with the lab's tokens; sets ``SOFTHSM2_CONF``.
* ``keystore``        a logged-in :class:`Pkcs11Keystore` on the appliance token
                      (``allow_emulated=True``); keys a test creates are deleted afterwards.
* ``pcsc_lab``        session: private pcscd + vpcd readers; sets ``PCSCLITE_CSOCK_NAME``.
* ``lab``             session: the whole :class:`hardware_emulators.lab.Lab` in process, on
                      the session's SoftHSM and pcscd (``insert``/``remove``/``status``).
* ``card_factory``    ``card_factory(serial=None, reader=0)`` -> inserted blank ``VirtualCard``;
                      everything inserted is removed at test end.
* ``virtual_cards``   all lab cards inserted one per reader (as many as there are readers).

Missing Debian packages skip with a clear message on a laptop, and FAIL in CI (``CI=true``).
Every lab process is bound to the pytest process (PDEATHSIG + atexit + stop on teardown).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware_emulators.lab import DEFAULT_LAB_FILE, Lab, LabConfig
from hardware_emulators.softhsm_lab import SoftHsmLab, softhsm_available


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_packages(what: str, available: bool, packages: str) -> None:
    """Skip (laptop) or fail (CI) when emulator packages are missing."""
    if available:
        return
    message = f"{what} needs the Debian package(s) {packages}; run 'make setup' as root."
    if _in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _pcsc_available() -> bool:
    return (
        shutil.which("pcscd") is not None
        and Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so").exists()
    )


class _EnvPatch:
    """Session-wide environment changes, undone at teardown."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def undo(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def lab_config() -> LabConfig:
    return LabConfig.load(DEFAULT_LAB_FILE)


@pytest.fixture(scope="session")
def softhsm_lab(
    tmp_path_factory: pytest.TempPathFactory, lab_config: LabConfig
) -> Iterator[SoftHsmLab]:
    require_packages("SoftHSM2", softhsm_available(), "softhsm2")
    lab = SoftHsmLab(
        state_dir=tmp_path_factory.mktemp("softhsm"), tokens=lab_config.token_specs
    ).setup()
    env = _EnvPatch()
    env.set({"SOFTHSM2_CONF": str(lab.conf_path)})
    try:
        yield lab
    finally:
        env.undo()
        lab.destroy()


@pytest.fixture
def keystore(softhsm_lab: SoftHsmLab, lab_config: LabConfig) -> Iterator[Any]:
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    token = lab_config.appliance_token()
    with Pkcs11Keystore.open(
        softhsm_lab.module_path, token.label, token.user_pin, allow_emulated=True
    ) as ks:
        before = {k.key_id for k in ks.list_keys()}
        try:
            yield ks
        finally:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)


@pytest.fixture(scope="session")
def pcsc_lab(tmp_path_factory: pytest.TempPathFactory, lab_config: LabConfig) -> Iterator[Any]:
    require_packages("The PC/SC lab", _pcsc_available(), "pcscd vsmartcard-vpcd")
    from hardware_emulators.pcsc_lab import PcscLab

    lab = PcscLab(state_dir=tmp_path_factory.mktemp("pcsc"), readers=lab_config.readers)
    lab.start()
    env = _EnvPatch()
    env.set(lab.env)
    try:
        yield lab
    finally:
        env.undo()
        lab.stop()


@pytest.fixture(scope="session")
def lab(
    tmp_path_factory: pytest.TempPathFactory,
    lab_config: LabConfig,
    softhsm_lab: SoftHsmLab,
    pcsc_lab: Any,
) -> Iterator[Lab]:
    """The whole lab in process, sharing the session's SoftHSM and pcscd (libpcsclite talks
    to one pcscd per process). ``lab.insert(serial, reader)`` / ``lab.remove(reader)``; cards
    keep their state under this session's lab dir. Cards still inserted are removed at the end.
    """
    shared = Lab(lab_config, tmp_path_factory.mktemp("lab"), softhsm=softhsm_lab, pcsc=pcsc_lab)
    try:
        yield shared
    finally:
        shared.down()  # removes cards; leaves the shared pcscd to its own fixture


@pytest.fixture
def card_factory(
    pcsc_lab: Any, lab_config: LabConfig, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    from hardware_emulators.openpgp_card.controller import VirtualCard

    inserted: list[Any] = []
    used_readers: set[int] = set()

    def make(serial: str | None = None, reader: int | None = None) -> Any:
        if serial is None:
            serial = lab_config.cards[len(inserted) % len(lab_config.cards)].serial
        if reader is None:
            free = [i for i in range(pcsc_lab.readers) if i not in used_readers]
            if not free:
                raise ValueError("every reader already holds a card")
            reader = free[0]
        spec = lab_config.card(serial)
        card = VirtualCard(
            state_file=tmp_path / f"card-{spec.serial}.json",
            serial=int(spec.serial, 16),
            pw1=spec.pin,
            pw3=spec.admin_pin,
        )
        card.insert(pcsc_lab.reader_ports[reader])
        inserted.append(card)
        used_readers.add(reader)
        return card

    try:
        yield make
    finally:
        for card in reversed(inserted):
            card.remove()


@pytest.fixture
def virtual_cards(
    card_factory: Callable[..., Any], lab_config: LabConfig, pcsc_lab: Any
) -> list[Any]:
    count = min(pcsc_lab.readers, len(lab_config.cards))
    return [card_factory(lab_config.cards[i].serial, i) for i in range(count)]

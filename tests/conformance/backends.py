"""The backends every conformance suite runs against, one fixture per seam (a pytest plugin
that tests/conftest.py loads, so every suite may use these fixtures).

* ``keystore_backend`` / ``hsm`` -- the keystore seam (:class:`Pkcs11Keystore`):
  ``softhsm`` (the lab token, always) and ``real-pkcs11`` (opt-in, see
  :data:`REAL_PKCS11_ENV`).  Tests declare the PKCS#11 mechanisms they need with
  ``@pytest.mark.requires(Mechanism.X, ...)``; a token without one skips, naming it.
* ``card`` -- the OpenPGP card seam (:class:`OpenPgpSession` over a ``CardConnection``):
  ``in-process`` (the virtual card's state machine behind ``send_and_receive``), ``pcscd``
  (the same card as a separate process in a vpcd reader of the lab's pcscd, through pyscard)
  and ``real`` (opt-in, read-only, see :data:`REAL_CARD_ENV`).
* ``frame_source`` -- the frame-source seam (:class:`FrameSource`): ``image-files`` (PNG
  files and an animated GIF) and ``virtual-camera``.

An opt-in backend runs only when its variables are set; the header of every run says which
backends it left out and what would enable them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

#: Opt-in real PKCS#11 token.  It creates and deletes keys (ids prefixed ``cvconf-``), and
#: one test presents a wrong PIN once (then logs in correctly): use a scratch token.
REAL_PKCS11_ENV = {
    "module": "COLDVAULT_REAL_PKCS11_MODULE",  # path of the vendor's PKCS#11 module
    "label": "COLDVAULT_REAL_PKCS11_TOKEN_LABEL",  # token label
    "pin": "COLDVAULT_REAL_PKCS11_PIN",  # user PIN
    "serial": "COLDVAULT_REAL_PKCS11_TOKEN_SERIAL",  # refuses any other token
}
#: Opt-in real OpenPGP card: its serial (8 hex digits as gpg prints it, or card_id); with the
#: PIN too, the PIN is verified and one signature made.  Nothing destructive is ever sent.
REAL_CARD_ENV = {"serial": "COLDVAULT_REAL_CARD_SERIAL", "pin": "COLDVAULT_REAL_CARD_PIN"}


def _real_pkcs11_configured() -> bool:
    return all(os.environ.get(name) for name in REAL_PKCS11_ENV.values())


#: opt-in backends this run leaves out, with what would enable them (for the report header)
LEFT_OUT: dict[str, str] = {}


def _opt_in(name: str, configured: bool, needs: Sequence[str], *marks: Any) -> list[Any]:
    if configured:
        return [pytest.param(name, marks=marks)]
    LEFT_OUT[name] = f"set {', '.join(needs)}"
    return []


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"conformance: opt-in backend {name} not run ({how})"
            for name, how in LEFT_OUT.items()]


# --------------------------------------------------------------------------- keystore
@dataclass
class KeystoreBackend:
    """How to open one PKCS#11 token, and what the contract may assume about it."""

    name: str
    module_path: str
    label: str
    pin: str = field(repr=False)
    emulated: bool
    expected_serial: str | None = None

    def open(self, pin: str | None = None) -> Any:
        from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

        return Pkcs11Keystore.open(
            self.module_path,
            self.label,
            self.pin if pin is None else pin,
            allow_emulated=self.emulated,
            expected_serial=self.expected_serial,
        )


KEYSTORE_BACKENDS = [
    pytest.param("softhsm", marks=pytest.mark.lab),
    *_opt_in("real-pkcs11", _real_pkcs11_configured(), list(REAL_PKCS11_ENV.values())),
]


@pytest.fixture(params=KEYSTORE_BACKENDS)
def keystore_backend(request: pytest.FixtureRequest) -> KeystoreBackend:
    if request.param == "softhsm":
        softhsm_lab = request.getfixturevalue("softhsm_lab")
        token = request.getfixturevalue("lab_config").appliance_token()
        return KeystoreBackend(
            "softhsm", softhsm_lab.module_path, token.label, token.user_pin, emulated=True
        )
    env = {key: os.environ[name] for key, name in REAL_PKCS11_ENV.items()}
    return KeystoreBackend(
        "real-pkcs11", env["module"], env["label"], env["pin"], emulated=False,
        expected_serial=env["serial"],
    )


@pytest.fixture
def hsm(request: pytest.FixtureRequest, keystore_backend: KeystoreBackend) -> Iterator[Any]:
    """The logged-in token; keys created by the test are deleted afterwards."""
    with keystore_backend.open() as ks:
        for marker in request.node.iter_markers("requires"):
            for mechanism in marker.args:
                if not ks.supports(mechanism):
                    name = getattr(mechanism, "name", f"{int(mechanism):#x}")
                    pytest.skip(f"token {keystore_backend.name} lacks CKM_{name}")
        before = {k.key_id for k in ks.list_keys()}
        try:
            yield ks
        finally:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)


# --------------------------------------------------------------------------- card
#: PINs of a factory-fresh virtual card (OpenPGP card defaults)
USER_PIN, ADMIN_PIN = "123456", "12345678"
CARD_SERIAL = 0xC0F0C0DE


class DirectConnection:
    """The virtual card's state machine behind ``send_and_receive``, in this process.

    ``pull()`` takes the card out: every later command raises ``CardRemoved``, as a PC/SC
    connection does when the card leaves the reader.
    """

    reader = "in-process"

    def __init__(self, path: Path, serial: int) -> None:
        from hardware_emulators.openpgp_card import state as card_state
        from hardware_emulators.openpgp_card.card import OpenPgpCard

        state = card_state.load_or_create(path, serial=serial)
        self.card = OpenPgpCard(state, persist=lambda s: card_state.save(s, path))
        self.present = True

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        from coldvault.cards.errors import CardRemoved

        if not self.present:
            raise CardRemoved(self.reader)
        out = self.card.process(apdu)
        return out[:-2], int.from_bytes(out[-2:], "big")

    def pull(self) -> None:
        self.present = False


@dataclass
class CardBackend:
    """A selected session on one card, and what the contract may do with it."""

    name: str
    session: Any
    #: a real card: never generate keys, change data or present a wrong PIN
    read_only: bool
    #: the user PIN, when the contract may verify it (None: skip PIN and signing checks)
    pin: str | None = field(repr=False)
    #: the serial the backend was asked for (8 hex digits, or the card_id)
    serial: str = ""
    #: take the card out of its reader (None: a person would have to)
    pull: Any = None


def _enrol(session: Any) -> None:
    """An emulated card gets what an enrolled card has: an Ed25519 signature key."""
    from coldvault.cards.algorithms import CardAlgorithm
    from coldvault.cards.openpgp import Pw

    session.verify_pin(ADMIN_PIN, Pw.ADMIN)
    session.generate_key(CardAlgorithm.ED25519, timestamp=1_700_000_000)
    session.select()  # drop the admin verification, as a fresh insertion would


CARD_BACKENDS = [
    "in-process",
    pytest.param("pcscd", marks=pytest.mark.lab),
    *_opt_in(
        "real-card", bool(os.environ.get(REAL_CARD_ENV["serial"])), [REAL_CARD_ENV["serial"]],
        pytest.mark.realcard,
    ),
]


@pytest.fixture(params=CARD_BACKENDS)
def card(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CardBackend]:
    from coldvault.cards.openpgp import OpenPgpSession

    serial_hex = f"{CARD_SERIAL:08X}"
    if request.param == "in-process":
        connection = DirectConnection(tmp_path / "card.json", CARD_SERIAL)
        session = OpenPgpSession(connection)
        session.select()
        _enrol(session)
        yield CardBackend("in-process", session, False, USER_PIN, serial_hex, connection.pull)
        return
    if request.param == "pcscd":
        yield from _pcscd_card(request, tmp_path, serial_hex)
        return
    yield from _real_card()


def _pcscd_card(request: pytest.FixtureRequest, tmp_path: Path, serial_hex: str
                ) -> Iterator[CardBackend]:
    from coldvault.backends.pcsc import PcscConnection, wait_for_removal
    from coldvault.cards.openpgp import OpenPgpSession
    from hardware_emulators.openpgp_card.controller import VirtualCard

    pcsc_lab = request.getfixturevalue("pcsc_lab")
    reader = pcsc_lab.reader_names()[0]
    virtual = VirtualCard(state_file=tmp_path / "card.json", serial=CARD_SERIAL)
    virtual.insert(pcsc_lab.reader_ports[0])
    try:
        with PcscConnection(reader) as connection:
            session = OpenPgpSession(connection)
            session.select()
            _enrol(session)
            yield CardBackend("pcscd", session, False, USER_PIN, serial_hex, virtual.pull)
    finally:
        virtual.remove()
        wait_for_removal(reader, timeout=5)


def _real_card() -> Iterator[CardBackend]:
    """The card named by COLDVAULT_REAL_CARD_SERIAL, on the system's pcscd."""
    if os.environ.get("PCSCLITE_CSOCK_NAME"):
        pytest.skip("this process talks to the lab's pcscd; run the real card alone: "
                    "pytest -m realcard tests/conformance")
    from coldvault.backends.pcsc import PcscConnection, is_emulated, list_readers
    from coldvault.cards.openpgp import OpenPgpSession
    from coldvault.errors import ColdvaultError

    wanted = os.environ[REAL_CARD_ENV["serial"]].strip().upper()
    for reader in list_readers():
        try:
            connection = PcscConnection(reader)
        except ColdvaultError:  # an empty or busy reader
            continue
        with contextlib.closing(connection):
            session = OpenPgpSession(connection)
            try:
                session.select()
            except ColdvaultError:  # not an OpenPGP card
                continue
            if wanted not in (session.serial_hex, session.card_id):
                continue
            if is_emulated(session):
                pytest.fail(f"{REAL_CARD_ENV['serial']}={wanted} names a test card")
            yield CardBackend("real-card", session, True, os.environ.get(REAL_CARD_ENV["pin"]),
                              wanted)
            return
    pytest.fail(f"No OpenPGP card with serial {wanted} is inserted.")


# --------------------------------------------------------------------------- frame source
@dataclass
class FrameSourceBackend:
    name: str
    source: Any
    #: the QR texts the source shows, in order
    texts: list[str]


@pytest.fixture(params=["image-files", "virtual-camera"])
def frame_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FrameSourceBackend]:
    """Five BBQr frames of a PSBT, shown once by each backend."""
    from coldvault.transport import bbqr
    from coldvault.transport import render as qr_render

    psbt = (Path(__file__).resolve().parents[1] / "vectors" / "bbqr" / "1in100out.psbt")
    texts = list(bbqr.split(psbt.read_bytes(), "P", encoding="H", max_version=12).parts)
    assert len(texts) >= 3, "the contract needs a multi-frame message"
    if request.param == "image-files":
        from coldvault.transport.frames import ImageFileSource

        first = tmp_path / "frame-0000.png"
        first.write_bytes(qr_render.render_png(texts[0]))
        animation = tmp_path / "rest.gif"
        animation.write_bytes(qr_render.render_gif(texts[1:], frame_duration_ms=200))
        source: Any = ImageFileSource([first, animation])
    else:
        from hardware_emulators.virtual_camera import VirtualCamera

        source = VirtualCamera(qr_render.render_frames(texts), fps=5, realtime=False)
    try:
        yield FrameSourceBackend(request.param, source, texts)
    finally:
        source.close()

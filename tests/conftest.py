"""Root fixtures: the emulated hardware lab for every test suite (docs/lab.md).

``lab`` is the one entry point; the other lab fixtures are views of it.  (They depend on
``session_lab``, the same object, so that a test module may define its own ``lab``.)

* ``lab_config``      the default lab file (hardware_emulators/lab.toml) parsed.
* ``lab``             session: the whole :class:`hardware_emulators.lab.Lab` of this test
                      process -- a private SoftHSM2 with the lab's tokens (sets
                      ``SOFTHSM2_CONF``) and, when pcscd and vpcd are installed, a private
                      pcscd with vpcd readers on runtime-chosen ports (sets
                      ``PCSCLITE_CSOCK_NAME``).  ``lab.insert(serial, reader)`` /
                      ``lab.remove(reader)``; everything is stopped at session end.
* ``softhsm_lab``     ``lab.softhsm``.
* ``pcsc_lab``        ``lab.pcsc`` (skips, or fails in CI, without pcscd + vpcd).
* ``keystore``        a logged-in :class:`Pkcs11Keystore` on the appliance token
                      (``allow_emulated=True``); keys a test creates are deleted afterwards.
* ``card_factory``    ``card_factory(serial=None, reader=0)`` -> inserted blank ``VirtualCard``;
                      everything inserted is removed at test end.
* ``virtual_cards``   all lab cards inserted one per reader (as many as there are readers).

Parallel runs (pytest-xdist, ``make test``): every worker is its own process with its own
lab -- its own token dir, pcscd socket, vpcd ports and card state files, all under the
worker's base temp dir (tests/lab/test_isolation.py proves it).  libpcsclite binds a process
to one pcscd, so one lab per process is also the only arrangement that works.

Missing Debian packages skip with a clear message on a laptop, and FAIL in CI (``CI=true``).
Every lab process is bound to the pytest process (PDEATHSIG + atexit + stop on teardown), so
a worker that dies takes its lab with it (tests/lab/test_cleanup.py).  When a test that used
the PC/SC lab fails, the tail of this worker's pcscd log is added to its report.
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

#: the backend fixtures of the conformance suites (keystore, card, frame source)
pytest_plugins = ["tests.conformance.backends"]
# helper modules whose asserts must explain themselves when they fail, like a test's
pytest.register_assert_rewrite("tests.session.world")


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


def worker_id(config: pytest.Config) -> str:
    """``gw0``, ``gw1``, ... under pytest-xdist; ``main`` in a serial run."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


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


#: the lab of this process while the session fixture holds it (for failure reports)
_SESSION_LAB: list[Lab] = []


#: The modules that keep one worker busy longest (ordered runbooks, module-scoped worlds,
#: consoles driven through pexpect), longest first, from ``--durations`` of a whole run.
#: Under pytest-xdist a free worker takes the next module in collection order
#: (``--dist loadscope --no-loadscope-reorder``, pyproject.toml), so these are handed out
#: first and the many short modules fill in behind them; a long module handed out late would
#: run alone at the end.  Order only: a module missing here runs after them, as collected.
LONG_MODULES = (
    "tests/runbooks/test_runbooks.py",
    "tests/appliance/test_lab_e2e.py",
    "tests/appliance/test_address_book_e2e.py",
    "tests/integrity/test_crash.py",
    "tests/ceremony/test_smoke.py",
    "tests/session/test_cli.py",
    "tests/ceremony/test_no_clobber.py",
    "tests/lab/test_cleanup.py",
    "tests/backup/test_backup_smoke.py",
    "tests/cards/test_collect.py",
    "tests/records/test_printable.py",
    "tests/conformance/test_frame_source.py",
    "tests/session/test_multisig_registration.py",
    "tests/session/test_in_process.py",
    "tests/ceremony/test_revoke.py",
    "tests/hsm/test_benchmarks.py",
    "tests/lab/test_cli.py",
    "tests/codecs/test_dense_frames.py",
    "tests/cards/test_card_tools.py",
    "tests/ceremony/test_approve.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The :data:`LONG_MODULES` first, longest first; every module's own order is kept."""
    rank = {path: i for i, path in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.partition("::")[0], len(rank)))


@pytest.fixture(scope="session")
def lab_config() -> LabConfig:
    return LabConfig.load(DEFAULT_LAB_FILE)


@pytest.fixture(scope="session")
def session_lab(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    lab_config: LabConfig,
) -> Iterator[Lab]:
    """This process's whole lab (see the module docstring).  Cards still inserted at the
    end are removed, pcscd is stopped and the SoftHSM tokens are deleted.  Tests use ``lab``;
    this name exists so that a module may define its own ``lab`` without cutting the other
    lab fixtures off from this one."""
    require_packages("SoftHSM2", softhsm_available(), "softhsm2")
    state_dir = tmp_path_factory.mktemp(f"lab-{worker_id(request.config)}-")
    the_lab = Lab(lab_config, state_dir)
    env = _EnvPatch()
    try:
        the_lab.up(pcsc=_pcsc_available())
        env.set({"SOFTHSM2_CONF": str(the_lab.softhsm.conf_path)})
        if the_lab.pcsc is not None:
            env.set(the_lab.pcsc.env)
        _SESSION_LAB.append(the_lab)
        yield the_lab
    finally:
        _SESSION_LAB.clear()
        env.undo()
        the_lab.down()
        the_lab.softhsm.destroy()


@pytest.fixture(scope="session")
def lab(session_lab: Lab) -> Lab:
    """The one entry point to the emulated hardware of this test process."""
    return session_lab


@pytest.fixture(scope="session")
def softhsm_lab(session_lab: Lab) -> SoftHsmLab:
    return session_lab.softhsm


@pytest.fixture(scope="session")
def pcsc_lab(session_lab: Lab) -> Any:
    require_packages("The PC/SC lab", session_lab.pcsc is not None, "pcscd vsmartcard-vpcd")
    return session_lab.pcsc


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test that used the PC/SC lab gets this worker's pcscd log tail in its report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not _SESSION_LAB:
        return
    if "session_lab" not in getattr(item, "fixturenames", ()):
        return
    pcsc = _SESSION_LAB[0].pcsc
    if pcsc is not None and pcsc.log_file.exists():
        tail = "\n".join(pcsc.log_file.read_text(errors="replace").splitlines()[-30:])
        report.sections.append((f"pcscd log tail ({pcsc.log_file})", tail))

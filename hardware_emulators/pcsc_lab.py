"""A private pcscd with vsmartcard's ``vpcd`` virtual readers, for the hardware lab.

``PcscLab`` runs ``pcscd --foreground`` with its own reader.conf.d directory listing
vpcd readers on free TCP ports, so virtual cards (``hardware_emulators.openpgp_card``)
can be "inserted" by connecting to a reader's port.

Isolation (measured on Debian pcsc-lite 1.9.9 / vsmartcard-vpcd 3.3):

* The 1.9.9 *daemon* ignores ``PCSCLITE_CSOCK_NAME``; it always binds
  ``/run/pcscd/pcscd.comm`` and writes ``/run/pcscd/pcscd.pid`` (and removes both when it
  exits), which would clash with the system pcscd and with colleagues' labs.  So pcscd runs
  in a private mount namespace in which ``<state_dir>/run`` is bind-mounted over ``/run``.
  Clients reach it through ``PCSCLITE_CSOCK_NAME=<state_dir>/run/pcscd/pcscd.comm``
  (see :attr:`PcscLab.env`), which libpcsclite *does* honour.
* ``libpcsclite`` caches the socket name for the life of a process: one client process can
  talk to one pcscd only.  Set ``PCSCLITE_CSOCK_NAME`` before the first PC/SC call.
* USB hot-plug is disabled by bind-mounting an empty directory over pcscd's USB driver
  directory (``/usr/lib/pcsc/drivers``) inside the namespace; the vpcd driver is copied into
  the state dir.  The lab pcscd therefore never grabs a real reader.  This Debian build has
  no polkit support, so no polkit rule is needed.
* Each vpcd ``DEVICENAME /dev/null:<port>`` entry gives **two** readers (slots), listening
  on ``port`` and ``port + 1`` on all interfaces (vpcd's choice; it cannot be narrowed).
  vpcd keeps slot state in a driver-global array, so every entry loads its own copy of the
  driver; with one shared copy only the last entry's readers work.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

PCSCD = "pcscd"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
USB_DRIVER_DIR = Path("/usr/lib/pcsc/drivers")
SLOTS_PER_VPCD_ENTRY = 2
READER_PREFIX = "Coldvault vpcd"

_PR_SET_PDEATHSIG = 1
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


class LabError(RuntimeError):
    """The emulated hardware lab could not be started or misbehaved (with its log tail)."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent(parent_pid: int) -> None:
    """In a forked child: get SIGTERM when the parent dies (and exit if it already did)."""
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def _private_mounts(binds: Sequence[tuple[Path, Path]]) -> None:
    """In a forked child: enter a new mount namespace and bind ``src`` over ``dst``."""
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWNS) != 0:
        # Not root: try an unprivileged user namespace in which we are root.
        if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "making / private failed")
    for src, dst in binds:
        if libc.mount(os.fsencode(src), os.fsencode(dst), None, _MS_BIND, None) != 0:
            raise OSError(ctypes.get_errno(), f"bind mount over {dst} failed")


class ManagedProcess:
    """A child process that dies with us: PDEATHSIG, atexit, and TERM-then-KILL stop().

    Linux delivers PDEATHSIG when the *thread* that forked the child exits, so start lab
    processes from a long-lived thread (normally the main thread), never from a
    short-lived worker thread.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_file: Path,
        env: dict[str, str] | None = None,
        extra_preexec: Callable[[], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_file = log_file
        self._env = env
        self._extra_preexec = extra_preexec
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise ValueError("process already running")
        parent = os.getpid()
        extra = self._extra_preexec

        def preexec() -> None:
            die_with_parent(parent)
            if extra is not None:
                extra()

        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env,
                preexec_fn=preexec,  # noqa: PLW1509 - needed for PDEATHSIG / namespaces
                start_new_session=True,
                close_fds=True,
            )
        atexit.register(self.stop)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM, wait, then SIGKILL.  Idempotent."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def kill(self) -> None:
        """SIGKILL at once (a card pulled out mid-operation)."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(3.0)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("0.0.0.0", port))  # noqa: S104 - vpcd itself binds all interfaces
        except OSError:
            return False
    return True


def find_free_port_run(count: int, *, low: int = 20000, high: int = 60000) -> int:
    """First port of ``count`` consecutive TCP ports that are free right now."""
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(low, high - count)
        if all(_port_free(base + i) for i in range(count)):
            return base
    raise LabError(f"Could not find {count} consecutive free TCP ports.")


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this host (from /proc/net/tcp{,6})."""
    ports: set[int] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class PcscLab:
    """A private ``pcscd`` with ``readers`` vpcd reader slots on free ports.

    >>> with PcscLab(state_dir=tmp) as lab:          # doctest: +SKIP
    ...     os.environ.update(lab.env)
    ...     lab.reader_names()[0], lab.reader_ports[0]
    """

    def __init__(
        self,
        *,
        state_dir: Path,
        readers: int = 3,
        base_port: int | None = None,
        start_timeout: float = 15.0,
        debug: bool = False,
    ) -> None:
        if readers < 1 or readers > 2 * 8:
            raise ValueError("readers must be between 1 and 16")
        self.state_dir = Path(state_dir).resolve()
        self.readers = readers
        self._entries = -(-readers // SLOTS_PER_VPCD_ENTRY)
        self._base_port = base_port
        self.start_timeout = start_timeout
        self.debug = debug
        self.base_port: int | None = None
        self._proc: ManagedProcess | None = None
        self._removals: dict[int, int] = {}  # reader -> pcscd log size when its card left

    # -- paths ---------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def socket_path(self) -> Path:
        return self.run_dir / "pcscd" / "pcscd.comm"

    @property
    def conf_dir(self) -> Path:
        return self.state_dir / "reader.conf.d"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "pcscd.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for PC/SC clients (pyscard, gpg/scdaemon, openpgp-tool)."""
        return {"PCSCLITE_CSOCK_NAME": str(self.socket_path)}

    @property
    def reader_ports(self) -> list[int]:
        if self.base_port is None:
            raise ValueError("the lab is not started")
        return [self.base_port + i for i in range(self.readers)]

    def reader_names(self) -> list[str]:
        """PC/SC reader names, in the order of :attr:`reader_ports`."""
        names = []
        for i in range(self.readers):
            entry, slot = divmod(i, SLOTS_PER_VPCD_ENTRY)
            names.append(f"{READER_PREFIX} {entry} 00 {slot:02X}")
        return names

    # -- card removals ---------------------------------------------------------------------
    def note_removal(self, reader: int) -> None:
        """Call just before the card in ``reader`` is taken out (see :meth:`wait_removals`)."""
        self._removals[reader] = self.log_file.stat().st_size if self.log_file.exists() else 0

    def wait_removals(self, readers: Sequence[int], timeout: float = 3.0) -> None:
        """Wait until pcscd has logged the noted removals from ``readers``.  pcscd polls a
        vpcd reader (every 0.4 s); a card put in before the poll that notices the last one
        leave is taken for the same card, still present, and is never powered up.  After
        ``timeout`` (a card pcscd never saw arrive leaves no removal to log) the notes are
        dropped and the insertion goes ahead: its own wait reports a card pcscd ignores."""
        waiting = {r: self._removals.pop(r) for r in readers if r in self._removals}
        names = self.reader_names()
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            log_bytes = self.log_file.read_bytes()
            for reader, offset in list(waiting.items()):
                if log_bytes.find(f"Card Removed From {names[reader]}".encode(), offset) >= 0:
                    del waiting[reader]
            if waiting:
                time.sleep(0.02)
        if waiting:
            log.warning("pcscd logged no removal from %s within %g s",
                        ", ".join(names[r] for r in waiting), timeout)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.alive()

    # -- lifecycle -----------------------------------------------------------------------
    def _write_config(self, base: int) -> None:
        drivers = self.state_dir / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "empty").mkdir(exist_ok=True)
        if self.conf_dir.exists():
            shutil.rmtree(self.conf_dir)
        self.conf_dir.mkdir(parents=True)
        blocks = []
        for entry in range(self._entries):
            port = base + SLOTS_PER_VPCD_ENTRY * entry
            # vpcd keeps its per-slot contexts in a global array indexed by slot only, so
            # two entries sharing one loaded driver clobber each other: give each entry its
            # own copy of the driver (dlopen loads distinct paths separately).
            driver = drivers / f"libifdvpcd-{entry}.so"
            shutil.copy2(VPCD_DRIVER, driver)
            blocks.append(
                f'FRIENDLYNAME "{READER_PREFIX} {entry}"\n'
                f"DEVICENAME   /dev/null:{port}\n"
                f"LIBPATH      {driver}\n"
                f"CHANNELID    {port}\n"
            )
        (self.conf_dir / "coldvault-vpcd").write_text("\n".join(blocks))

    def start(self) -> PcscLab:
        if not VPCD_DRIVER.exists():
            raise LabError(f"The vpcd driver {VPCD_DRIVER} is missing; install vsmartcard-vpcd.")
        if shutil.which(PCSCD) is None:
            raise LabError("pcscd is not installed.")
        if self.running():
            raise ValueError("the lab is already running")
        attempts = 1 if self._base_port is not None else 3
        last: LabError | None = None
        for _ in range(attempts):
            span = SLOTS_PER_VPCD_ENTRY * self._entries
            base = self._base_port or find_free_port_run(span)
            try:
                self._start_once(base)
                return self
            except LabError as err:
                last = err
                self.stop()
        assert last is not None
        raise last

    def _start_once(self, base: int) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._write_config(base)
        self.base_port = base
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir()
        self.log_file.write_bytes(b"")
        binds = [(self.run_dir, Path("/run")), (self.state_dir / "empty", USB_DRIVER_DIR)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
        argv = [PCSCD, "--foreground", "--config", str(self.conf_dir)]
        argv.append("--debug" if self.debug else "--info")
        self._proc = ManagedProcess(
            argv, log_file=self.log_file, env=env, extra_preexec=lambda: _private_mounts(binds)
        )
        try:
            self._proc.start()
        except subprocess.SubprocessError as err:
            raise LabError(
                "Could not start pcscd in a private mount namespace (needs root or "
                f"unprivileged user namespaces): {err}."
            ) from err
        self._wait_ready(base)

    def _wait_ready(self, base: int) -> None:
        assert self._proc is not None
        ports = {base + i for i in range(SLOTS_PER_VPCD_ENTRY * self._entries)}
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if not self._proc.alive():
                raise LabError(
                    f"pcscd exited with code {self._proc.returncode()} while starting. "
                    f"Log tail:\n{self._proc.log_tail()}"
                )
            text = self.log_file.read_text(errors="replace")
            if "Could not initialize" in text:
                raise LabError(f"A vpcd reader port was taken. Log tail:\n{self._proc.log_tail()}")
            if (
                "daemon ready" in text
                and self.socket_path.exists()
                and ports <= listening_ports()
            ):
                log.info("pcscd pid %s ready on ports %s", self._proc.pid, sorted(ports))
                return
            time.sleep(0.05)
        tail = self._proc.log_tail()
        raise LabError(
            f"pcscd was not ready within {self.start_timeout:g} seconds. Log tail:\n{tail}"
        )

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None

    def __enter__(self) -> PcscLab:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self._proc is not None:
            log.error("pcscd log tail:\n%s", self._proc.log_tail())
        self.stop()

"""The hardware-in-loop lab as a whole: SoftHSM tokens, a private pcscd with vpcd readers and
virtual OpenPGP cards, described by a TOML lab file (``hardware_emulators/lab.toml``).

Two ways to run it:

* **In process** (pytest fixtures): :class:`Lab` ``up()``/``down()``; every child process is
  bound to the calling process (``PR_SET_PDEATHSIG`` + ``atexit`` + TERM-then-KILL stop), so
  an interrupted test run leaves nothing behind.
* **Daemonised** (``coldvault-lab up``): :func:`spawn_daemon` starts a detached supervisor
  (``python -m hardware_emulators.cli serve``) that owns the lab and answers a control
  socket; the lab outlives the command.  The registry file ``lab.json`` in the lab dir names
  the supervisor and its children by PID *and* command line, so ``coldvault-lab down`` from
  any shell stops exactly those processes and nothing else (see :func:`stop_daemon`).

Lab state lives under the lab dir (``COLDVAULT_LAB_DIR``, default ``./lab-state``)::

    softhsm/      SoftHSM2 conf + tokens       pcsc/     pcscd run dir, reader.conf.d, log
    cards/        one state file per card      lab.json  registry (daemon only)
    control.sock  supervisor control socket    daemon.log
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault import schema
from coldvault.errors import ConfigError
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec

DEFAULT_LAB_FILE = Path(__file__).with_name("lab.toml")
REGISTRY = "lab.json"
CONTROL_SOCKET = "control.sock"
DAEMON_LOG = "daemon.log"
DAEMON_MODULE = "hardware_emulators.cli"
DAEMON_COMMAND = "serve"
#: If set to a PID, a daemonised lab stops by itself when that process dies (test runs).
BOUND_TO_ENV = "COLDVAULT_LAB_BOUND_TO"


def default_lab_dir() -> Path:
    """``$COLDVAULT_LAB_DIR`` or ``./lab-state``."""
    return Path(os.environ.get("COLDVAULT_LAB_DIR") or "lab-state").resolve()


class LabFileError(ConfigError):
    """The lab description (TOML) is invalid."""

    code = "lab-file"

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"The lab file {str(path)!r} is invalid: {problem}.")
        self.path = str(path)
        self.problem = problem


class LabNotRunning(ConfigError):
    """No lab supervisor is running for this lab dir."""

    code = "lab-not-running"

    def __init__(self, state_dir: Path) -> None:
        super().__init__(f"No lab is running in {str(state_dir)!r}; run 'coldvault-lab up'.")
        self.state_dir = str(state_dir)


class LabCommandError(ConfigError):
    """A lab command (insert/remove) named an unknown card or reader, or failed."""

    code = "lab-command"


# --------------------------------------------------------------------------- lab file
@dataclass(frozen=True)
class LabToken:
    """A SoftHSM token of the lab and what it stands for."""

    spec: TokenSpec
    role: str  # "appliance" | "backup"
    site: str | None = None


@dataclass(frozen=True)
class CardSpec:
    """A virtual OpenPGP card. It starts blank; enrolment generates its keys."""

    serial: str
    holder: str
    role: str  # "approver" | "admin"
    site: str | None
    pin: str = field(repr=False)
    admin_pin: str = field(repr=False)


_SHORT = schema.Text(max_len=200)
#: The lab file's declared shape (hardware_emulators/lab.toml); nothing else is accepted.
LAB_SCHEMA = schema.Table(
    {
        "lab": schema.Table({"name": _SHORT, "test_only": schema.Flag()}),
        "softhsm": schema.Table(
            {
                "tokens": schema.Items(
                    schema.Table(
                        {k: _SHORT for k in ("label", "so_pin", "user_pin", "role", "site")},
                        required=frozenset({"label", "so_pin", "user_pin"}),
                    ),
                    max_items=64,
                )
            }
        ),
        "pcsc": schema.Table(
            {
                "readers": schema.Number(integer=True, minimum=1, maximum=16),
                "base_port": schema.Number(integer=True, maximum=65535),
            }
        ),
        "cards": schema.Items(
            schema.Table(
                {k: _SHORT for k in ("serial", "holder", "role", "site", "pin", "admin_pin")},
                required=frozenset({"serial", "holder"}),
            ),
            max_items=64,
        ),
    }
)


@dataclass(frozen=True)
class LabConfig:
    name: str
    tokens: tuple[LabToken, ...]
    readers: int
    base_port: int | None
    cards: tuple[CardSpec, ...]

    @property
    def token_specs(self) -> tuple[TokenSpec, ...]:
        return tuple(t.spec for t in self.tokens)

    def appliance_token(self) -> TokenSpec:
        for token in self.tokens:
            if token.role == "appliance":
                return token.spec
        raise KeyError("appliance")

    def card(self, serial: str) -> CardSpec:
        for card in self.cards:
            if card.serial.upper() == serial.upper():
                return card
        raise LabCommandError(
            f"The lab has no card with serial {serial!r} "
            f"(cards: {', '.join(c.serial for c in self.cards)})."
        )

    @classmethod
    def load(cls, path: Path) -> LabConfig:
        path = Path(path)
        try:
            data = schema.load_toml(path.read_bytes(), LAB_SCHEMA)
        except OSError as exc:
            raise LabFileError(path, exc.strerror or type(exc).__name__) from exc
        except schema.SchemaViolation as exc:
            at = f"{exc.where}: " if exc.where else ""
            raise LabFileError(path, at + exc.problem) from None
        try:
            return cls._parse(data)
        except KeyError as exc:
            raise LabFileError(path, f"missing field {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise LabFileError(path, f"{type(exc).__name__}: {exc}") from exc

    @classmethod
    def _parse(cls, data: Mapping[str, Any]) -> LabConfig:
        tokens = tuple(
            LabToken(
                spec=TokenSpec(
                    label=str(t["label"]), so_pin=str(t["so_pin"]), user_pin=str(t["user_pin"])
                ),
                role=_one_of(t.get("role", "backup"), ("appliance", "backup"), "token role"),
                site=t.get("site"),
            )
            for t in data.get("softhsm", {}).get("tokens", [])
        )
        if sum(t.role == "appliance" for t in tokens) != 1:
            raise ValueError("exactly one token must have role 'appliance'")
        pcsc = data.get("pcsc", {})
        readers = int(pcsc.get("readers", 3))
        if not 1 <= readers <= 16:
            raise ValueError("pcsc.readers must be 1..16")
        base_port = int(pcsc.get("base_port", 0)) or None
        cards = tuple(
            CardSpec(
                serial=_serial(c["serial"]),
                holder=str(c["holder"]),
                role=_one_of(c.get("role", "approver"), ("approver", "admin"), "card role"),
                site=c.get("site"),
                pin=str(c.get("pin", "123456")),
                admin_pin=str(c.get("admin_pin", "12345678")),
            )
            for c in data.get("cards", [])
        )
        if len({c.serial for c in cards}) != len(cards):
            raise ValueError("card serials must be unique")
        name = str(data.get("lab", {}).get("name", "coldvault-lab"))
        return cls(name=name, tokens=tokens, readers=readers, base_port=base_port, cards=cards)


def _one_of(value: Any, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _serial(value: Any) -> str:
    text = str(value).upper()
    if len(text) != 8 or any(ch not in "0123456789ABCDEF" for ch in text):
        raise ValueError(f"card serial must be 8 hex digits, not {value!r}")
    return text


# --------------------------------------------------------------------------- in-process lab
class Lab:
    """The whole lab, run in this process (children die with it)."""

    def __init__(
        self,
        config: LabConfig,
        state_dir: Path,
        *,
        softhsm: SoftHsmLab | None = None,
        pcsc: Any = None,
    ) -> None:
        """``softhsm``/``pcsc``: share already-running parts (one pcscd per process, see
        docs/lab.md); a shared pcscd is never stopped by :meth:`down`."""
        self.config = config
        self.state_dir = Path(state_dir).resolve()
        self.softhsm = softhsm or SoftHsmLab(
            state_dir=self.state_dir / "softhsm", tokens=config.token_specs
        )
        self.pcsc: Any = pcsc  # hardware_emulators.pcsc_lab.PcscLab once up
        self._owns_pcsc = False
        self._cards: dict[str, Any] = {}  # serial -> VirtualCard
        self._inserted: dict[int, str] = {}  # reader index -> serial

    @classmethod
    def from_file(cls, path: Path | None = None, state_dir: Path | None = None) -> Lab:
        config = LabConfig.load(Path(path) if path else DEFAULT_LAB_FILE)
        return cls(config, Path(state_dir) if state_dir else default_lab_dir())

    # -- lifecycle
    def up(self, *, pcsc: bool = True) -> Lab:
        """Provision SoftHSM tokens (idempotent); start pcscd + readers; prepare blank cards."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.softhsm.setup()
        if pcsc and self.pcsc is None:
            from hardware_emulators.pcsc_lab import PcscLab

            self.pcsc = PcscLab(
                state_dir=self.state_dir / "pcsc",
                readers=self.config.readers,
                base_port=self.config.base_port,
            )
            try:
                self.pcsc.start()
            except BaseException:
                self.pcsc.stop()
                self.pcsc = None
                raise
            self._owns_pcsc = True
        return self

    def down(self) -> None:
        """Remove every card and stop pcscd (if this lab started it). Tokens are kept."""
        for reader in list(self._inserted):
            with contextlib.suppress(Exception):
                self.remove(reader)
        self._cards.clear()
        if self.pcsc is not None and self._owns_pcsc:
            self.pcsc.stop()
            self.pcsc = None
            self._owns_pcsc = False

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc_info: object) -> None:
        self.down()

    @property
    def env(self) -> dict[str, str]:
        env = dict(self.softhsm.env)
        env["COLDVAULT_LAB_DIR"] = str(self.state_dir)
        if self.pcsc is not None:
            env.update(self.pcsc.env)
        return env

    # -- cards
    def card(self, serial: str) -> Any:
        """The (lazily created) ``VirtualCard`` controller for a card of the lab file."""
        spec = self.config.card(serial)
        if spec.serial not in self._cards:
            from hardware_emulators.openpgp_card.controller import VirtualCard

            card_dir = self.state_dir / "cards"
            card_dir.mkdir(parents=True, exist_ok=True)
            self._cards[spec.serial] = VirtualCard(
                state_file=card_dir / f"{spec.serial}.json",
                serial=int(spec.serial, 16),
                pw1=spec.pin,
                pw3=spec.admin_pin,
            )
        return self._cards[spec.serial]

    def _reader_index(self, reader: int | str) -> int:
        if self.pcsc is None:
            raise LabCommandError("The lab's PC/SC part is not running.")
        names = self.pcsc.reader_names()
        if isinstance(reader, int) or str(reader).isdigit():
            index = int(reader)
            if 0 <= index < len(names):
                return index
        elif reader in names:
            return names.index(reader)
        raise LabCommandError(
            f"The lab has no reader {reader!r} (readers: 0..{len(names) - 1} or "
            f"{', '.join(repr(n) for n in names)})."
        )

    def insert(self, serial: str, reader: int | str) -> None:
        self.insert_many([(serial, reader)])

    def insert_many(self, placements: Sequence[tuple[str, int | str]]) -> None:
        """Insert several cards (lab serial, reader) together: every card is started first,
        then each is waited for, so pcscd sees them all in one poll."""
        wanted: dict[int, str] = {}
        for serial, reader in placements:
            index = self._reader_index(reader)
            held_here = self._inserted.get(index, wanted.get(index))
            if held_here is not None:
                raise LabCommandError(
                    f"Reader {index} already holds card {held_here}; remove it first."
                )
            spec = self.config.card(serial)
            for other, held in {**self._inserted, **wanted}.items():
                if held == spec.serial:
                    raise LabCommandError(f"Card {held} is already in reader {other}.")
            wanted[index] = spec.serial
        self.pcsc.wait_removals(list(wanted))
        started: list[tuple[int, Any, int]] = []  # reader, VirtualCard, log offset
        try:
            for index, serial in wanted.items():
                card = self.card(serial)
                started.append((index, card, card.start_insert(self.pcsc.reader_ports[index])))
                self._inserted[index] = serial
            for _, card, offset in started:
                card.wait_inserted(offset)
        except BaseException:
            for index, _, _ in started:
                self.remove(index)
            raise

    def remove(self, reader: int | str) -> str | None:
        """Pull the card out of a reader; returns its serial (None if the reader was empty)."""
        index = self._reader_index(reader)
        serial = self._inserted.pop(index, None)
        if serial is not None:
            self.pcsc.note_removal(index)
            self._cards[serial].remove()
        return serial

    # -- status
    def _card_facts(self, spec: CardSpec) -> dict[str, Any]:
        """Whether the card has been enrolled (signature key on it), without creating state."""
        path = self.state_dir / "cards" / f"{spec.serial}.json"
        if not path.exists():
            return {"enrolled": False, "signature_counter": 0}
        from hardware_emulators.openpgp_card import state as card_state

        try:
            state = card_state.load_or_create(path, serial=int(spec.serial, 16))
        except (OSError, ValueError, KeyError) as exc:
            return {"enrolled": None, "state_error": f"{type(exc).__name__}: {exc}"}
        return {
            "enrolled": bool(state.fingerprints.get("sig")),
            "signature_counter": state.signature_counter,
        }

    def pids(self) -> dict[str, int]:
        """PIDs of the processes this lab started (for the registry and tests)."""
        found: dict[str, int] = {}
        if self.pcsc is not None and self.pcsc.pid:
            found["pcscd"] = int(self.pcsc.pid)
        for serial in self._inserted.values():
            pid = getattr(self._cards[serial], "pid", None)
            if pid:
                found[f"card:{serial}"] = int(pid)
        return found

    def status(self) -> dict[str, Any]:
        roles = {t.spec.label: t for t in self.config.tokens}
        tokens = []
        for state in self.softhsm.status():
            lab_token = roles.get(state.label)
            tokens.append(
                {
                    "label": state.label,
                    "serial": state.serial,
                    "slot": state.slot,
                    "role": lab_token.role if lab_token else None,
                    "site": lab_token.site if lab_token else None,
                }
            )
        readers = []
        if self.pcsc is not None:
            for i, (name, port) in enumerate(
                zip(self.pcsc.reader_names(), self.pcsc.reader_ports, strict=True)
            ):
                readers.append(
                    {"index": i, "name": name, "port": port, "card": self._inserted.get(i)}
                )
        where = {serial: i for i, serial in self._inserted.items()}
        return {
            "lab": self.config.name,
            "state_dir": str(self.state_dir),
            "softhsm": {
                "conf": str(self.softhsm.conf_path),
                "module": self.softhsm.module_path,
                "tokens": tokens,
            },
            "pcsc": {
                "running": self.pcsc is not None and self.pcsc.running(),
                "pid": self.pcsc.pid if self.pcsc is not None else None,
                "socket": str(self.pcsc.socket_path) if self.pcsc is not None else None,
                "readers": readers,
            },
            "cards": [
                {
                    "serial": c.serial,
                    "holder": c.holder,
                    "role": c.role,
                    "site": c.site,
                    "reader": where.get(c.serial),
                    **self._card_facts(c),
                }
                for c in self.config.cards
            ],
            "env": self.env,
        }


# --------------------------------------------------------------------------- daemonised lab
def proc_identity(pid: int) -> tuple[list[str], str] | None:
    """``(cmdline, start time)`` of a live process from /proc, or None if it is gone.

    Recording both lets ``down`` prove a PID still names the process ``up`` started (PIDs
    are reused; a start time in clock ticks since boot is not).
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] == "Z":  # zombie: already dead, only not reaped yet
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a], fields[19]


def _record(pid: int) -> dict[str, Any] | None:
    ident = proc_identity(pid)
    if ident is None:
        return None
    return {"pid": pid, "cmdline": ident[0], "start": ident[1]}


def is_ours(entry: Mapping[str, Any]) -> bool:
    """Whether a registry entry still names the very process that was recorded."""
    ident = proc_identity(int(entry["pid"]))
    return ident is not None and ident[0] == entry["cmdline"] and ident[1] == entry["start"]


def read_registry(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((Path(state_dir) / REGISTRY).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _write_registry(state_dir: Path, data: Mapping[str, Any]) -> None:
    path = Path(state_dir) / REGISTRY
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path)


def daemon_running(state_dir: Path) -> bool:
    reg = read_registry(state_dir)
    return bool(reg and reg.get("supervisor") and is_ours(reg["supervisor"]))


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def spawn_daemon(
    state_dir: Path, lab_file: Path | None = None, *, timeout: float = 30.0
) -> dict[str, Any]:
    """Start the detached lab supervisor (idempotent) and return its status once ready."""
    state_dir = Path(state_dir).resolve()
    lab_file = Path(lab_file or DEFAULT_LAB_FILE).resolve()
    LabConfig.load(lab_file)  # fail here, in the caller's terminal, on a bad lab file
    if daemon_running(state_dir):
        return send_command(state_dir, {"cmd": "status"})
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / REGISTRY).unlink(missing_ok=True)
    log_path = state_dir / DAEMON_LOG
    argv = [
        sys.executable,
        "-m",
        DAEMON_MODULE,
        "--lab-dir",
        str(state_dir),
        "--lab-file",
        str(lab_file),
        DAEMON_COMMAND,
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            cwd=str(state_dir),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabCommandError(
                f"The lab supervisor exited with code {proc.returncode} while starting. "
                f"Log tail:\n{_log_tail(log_path)}"
            )
        reg = read_registry(state_dir)
        if reg and reg.get("ready") and reg["supervisor"]["pid"] == proc.pid:
            return send_command(state_dir, {"cmd": "status"})
        time.sleep(0.05)
    _terminate_pid(proc.pid, grace=3.0)
    raise LabCommandError(
        f"The lab was not ready within {timeout:g} seconds. Log tail:\n{_log_tail(log_path)}"
    )


def _terminate_pid(pid: int, *, grace: float) -> None:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if proc_identity(pid) is None:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def stop_daemon(state_dir: Path, *, grace: float = 5.0) -> list[int]:
    """Stop exactly the processes the registry names (verified by cmdline + start time).

    The supervisor gets SIGTERM (it stops its children), then SIGKILL after ``grace``; any
    recorded child still alive afterwards is killed the same way.  Returns the PIDs stopped.
    """
    state_dir = Path(state_dir).resolve()
    reg = read_registry(state_dir)
    if reg is None:
        raise LabNotRunning(state_dir)
    entries = [reg["supervisor"], *reg.get("children", {}).values()]
    ours = [e for e in entries if is_ours(e)]
    for entry in ours:
        if is_ours(entry):
            _terminate_pid(int(entry["pid"]), grace=grace)
    (state_dir / REGISTRY).unlink(missing_ok=True)
    (state_dir / CONTROL_SOCKET).unlink(missing_ok=True)
    return [int(e["pid"]) for e in ours]


def send_command(state_dir: Path, request: Mapping[str, Any], timeout: float = 30.0) -> Any:
    """One request/response over the supervisor's control socket (JSON lines)."""
    path = Path(state_dir).resolve() / CONTROL_SOCKET
    if not daemon_running(Path(state_dir)):
        raise LabNotRunning(Path(state_dir).resolve())
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(dict(request)).encode() + b"\n")
        reply = _read_line(sock)
    answer = json.loads(reply)
    if not answer.get("ok"):
        raise LabCommandError(str(answer.get("message", "The lab command failed.")))
    return answer.get("result")


def _read_line(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) > limit:
            raise LabCommandError("The lab control reply is too large.")
    return data


class _Supervisor:
    """The body of ``coldvault-lab serve``: owns a :class:`Lab` and its control socket."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.stopping = False
        # Optional binding for test runs: stop when that process dies (even by SIGKILL).
        bound = os.environ.get(BOUND_TO_ENV, "")
        self._watched = _record(int(bound)) if bound.isdigit() else None
        if bound.isdigit() and self._watched is None:
            raise LabCommandError(f"{BOUND_TO_ENV}={bound} names no running process.")

    def _registry(self, *, ready: bool) -> dict[str, Any]:
        children = {}
        for name, pid in self.lab.pids().items():
            rec = _record(pid)
            if rec is not None:
                children[name] = rec
        supervisor = _record(os.getpid())
        return {
            "supervisor": supervisor,
            "children": children,
            "ready": ready,
            "lab": self.lab.config.name,
            "env": self.lab.env,
        }

    def handle(self, request: Mapping[str, Any]) -> Any:
        cmd = request.get("cmd")
        if cmd == "status":
            return self.lab.status()
        if cmd == "insert":
            self.lab.insert(str(request["card"]), request["reader"])
        elif cmd == "remove":
            return {"removed": self.lab.remove(request["reader"])}
        elif cmd == "stop":
            self.stopping = True
            return {"stopping": True}
        else:
            raise LabCommandError(f"Unknown lab command {cmd!r}.")
        _write_registry(self.lab.state_dir, self._registry(ready=True))
        return self.lab.status()

    def run(self) -> int:
        def stop(_signum: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        sock_path = self.lab.state_dir / CONTROL_SOCKET
        sock_path.unlink(missing_ok=True)
        try:
            self.lab.up()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
                server.bind(str(sock_path))
                os.chmod(sock_path, 0o600)
                server.listen(8)
                server.settimeout(0.2)
                _write_registry(self.lab.state_dir, self._registry(ready=True))
                while not self.stopping:
                    if self._watched is not None and not is_ours(self._watched):
                        break  # the process this lab is bound to has gone
                    try:
                        conn, _ = server.accept()
                    except (TimeoutError, InterruptedError):
                        continue
                    with conn:
                        self._serve_one(conn)
        finally:
            self.lab.down()
            sock_path.unlink(missing_ok=True)
            reg = read_registry(self.lab.state_dir)
            if reg and reg.get("supervisor", {}).get("pid") == os.getpid():
                (self.lab.state_dir / REGISTRY).unlink(missing_ok=True)
        return 0

    def _serve_one(self, conn: socket.socket) -> None:
        conn.settimeout(10.0)
        try:
            request = json.loads(_read_line(conn) or b"{}")
            result = self.handle(request)
            answer: dict[str, Any] = {"ok": True, "result": result}
        except ConfigError as err:
            answer = {"ok": False, "message": err.message}
        except Exception as err:  # noqa: BLE001 - reported to the client, the lab keeps running
            answer = {"ok": False, "message": f"The lab command failed: {err}"}
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(answer).encode() + b"\n")


def serve(state_dir: Path, lab_file: Path | None = None) -> int:
    """Run the lab supervisor in the foreground until SIGTERM/SIGINT (``coldvault-lab serve``)."""
    lab = Lab.from_file(lab_file, state_dir)
    return _Supervisor(lab).run()

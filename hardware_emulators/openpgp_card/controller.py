"""``VirtualCard``: a controller that inserts a virtual OpenPGP card into a vpcd reader.

A card is *inserted* while its process (``python -m hardware_emulators.openpgp_card``) is
connected to a reader port of a :class:`hardware_emulators.pcsc_lab.PcscLab`, and *removed*
when that process ends.  The card's keys, PINs and counters live in ``state_file``, so a
card removed and inserted again (into any reader) is the same card.

    card = VirtualCard(state_file=tmp / "alice.json", serial=0x1001)
    card.insert(lab.reader_ports[0])      # returns once pcscd has powered the card
    ...
    card.remove()                          # orderly: SIGTERM, then SIGKILL
    card.pull()                            # yank it mid-operation: SIGKILL at once
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import TracebackType

from ..pcsc_lab import LabError, ManagedProcess
from . import state as card_state


class VirtualCard:
    """One virtual card (one state file), insertable into one reader port at a time."""

    def __init__(
        self,
        *,
        state_file: Path,
        serial: int | None = None,
        log_file: Path | None = None,
        host: str = "127.0.0.1",
        pw1: str | None = None,
        pw3: str | None = None,
        python: str = sys.executable,
        trace_apdus: bool = False,
        stall: tuple[int, float] | None = None,
    ) -> None:
        self.state_file = Path(state_file).resolve()
        # Create (or check) the state now, so a bad serial fails here and not in the child.
        state = card_state.load_or_create(self.state_file, serial=serial, pw1=pw1, pw3=pw3)
        self.serial = state.serial
        self.log_file = Path(log_file) if log_file else self.state_file.with_suffix(".log")
        self.host = host
        self.python = python
        self.trace_apdus = trace_apdus
        #: fault injection for tests: (INS, seconds) to wait before answering INS
        self.stall = stall
        self.port: int | None = None
        self._proc: ManagedProcess | None = None

    @property
    def serial_hex(self) -> str:
        """Serial as gpg and openpgp-tool print it: 8 upper-case hex digits."""
        return f"{self.serial:08X}"

    @property
    def aid_hex(self) -> str:
        manufacturer = card_state.EMULATED_MANUFACTURER
        return f"D27600012401" f"0304" f"{manufacturer:04X}" f"{self.serial:08X}" "0000"

    @property
    def inserted(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def state(self) -> card_state.CardState:
        """The card's persistent state as last written (for tests and lab status)."""
        return card_state.load_or_create(self.state_file, serial=self.serial)

    def insert(self, port: int, *, timeout: float = 10.0) -> None:
        """Connect the card to reader ``port`` and wait until pcscd has powered it up."""
        self.wait_inserted(self.start_insert(port, timeout=timeout), timeout=timeout)

    def start_insert(self, port: int, *, timeout: float = 10.0) -> int:
        """Start connecting the card to reader ``port`` without waiting for pcscd; pass the
        returned log offset to :meth:`wait_inserted`.  (Several cards started this way are
        seen by pcscd in the same poll.  Start cards from the thread that owns the lab:
        the card process dies with the thread that started it.)"""
        if self.inserted:
            raise ValueError(f"card {self.serial_hex} is already inserted (port {self.port})")
        argv = [
            self.python,
            "-m",
            "hardware_emulators.openpgp_card",
            "--state",
            str(self.state_file),
            "--port",
            str(port),
            "--host",
            self.host,
            "--connect-timeout",
            str(timeout),
        ]
        if self.trace_apdus:
            argv.append("--trace-apdus")
        if self.stall is not None:
            argv += ["--stall", f"{self.stall[0]:02X}:{self.stall[1]:g}"]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._proc = ManagedProcess(argv, log_file=self.log_file)
        self._proc.start()
        self.port = port
        return offset

    def wait_inserted(self, offset: int, *, timeout: float = 10.0) -> None:
        """Wait until pcscd has powered up the card started by :meth:`start_insert`."""
        if self._proc is None:
            raise ValueError(f"card {self.serial_hex} was not started into a reader")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
            # pcscd sees the card on an ATR poll, then powers it up and reads the ATR again.
            on = text.find("event=power-on")
            if on >= 0 and "event=atr" in text[on:]:
                time.sleep(0.1)  # let pcscd publish the new reader state
                return
            if not self._proc.alive():
                break
            time.sleep(0.05)
        tail = self._proc.log_tail()
        self._proc.stop()
        raise LabError(
            f"Virtual card {self.serial_hex} was not seen by pcscd on port {self.port} "
            f"within {timeout:g} seconds (is another card already in that reader?). "
            f"Card log tail:\n{tail}"
        )

    def remove(self) -> None:
        """Take the card out of its reader (SIGTERM, escalating to SIGKILL).  Idempotent."""
        if self._proc is not None:
            self._proc.stop()
        self._proc = None
        self.port = None

    def pull(self) -> None:
        """Yank the card out at once (SIGKILL), e.g. in the middle of an operation."""
        if self._proc is not None:
            self._proc.kill()
        self._proc = None
        self.port = None

    stop = remove

    def __enter__(self) -> VirtualCard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

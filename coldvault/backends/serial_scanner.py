"""Hardware QR scanners that "type" each decoded code as a line of text.

Serial (USB-CDC/UART) scanners are read with pyserial; HID keyboard-wedge scanners and
test harnesses are read from any binary stream (stdin, a pty, a pipe; one with a file
descriptor is polled like a serial port, so a silent pipe never blocks the reader's
deadlines).  Lines end with CR,
LF or CRLF; empty lines are skipped.  A line longer than ``max_line_len`` is read to its
end without being kept (memory stays bounded) and then reported as
:class:`ScannerLineTooLong`; the end of the stream simply ends :meth:`SerialScanner.lines`
(the reader reports it as the end of input, never as a timeout).

Implements :class:`coldvault.transport.frames.TextSource`.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, Literal, overload

from coldvault.errors import InputError
from coldvault.transport.frames import NOTHING_IN_VIEW, SILENT_SECONDS, CameraError

#: Longest accepted line: a version-40 QR holds at most 4,296 alphanumeric characters.
DEFAULT_MAX_LINE_LEN = 8192
#: How long one poll of a silent scanner waits (the serial port's read timeout too).
_POLL_SECONDS = 0.05
#: At least any stream's buffer size (io.DEFAULT_BUFFER_SIZE is 8 KiB).
_READ_MAX = 1 << 16


def _fileno(stream: BinaryIO) -> int | None:
    """The descriptor under ``stream`` (stdin, a pipe, a pty); None for in-memory streams."""
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError
        return None


class ScannerError(CameraError):
    """The QR scanner is missing, cannot be opened, or went away."""

    code = "scanner"


class ScannerLineTooLong(InputError):
    """The scanner sent a line longer than any QR code holds (a misconfigured scanner or
    something typing into it); the line was discarded."""

    code = "scanner-line-too-long"

    def __init__(self, device: str, max_line_len: int) -> None:
        super().__init__(
            f"The QR scanner {device} sent a line longer than {max_line_len} characters, more "
            "than any QR code holds; the line was discarded and nothing was signed."
        )
        self.device = device
        self.max_line_len = max_line_len


class SerialScanner:
    """Yields lines from a serial QR scanner (``port``) or from a binary ``stream``.

    ``idle_timeout`` (seconds) ends :meth:`lines` when nothing arrives for that long; the
    default ``None`` waits forever (until :meth:`close` or end of stream).
    """

    def __init__(
        self,
        port: str | None = None,
        *,
        stream: BinaryIO | None = None,
        baudrate: int = 115200,
        idle_timeout: float | None = None,
        max_line_len: int = DEFAULT_MAX_LINE_LEN,
    ) -> None:
        if (port is None) == (stream is None):
            raise ValueError("give exactly one of port or stream")
        if max_line_len < 16:
            raise ValueError("max_line_len is too small for any QR frame")
        self.device: str = port or str(getattr(stream, "name", "<stream>"))
        self.idle_timeout = idle_timeout
        self.max_line_len = max_line_len
        self.overlong_lines = 0
        self._closed = False
        self._serial: Any = None
        self._stream = stream
        if port is not None:
            self._serial = self._open_serial(port, baudrate)

    def _open_serial(self, port: str, baudrate: int) -> Any:
        try:
            import serial
        except ImportError as exc:  # pragma: no cover - pyserial is a core dependency
            raise ScannerError(
                "pyserial is not installed, so serial QR scanners cannot be used.",
                device=port,
            ) from exc
        if not os.path.exists(port):
            raise ScannerError(
                f"The QR scanner device {port} does not exist; check the cable and udev rules.",
                device=port,
            )
        try:
            return serial.Serial(port, baudrate=baudrate, timeout=_POLL_SECONDS)
        except (serial.SerialException, OSError) as exc:
            raise ScannerError(
                f"The QR scanner device {port} cannot be opened ({exc.__class__.__name__}); "
                "check permissions and that no other program uses it.",
                device=port,
            ) from None

    def _read_chunk(self) -> bytes | None:
        """Some bytes, b'' when nothing arrived within the poll interval, None at EOF."""
        if self._serial is not None:
            import serial

            try:
                waiting = self._serial.in_waiting
                return bytes(self._serial.read(max(1, min(waiting, 4096))))
            except (serial.SerialException, OSError) as exc:
                raise ScannerError(
                    f"The QR scanner {self.device} stopped responding ({exc.__class__.__name__}).",
                    device=self.device,
                ) from None
        stream = self._stream
        if stream is None:
            return None
        fd = _fileno(stream)
        if fd is not None:  # poll like the serial port: a silent pipe gives control back
            ready, _, _ = select.select([fd], [], [], _POLL_SECONDS)
            if not ready:
                return b""
        reader = getattr(stream, "read1", None)
        # one read of at most _READ_MAX takes everything a buffered reader holds and leaves
        # nothing behind it, so the next poll of the descriptor sees every byte not yet read
        chunk = reader(_READ_MAX) if reader is not None else stream.read(1)
        return chunk or None

    @overload
    def lines(self, *, ticks: Literal[False] = False) -> Iterator[str]: ...

    @overload
    def lines(self, *, ticks: Literal[True]) -> Iterator[str | None]: ...

    def lines(self, *, ticks: bool = False) -> Iterator[str | None]:
        """The scanned lines, until end of input (or ``idle_timeout``, or :meth:`close`).

        With ``ticks`` every poll that brings no complete line yields ``None``, so a reader
        with a deadline gets control back while the scanner is silent; once it has been
        silent for :data:`~coldvault.transport.frames.SILENT_SECONDS` each poll yields
        :data:`~coldvault.transport.frames.NOTHING_IN_VIEW` instead (a scanner that sees no
        code sends nothing). A line longer than ``max_line_len`` raises
        :class:`ScannerLineTooLong` once its end has been read."""
        buffer = bytearray()
        discarding = False
        last_data = time.monotonic()
        while not self._closed:
            chunk = self._read_chunk()
            if chunk is None:
                break
            if not chunk:
                silent = time.monotonic() - last_data
                if self.idle_timeout is not None and silent > self.idle_timeout:
                    break
                if ticks:
                    yield NOTHING_IN_VIEW if silent >= SILENT_SECONDS else None
                continue
            last_data = time.monotonic()
            complete = False
            for byte in chunk:
                if byte in (0x0A, 0x0D):
                    if discarding:
                        raise ScannerLineTooLong(self.device, self.max_line_len)
                    if buffer:
                        complete = True
                        yield buffer.decode("utf-8", errors="replace")
                    buffer.clear()
                    continue
                if discarding:
                    continue
                if len(buffer) >= self.max_line_len:
                    self.overlong_lines += 1
                    buffer.clear()
                    discarding = True
                    continue
                buffer.append(byte)
            if ticks and not complete:
                yield None
        if discarding:
            raise ScannerLineTooLong(self.device, self.max_line_len)
        if buffer:
            yield buffer.decode("utf-8", errors="replace")

    def close(self) -> None:
        self._closed = True
        if self._serial is not None:
            self._serial.close()

    def __enter__(self) -> SerialScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

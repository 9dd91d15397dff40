"""vpcd's socket protocol, card side.

The virtual card connects to a vpcd reader port (TCP).  Every message, both ways, is a
2-byte big-endian length followed by the payload.  A 1-byte payload from vpcd is a control
code (0 power off, 1 power on, 2 reset, 4 get ATR; only "get ATR" is answered); anything
longer is a command APDU answered with response data + SW1 SW2.  Closing the connection is
removing the card.
"""

from __future__ import annotations

import enum
import logging
import socket
import time

from .card import ATR, OpenPgpCard

log = logging.getLogger("openpgp_card")


class Control(enum.IntEnum):
    POWER_OFF = 0
    POWER_ON = 1
    RESET = 2
    GET_ATR = 4


#: Linux: acknowledge every segment at once.  vpcd writes a message's length and its payload
#: in two writes, so with Nagle on its side the payload waits for our ACK of the length; a
#: delayed ACK (about 40 ms) would then be paid on every APDU.  The flag does not stick, so it
#: is set again before every read.
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if _QUICKACK is not None:
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf.extend(chunk)
    return bytes(buf)


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(len(payload).to_bytes(2, "big") + payload)


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """Connect to the reader, retrying until ``timeout`` (pcscd may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=2.0)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def serve(
    card: OpenPgpCard,
    sock: socket.socket,
    *,
    trace_apdus: bool = False,
    stall: tuple[int, float] | None = None,
) -> None:
    """Answer vpcd until it closes the connection.

    ``stall=(ins, seconds)`` is fault injection for tests: wait before answering that
    instruction, so a test can pull the card in the middle of the command."""
    log.info("event=connected")
    while True:
        header = _recv_exact(sock, 2)
        if header is None:
            break
        length = int.from_bytes(header, "big")
        payload = _recv_exact(sock, length) if length else b""
        if payload is None:
            break
        if len(payload) == 1:
            code = payload[0]
            if code == Control.GET_ATR:
                _send(sock, ATR)
                log.info("event=atr")
            elif code == Control.POWER_ON:
                card.power_off()
                log.info("event=power-on")
            elif code in (Control.POWER_OFF, Control.RESET):
                card.power_off()
                log.info("event=%s", Control(code).name.lower().replace("_", "-"))
            else:
                log.warning("unknown vpcd control code %d", code)
            continue
        if trace_apdus:  # debug only: APDUs include PINs
            log.warning("APDU TRACE (contains secrets) > %s", payload.hex())
        if stall is not None and len(payload) > 1 and payload[1] == stall[0]:
            log.info("event=stall ins=%02X", stall[0])
            time.sleep(stall[1])
        response = card.process(payload)
        if trace_apdus:
            log.warning("APDU TRACE < %s", response.hex())
        _send(sock, response)
    log.info("event=disconnected")

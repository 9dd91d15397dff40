"""ISO/IEC 7816-4 framing: command APDUs, status words, command chaining, GET RESPONSE.

Pure: the only I/O is the one wire primitive of the :class:`CardConnection` it is handed.
Only short APDUs are built (at most 255 data bytes, Le ``00`` = up to 256 bytes), because
that is what every card coldvault meets supports:

* a command longer than 255 bytes is sent as a chain (CLA ``10`` on all parts but the last,
  ISO 7816-4 §5.1.1.1); Le goes on the last part only;
* a response announced by ``61xx`` is collected with GET RESPONSE, at most
  :data:`MAX_RESPONSE` bytes (a card answering ``61xx`` for ever is a protocol error).

Status words are returned, not judged: which status word means which error depends on the
application (:func:`coldvault.cards.openpgp.status_error`).
"""

from __future__ import annotations

import enum
from typing import Protocol

from coldvault.cards.errors import CardProtocolError
from coldvault.crypto import wipe

#: Largest response collected through GET RESPONSE.
MAX_RESPONSE = 65536
#: Largest data field of a short command APDU.
MAX_SHORT_DATA = 255

CLA = 0x00
CLA_CHAINED = 0x10


class CardConnection(Protocol):
    """One wire primitive: send a command APDU, get the response data and the status word."""

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]: ...


class Ins(enum.IntEnum):
    """Instruction bytes (ISO 7816-4 and -8) coldvault sends."""

    SELECT = 0xA4
    GET_DATA = 0xCA
    VERIFY = 0x20
    CHANGE_REFERENCE_DATA = 0x24
    RESET_RETRY_COUNTER = 0x2C
    PUT_DATA = 0xDA
    GENERATE_ASYMMETRIC_KEY_PAIR = 0x47
    PSO = 0x2A
    GET_RESPONSE = 0xC0


class Sw(enum.IntEnum):
    """Status words coldvault tells apart."""

    OK = 0x9000
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS = 0x6982
    AUTH_BLOCKED = 0x6983
    CONDITIONS = 0x6985
    WRONG_DATA = 0x6A80
    FUNC_UNSUPPORTED = 0x6A81
    NOT_FOUND = 0x6A82
    WRONG_P1P2 = 0x6A86
    DATA_NOT_FOUND = 0x6A88
    INS_UNSUPPORTED = 0x6D00
    CLA_UNSUPPORTED = 0x6E00


def more_data(sw: int) -> int | None:
    """For ``61xx``: how many bytes are waiting (``xx``, 0 meaning 256); otherwise None."""
    return sw & 0xFF if sw >> 8 == 0x61 else None


def command(
    ins: int,
    p1: int,
    p2: int,
    data: bytes | bytearray = b"",
    *,
    le: int | None = None,
    chained: bool = False,
) -> bytearray:
    """One short command APDU ``CLA INS P1 P2 [Lc data] [Le]`` (``le=0`` asks for up to 256
    bytes).  A bytearray, so a caller sending a PIN can wipe it."""
    if len(data) > MAX_SHORT_DATA:
        raise ValueError("a short APDU carries at most 255 data bytes; use transmit()")
    if le is not None and not 0 <= le <= 0xFF:
        raise ValueError("Le must be 0..255 (0 means 256)")
    apdu = bytearray([CLA_CHAINED if chained else CLA, ins, p1, p2])
    if data:
        apdu.append(len(data))
        apdu += data
    if le is not None:
        apdu.append(le)
    return apdu


def transmit(
    connection: CardConnection,
    ins: int,
    p1: int,
    p2: int,
    data: bytes | bytearray = b"",
    *,
    le: bool = True,
) -> tuple[bytes, int]:
    """Send one command (chained when ``data`` exceeds 255 bytes) and collect a ``61xx``
    response with GET RESPONSE.  Returns ``(response data, final status word)``.

    Every APDU buffer that held ``data`` is wiped after it was sent (``data`` may be a PIN).
    A chain stops at the first part the card does not accept with ``9000``."""
    chunks = [bytearray(data[i : i + MAX_SHORT_DATA]) for i in range(0, len(data), MAX_SHORT_DATA)]
    if not chunks:
        chunks = [bytearray()]
    response, sw = b"", 0
    try:
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            apdu = command(ins, p1, p2, chunk, le=0 if le and last else None, chained=not last)
            try:
                response, sw = connection.send_and_receive(bytes(apdu))
            finally:
                wipe(apdu)
            if not last and sw != Sw.OK:
                break
    finally:
        for chunk in chunks:
            wipe(chunk)
    collected = bytearray(response)
    waiting = more_data(sw)
    while waiting is not None:
        if len(collected) > MAX_RESPONSE:
            raise CardProtocolError("The card's response exceeds 64 KiB.")
        more, sw = connection.send_and_receive(bytes(command(Ins.GET_RESPONSE, 0, 0, le=waiting)))
        collected += more
        waiting = more_data(sw)
    return bytes(collected), sw

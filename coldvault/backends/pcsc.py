"""PC/SC backend: the only module that imports pyscard.

Discovery (:func:`list_readers`, :func:`wait_for_card`, :func:`wait_for_removal`) is kept
apart from the connection (:class:`PcscConnection`, a
:class:`~coldvault.cards.iso7816.CardConnection`).  PC/SC result codes become the transport
errors of :mod:`coldvault.cards.errors` here and nowhere else.  Only standard APDUs pass
through, so the same code serves YubiKey 5, Nitrokey 3 and the lab's virtual card.
:class:`PcscCardAccess` puts the three together as the card access the approval loop
(:mod:`coldvault.quorum.collect`) is handed.

Note: libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process, at the first PC/SC
call; a process talks to one pcscd for its whole life.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from smartcard import scard

from coldvault.cards.errors import (
    CardBusy,
    CardProtocolError,
    CardRemoved,
    CardTimeout,
    CardTransportError,
    NoCard,
    PcscUnavailable,
    ReaderNotFound,
)
from coldvault.cards.openpgp import OpenPgpSession

__all__ = [
    "PcscCardAccess",
    "PcscConnection",
    "is_emulated",
    "list_readers",
    "wait_for_card",
    "wait_for_removal",
]

log = logging.getLogger(__name__)

#: Reader names of virtual readers: the lab's vpcd readers and stock vpcd.
VIRTUAL_READER_PREFIXES = ("Coldvault vpcd", "Virtual PCD")

_GONE = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_RESET_CARD}
_NO_READER = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE}
_NO_SERVICE = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED}


def _code(hresult: int) -> str:
    return f"0x{hresult & 0xFFFFFFFF:08X} ({scard.SCardGetErrorMessage(hresult)})"


def _establish() -> int:
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscUnavailable(_code(hresult))
    return int(context)


def _release(context: int) -> None:
    scard.SCardReleaseContext(context)


def _list(context: int) -> list[str]:
    hresult, readers = scard.SCardListReaders(context, [])
    if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
        return []
    if hresult in _NO_SERVICE:
        raise PcscUnavailable(_code(hresult))
    if hresult != scard.SCARD_S_SUCCESS:
        raise CardTransportError(f"Listing smart-card readers failed: {_code(hresult)}.")
    return list(readers)


def list_readers() -> list[str]:
    """Names of the attached readers (empty when there are none)."""
    context = _establish()
    try:
        return _list(context)
    finally:
        _release(context)


class PcscConnection:
    """An open connection to the card in ``reader`` (T=1 or T=0, as the card offers).

    ``exclusive`` (the default) keeps other programs (gpg's scdaemon, OpenSC) off the card
    between PIN verification and signing.
    """

    def __init__(self, reader: str, *, exclusive: bool = True) -> None:
        self.reader = reader
        self._context = _establish()
        share = scard.SCARD_SHARE_EXCLUSIVE if exclusive else scard.SCARD_SHARE_SHARED
        protocols = scard.SCARD_PROTOCOL_T1 | scard.SCARD_PROTOCOL_T0
        hresult, card, protocol = scard.SCardConnect(self._context, reader, share, protocols)
        if hresult != scard.SCARD_S_SUCCESS:
            _release(self._context)
            raise self._connect_error(hresult)
        self._card: int | None = card
        self.protocol = int(protocol)

    def _connect_error(self, hresult: int) -> Exception:
        if hresult in _GONE or hresult in (
            scard.SCARD_W_UNPOWERED_CARD,
            scard.SCARD_W_UNRESPONSIVE_CARD,
        ):
            return NoCard(self.reader)
        if hresult in _NO_READER:
            return ReaderNotFound(self.reader)
        if hresult == scard.SCARD_E_SHARING_VIOLATION:
            return CardBusy(self.reader)
        if hresult in _NO_SERVICE:
            return PcscUnavailable(_code(hresult))
        return CardTransportError(
            f"Connecting to the card in {self.reader!r} failed: {_code(hresult)}."
        )

    def _card_vanished(self, settle: float = 1.5) -> bool:
        """After a failed transfer: does the reader go empty within ``settle`` seconds?

        pcscd polls vpcd/CCID presence every few hundred ms, so a card yanked mid-command
        first shows up as a failed transaction and only then as an empty reader."""
        deadline = time.monotonic() + settle
        known = scard.SCARD_STATE_UNAWARE
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            hresult, states = scard.SCardGetStatusChange(
                self._context, int(remaining * 1000), [(self.reader, known)]
            )
            if hresult == scard.SCARD_E_TIMEOUT:
                return False
            if hresult != scard.SCARD_S_SUCCESS:
                return True
            event = states[0][1]
            if not event & scard.SCARD_STATE_PRESENT or event & scard.SCARD_STATE_MUTE:
                return True
            if remaining <= 0:
                return False
            known = event & ~scard.SCARD_STATE_CHANGED

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self._card is None:
            raise CardRemoved(self.reader)
        response = self._transmit(apdu)
        sw = (response[-2] << 8) | response[-1]
        if self.protocol == scard.SCARD_PROTOCOL_T0 and sw >> 8 == 0x6C and len(apdu) >= 5:
            # T=0: wrong Le; repeat the command with the Le the card asked for.
            response = self._transmit(apdu[:-1] + bytes([sw & 0xFF]))
            sw = (response[-2] << 8) | response[-1]
        return bytes(response[:-2]), sw

    def _transmit(self, apdu: bytes) -> list[int]:
        hresult, response = scard.SCardTransmit(self._card, self.protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            raise self._transmit_error(hresult)
        if len(response) < 2:
            # vpcd reports a card that vanished mid-command as an empty "success"
            if self._card_vanished():
                self._drop()
                raise CardRemoved(self.reader)
            raise CardProtocolError("The card sent a response without a status word.")
        return list(response)

    def _transmit_error(self, hresult: int) -> Exception:
        if hresult in _NO_SERVICE:
            self._drop()
            return PcscUnavailable(_code(hresult))
        if hresult in _NO_READER:
            self._drop()
            return ReaderNotFound(self.reader)
        if hresult in _GONE or hresult == scard.SCARD_E_INVALID_HANDLE:
            self._drop()
            return CardRemoved(self.reader)
        if hresult in (
            scard.SCARD_E_NOT_TRANSACTED,
            scard.SCARD_F_COMM_ERROR,
        ) and self._card_vanished():
            self._drop()
            return CardRemoved(self.reader)
        return CardTransportError(
            f"Talking to the card in {self.reader!r} failed: {_code(hresult)}."
        )

    def _drop(self) -> None:
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_LEAVE_CARD)
            self._card = None

    def close(self) -> None:
        """Disconnect, resetting the card so no PIN verification outlives us."""
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_RESET_CARD)
            self._card = None
        if self._context:
            _release(self._context)
            self._context = 0

    def __enter__(self) -> PcscConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _wait(readers: list[str] | None, timeout: float, want_present: bool) -> str:
    what = "a card" if want_present else "the card to be removed"
    deadline = time.monotonic() + timeout
    context = _establish()
    try:
        names = readers if readers is not None else _list(context)
        if readers is None and not names:
            raise ReaderNotFound("(any reader)")
        states = [(name, scard.SCARD_STATE_UNAWARE) for name in names]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CardTimeout(what, timeout)
            hresult, new_states = scard.SCardGetStatusChange(
                context, int(min(remaining, 1.0) * 1000), states
            )
            if hresult == scard.SCARD_E_TIMEOUT:
                continue
            if hresult in _NO_READER:
                raise ReaderNotFound(names[0] if len(names) == 1 else "(one of the readers)")
            if hresult in _NO_SERVICE:
                raise PcscUnavailable(_code(hresult))
            if hresult != scard.SCARD_S_SUCCESS:
                raise CardTransportError(f"Watching the readers failed: {_code(hresult)}.")
            for name, event, _atr in new_states:
                if event & scard.SCARD_STATE_UNKNOWN:
                    raise ReaderNotFound(name)
                present = bool(event & scard.SCARD_STATE_PRESENT) and not (
                    event & scard.SCARD_STATE_MUTE
                )
                if present == want_present:
                    return str(name)
            states = [(name, event & ~scard.SCARD_STATE_CHANGED) for name, event, _ in new_states]
    finally:
        _release(context)


def wait_for_card(reader: str | None = None, *, timeout: float = 30.0) -> str:
    """Wait until a card is present in ``reader`` (or any reader); return the reader."""
    return _wait([reader] if reader else None, timeout, want_present=True)


def wait_for_removal(reader: str, *, timeout: float = 30.0) -> None:
    """Wait until ``reader`` is empty."""
    _wait([reader], timeout, want_present=False)


def is_emulated(session: OpenPgpSession) -> bool:
    """True for the lab's virtual card: a test-card manufacturer id, or a virtual reader."""
    if session.is_test_card:
        return True
    connection = session.connection
    reader = getattr(connection, "reader", "")
    return isinstance(connection, PcscConnection) and reader.startswith(VIRTUAL_READER_PREFIXES)


class PcscCardAccess:
    """Cards in PC/SC readers, as the approval loop takes them
    (:class:`coldvault.quorum.collect.CardAccess`).

    ``reader`` limits it to one reader (None: whichever reader a card is inserted into);
    ``timeout`` bounds each wait for a card to be inserted or removed (:class:`CardTimeout`).
    Cards are opened exclusively and reset when closed, so no PIN verification outlives the
    card's turn."""

    def __init__(self, reader: str | None = None, *, timeout: float = 120.0) -> None:
        self.reader = reader
        self.timeout = timeout

    def wait_for_card(self) -> str:
        return wait_for_card(self.reader, timeout=self.timeout)

    @contextmanager
    def open(self, reader: str) -> Iterator[OpenPgpSession]:
        """The card in ``reader`` with its OpenPGP application selected; closed on exit."""
        with PcscConnection(reader) as connection:
            session = OpenPgpSession(connection)
            session.select()
            yield session

    def is_emulated(self, card: OpenPgpSession) -> bool:
        return is_emulated(card)

    def wait_for_removal(self, reader: str) -> None:
        wait_for_removal(reader, timeout=self.timeout)

"""Errors of smart cards and their readers, below the OpenPGP application.

Three families, all :class:`~coldvault.errors.HardwareError`:

* :class:`CardTransportError` -- the reader, the PC/SC service or the card's connection
  failed.  Raised by connection implementations (``coldvault.backends.pcsc``); they live
  here so library code can catch them without importing a card library.
* :class:`ApduError` -- the card answered a command with an unexpected status word
  (``sw``, ``ins``).  Which status word becomes which subclass is decided in one place,
  :func:`coldvault.cards.openpgp.status_error`.
* :class:`CardProtocolError` -- the card's response is malformed.

The OpenPGP PIN errors (wrong PIN, blocked PIN, ...) are in :mod:`coldvault.cards.openpgp`,
next to the PIN references they name.  Every error carries its data as attributes; none
ever contains a PIN.
"""

from __future__ import annotations

from coldvault.errors import HardwareError


# ---------------------------------------------------------------------------------------
# Transport (raised by connection implementations)
# ---------------------------------------------------------------------------------------
class CardTransportError(HardwareError):
    """The reader or the card's connection failed."""

    code = "card-transport"


class ReaderNotFound(CardTransportError):
    """The named smart-card reader is not attached."""

    code = "reader-not-found"

    def __init__(self, reader: str) -> None:
        super().__init__(f"The smart-card reader {reader!r} was not found.")
        self.reader = reader


class NoCard(CardTransportError):
    """The reader has no card in it."""

    code = "no-card"

    def __init__(self, reader: str) -> None:
        super().__init__(f"There is no card in the reader {reader!r}; insert a card.")
        self.reader = reader


class CardRemoved(CardTransportError):
    """The card was removed (or reset) while it was in use."""

    code = "card-removed"

    def __init__(self, reader: str) -> None:
        super().__init__(
            f"The card was removed from the reader {reader!r} during the operation; "
            "insert it again and repeat the operation."
        )
        self.reader = reader


class PcscUnavailable(CardTransportError):
    """The PC/SC service (pcscd) is not running or not reachable."""

    code = "pcsc-unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"The smart-card service is not available ({detail}).")
        self.detail = detail


class CardBusy(CardTransportError):
    """Another program holds the card exclusively."""

    code = "card-busy"

    def __init__(self, reader: str) -> None:
        super().__init__(
            f"The card in {reader!r} is in use by another program (e.g. gpg's scdaemon); "
            "close it and try again."
        )
        self.reader = reader


class CardTimeout(CardTransportError):
    """Waiting for a card to be inserted or removed timed out."""

    code = "card-timeout"

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"Timed out after {seconds:g} seconds waiting for {what}.")
        self.what = what
        self.seconds = seconds


# ---------------------------------------------------------------------------------------
# Status words (translated by coldvault.cards.openpgp.status_error)
# ---------------------------------------------------------------------------------------
class ApduError(HardwareError):
    """The card answered a command with an unexpected status word."""

    code = "card-status"

    def __init__(self, sw: int, ins: int, message: str | None = None) -> None:
        super().__init__(
            message or f"The card refused command {ins:02X} with status word {sw:04X}."
        )
        self.sw = sw
        self.ins = ins


class ApplicationNotFound(ApduError):
    """The card has no OpenPGP application."""

    code = "no-openpgp-application"


class CardRejectedData(ApduError):
    """The card rejected the command data as invalid (6A80) or its length (6700)."""

    code = "card-rejected-data"


class UnsupportedAlgorithm(CardRejectedData):
    """The card does not support the requested key algorithm or curve."""

    code = "unsupported-algorithm"


class DataNotFound(ApduError):
    """The requested data object or key does not exist on the card (6A88)."""

    code = "card-data-not-found"


class NoKey(DataNotFound):
    """The card has no key in the signature slot."""

    code = "no-key"


class UnsupportedCommand(ApduError):
    """The card does not implement the command (6D00/6E00/6A81)."""

    code = "card-unsupported"


class CardProtocolError(HardwareError):
    """The card's response is malformed (bad TLV, wrong lengths, endless chaining)."""

    code = "card-protocol"


# ---------------------------------------------------------------------------------------
# Cards refused before use
# ---------------------------------------------------------------------------------------
class EmulatedCardRefused(HardwareError):
    """An emulated (test) card was offered where only real cards are accepted."""

    code = "emulated-card"

    def __init__(self, card_serial: str) -> None:
        super().__init__(
            f"Card {card_serial} is an emulated (test) card; production refuses it. "
            "Only a lab run that allows emulated hardware (allow_emulated_hardware in the "
            "configuration and --allow-emulated) accepts it."
        )
        self.card_serial = card_serial

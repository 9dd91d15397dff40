"""Where cards come from: the seam between the card protocol and a card backend.

A :class:`CardAccess` finds the card a person inserts and opens it as an
:class:`~coldvault.cards.openpgp.OpenPgpSession`; it never decides anything about the card.
``coldvault.backends.pcsc.PcscCardAccess`` is the PC/SC implementation; tests hand the
approval loop (:mod:`coldvault.quorum.collect`) the virtual card in-process through the same
four methods.  Discovery (waiting) is kept apart from use (opening).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from coldvault.cards.openpgp import OpenPgpSession


class CardAccess(Protocol):
    """Cards inserted one at a time, opened with their OpenPGP application selected."""

    def wait_for_card(self) -> str:
        """Block until a card is present; return the reader it is in.  Raises
        :class:`~coldvault.cards.errors.CardTimeout` (or another transport error)."""
        ...

    def open(self, reader: str) -> AbstractContextManager[OpenPgpSession]:
        """The card in ``reader``, OpenPGP application selected, used by one holder only
        (exclusive), and closed (reset: no PIN verification survives) when the block ends."""
        ...

    def is_emulated(self, card: OpenPgpSession) -> bool:
        """Whether ``card`` (opened by this access) is an emulated test card."""
        ...

    def wait_for_removal(self, reader: str) -> None:
        """Block until ``reader`` is empty again."""
        ...

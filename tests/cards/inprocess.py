"""The lab's virtual OpenPGP card in-process, behind the library's two card seams.

* :class:`DirectConnection` -- a :class:`coldvault.cards.iso7816.CardConnection` whose APDUs
  go straight to the virtual card's state machine (``hardware_emulators.openpgp_card``):
  the same card code pcscd + vpcd drive in the lab, without sockets or processes.
* :class:`InProcessCards` -- a :class:`coldvault.cards.access.CardAccess` over such cards:
  a test scripts which card is "inserted" next, and may pull it in the middle of a command.
  What a card does with SELECT, VERIFY and PSO:CDS is the virtual card's real behaviour.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coldvault.cards.algorithms import CardAlgorithm
from coldvault.cards.errors import CardRemoved, CardTimeout
from coldvault.cards.openpgp import OpenPgpSession, Pw
from hardware_emulators.openpgp_card import state as card_state
from hardware_emulators.openpgp_card.card import OpenPgpCard

USER_PIN, ADMIN_PIN = "123456", "12345678"  # TEST ONLY: the virtual card's factory PINs
READER = "in-process reader"


class DirectConnection:
    """The virtual card's state machine behind the CardConnection interface.

    ``pull_on`` (an INS byte): the card is yanked when that command arrives; the command and
    everything after it fail with :class:`CardRemoved`, as a PC/SC connection reports it."""

    def __init__(self, path: Path, serial: int, *, pull_on: int | None = None) -> None:
        state = card_state.load_or_create(path, serial=serial)
        self.card = OpenPgpCard(state, persist=lambda s: card_state.save(s, path))
        self.pull_on = pull_on
        self.pulled = False
        self.sent: list[bytes] = []

    def send_and_receive(self, apdu: bytes) -> tuple[bytes, int]:
        if self.pulled or (self.pull_on is not None and apdu[1] == self.pull_on):
            self.pulled = True
            raise CardRemoved(READER)
        self.sent.append(apdu)
        out = self.card.process(apdu)
        return out[:-2], int.from_bytes(out[-2:], "big")


class VirtualCardFile:
    """One virtual card's state file, enrolled: a signature key of ``algorithm`` generated
    on the card (as the enrolment ceremony does)."""

    def __init__(self, path: Path, serial: int, algorithm: CardAlgorithm) -> None:
        self.path, self.serial = path, serial
        session = OpenPgpSession(DirectConnection(path, serial))
        session.select()
        session.verify_pin(ADMIN_PIN, Pw.ADMIN)
        self.public_key = session.generate_key(algorithm, timestamp=1_750_000_000)
        self.card_id = session.card_id
        self.algorithm = algorithm

    def tries_left(self) -> int:
        session = OpenPgpSession(DirectConnection(self.path, self.serial))
        session.select()
        return session.tries_left(Pw.USER)

    def signature_counter(self) -> int:
        session = OpenPgpSession(DirectConnection(self.path, self.serial))
        session.select()
        return session.signature_counter()


class InProcessCards:
    """A card reader in-process: :meth:`insert` queues which card comes next.

    Records what happened (``events``: ``("wait",)``, ``("open", card_id)``,
    ``("closed", card_id)``, ``("removed",)``) so tests can assert the card's turn."""

    def __init__(self, *, emulated: bool = True) -> None:
        self.queue: deque[tuple[VirtualCardFile, int | None]] = deque()
        self.emulated = emulated
        self.events: list[tuple[str, ...]] = []
        self.connections: list[DirectConnection] = []

    def insert(self, card: VirtualCardFile, *, pull_on: int | None = None) -> None:
        self.queue.append((card, pull_on))

    def wait_for_card(self) -> str:
        self.events.append(("wait",))
        if not self.queue:
            raise CardTimeout("a card", 0.0)
        return READER

    @contextmanager
    def open(self, reader: str) -> Iterator[OpenPgpSession]:
        card, pull_on = self.queue.popleft()
        connection = DirectConnection(card.path, card.serial, pull_on=pull_on)
        self.connections.append(connection)
        session = OpenPgpSession(connection)
        session.select()
        self.events.append(("open", session.card_id))
        try:
            yield session
        finally:
            self.events.append(("closed", session.card_id))

    def is_emulated(self, card: OpenPgpSession) -> bool:
        return self.emulated

    def wait_for_removal(self, reader: str) -> None:
        self.events.append(("removed",))

"""Card-test fixtures on top of the root ``pcsc_lab`` fixture (tests/conftest.py).

Each test process (each pytest-xdist worker) has ONE lab: libpcsclite reads
PCSCLITE_CSOCK_NAME once per process, so a second pcscd in the same process would be
unreachable.  ``lab_readers`` checks that
this process really talks to the lab's pcscd and that it has the three readers these
tests use.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hardware_emulators.openpgp_card.controller import VirtualCard

_serials = itertools.count(0x00C01D00)


@pytest.fixture(scope="session")
def lab_readers(pcsc_lab: Any) -> list[str]:
    from coldvault.backends.pcsc import list_readers

    if pcsc_lab.readers < 3:
        pytest.fail("the card tests need a lab with at least 3 readers")
    names = pcsc_lab.reader_names()
    if list_readers()[: len(names)] != names:
        pytest.fail(
            "This pytest process talks to another pcscd; libpcsclite caches "
            "PCSCLITE_CSOCK_NAME, so the lab must start before any PC/SC call."
        )
    return names


CardFactory = Callable[..., VirtualCard]


@pytest.fixture
def make_card(tmp_path: Path, lab_readers: list[str]) -> Iterator[CardFactory]:
    """Create virtual cards (unique serials, state in tmp_path); all removed afterwards."""
    cards: list[VirtualCard] = []

    def make(name: str = "card", serial: int | None = None) -> VirtualCard:
        card = VirtualCard(state_file=tmp_path / f"{name}.json", serial=serial or next(_serials))
        cards.append(card)
        return card

    yield make
    for card in cards:
        card.remove()


@pytest.fixture
def inserted(pcsc_lab: Any, make_card: CardFactory) -> Iterator[tuple[VirtualCard, str]]:
    """A fresh card inserted into the lab's first reader: (card, reader name)."""
    from coldvault.backends.pcsc import wait_for_removal

    card = make_card("inserted")
    card.insert(pcsc_lab.reader_ports[0])
    yield card, pcsc_lab.reader_names()[0]
    card.remove()
    wait_for_removal(pcsc_lab.reader_names()[0], timeout=5)

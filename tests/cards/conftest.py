"""Fixtures for the smart-card lab: one private pcscd (vpcd readers) per test session.

libpcsclite reads PCSCLITE_CSOCK_NAME once per process, so the whole session shares one
lab and the variable is exported before the first PC/SC call.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hardware_emulators.openpgp_card.controller import VirtualCard
from hardware_emulators.pcsc_lab import PcscLab

_serials = itertools.count(0x00C01D00)


@pytest.fixture(scope="session")
def pcsc_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscLab]:
    lab = PcscLab(state_dir=tmp_path_factory.mktemp("pcsc-lab"), readers=3)
    old = os.environ.get("PCSCLITE_CSOCK_NAME")
    try:
        lab.start()
    except Exception:
        lab.stop()
        raise
    os.environ.update(lab.env)
    try:
        from coldvault.backends.pcsc import list_readers

        readers = list_readers()
        if readers[: lab.readers] != lab.reader_names():
            pytest.fail(
                f"This process talks to another pcscd (readers {readers}); libpcsclite "
                "caches PCSCLITE_CSOCK_NAME, so start the lab before any PC/SC call."
            )
        yield lab
    finally:
        lab.stop()
        if old is None:
            os.environ.pop("PCSCLITE_CSOCK_NAME", None)
        else:
            os.environ["PCSCLITE_CSOCK_NAME"] = old


CardFactory = Callable[..., VirtualCard]


@pytest.fixture
def make_card(tmp_path: Path) -> Iterator[CardFactory]:
    """Create virtual cards (unique serials, state in tmp_path); all removed afterwards."""
    cards: list[VirtualCard] = []

    def make(name: str = "card", serial: int | None = None) -> VirtualCard:
        card = VirtualCard(
            state_file=tmp_path / f"{name}.json", serial=serial or next(_serials)
        )
        cards.append(card)
        return card

    yield make
    for card in cards:
        card.remove()


@pytest.fixture
def inserted(pcsc_lab: PcscLab, make_card: CardFactory) -> Iterator[tuple[VirtualCard, str]]:
    """A fresh card inserted into the lab's first reader: (card, reader name)."""
    card = make_card("inserted")
    card.insert(pcsc_lab.reader_ports[0])
    yield card, pcsc_lab.reader_names()[0]
    card.remove()
    from coldvault.backends.pcsc import wait_for_removal

    wait_for_removal(pcsc_lab.reader_names()[0], timeout=5)

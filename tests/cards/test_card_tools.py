"""``coldvault card status|unblock|change-pin`` through the real terminal (pexpect), pcscd and
the virtual OpenPGP card: block the user PIN with wrong PINs, unblock it with the admin
PIN, change both PINs; every result before "Remove the card."; PINs never on the screen."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coldvault.backends.pcsc import PcscConnection, wait_for_removal
from coldvault.cards import OpenPgpSession, Pw
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE
from hardware_emulators.ceremony_driver import answer, finish, spawn_coldvault
from hardware_emulators.openpgp_card.controller import VirtualCard

pytestmark = pytest.mark.lab

USER_PIN, ADMIN_PIN = "314159", "27182818"  # TEST ONLY
NEW_USER_PIN, NEW_ADMIN_PIN = "161803", "14142135"  # TEST ONLY
FINAL_USER_PIN = "577215"  # TEST ONLY
WRONG = "000000"
SERIAL = 0x00C0FFEE
CARD = f"FFFF{SERIAL:08X}"  # manufacturer FFFF (test cards), then the serial
INSERT = "Insert the card into the reader."
REMOVE = "Remove the card."
PINS = (USER_PIN, ADMIN_PIN, NEW_USER_PIN, NEW_ADMIN_PIN, FINAL_USER_PIN)


@pytest.fixture
def card(tmp_path: Path, lab_readers: list[str]) -> Iterator[VirtualCard]:
    virtual = VirtualCard(
        state_file=tmp_path / "card.json", serial=SERIAL, pw1=USER_PIN, pw3=ADMIN_PIN
    )
    try:
        yield virtual
    finally:
        virtual.remove()


class Run:
    """One ``coldvault card ...`` on a pty: the card goes in when asked for and comes out
    when the command says so."""

    def __init__(self, tmp_path: Path, pcsc_lab: Any, card: VirtualCard, *argv: str) -> None:
        self.log = tmp_path / "console.log"
        self.out = tmp_path / f"stdout-{len(list(tmp_path.glob('stdout-*')))}.json"
        self.card, self.port = card, pcsc_lab.reader_ports[0]
        self.reader = pcsc_lab.reader_names()[0]
        self.child = spawn_coldvault(
            ["card", *argv, "--allow-emulated", "--json"], {}, self.log, stdout=self.out
        )
        self.child.expect(re.escape(INSERT))
        card.insert(self.port)

    def dialogue(self, *steps: tuple[str, str | None]) -> Run:
        answer(self.child, steps)
        return self

    def result_then_remove(self, result: str) -> tuple[int, dict[str, Any]]:
        """``result`` shows, and only then "Remove the card."; the card comes out."""
        try:
            self.child.expect(result)
            shown = self.child.before + self.child.after
            assert REMOVE not in shown, "the holder was told to remove the card first"
            self.child.expect(re.escape(REMOVE))
        finally:
            self.card.remove()
            wait_for_removal(self.reader, timeout=10)
        status = finish(self.child)
        return status, json.loads(self.out.read_text())


def _on_card(reader: str, port: int, card: VirtualCard, action: Any) -> Any:
    card.insert(port)
    try:
        with PcscConnection(reader) as connection:
            session = OpenPgpSession(connection)
            session.select()
            return action(session)
    finally:
        card.remove()
        wait_for_removal(reader, timeout=10)


def test_block_unblock_and_change_pins(
    tmp_path: Path, pcsc_lab: Any, card: VirtualCard
) -> None:
    def run(*argv: str) -> Run:
        return Run(tmp_path, pcsc_lab, card, *argv)

    # status, no PIN asked
    status, doc = run("status").result_then_remove(r"user PIN\s+│\s+3 tries left")
    assert status == EXIT_DONE
    assert doc["card_serial"] == CARD and doc["user_pin_tries"] == 3
    assert doc["admin_pin_tries"] == 3 and not doc["user_pin_blocked"]

    # three wrong user PINs: each refusal (with the tries left) before "Remove the card."
    for left in (2, 1):
        status, doc = run("change-pin").dialogue(
            (f"Current user PIN for card {CARD}: ", WRONG),
        ).result_then_remove(
            re.escape(f"The card rejected the user PIN; {left} tr")
        )  # fmt: skip
        assert status == EXIT_BAD_INPUT
        assert doc["error"] == "card-wrong-pin" and f"{left} tr" in doc["message"]
    status, doc = run("change-pin").dialogue(
        (f"Current user PIN for card {CARD}: ", WRONG),
    ).result_then_remove(re.escape("The card's user PIN is blocked"))
    assert status == EXIT_BAD_INPUT and doc["error"] == "pin-blocked"
    assert "coldvault card unblock" in doc["message"]

    status, doc = run("status").result_then_remove(r"user PIN\s+│\s+BLOCKED \(0 tries left\)")
    assert doc["user_pin_blocked"] and doc["user_pin_tries"] == 0

    # a wrong admin PIN is refused with its tries left; nothing changes
    status, doc = run("unblock").dialogue(
        (f"Admin PIN for card {CARD}: ", "99999999"),
    ).result_then_remove(re.escape("The card rejected the admin PIN; 2 tries left"))
    assert status == EXIT_BAD_INPUT and doc["error"] == "card-wrong-pin"

    # the admin PIN unblocks it with a new user PIN (asked twice, a mismatch asked again)
    status, doc = run("unblock").dialogue(
        (f"Admin PIN for card {CARD}: ", ADMIN_PIN),
        (f"New user PIN for card {CARD}: ", NEW_USER_PIN),
        (f"Repeat new user PIN for card {CARD}: ", "123123"),
        ("The two entries differ", None),
        (f"New user PIN for card {CARD}: ", NEW_USER_PIN),
        (f"Repeat new user PIN for card {CARD}: ", NEW_USER_PIN),
    ).result_then_remove(re.escape(f"Card {CARD}: the user PIN is set and unblocked (3 tries"))
    assert status == EXIT_DONE
    assert doc["user_pin_tries"] == 3 and doc["admin_pin_tries"] == 3

    # each PIN changes with the current one
    status, doc = run("change-pin").dialogue(
        (f"Current user PIN for card {CARD}: ", NEW_USER_PIN),
        (f"New user PIN for card {CARD}: ", FINAL_USER_PIN),
        (f"Repeat new user PIN for card {CARD}: ", FINAL_USER_PIN),
    ).result_then_remove(re.escape(f"Card {CARD}: the user PIN is changed (3 tries"))
    assert status == EXIT_DONE and doc["user_pin_tries"] == 3
    status, doc = run("change-pin", "--admin").dialogue(
        (f"Current admin PIN for card {CARD}: ", ADMIN_PIN),
        (f"New admin PIN for card {CARD}: ", NEW_ADMIN_PIN),
        (f"Repeat new admin PIN for card {CARD}: ", NEW_ADMIN_PIN),
    ).result_then_remove(re.escape(f"Card {CARD}: the admin PIN is changed (3 tries"))
    assert status == EXIT_DONE

    # the card itself, read independently of the tool: the new PINs work, counters full
    def check(session: OpenPgpSession) -> tuple[int, int]:
        session.verify_pin(FINAL_USER_PIN, Pw.USER)
        session.verify_pin(NEW_ADMIN_PIN, Pw.ADMIN)
        pins = session.pin_status()
        return pins.tries_pw1, pins.tries_pw3

    assert _on_card(pcsc_lab.reader_names()[0], pcsc_lab.reader_ports[0], card, check) == (3, 3)

    # no PIN was ever echoed to the console
    shown = (tmp_path / "console.log").read_text()
    for pin in (*PINS, WRONG, "99999999", "123123"):
        assert pin not in shown, pin

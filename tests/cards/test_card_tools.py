"""``coldvault card status|unblock|change-pin|set-reset-code`` through the real terminal
(pexpect), pcscd and the virtual OpenPGP card: block the user PIN with wrong PINs, unblock it
with the admin PIN, change both PINs, set a resetting code and unblock with it (a wrong code
counted down on the card); every result before "Remove the card."; each change leaves a
transcript that verifies and renders; PINs and codes never on the screen or in a record."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ceremony_scripts.cli import ceremony
from coldvault.backends.pcsc import PcscConnection, wait_for_removal
from coldvault.cards import OpenPgpSession, PinBlocked, Pw, WrongPin
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE
from coldvault.records.printable import ABORTED_MARK, transcript_record
from coldvault.records.transcript import read_entries, verify
from hardware_emulators.ceremony_driver import answer, finish, spawn_coldvault
from hardware_emulators.openpgp_card.controller import VirtualCard

pytestmark = pytest.mark.lab

USER_PIN, ADMIN_PIN = "314159", "27182818"  # TEST ONLY
NEW_USER_PIN, NEW_ADMIN_PIN = "161803", "14142135"  # TEST ONLY
FINAL_USER_PIN = "577215"  # TEST ONLY
RESET_CODE, RESET_USER_PIN = "RC-27182818", "662607"  # TEST ONLY
OPERATOR = "Olga Operator"
WRONG = "000000"
SERIAL = 0x00C0FFEE
CARD = f"FFFF{SERIAL:08X}"  # manufacturer FFFF (test cards), then the serial
INSERT = "Insert the card into the reader."
REMOVE = "Remove the card."
PINS = (USER_PIN, ADMIN_PIN, NEW_USER_PIN, NEW_ADMIN_PIN, FINAL_USER_PIN, RESET_CODE,
        RESET_USER_PIN)  # fmt: skip


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
        record = [] if argv[0] == "status" else [
            "--operator", OPERATOR, "--transcript-dir", str(tmp_path / "transcripts")
        ]  # fmt: skip
        self.child = spawn_coldvault(
            ["card", *argv, *record, "--allow-emulated", "--json"], {}, self.log, stdout=self.out
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

    # an admin sets a resetting code; the holder blocks the PIN again and unblocks it with
    # the code: a wrong code is refused with the code's own tries left, the PIN untouched
    status, doc = run("set-reset-code").dialogue(
        (f"Admin PIN for card {CARD}: ", NEW_ADMIN_PIN),
        (f"New resetting code for card {CARD}: ", RESET_CODE),
        (f"Repeat new resetting code for card {CARD}: ", RESET_CODE),
    ).result_then_remove(re.escape(f"Card {CARD}: the resetting code is set (3 tries"))
    assert status == EXIT_DONE and doc["reset_code_tries"] == 3

    reader, port = pcsc_lab.reader_names()[0], pcsc_lab.reader_ports[0]

    def block(session: OpenPgpSession) -> int:
        for _ in range(3):
            with pytest.raises((WrongPin, PinBlocked)):
                session.verify_pin(WRONG, Pw.USER)
        return session.pin_status().tries_pw1

    assert _on_card(reader, port, card, block) == 0
    status, doc = run("unblock", "--reset-code").dialogue(
        (f"Resetting code for card {CARD}: ", "RC-00000000"),
        (f"New user PIN for card {CARD}: ", RESET_USER_PIN),
        (f"Repeat new user PIN for card {CARD}: ", RESET_USER_PIN),
    ).result_then_remove(re.escape("The card rejected the resetting code; 2 tries left"))
    assert status == EXIT_BAD_INPUT and doc["error"] == "card-wrong-reset-code"
    assert "The user PIN was not changed" in doc["message"]
    status, doc = run("unblock", "--reset-code").dialogue(
        (f"Resetting code for card {CARD}: ", RESET_CODE),
        (f"New user PIN for card {CARD}: ", RESET_USER_PIN),
        (f"Repeat new user PIN for card {CARD}: ", RESET_USER_PIN),
    ).result_then_remove(re.escape(
        f"Card {CARD}: the user PIN is set and unblocked (3 tries left); authorised by the "
        "resetting code."
    ))  # fmt: skip
    assert status == EXIT_DONE
    assert (doc["user_pin_tries"], doc["reset_code_tries"]) == (3, 3)

    # the card itself, read independently of the tool: the new PINs work, counters full
    def check(session: OpenPgpSession) -> tuple[int, int, int]:
        session.verify_pin(RESET_USER_PIN, Pw.USER)
        session.verify_pin(NEW_ADMIN_PIN, Pw.ADMIN)
        pins = session.pin_status()
        return pins.tries_pw1, pins.tries_pw3, pins.tries_rc

    assert _on_card(reader, port, card, check) == (3, 3, 3)

    # no PIN or code was ever echoed to the console
    shown = (tmp_path / "console.log").read_text()
    secrets = (*PINS, WRONG, "99999999", "123123", "RC-00000000")
    for pin in secrets:
        assert pin not in shown, pin
    _check_transcripts(tmp_path, doc, secrets)


def _check_transcripts(tmp_path: Path, last: dict[str, Any], secrets: tuple[str, ...]) -> None:
    """One transcript per change (completed or aborted), each verified, with the card, the
    holder's counters and what was changed; none holds a PIN; the last renders as a PDF."""
    folder = tmp_path / "transcripts"
    runs: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        result = verify(path)
        entries = read_entries(path)
        assert entries[0]["actor"] == OPERATOR
        runs.setdefault(entries[0]["ceremony"], []).append(result.status)
        presented = next(e for e in entries if e["step"] == "card-presented")
        assert presented["data"]["card_serial"] == CARD
        assert presented["devices"] == [{"kind": "card", "serial": CARD}]
        page = path.with_suffix(".html")  # the printable copy of a completed change
        assert page.exists() == (result.status == "completed")
        text = path.read_text() + (page.read_text() if page.exists() else "")
        text = re.sub(r"[0-9a-f]{32,}", "<hash>", text)  # hashes may hold any digit run
        for secret in secrets:
            assert secret not in text, (path.name, secret)
    assert sorted(runs["card-change-pin"]) == ["aborted"] * 3 + ["completed"] * 2
    assert sorted(runs["card-unblock"]) == ["aborted"] * 2 + ["completed"] * 2
    assert runs["card-set-reset-code"] == ["completed"]

    closed = Path(last["transcript"])
    assert closed.parent == folder and closed.name.startswith("card-unblock-")
    assert last["ceremony_id"] in closed.name
    entries = read_entries(closed)
    changed = next(e for e in entries if e["step"] == "card-changed")["data"]
    assert changed == {
        "card_serial": CARD, "holder": "", "credential": "user PIN",
        "authorised_by": "resetting code", "result": "user PIN set and unblocked",
        "user_pin_tries": 3, "admin_pin_tries": 3, "reset_code_tries": 3,
    }  # fmt: skip
    refused = [
        e["data"] for p in folder.glob("card-unblock-*.jsonl")
        for e in read_entries(p) if e["step"] == "card-refused"
    ]  # fmt: skip
    assert {r["error"]: r["reset_code_tries"] for r in refused} == {
        "card-wrong-pin": 0, "card-wrong-reset-code": 2
    }  # fmt: skip

    runner = CliRunner()
    result = runner.invoke(ceremony, ["transcript", "verify", str(closed), "--json"])
    assert result.exit_code == EXIT_DONE, result.output
    pdf = tmp_path / "card-unblock.pdf"
    result = runner.invoke(ceremony, ["transcript", "render", str(closed), "--pdf", str(pdf)])
    assert result.exit_code == EXIT_DONE, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    record = transcript_record(closed)
    assert record.mark == "" and ("card", CARD) in record.equipment
    assert [(p.name, p.role, p.card_serial) for p in record.participants] == [
        (OPERATOR, "operator", ""), ("", "card holder", CARD)  # the lab card has no name
    ]  # fmt: skip
    assert ("authorised by", "resetting code") in record.facts
    assert ("reset code tries", "3") in record.facts
    aborted = transcript_record(next(
        p for p in folder.glob("card-unblock-*.jsonl") if verify(p).status == "aborted"
    ))  # fmt: skip
    assert aborted.mark == ABORTED_MARK

"""In-process ceremony drivers: a scripted :class:`Operator` and a card slot.

* :class:`ScriptedOperator` answers each prompt from a script of ``(regex, answer)``
  pairs, in order, and fails on a prompt the script does not expect.  It records what the
  ceremony showed (lines, tables, secret words) for the test to assert on.
* :class:`CardSlot` puts the planned virtual card into the lab reader when the ceremony
  asks for a card, and takes it out when the ceremony says "Remove the card." -- the card
  path is the real one (pcscd, vpcd, the virtual OpenPGP card).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coldvault.backends import pcsc
from coldvault.cards import OpenPgpSession
from hardware_emulators.trust_setup import on_reader

#: An answer: the text typed, True/False for a confirmation, a function of the question,
#: or an exception raised at the prompt (KeyboardInterrupt: Ctrl-C).
Answer = str | bool | Callable[[str], str] | BaseException

INSERT = re.compile(r"[Ii]nsert .*card( for .*)?\.$")


class ScriptedOperator:
    """An :class:`coldvault.ceremonies.Operator` that answers from a script."""

    def __init__(self, *script: tuple[str, Answer], on_info: Callable[[str], None] | None = None):
        self.script: deque[tuple[str, Answer]] = deque(script)
        self.on_info = on_info
        self.lines: list[tuple[str, str]] = []  # (kind, text) of everything shown
        self.tables: list[tuple[str, list[tuple[str, str]]]] = []
        self.words: dict[str, list[str]] = {}
        self.asked: list[tuple[str, str]] = []  # (kind, question) of every prompt
        self.clears = 0
        self.bags: Sequence[str] | None = None  # None: this console does not ask

    # -- script -------------------------------------------------------------------------
    def then(self, *script: tuple[str, Answer]) -> ScriptedOperator:
        self.script.extend(script)
        return self

    def _answer(self, kind: str, question: str) -> str | bool:
        self.asked.append((kind, question))
        if not self.script:
            raise AssertionError(f"unexpected {kind} prompt {question!r}")
        pattern, answer = self.script.popleft()
        if not re.search(pattern, question):
            raise AssertionError(f"{kind} prompt {question!r} does not match {pattern!r}")
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(question)
        return answer

    # -- output -------------------------------------------------------------------------
    def title(self, text: str) -> None:
        self.lines.append(("title", text))

    def step(self, title: str, checks: Sequence[str] = ()) -> None:
        self.lines.append(("step", title))
        self.lines += [("check", c) for c in checks]

    def info(self, text: str) -> None:
        self.lines.append(("info", text))
        if self.on_info is not None:
            self.on_info(text)

    def ok(self, text: str) -> None:
        self.lines.append(("ok", text))

    def warn(self, text: str) -> None:
        self.lines.append(("warn", text))

    def error(self, text: str) -> None:
        self.lines.append(("error", text))

    def table(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        self.tables.append((title, list(rows)))

    def progress(self, done: int, total: int) -> None:
        self.lines.append(("progress", f"{done}/{total}"))

    def show_words(self, title: str, words: Sequence[str]) -> None:
        self.words[title] = list(words)

    def clear(self) -> None:
        self.clears += 1

    # -- input --------------------------------------------------------------------------
    def confirm(self, question: str) -> bool:
        answer = self._answer("confirm", question)
        return answer is True or answer == "yes"

    def ask(self, question: str, default: str | None = None) -> str:
        return str(self._answer("ask", question))

    def secret(self, question: str) -> str:
        return str(self._answer("secret", question))

    def pause(self, text: str) -> None:
        self._answer("pause", text)

    def tamper_bags(self) -> Sequence[str] | None:
        return self.bags


    # -- reading what was shown -----------------------------------------------------------
    def said(self, kind: str | None = None) -> list[str]:
        return [t for k, t in self.lines if kind is None or k == kind]

    def table_rows(self, title: str) -> dict[str, str]:
        for name, rows in self.tables:
            if name == title:
                return dict(rows)
        raise KeyError(title)

    def word_answer(self, title: str) -> Callable[[str], str]:
        """Answer "<label>, word N" from the words shown under ``title``."""

        def answer(question: str) -> str:
            match = re.search(r"word (\d+)$", question)
            assert match, question
            return self.words[title][int(match.group(1)) - 1]

        return answer

    def check_words(self, title: str, label: str) -> list[tuple[str, Answer]]:
        """The script of one paper backup: Enter after the words, then the two checks."""
        return [
            (f"^When {re.escape(title)} is written down", ""),
            (f"^{re.escape(label)}, word \\d+$", self.word_answer(title)),
            (f"^{re.escape(label)}, word \\d+$", self.word_answer(title)),
        ]


class CardSlot:
    """One lab reader: a planned card goes in when asked for, comes out when told."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.plan: deque[tuple[str, Any]] = deque()
        self.current: Any = None
        self.used: list[str] = []

    def expect(self, prompt: str, card: Any) -> CardSlot:
        self.plan.append((prompt, card))
        return self

    def __call__(self, text: str) -> None:
        if text == "Remove the card.":
            if self.current is not None:
                self.current.remove()
                self.current = None
            return
        if not INSERT.search(text):
            return
        if not self.plan or self.plan[0][0] != text:
            planned = self.plan[0][0] if self.plan else "nothing"
            raise AssertionError(f"the ceremony asked {text!r}; the test planned {planned!r}")
        _prompt, card = self.plan.popleft()
        card.insert(self.port)
        self.current = card
        self.used.append(text)

    def done(self) -> bool:
        return not self.plan and self.current is None


def on_card(card: Any, port: int, reader: str, action: Callable[[OpenPgpSession], Any]) -> Any:
    """Insert ``card``, run ``action`` on a selected OpenPGP session, remove the card."""
    card.insert(port)
    try:
        return on_reader(reader, action)
    finally:
        card.remove()
        pcsc.wait_for_removal(reader, timeout=10)  # before the next card goes in


@contextmanager
def cards_in_readers(cards: Sequence[Any], pcsc_lab: Any) -> Iterator[list[str]]:
    """Put ``cards`` into readers 0, 1, ... together (pcscd notices them in one poll), yield
    those readers' names, then take every card out and wait until pcscd saw it go."""
    names = pcsc_lab.reader_names()[: len(cards)]
    if len(names) < len(cards):
        raise ValueError(f"{len(cards)} cards at once, but the lab has {len(names)} readers")
    started: list[tuple[Any, int]] = []
    try:
        for card, port in zip(cards, pcsc_lab.reader_ports, strict=False):
            started.append((card, card.start_insert(port)))
        for card, offset in started:
            card.wait_inserted(offset)
        yield names
    finally:
        for card, _ in started:
            card.remove()
        for name in names[: len(started)]:
            pcsc.wait_for_removal(name, timeout=10)  # before the next card goes in


def on_cards(pairs: Sequence[tuple[Any, Callable[[OpenPgpSession], Any]]], pcsc_lab: Any
             ) -> list[Any]:
    """Run each ``(card, action)`` on its card, with every card in a reader of its own at
    once (as many at a time as the lab has readers); the results in order."""
    results: list[Any] = []
    width = len(pcsc_lab.reader_names())
    for start in range(0, len(pairs), width):
        batch = pairs[start:start + width]
        with cards_in_readers([card for card, _ in batch], pcsc_lab) as readers:
            for (_, action), reader in zip(batch, readers, strict=True):
                results.append(on_reader(reader, action))
    return results


def files_under(root: Path, *, skip: Callable[[Path], bool] = lambda p: False) -> bytes:
    """Every byte written under ``root`` (for "no secret on disk" checks)."""
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not skip(p))


def approve_with_admin_cards(
    lab: Any, trust: Any, kind: Any, file: Path, *, version: int, transcripts: Path,
    current: Path | None = None, admins: Sequence[str] = ("C0DE0004", "C0DE0005"),
) -> ScriptedOperator:  # fmt: skip
    """``approve-document`` of ``file`` in process: the lab's ``admins`` cards go into
    reader 0 when asked (through pcscd) and type the lab PIN. ``lab`` is a
    :class:`hardware_emulators.lab.Lab`, ``trust`` its :class:`LabTrust`; returns the
    operator, which holds what the admins were shown."""
    from ceremony_scripts.hardware import ReaderCards
    from coldvault.ceremonies import ApproveDocument, approve_document

    pin, waiting = lab.config.cards[0].pin, list(admins)

    def cards(text: str) -> None:
        if INSERT.search(text):
            lab.insert(waiting.pop(0), 0)
        elif text == "Remove the card.":
            lab.remove(0)

    op = ScriptedOperator((f"^Is this the {kind} document", True),
                          *(("PIN", pin) for _ in admins), on_info=cards)  # fmt: skip
    params = ApproveDocument(actor="Olga Operator", transcript_dir=transcripts, kind=kind,
                             file=file, rosters=(trust.roster_path,), version=version,
                             genesis_sha256=trust.roster.sha256.hex(), current=current)
    approved = approve_document(op, params, ReaderCards(op, allow_emulated=True))
    assert approved.version == version and not waiting
    return op

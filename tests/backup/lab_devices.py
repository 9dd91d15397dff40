"""The lab's share targets as a ceremony's :class:`ShareDevices`, and an operator that
answers prompts by rule (the backup ceremony and the drill ask many similar questions)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backends.pkcs11.shares import Pkcs11ShareKeys
from coldvault.cards.openpgp import OpenPgpSession
from tests.backup.lab_backup import CardSessions
from tests.ceremony.support import Answer, ScriptedOperator


class LabDevices:
    """Backup tokens of the lab by label (SoftHSM), cards from ``cards`` by id."""

    def __init__(self, module: str, cards: CardSessions) -> None:
        self.module = module
        self.cards = cards
        self.prompts: list[str] = []
        self.tokens_opened: list[str] = []

    @contextmanager
    def token(self, label: str, pin: str) -> Iterator[Pkcs11ShareKeys]:
        with Pkcs11Keystore.open(self.module, label, pin, allow_emulated=True) as keystore:
            self.tokens_opened.append(label)
            yield Pkcs11ShareKeys(keystore)

    @contextmanager
    def card(self, card_id: str, prompt: str) -> Iterator[tuple[OpenPgpSession, str]]:
        self.prompts.append(prompt)
        with self.cards(card_id) as session:
            yield session, session.card_id


class RuleOperator(ScriptedOperator):
    """Answers each prompt with the first rule whose pattern matches; a rule's answer may
    be a list (consumed in order).  An unexpected prompt fails the test."""

    def __init__(self, *rules: tuple[str, Answer | list[Answer]]) -> None:
        super().__init__()
        self.rules: list[tuple[str, Any]] = [(p, a) for p, a in rules]

    def _answer(self, kind: str, question: str) -> str | bool:
        self.asked.append((kind, question))
        for pattern, answer in self.rules:
            if re.search(pattern, question):
                if isinstance(answer, list):
                    if not answer:
                        raise AssertionError(f"no answer left for {question!r}")
                    answer = answer.pop(0)
                if isinstance(answer, BaseException):
                    raise answer
                if callable(answer):
                    return answer(question)
                return answer
        raise AssertionError(f"unexpected {kind} prompt {question!r}")


def words_of(op: ScriptedOperator, title_start: str) -> Callable[[str], str]:
    """Answer "<title>, word N" from the words shown under the title ``<title>``."""

    def answer(question: str) -> str:
        title, _, rest = question.rpartition(", word ")
        assert title.startswith(title_start), question
        return op.words[title][int(rest) - 1]

    return answer


__all__ = ["LabDevices", "RuleOperator", "words_of"]

"""The person at the ceremony console, as the ceremonies see them: :class:`Operator`.

Ceremonies never print and never read a terminal: every line they show and every answer
they need goes through an :class:`Operator`.  The console front end
(``ceremony_scripts.ui``) implements it with rich and hidden prompts; tests implement it
with a script.  Prompt texts are stable (the pexpect smoke tests and the demo match them):
a front end shows ``question`` followed by ``": "``.

Contract for implementations:

* ``secret`` never echoes, logs or keeps what was typed.
* An interrupt at a prompt (Ctrl-C, end of input) raises
  :class:`coldvault.errors.Cancelled` or :class:`KeyboardInterrupt`; the ceremony run turns
  either into an ``aborted`` transcript with the reason ``cancelled``.
* ``confirm`` returns whether the answer was an explicit yes; the ceremonies turn a "no"
  into :class:`~coldvault.errors.Cancelled` (:func:`confirm_or_cancel`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from coldvault.errors import Cancelled

#: (field, value) rows of a table shown to the operator.
Rows = Sequence[tuple[str, str]]


class Operator(Protocol):
    """Output, prompts and secret display of one ceremony console."""

    # -- output ------------------------------------------------------------------------
    def title(self, text: str) -> None:
        """The ceremony's banner."""
        ...

    def step(self, title: str, checks: Sequence[str] = ()) -> None:
        """Start the next numbered step and list what the people present must check."""
        ...

    def info(self, text: str) -> None: ...

    def ok(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def error(self, text: str) -> None:
        """A refusal the ceremony recovers from (e.g. a wrong card; the next is asked for)."""
        ...

    def table(self, title: str, rows: Rows) -> None: ...

    def progress(self, done: int, total: int) -> None:
        """Progress of a long step (``done`` of ``total``); ``done == total`` ends it."""
        ...

    def show_words(self, title: str, words: Sequence[str]) -> None:
        """Show secret words (a mnemonic or a share) numbered, for writing on paper.

        The ceremony clears the screen before and after (:meth:`clear`)."""
        ...

    def clear(self) -> None:
        """Clear the screen and its scroll-back (after secret words were shown)."""
        ...

    # -- input -------------------------------------------------------------------------
    def confirm(self, question: str) -> bool:
        """True only for an explicit yes."""
        ...

    def ask(self, question: str, default: str | None = None) -> str:
        """A visible answer (names, roles, sites)."""
        ...

    def secret(self, question: str) -> str:
        """A hidden answer (PINs, dice, words): never echoed."""
        ...

    def pause(self, text: str) -> None:
        """Wait until the operator presses Enter."""
        ...

    def tamper_bags(self) -> Sequence[str] | None:
        """The numbers of the tamper-evident bags sealed in this ceremony, asked at its
        close; ``None`` when this console does not ask (an empty list: none were sealed)."""
        ...


def confirm_or_cancel(op: Operator, question: str) -> None:
    """Ask ``question``; anything but an explicit yes cancels the ceremony."""
    if not op.confirm(question):
        raise Cancelled(f'The operator did not confirm "{question}"; the ceremony stopped.')


def new_pin(op: Operator, question: str, *, min_length: int) -> str:
    """Ask for a new PIN twice, hidden, until both entries agree and are long enough.

    The repeat prompt is ``"Repeat " + question`` with its first letter lower-cased."""
    if min_length < 1:
        raise ValueError("min_length must be at least 1")
    repeat = f"Repeat {question[0].lower()}{question[1:]}"
    while True:
        first = op.secret(question)
        if len(first) < min_length:
            op.warn(f"The PIN must have at least {min_length} characters.")
            continue
        if op.secret(repeat) == first:
            return first
        op.warn("The two entries differ; enter the PIN again.")


__all__ = ["Operator", "Rows", "confirm_or_cancel", "new_pin"]

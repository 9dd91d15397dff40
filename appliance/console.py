"""The operator console: review, status and refusals as plain labelled lines, plain prompts
for input.

Every prompt is a single line ending in ``: `` so a script (pexpect, tmux) can drive it:

* ``Type APPROVE to collect approvals for request XXXX-XXXX-XXXX, anything else cancels: ``
* ``User PIN for card <serial> (<holder>): `` (hidden, never echoed)

Confirmation requires the exact word: a stray Enter never approves anything.

Nothing is ever cut or cropped, at any terminal width: sections are a rule with a title and
lines that the terminal wraps (soft wrap), so a refusal sentence, an address or an amount
always appears whole.  Meaning is never carried by colour alone (``REFUSED``, ``WARNING``,
``pass``/``FAIL``, the movement kind are words); ``NO_COLOR`` or ``no_color=True``
(``coldvault --no-color``) turns colour off.

Everything the console shows, prompts included, goes to stderr; stdout is left to the
command's result (``--json``).
"""

from __future__ import annotations

import getpass
import select
import sys
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.markup import escape

from coldvault.errors import Cancelled
from coldvault.policy import Decision
from coldvault.requests.amounts import NATIVE, format_amount
from coldvault.requests.base import MovementKind, Review
from coldvault.transport.assemble import Progress

#: the style (never the only sign: the kind is written out) of each movement kind
_KIND_STYLE = {MovementKind.CHANGE: "dim", MovementKind.EXTERNAL: "bold"}


class PromptTimedOut(Cancelled):
    """The operator did not answer a prompt in time; the request is abandoned unsigned."""

    code = "prompt-timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"No answer within {seconds:.0f} s; the request was abandoned and nothing was signed."
        )
        self.seconds = seconds


class OperatorConsole:
    """Implements :class:`appliance.session.Ui` on a terminal.

    ``width`` is the terminal's (detected when None); ``console`` replaces the whole rich
    console (tests pass one with ``record=True``)."""

    def __init__(
        self,
        *,
        stream: TextIO | None = None,
        width: int | None = None,
        timeout: float | None = None,
        no_color: bool = False,
        console: Console | None = None,
    ) -> None:
        out = stream or sys.stderr
        self.console = console or Console(
            file=out, width=width, highlight=False, soft_wrap=True, no_color=no_color or None
        )
        self._stream: TextIO = self.console.file  # type: ignore[assignment]
        #: seconds a prompt waits for the operator before the request is abandoned
        self.timeout = timeout
        self._progress_open = False
        self._frame_lines = 0  # height of the frame on screen, to redraw it in place

    # -- output ----------------------------------------------------------------------
    def _line(self, text: str, style: str = "") -> None:
        """One line of untrusted text, never interpreted as markup, wrapped by the terminal."""
        self.console.print(escape(text), style=style or None, soft_wrap=True)

    def _section(self, title: str, style: str) -> None:
        self._end_progress()
        self.console.rule(f"[{style}]{escape(title)}[/]", style=style, align="left")

    def _rows(self, rows: Sequence[tuple[str, str]], indent: str = "  ") -> None:
        width = max((len(label) for label, _ in rows), default=0)
        for label, value in rows:
            self._line(f"{indent}{label:<{width}}  {value}")

    def info(self, text: str) -> None:
        self._end_progress()
        self._line(text)

    def warn(self, text: str) -> None:
        self._end_progress()
        self.console.print("[bold yellow]WARNING:[/] " + escape(text), soft_wrap=True)

    def error(self, text: str) -> None:
        self._section("REFUSED", "bold red")
        self._line(text)
        self.console.rule(style="red")

    def progress(self, p: Progress) -> None:
        """Fragments received of those needed and the decoder's percent, one line updated
        in place on a terminal (one line per new fragment elsewhere)."""
        needed = p.parts_expected or "?"
        text = (
            f"receiving {p.format}: {p.parts_received}/{needed} fragments, "
            f"{p.percent:.0f} % decoded"
        )
        if self.console.is_terminal:
            self._stream.write(f"\r{text}\x1b[K")
            self._stream.flush()
            self._progress_open = not p.complete
            if p.complete:
                self._stream.write("\n")
        else:
            self._line(text)

    def _end_progress(self) -> None:
        """Before other output: end an open progress line, and leave the frame drawn last
        on screen (the next frame must not overwrite what is printed after it)."""
        self._frame_lines = 0
        if self._progress_open:
            self._stream.write("\n")
            self._progress_open = False

    # -- the response on screen (appliance.display.FrameScreen) ------------------------
    @property
    def interactive(self) -> bool:
        """An operator at a terminal can end a looping display with Enter."""
        return sys.stdin.isatty() and self.console.is_terminal

    def show_frame(self, picture: str, caption: str) -> None:
        """Draw one response frame; on a terminal it replaces the previous one in place."""
        drawn, self._frame_lines = self._frame_lines, 0
        self._end_progress()
        if self.console.is_terminal and drawn:
            self._stream.write(f"\x1b[{drawn}F\x1b[J")
        self._stream.write(f"{picture}\n{caption}\n")
        self._stream.flush()
        self._frame_lines = picture.count("\n") + 2

    def stop_requested(self, seconds: float) -> bool:
        """Between frames: True once the operator pressed Enter (never without one)."""
        if not self.interactive:
            return False
        ready, _, _ = select.select([sys.stdin], [], [], seconds)
        if ready:
            sys.stdin.readline()
            self._frame_lines = 0
            return True
        return False

    def show_review(self, review: Review, decision: Decision) -> None:
        head = [
            ("Request", review.fingerprint),
            ("Chain", f"{review.chain} ({review.network})"),
            ("Kind", review.kind),
            ("Wallet", f"{review.wallet}  (client {review.client})"),
        ]
        if review.fee is not None:
            fee = format_amount(NATIVE[review.chain].symbol, review.fee)
            if review.fee_rate is not None:
                fee += f"  at {review.fee_rate:.1f} sat/vB"
            head.append(("Fee", fee))
        head += list(review.details)
        self._section("REVIEW", "cyan")
        self._rows(head)

        self._section(f"What moves ({len(review.movements)})", "cyan")
        for i, m in enumerate(review.movements, 1):
            style = _KIND_STYLE.get(m.kind, "bold")
            self._line(f"  {i}. {str(m.kind).upper()}  {format_amount(m.asset, m.amount)}", style)
            self._line(f"     to {m.destination}" + (f"  ({m.note})" if m.note else ""), style)
        for w in review.warnings:
            self.warn(w)

        self._section(f"Policy v{decision.policy_version}", "cyan")
        for r in decision.reasons:
            verdict = "[green]pass[/]" if r.passed else "[bold red]FAIL[/]"
            self.console.print(
                f"  {verdict}  {escape(r.rule)}: {escape(r.message)}", soft_wrap=True
            )
        if decision.allowed:
            groups = decision.required_groups
            self.console.print(
                f"Approvals required: [bold]{decision.required_approvals}[/]"
                + (f", of them [bold]{groups}[/]" if groups else "")
                + f" (request {review.fingerprint})",
                soft_wrap=True,
            )

    # -- input -----------------------------------------------------------------------
    def _ask(self, prompt: str) -> str:
        self._end_progress()
        self._stream.write(prompt)
        self._stream.flush()
        if self.timeout is not None:
            try:
                ready, _, _ = select.select([sys.stdin], [], [], self.timeout)
            except (OSError, ValueError):  # not a selectable stream (e.g. under a test runner)
                ready = [sys.stdin]
            if not ready:
                raise PromptTimedOut(self.timeout)
        line = sys.stdin.readline()
        if not line:
            raise EOFError("the console input closed")
        return line.strip()

    def confirm(self, question: str) -> bool:
        answer = self._ask(f"{question}\nType APPROVE to continue, anything else cancels: ")
        return answer == "APPROVE"

    def ask(self, prompt: str) -> str:
        return self._ask(f"{prompt}: ")

    def secret(self, prompt: str) -> str:
        """A hidden prompt (the PIN never echoes and is never logged)."""
        if sys.stdin.isatty():
            return getpass.getpass(f"{prompt}: ", stream=self._stream)
        return self._ask(f"{prompt}: ")

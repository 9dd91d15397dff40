"""The operator console: rich panels for review and status, plain prompts for input.

Every prompt is a single line ending in ``: `` so a script (pexpect, tmux) can drive it:

* ``Type APPROVE to collect approvals for request XXXX-XXXX-XXXX, anything else cancels: ``
* ``PIN for card <serial> (<holder>): `` (hidden, never echoed)

Confirmation requires the exact word: a stray Enter never approves anything.

Everything the console shows, prompts included, goes to stderr; stdout is left to the
command's result (``--json``).
"""

from __future__ import annotations

import getpass
import select
import sys
from typing import TextIO

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from coldvault.errors import Cancelled
from coldvault.policy import Decision
from coldvault.requests.amounts import NATIVE, format_amount
from coldvault.requests.base import MovementKind, Review
from coldvault.transport.assemble import Progress


class PromptTimedOut(Cancelled):
    """The operator did not answer a prompt in time; the request is abandoned unsigned."""

    code = "prompt-timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(
            f"No answer within {seconds:.0f} s; the request was abandoned and nothing was signed."
        )
        self.seconds = seconds


class OperatorConsole:
    """Implements :class:`appliance.session.Ui` on a terminal."""

    def __init__(
        self, *, stream: TextIO | None = None, width: int = 100, timeout: float | None = None
    ) -> None:
        out = stream or sys.stderr
        self.console = Console(file=out, width=width, highlight=False, soft_wrap=True)
        self._stream = out
        #: seconds a prompt waits for the operator before the request is abandoned
        self.timeout = timeout

    # -- output ----------------------------------------------------------------------
    def info(self, text: str) -> None:
        self.console.print(text)

    def warn(self, text: str) -> None:
        self.console.print(f"[bold yellow]WARNING:[/] {text}")

    def error(self, text: str) -> None:
        self.console.print(Panel(text, title="REFUSED", border_style="red"))

    def progress(self, p: Progress) -> None:
        self.console.print(
            f"receiving {p.format}: {p.parts_received}/{p.parts_expected or '?'} parts "
            f"({p.percent:.0f} %)"
        )

    def show_review(self, review: Review, decision: Decision) -> None:
        head = Table.grid(padding=(0, 2))
        head.add_row("Request", f"[bold]{review.fingerprint}[/]")
        head.add_row("Chain", f"{review.chain} ({review.network})")
        head.add_row("Kind", review.kind)
        head.add_row("Wallet", f"{review.wallet}  (client {review.client})")
        if review.fee is not None:
            fee = format_amount(NATIVE[review.chain].symbol, review.fee)
            if review.fee_rate is not None:
                fee += f"  at {review.fee_rate:.1f} sat/vB"
            head.add_row("Fee", fee)
        for label, value in review.details:
            head.add_row(label, value)

        moves = Table(title="What moves", expand=True)
        moves.add_column("kind")
        moves.add_column("amount", justify="right")
        # addresses are never cut: the column is as wide as the longest one, a note goes on
        # its own line, and a screen too narrow for an address folds it rather than cut it
        widest = max((len(m.destination) for m in review.movements), default=0)
        moves.add_column("to", width=widest or None, overflow="fold")
        for m in review.movements:
            style = "dim" if m.kind is MovementKind.CHANGE else "bold"
            moves.add_row(
                str(m.kind), format_amount(m.asset, m.amount),
                m.destination + (f"\n({m.note})" if m.note else ""), style=style,
            )
        rules = Table(title=f"Policy v{decision.policy_version}", expand=True)
        rules.add_column("rule")
        rules.add_column("result")
        rules.add_column("why")
        for r in decision.reasons:
            rules.add_row(r.rule, "[green]pass[/]" if r.passed else "[red]FAIL[/]", r.message)
        self.console.print(Panel(head, title="REVIEW", border_style="cyan"))
        self.console.print(moves)
        for w in review.warnings:
            self.warn(w)
        self.console.print(rules)
        if decision.allowed:
            groups = decision.required_groups
            self.console.print(
                f"Approvals required: [bold]{decision.required_approvals}[/]"
                + (f", of them [bold]{groups}[/]" if groups else "")
                + f" (request {review.fingerprint})"
            )

    # -- input -----------------------------------------------------------------------
    def _ask(self, prompt: str) -> str:
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

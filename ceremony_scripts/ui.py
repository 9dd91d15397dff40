"""Operator console for ceremonies: numbered steps, check lists, confirmations, hidden prompts.

Every prompt goes through :class:`Operator`, so every answer can be typed by a person or by
a script driving the terminal (pexpect).  Prompt texts end in ``": "`` and are stable (the
tests match them).  Secrets (PINs, dice, words) are read with ``hide_input`` and never
echoed; the caller converts them to ``bytearray`` where a library allows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


class Operator:
    """The person at the console."""

    def __init__(self, *, console: Console | None = None, assume_yes: bool = False) -> None:
        self.console = console or Console(highlight=False)
        self.assume_yes = assume_yes
        self._step = 0

    # -- output -------------------------------------------------------------------------
    def title(self, text: str) -> None:
        self.console.rule(f"[bold]{escape(text)}")

    def step(self, title: str, checks: Sequence[str] = ()) -> int:
        """Start the next numbered step and list what the operator must check."""
        self._step += 1
        self.console.print(f"\n[bold cyan]Step {self._step}: {escape(title)}[/]")
        for check in checks:
            self.console.print(f"  [yellow]CHECK[/] {escape(check)}")
        return self._step

    def info(self, text: str) -> None:
        self.console.print(f"  {escape(text)}")

    def ok(self, text: str) -> None:
        self.console.print(f"  [green]OK[/] {escape(text)}")

    def warn(self, text: str) -> None:
        self.console.print(f"  [bold red]WARNING[/] {escape(text)}")

    def error(self, text: str) -> None:
        self.console.print(Panel(Text(text), title="ERROR", border_style="red"))

    def table(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        table = Table(title=escape(title), show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in rows:
            table.add_row(Text(key), Text(value))
        self.console.print(table)

    def clear(self) -> None:
        """Clear the screen (used after a secret was shown for writing down)."""
        self.console.clear()
        click.echo("\033[3J", nl=False)

    # -- input --------------------------------------------------------------------------
    def confirm(self, question: str) -> None:
        """Ask for an explicit ``yes``; anything else aborts the ceremony."""
        if self.assume_yes:
            self.info(f"{question} yes (--yes)")
            return
        answer = click.prompt(f"{question} Type yes to continue", default="", show_default=False)
        if answer.strip().lower() != "yes":
            raise click.Abort()

    def ask(self, question: str, default: str | None = None) -> str:
        return str(click.prompt(question, default=default, show_default=default is not None))

    def ask_int(self, question: str, *, low: int, high: int, default: int | None = None) -> int:
        return int(click.prompt(question, type=click.IntRange(low, high), default=default))

    def secret(self, question: str) -> str:
        """A hidden prompt (PINs, dice, words): nothing is echoed."""
        return str(click.prompt(question, hide_input=True, default="", show_default=False))

    def new_pin(self, question: str, *, min_length: int) -> str:
        """Ask twice, hidden, until both entries agree and are long enough."""
        while True:
            first = self.secret(question)
            if len(first) < min_length:
                self.warn(f"The PIN must have at least {min_length} characters.")
                continue
            if self.secret(f"Repeat {question[0].lower()}{question[1:]}") == first:
                return first
            self.warn("The two entries differ; enter the PIN again.")

    def pause(self, text: str) -> None:
        click.prompt(f"{text} Press Enter", default="", show_default=False)


__all__ = ["Operator"]

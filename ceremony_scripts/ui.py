"""The ceremony console: :class:`ConsoleOperator`, the library's Operator on a terminal.

Numbered steps, check lists, labelled values and hidden prompts, all on **stderr**: stdout carries
only machine output (``--json``).  Prompt texts are the library's, followed by ``": "``
(the pexpect smoke tests and the demo match them).  Secrets (PINs, dice, words) are read
with hidden input and never echoed.  Nothing is cropped at any width (values are soft-wrapped
lines, never table cells), and every meaning is a word (``OK``, ``CHECK``, ``WARNING``,
``ERROR``), so a monochrome console (``NO_COLOR``, ``coldvault --no-color``) loses nothing.
Ctrl-C or end of input at a prompt raises :class:`coldvault.errors.Cancelled`.
"""

from __future__ import annotations

from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.text import Text

from coldvault.ceremonies.operator import Rows
from coldvault.errors import Cancelled
from coldvault.records.printable import parse_bags

#: ``click`` context key set by the ceremonies' ``--tamper-bags`` flag
ASK_BAGS = "coldvault.ask_tamper_bags"
BAGS_PROMPT = "Tamper-evident bag numbers sealed in this ceremony (separate with commas; none)"


class ConsoleOperator:
    """The person at the console (implements :class:`coldvault.ceremonies.Operator`).

    ``assume_yes`` answers every confirmation with yes (``--yes``, scripted lab runs).
    ``ask_bags`` asks for the tamper-evident bag numbers at the close; by default it is the
    running command's ``--tamper-bags`` flag (:data:`ASK_BAGS`)."""

    def __init__(
        self, *, console: Console | None = None, assume_yes: bool = False,
        ask_bags: bool | None = None,
    ) -> None:  # fmt: skip
        self.console = console or Console(stderr=True, highlight=False)
        self.console.soft_wrap = True  # the terminal wraps; nothing is ever cropped
        self.assume_yes = assume_yes
        if ask_bags is None:
            context = click.get_current_context(silent=True)
            ask_bags = bool(context is not None and context.meta.get(ASK_BAGS))
        self.ask_bags = ask_bags
        self._step = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    # -- output -------------------------------------------------------------------------
    def title(self, text: str) -> None:
        self.console.rule(f"[bold]{escape(text)}")

    def step(self, title: str, checks: Sequence[str] = ()) -> None:
        self._step += 1
        self.console.print(f"\n[bold cyan]Step {self._step}: {escape(title)}[/]")
        for check in checks:
            self.console.print(f"  [yellow]CHECK[/] {escape(check)}")

    def info(self, text: str) -> None:
        self.console.print(f"  {escape(text)}")

    def ok(self, text: str) -> None:
        self.console.print(f"  [green]OK[/] {escape(text)}")

    def warn(self, text: str) -> None:
        self.console.print(f"  [bold red]WARNING[/] {escape(text)}")

    def error(self, text: str) -> None:
        self.console.rule("[bold red]ERROR[/]", style="red", align="left")
        self.console.print(Text(text), soft_wrap=True)
        self.console.rule(style="red")

    def table(self, title: str, rows: Rows) -> None:
        """A titled list of ``field │ value`` lines: values (keys, addresses, descriptors)
        are never cut or folded; the terminal wraps a line longer than it is wide."""
        self.console.print(Text(title, style="bold"), soft_wrap=True)
        width = max((len(key) for key, _ in rows), default=0)
        for key, value in rows:
            self.console.print(Text(f"  {key:<{width}} │ {value}"), soft_wrap=True)

    def progress(self, done: int, total: int) -> None:
        if self._progress is None:
            if done >= total:
                return
            self._progress = Progress(console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task("importing", total=total)
        if self._task is not None:
            self._progress.update(self._task, completed=done)
        if done >= total:
            self._progress.stop()
            self._progress = self._task = None

    def show_words(self, title: str, words: Sequence[str]) -> None:
        heading = f"[bold]{escape(title)}[/]  write every word down in order, on paper only"
        self.console.print(heading)
        for row in range(0, len(words), 4):
            cells = [f"{i + 1:2d}. {w:<10}" for i, w in enumerate(words) if row <= i < row + 4]
            self.console.print("   " + "  ".join(cells), markup=False, highlight=False)

    def clear(self) -> None:
        self.console.clear()
        click.echo("\033[3J", nl=False, err=True)

    # -- input --------------------------------------------------------------------------
    def confirm(self, question: str) -> bool:
        if self.assume_yes:
            self.info(f"{question} yes (--yes)")
            return True
        answer = self._prompt(f"{question} Type yes to continue", default="")
        return answer.strip().lower() == "yes"

    def ask(self, question: str, default: str | None = None) -> str:
        """A visible answer; without a default an empty answer is asked again."""
        return self._prompt(question, default=default, show_default=default is not None)

    def secret(self, question: str) -> str:
        return self._prompt(question, default="", hidden=True)

    def pause(self, text: str) -> None:
        self._prompt(f"{text} Press Enter", default="")

    def tamper_bags(self) -> Sequence[str] | None:
        if not self.ask_bags:
            return None
        bags = parse_bags(self.ask(BAGS_PROMPT))
        self.info(f"Tamper-evident bags: {', '.join(bags) if bags else 'none'}")
        return bags

    @staticmethod
    def _prompt(
        question: str, *, default: str | None, show_default: bool = False, hidden: bool = False
    ) -> str:
        try:
            answer = click.prompt(
                question,
                default=default,
                show_default=show_default,
                hide_input=hidden,
                err=True,
            )
        except click.Abort:  # Ctrl-C or end of input at the prompt
            raise Cancelled("The operator interrupted the ceremony.") from None
        return str(answer)


__all__ = ["ASK_BAGS", "BAGS_PROMPT", "ConsoleOperator"]

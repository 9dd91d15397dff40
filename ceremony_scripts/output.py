"""The ceremony CLI's one output contract: results and errors become output here only.

* ``--json`` (:func:`json_option`) is remembered in the click context (``ctx.meta``), so
  the result and the error paths read it from there.
* Machine output goes alone on stdout: the result (:func:`emit`) or ``{"ok": false,
  "error": CODE, "message": ...}``.  Human text (the ceremony console, ``Error: ...``)
  goes to stderr.
* Exit statuses (:mod:`coldvault.errors`): 0 done; 1 refused or cancelled (an operator's
  "no" or Ctrl-C); 2 bad input or usage (with ``--json``: ``"error": "usage"``); 3
  internal: an unexpected exception, one line naming its type (its traceback only with
  ``COLDVAULT_DEBUG=1``).

:class:`CeremonyGroup` applies this to every command of the ``ceremony`` and
``transcript`` groups.
"""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from coldvault.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, Cancelled, ColdvaultError, exit_status

JSON_MODE = "coldvault.ceremony.json"
DEBUG_ENV = "COLDVAULT_DEBUG"
#: The JSON error code of a usage problem (an unknown option, a bad option value).
USAGE = "usage"

F = TypeVar("F", bound=Callable[..., Any])


class Result(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    ctx.meta[JSON_MODE] = bool(value)
    return value


def json_option(func: F) -> F:
    """``--json``: the result (or the error) as one JSON line on stdout."""
    option = click.option(
        "--json",
        "as_json",
        is_flag=True,
        is_eager=True,
        expose_value=False,
        callback=_remember_json,
        help="Print the result (or the error) as one JSON line on stdout.",
    )
    return option(func)


def json_mode(ctx: click.Context | None = None) -> bool:
    ctx = ctx or click.get_current_context()
    return bool(ctx.meta.get(JSON_MODE, False))


def emit(result: Result) -> None:
    """The command's result: one JSON line on stdout with ``--json`` (else nothing more:
    the console has shown it)."""
    if json_mode():
        click.echo(json.dumps(result.to_dict(), sort_keys=True))


def _stderr() -> Console:
    """One unwrapped line per message on stderr (colour unless NO_COLOR is set)."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def report(ctx: click.Context, err: ColdvaultError) -> int:
    """Show ``err`` once (JSON on stdout, or one sentence on stderr); its exit status."""
    if json_mode(ctx):
        click.echo(json.dumps({"ok": False, **err.to_dict()}, sort_keys=True))
    else:
        _stderr().print(f"[bold red]Error:[/] {escape(err.message)}")
    return exit_status(err)


def report_internal(ctx: click.Context, exc: BaseException) -> int:
    """An unexpected exception: one line naming its type, never its text."""
    message = (
        f"Internal error ({type(exc).__name__}): this is a bug, not a problem with the input. "
        f"Set {DEBUG_ENV}=1 to see the traceback."
    )
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc)
    if json_mode(ctx):
        click.echo(json.dumps({"ok": False, "error": "internal", "message": message,
                               "kind": type(exc).__name__}))  # fmt: skip
    else:
        _stderr().print(f"[bold red]{escape(message)}[/]")
    return EXIT_INTERNAL


class CeremonyGroup(click.Group):
    """A click group whose commands' errors become output through :func:`report`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, SystemExit, BrokenPipeError):
            raise  # --help, an explicit exit, or a reader that went away
        except click.ClickException as exc:
            if not json_mode(ctx):
                raise  # click shows the usage problem on stderr, exit status 2
            exc.show()
            click.echo(json.dumps({"ok": False, "error": USAGE, "message": exc.format_message()}))
            status = EXIT_BAD_INPUT
        except (click.Abort, KeyboardInterrupt, EOFError):
            status = report(ctx, Cancelled("The operator interrupted the ceremony."))
        except ColdvaultError as err:
            status = report(ctx, err)
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors end up
            status = report_internal(ctx, exc)
        raise SystemExit(status)


__all__ = ["CeremonyGroup", "emit", "json_mode", "json_option", "report"]

"""The one place where errors become command-line output.

``coldvault`` and ``coldvault-lab`` each have one root :class:`ReportingGroup`; every
sub-command runs inside its :meth:`~ReportingGroup.invoke`, so an error escaping any command
is reported here and nowhere else, the same way every time:

* stdout carries only the command's result: with ``--json`` exactly one JSON document (the
  result, or ``{"ok": false, "error": CODE, "message": ...}``), otherwise the result line or
  the exported data. Prompts, review panels, progress, warnings and error sentences go to
  stderr.
* The exit status says which family the outcome belongs to (:mod:`coldvault.errors`):

  ===  ===============================================================================
  0    done
  1    refused or cancelled: policy, quorum, the appliance's own refusals, an operator's
       "no", Ctrl-C, a closed console, an unanswered prompt (code ``cancelled`` or the
       refusal's own code)
  2    bad input or usage: a file, a QR payload, a PIN, configuration, a missing device,
       an unknown option or a bad option value (code ``usage``)
  3    internal: a bug (an unexpected exception, or an error whose code is ``internal``).
       One line; the traceback only with ``COLDVAULT_DEBUG=1``
  ===  ===============================================================================

``--json`` is an eager option (:func:`json_option`) that records itself in the click
context (``ctx.meta``), so this module knows about it even when a later option is invalid.
A usage error found before ``--json`` was read (an unknown option) leaves stdout empty.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import click

from coldvault.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    EXIT_REFUSED,
    Cancelled,
    ColdvaultError,
    exit_status,
)

#: ``ctx.meta`` key set by :func:`json_option` (``ctx.meta`` is shared by nested contexts).
JSON_MODE = "coldvault.json"
#: Error codes the command line reports for failures that are not a ColdvaultError.
USAGE = "usage"
INTERNAL = "internal"

#: The ``--help`` epilog of every command group.
EXIT_STATUS_HELP = (
    "\b\nExit status:\n"
    "  0  done\n"
    "  1  refused or cancelled (policy, quorum, operator)\n"
    "  2  bad input or usage\n"
    "  3  internal error (a bug; COLDVAULT_DEBUG=1 shows the traceback), or signed but\n"
    "     not shown: present the same request again to re-show the stored response\n"
    "With --json, stdout holds exactly one JSON document; other text goes to stderr."
)

F = TypeVar("F", bound=Callable[..., Any])


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[JSON_MODE] = True
    return value


def json_option(f: F) -> F:
    """The ``--json`` flag. Read it with :func:`wants_json`, never from ``sys.argv``."""
    return click.option(
        "--json", "as_json", is_flag=True, is_eager=True, expose_value=False,
        callback=_remember_json,
        help="Machine-readable output: exactly one JSON document on stdout.",
    )(f)


def json_mode(ctx: click.Context) -> None:
    """Switch ``ctx`` to JSON reporting (for options such as ``--format json``)."""
    ctx.meta[JSON_MODE] = True


def wants_json(ctx: click.Context | None = None) -> bool:
    """Whether the running command was asked for ``--json``."""
    ctx = ctx or click.get_current_context()
    return bool(ctx.meta.get(JSON_MODE))


def emit_json(document: Mapping[str, object], *, indent: int | None = None) -> None:
    """Write the command's one JSON document to stdout."""
    click.echo(json.dumps(document, sort_keys=True, default=str, indent=indent))


def done(document: Mapping[str, object], human: str) -> None:
    """Report a command's result: ``{"ok": true, ...}`` with ``--json``, else ``human``."""
    if wants_json():
        emit_json({"ok": True, **document})
    else:
        click.echo(human)


@dataclass(frozen=True)
class Outcome:
    """How one failure is reported: exit status, the JSON document and the stderr sentence."""

    status: int
    document: dict[str, object]
    line: str
    exc: BaseException


def _family_word(status: int, err: ColdvaultError) -> str:
    if isinstance(err, Cancelled):
        return "cancelled"
    return "refused" if status == EXIT_REFUSED else "error"


def _internal(exc: BaseException) -> Outcome:
    kind = type(exc).__name__
    message = (
        f"Internal error ({kind}); this is a bug, not something you did. "
        "Re-run with COLDVAULT_DEBUG=1 for engineering details."
    )
    return Outcome(EXIT_INTERNAL, {"ok": False, "error": INTERNAL, "message": message,
                                   "kind": kind}, f"internal error: {message}", exc)


def classify(exc: BaseException) -> Outcome:
    """The outcome of a failure that escaped a command (never for ``SystemExit``)."""
    if isinstance(exc, KeyboardInterrupt | EOFError | click.Abort):
        exc = Cancelled("Cancelled by the operator.")
    if isinstance(exc, ColdvaultError) and exc.code == INTERNAL:
        # a bug met while handling a request, already refused and audited by the session
        return Outcome(EXIT_INTERNAL, {"ok": False, **exc.to_dict()},
                       f"internal error: {exc.message}", exc)
    if isinstance(exc, ColdvaultError):
        status = exit_status(exc)
        return Outcome(status, {"ok": False, **exc.to_dict()},
                       f"{_family_word(status, exc)}: {exc.message}", exc)
    if isinstance(exc, click.ClickException):
        return Outcome(EXIT_BAD_INPUT, {"ok": False, "error": USAGE,
                                        "message": exc.format_message()}, "", exc)
    return _internal(exc)


class ReportingGroup(click.Group):
    """A root command group whose sub-commands all report failures through :func:`classify`.

    ``error_label`` replaces the family word ("refused", "error", ...) at the start of the
    stderr sentence; :meth:`translate` lets a front end turn its own environment failures
    into a :class:`ColdvaultError` first.
    """

    error_label: str | None = None

    def translate(self, exc: Exception) -> ColdvaultError | None:
        """A ColdvaultError for a front-end-specific failure, or None to keep ``exc``."""
        return None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, SystemExit, BrokenPipeError):
            raise  # --help/--version, an explicit exit, or a reader that went away (click)
        except (KeyboardInterrupt, EOFError, click.Abort) as exc:
            self._report(ctx, classify(exc))
        except Exception as exc:  # noqa: BLE001 - the one catch-all that turns errors into output
            self._report(ctx, classify(self.translate(exc) or exc))

    def _report(self, ctx: click.Context, outcome: Outcome) -> NoReturn:
        exc = outcome.exc
        if isinstance(exc, click.ClickException):
            exc.show()  # usage text and the problem, on stderr
        else:
            if os.environ.get("COLDVAULT_DEBUG") == "1" and outcome.status == EXIT_INTERNAL:
                traceback.print_exception(exc, file=sys.stderr)
            line = outcome.line
            if self.error_label is not None and isinstance(exc, ColdvaultError):
                line = f"{self.error_label}: {exc.message}"
            # the family word ("refused:", "error:") carries the meaning; red only adds to it
            click.secho(line, fg=None if os.environ.get("NO_COLOR") else "red", err=True)
        if wants_json(ctx):
            emit_json(outcome.document)
        raise SystemExit(outcome.status)

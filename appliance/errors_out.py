"""The one place where errors become command-line output.

Every ``coldvault`` command runs inside :func:`reporting`. A ``ColdvaultError`` becomes one
clear sentence (or a JSON object with ``--json``) and exit status 2; Ctrl-C becomes exit 130;
anything unexpected becomes a one-line internal-error message — never a traceback, unless
``COLDVAULT_DEBUG=1`` is set by an engineer.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import click

from coldvault.errors import ColdvaultError

EXIT_ERROR = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


def _emit(payload: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(payload, sort_keys=True))
    else:
        click.secho(f"error: {payload['message']}", fg="red", err=True)


@contextmanager
def reporting(as_json: bool = False) -> Iterator[None]:
    try:
        yield
    except ColdvaultError as err:
        _emit({"ok": False, **err.to_dict()}, as_json)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _emit({"ok": False, "error": "interrupted", "message": "Interrupted by the operator."},
              as_json)
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.Exit:
        raise
    except click.ClickException:
        raise
    except Exception as exc:  # noqa: BLE001 - the single catch-all for operator output
        if os.environ.get("COLDVAULT_DEBUG") == "1":
            traceback.print_exc()
        _emit(
            {
                "ok": False,
                "error": "internal",
                "message": f"Internal error ({type(exc).__name__}); nothing was signed. "
                "Re-run with COLDVAULT_DEBUG=1 for engineering details.",
            },
            as_json,
        )
        sys.exit(EXIT_INTERNAL)


class ReportingGroup(click.Group):
    """A click group whose commands all report errors through :func:`reporting`."""

    def invoke(self, ctx: click.Context) -> object:
        as_json = "--json" in sys.argv[1:]
        with reporting(as_json):
            return super().invoke(ctx)

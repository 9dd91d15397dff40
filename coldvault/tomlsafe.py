"""TOML from untrusted files with a nesting bound checked *before* ``tomllib``.

``tomllib`` recurses once per nested array or inline table, guarded only by the interpreter's
recursion limit, which some libraries raise process-wide (py_ecc, pulled in by eth-account,
sets 100 000): a file of ``a = [[[[...`` then costs seconds of deep recursion and ends in a
``RecursionError`` instead of a clean refusal. Every TOML document coldvault reads (the
appliance configuration, policy, wallet registry, backup plan, drill scenario) goes through
:func:`loads`, which refuses such a file before parsing, and turns non-UTF-8 text and invalid
TOML into one :class:`TomlRejected` whose message reads after the document's name
("... is not UTF-8 text (byte 0 is not valid)").
"""

from __future__ import annotations

import tomllib
from typing import Any

DEFAULT_MAX_DEPTH = 32


class TomlRejected(ValueError):
    """Not UTF-8 TOML, or nested deeper than allowed (callers turn this into their domain
    error; the message starts with "is", to follow the document's name)."""


def toml_depth(text: str, *, stop_above: int | None = None) -> int:
    """Deepest nesting of brackets and braces outside strings and comments (a linear scan,
    no recursion; table headers count as the one or two levels they open). With
    ``stop_above``, the scan ends as soon as the depth exceeds it."""
    depth = deepest = i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in "\"'":
            delim = ch * 3 if text.startswith(ch * 3, i) else ch
            i += len(delim)
            while i < n and not text.startswith(delim, i):
                i += 2 if ch == '"' and text[i] == "\\" else 1
            i += len(delim) - 1
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if stop_above is not None and deepest > stop_above:
                return deepest
        elif ch in "]}":
            depth = max(0, depth - 1)
        i += 1
    return deepest


def loads(data: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """``tomllib.loads`` after checking UTF-8 and the nesting bound; raises
    :class:`TomlRejected`."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise TomlRejected(f"is not UTF-8 text (byte {exc.start} is not valid)") from None
    # every nesting level opens a bracket or brace, so few of them bound the depth unscanned
    if text.count("[") + text.count("{") > max_depth and (
        toml_depth(text, stop_above=max_depth) > max_depth
    ):
        raise TomlRejected(f"is not valid TOML: it nests deeper than {max_depth} levels")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TomlRejected(f"is not valid TOML: {exc}") from None
    except RecursionError:
        raise TomlRejected("is not valid TOML: it nests too deeply") from None

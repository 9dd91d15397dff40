"""JSON from untrusted files with a nesting bound checked *before* ``json.loads``.

CPython's JSON decoder recurses once per nesting level. Its guard is the interpreter's
recursion limit, and some libraries raise that limit process-wide (py_ecc, pulled in by
eth-account, sets 100 000), at which point a file of ``[[[[...`` crashes the process
instead of raising. Every JSON coldvault reads from disk or the wire goes through
:func:`loads` so a hostile file is a clean error whatever the recursion limit.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MAX_DEPTH = 32


class JsonRejected(ValueError):
    """Not JSON, or nested deeper than allowed (callers turn this into their domain error)."""


class JsonTooDeep(JsonRejected):
    """Nested deeper than allowed (checked before the decoder runs)."""


def json_depth(text: str | bytes) -> int:
    """Deepest bracket nesting outside strings (a linear scan, no recursion)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
        elif ch in "]}":
            depth -= 1
    return deepest


def loads(data: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads`` after checking the nesting bound; raises :class:`JsonRejected`
    (:class:`JsonTooDeep` for the nesting bound)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise JsonRejected("not UTF-8") from exc
    # every nesting level opens a bracket, so few brackets bound the depth without a scan
    if text.count("[") + text.count("{") > max_depth and json_depth(text) > max_depth:
        raise JsonTooDeep(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise JsonRejected(f"not valid JSON ({exc.__class__.__name__})") from exc

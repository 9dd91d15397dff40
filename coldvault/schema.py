"""Strict reading of the TOML and JSON documents coldvault loads: one mechanism for all.

Every document kind (appliance configuration, policy, wallet registry, roster, approvals,
backup plan, drill scenario, lab file) declares its shape once, as a :class:`Table` of
:data:`Spec` values, next to its loader. :func:`check` walks a parsed document against that
declaration and refuses, naming the place:

* a key the declaration does not have, with the nearest declared key (a misspelt
  ``max_fee_rte`` must never silently drop the fee-rate cap);
* a missing required key; a value of the wrong type (``true`` is never an integer);
* a number that is NaN or infinite, below or above its range, or zero where zero means
  nothing (``fps = 0``);
* a text or a list longer than its bound.

:func:`parse_toml` and :func:`parse_json` turn raw bytes into a document with the same
care: not UTF-8, nested deeper than allowed, or not valid syntax is a
:class:`SchemaViolation` too, never a ``RecursionError``.

:class:`SchemaViolation` is a ``ValueError`` carrying ``where`` (the table's path, ``""`` at
the top) and ``problem`` (a phrase naming the key); each loader turns it into its own domain
error, so the message says which document it was.  New sections plug in by adding to a
declaration: nothing here knows any document.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from coldvault import jsonsafe

DEFAULT_MAX_DEPTH = jsonsafe.DEFAULT_MAX_DEPTH
DEFAULT_MAX_TEXT = 4096
DEFAULT_MAX_ITEMS = 10_000


class SchemaViolation(ValueError):
    """A document does not match its declaration (loaders turn this into their own error)."""

    def __init__(self, where: str, problem: str, *, key: str = "") -> None:
        super().__init__(f"{where or 'top level'}: {problem}")
        self.where = where
        self.problem = problem
        #: the key whose value is wrong ("" when the table itself is)
        self.key = key

    @property
    def path(self) -> str:
        """Where the wrong value is: ``wallet[0].max_fee_rate``."""
        return _join(self.where, self.key) if self.key else self.where


@dataclass(frozen=True)
class Number:
    """An integer (``integer=True``) or a number, finite, within ``[minimum, maximum]``;
    ``positive`` also refuses zero. Booleans are never numbers."""

    integer: bool = False
    minimum: float = 0
    maximum: float | None = None
    positive: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        low = (
            f"greater than {_num(self.minimum)}"
            if self.positive
            else (f"of at least {_num(self.minimum)}")
        )
        if self.maximum is None:
            return f"{kind} {low}"
        if self.positive:
            return f"{kind} {low} and at most {_num(self.maximum)}"
        return f"{kind} between {_num(self.minimum)} and {_num(self.maximum)}"


@dataclass(frozen=True)
class Text:
    """A string of at most ``max_len`` characters; one of ``choices`` when given."""

    max_len: int = DEFAULT_MAX_TEXT
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false``."""


@dataclass(frozen=True)
class Items:
    """A list of at most ``max_items`` values, each matching ``item``."""

    item: Spec
    max_items: int = DEFAULT_MAX_ITEMS


@dataclass(frozen=True)
class Table:
    """A table with exactly the declared keys (some ``required``); nothing else."""

    fields: Mapping[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Entries:
    """A table whose keys are names chosen by the author (``[limits.BTC]``), each value
    matching ``value``."""

    value: Spec
    max_items: int = DEFAULT_MAX_ITEMS
    key_len: int = 200


@dataclass(frozen=True)
class Scalar:
    """Any single string, integer or finite number (the loader checks its meaning)."""


Spec = Union[Number, Text, Flag, Items, Table, Entries, Scalar]  # noqa: UP007


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _join(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def nearest(key: str, known: list[str] | tuple[str, ...] | frozenset[str]) -> str | None:
    """The declared key closest to a misspelt ``key``, if any is close."""
    found = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(key: str, known: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """`` (did you mean max_fee_rate?)`` for the nearest of ``known``, else the known keys."""
    guess = nearest(key, known)
    return f" (did you mean {guess}?)" if guess else f" (known keys: {', '.join(sorted(known))})"


def unknown_key(key: str, known: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """The phrase for a key not in ``known``: names it and, if one is close, the nearest."""
    shown = key if len(key) <= 64 else key[:64] + "..."
    return f"unknown key {shown!r}{did_you_mean(key, known)}"


def refuse_unknown(table: Mapping[str, Any], known: Any, where: str = "") -> None:
    """Raise :class:`SchemaViolation` for the first key of ``table`` not in ``known``."""
    names = tuple(known)
    for key in table:
        if key not in names:
            raise SchemaViolation(where, unknown_key(str(key), names))


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return _num(value) if math.isfinite(value) else str(value)
    return type(value).__name__


def _check_number(value: object, spec: Number, name: str, where: str) -> None:
    number: int | float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and not spec.integer and math.isfinite(value):
        number = value
    ok = number is not None and (
        (number > spec.minimum if spec.positive else number >= spec.minimum)
        and (spec.maximum is None or number <= spec.maximum)
    )
    if not ok:
        raise SchemaViolation(
            where, f"{name} must be {spec.describe()}, not {_type_name(value)}", key=name
        )


def check(value: object, spec: Spec, *, where: str = "", name: str = "") -> None:
    """Refuse ``value`` unless it matches ``spec``; ``name`` is the key holding it."""
    label = name or "the document"
    if isinstance(spec, Number):
        _check_number(value, spec, label, where)
    elif isinstance(spec, Text):
        if not isinstance(value, str):
            raise SchemaViolation(where, f"{label} must be text, not {_type_name(value)}", key=name)
        if len(value) > spec.max_len:
            raise SchemaViolation(
                where, f"{label} is longer than {spec.max_len} characters", key=name
            )
        if spec.choices and value not in spec.choices:
            raise SchemaViolation(
                where,
                f"{label} must be one of {', '.join(spec.choices)}, not {value[:64]!r}",
                key=name,
            )
    elif isinstance(spec, Flag):
        if not isinstance(value, bool):
            raise SchemaViolation(
                where, f"{label} must be true or false, not {_type_name(value)}", key=name
            )
    elif isinstance(spec, Scalar):
        if isinstance(value, dict | list) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            raise SchemaViolation(where, f"{label} must be a single value, not {_type_name(value)}")
    elif isinstance(spec, Items):
        if not isinstance(value, list):
            raise SchemaViolation(
                where, f"{label} must be a list, not {_type_name(value)}", key=name
            )
        if len(value) > spec.max_items:
            raise SchemaViolation(
                where, f"{label} has more than {spec.max_items} entries", key=name
            )
        for i, item in enumerate(value):
            check(item, spec.item, where=where, name=f"{name or 'item'}[{i}]")
    elif isinstance(spec, Entries):
        inner = _table(value, label, where, name)
        if len(inner) > spec.max_items:
            raise SchemaViolation(where, f"{label} has more than {spec.max_items} entries")
        for key, item in inner.items():
            if len(key) > spec.key_len:
                raise SchemaViolation(where, f"{label} has a key longer than {spec.key_len}")
            check(item, spec.value, where=_join(where, name) if name else where, name=key)
    else:
        inner = _table(value, label, where, name)
        here = _join(where, name) if name else where
        refuse_unknown(inner, spec.fields, here)
        for key in sorted(spec.required - set(inner)):
            raise SchemaViolation(here, f"the required key {key!r} is missing")
        for key, item in inner.items():
            check(item, spec.fields[key], where=here, name=key)


def _table(value: object, label: str, where: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SchemaViolation(where, f"{label} must be a table, not {_type_name(value)}", key=name)
    return value


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaViolation(
            "", f"the file is not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None


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


def _depth_guard(text: str, max_depth: int) -> None:
    # every nesting level opens a bracket or brace, so few of them bound the depth unscanned
    if text.count("[") + text.count("{") > max_depth and (
        toml_depth(text, stop_above=max_depth) > max_depth
    ):
        raise SchemaViolation("", f"the document is nested deeper than {max_depth} levels")


def parse_toml(raw: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """TOML text (UTF-8 bytes or str) as a dict; every failure is a :class:`SchemaViolation`."""
    text = _text(raw)
    _depth_guard(text, max_depth)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaViolation("", f"it is not valid TOML ({exc})") from None
    except RecursionError:
        raise SchemaViolation(
            "", f"the document is nested deeper than {max_depth} levels"
        ) from None


def parse_json(raw: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """JSON text (UTF-8 bytes or str), bounded as :func:`coldvault.jsonsafe.loads`; every
    failure is a :class:`SchemaViolation`."""
    text = _text(raw)
    try:
        return jsonsafe.loads(text, max_depth=max_depth)
    except jsonsafe.JsonTooDeep:
        raise SchemaViolation(
            "", f"the document is nested deeper than {max_depth} levels"
        ) from None
    except jsonsafe.JsonRejected as exc:
        raise SchemaViolation("", f"it is {exc}") from None


def load_toml(raw: bytes | str, spec: Table) -> dict[str, Any]:
    """:func:`parse_toml` then :func:`check` against ``spec``."""
    data = parse_toml(raw)
    check(data, spec)
    return data


def load_json(raw: bytes | str, spec: Spec) -> Any:
    """:func:`parse_json` then :func:`check` against ``spec``."""
    data = parse_json(raw)
    check(data, spec)
    return data


__all__ = [
    "Entries",
    "Flag",
    "Items",
    "Number",
    "Scalar",
    "SchemaViolation",
    "Spec",
    "Table",
    "Text",
    "check",
    "did_you_mean",
    "load_json",
    "load_toml",
    "nearest",
    "parse_json",
    "parse_toml",
    "refuse_unknown",
    "unknown_key",
]

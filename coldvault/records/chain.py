"""The one hash-chained log underneath the audit trail and ceremony transcripts.

A chain log is a JSON Lines file, append-only. Each line is one entry in **canonical JSON**
(keys sorted, separators ``,`` and ``:`` without spaces, ASCII only) followed by ``\\n``.
Every entry carries its position, a UTC time, the previous entry's hash (64 zeros for entry
0, :data:`GENESIS`) and its own ``hash``::

    hash = SHA-256(domain || canonical JSON of the entry without "hash")   (hex)

The *domain* is the log's own prefix (``coldvault/audit/v1\\0`` for the audit trail, empty
for transcripts). The two logs were first written with different key names (``seq``/
``index``, ``time``/``timestamp``, ``prev``/``prev_hash``; transcripts also carry ``v``),
time precisions (microseconds/milliseconds), domains and size bounds; unifying those would
change the bytes on disk and stop existing files from verifying. So what differs -- those,
and the errors each log raises -- is data in a frozen :class:`ChainFormat`; the audit
trail (:mod:`coldvault.records.audit`) and transcripts (:mod:`coldvault.records.transcript`)
each define one and add only their own vocabulary (seals; ceremony steps, close and
witnesses). This module owns everything else:

* :func:`canonical` and :meth:`ChainFormat.entry_hash`;
* :func:`read`, the bounded line reader: a line is read with at most ``max_line_bytes + 1``
  bytes, must end with ``\\n`` (else it is torn, which the audit trail may recover from),
  nest at most :data:`MAX_DEPTH` deep, hold exactly the format's keys with their JSON types
  and be byte-identical to its canonical form; :func:`walk` adds the chain checks (position,
  ``prev``, ``hash``). Each problem is a :class:`Defect`, raised as the log's own
  :class:`~coldvault.errors.IntegrityError` with the 0-based entry index;
* :class:`ChainWriter`: screens, hashes and writes one entry per ``write`` on an
  ``O_APPEND`` descriptor, then ``fsync``\\ s it before returning;
* one injectable clock (:data:`Clock`, default :func:`utc_now`: UTC ISO 8601 ending in ``Z``);
* one secret filter, :func:`screen`.

Nothing secret (the one rule)
-----------------------------
Before an entry is written, :func:`screen` turns it into JSON values (``bytes`` become hex;
``bytearray`` and ``memoryview``, the types secrets are held in, are refused, as are
non-finite floats, non-string keys and other types: ``ValueError``) and then
:func:`find_secret` looks at every field, at every depth, including the items of lists:

1. **Names.** A field name is split into words (at non-alphanumerics and camelCase humps,
   lower-cased; a plural ``s`` and trailing digits are ignored: ``userPins2`` is ``user``,
   ``pin``). The name *names a secret* when a word is one of :data:`SECRET_WORDS` (``pin``,
   ``puk``, ``seed``, ``mnemonic``, ``share``, ``word``, ``dice``, ``passphrase``,
   ``password``, ``secret``, ``private``, ``privkey``, ``xprv``, ``tprv``, ``scalar``,
   ``entropy``, ``wif``) or contains one of :data:`SECRET_STEMS` (``privateKey``,
   ``clientsecret``). Such a field is refused **unless its last word names a public
   derivative** and its value has that derivative's type (:data:`PUBLIC_DERIVATIVES`):

   * a digest or identifier -- ``fingerprint``, ``sha256``, ``hash``, ``digest``, ``id``,
     ``identifier`` -- with a string or integer value (``seed_fingerprint``);
   * a measure -- ``count``, ``length``, ``size``, ``bits``, ``bytes``, ``rolls``,
     ``tries``, ``retries``, ``threshold`` -- with a number (``share_count``,
     ``dice_rolls: 99``; but ``dice_rolls: "3612..."`` and ``seed_bytes: "00ff"`` are
     refused);
   * a fact -- ``set``, ``changed``, ``verified``, ``ok`` -- with ``true``/``false``
     (``user_pin_set``).

   ``null`` is allowed for every derivative. Words are whole words: ``spin`` and
   ``pinned_genesis`` are not about PINs.
2. **Values.** A string is refused when it contains an extended private key (``xprv``,
   ``tprv``, ``yprv``, ``zprv``, ... in Base58) or looks like a mnemonic: 12 or more words of
   which at least 80 % are BIP-39 or SLIP-39 English words.

The verdict is a :class:`SecretFound` (where, which field, why; never the value); each log
turns it into its documented refusal (:attr:`ChainFormat.refuse_secret`), so the audit trail
and transcripts always agree on what is secret.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import orjson
from mnemonic import Mnemonic
from shamir_mnemonic.wordlist import WORDLIST as _SLIP39_WORDLIST

from coldvault import jsonsafe
from coldvault.errors import HardwareError, IntegrityError

#: ``prev`` of entry 0
GENESIS = "0" * 64
#: every chain log stores an entry's own hash under this key
HASH_KEY = "hash"
#: how a line spells the start of its ``hash`` member when ``hash`` is not its first key
_HASH_MEMBER = b',"' + HASH_KEY.encode() + b'":"'
#: deepest JSON nesting of a line (the entry object itself is level 1)
MAX_DEPTH = jsonsafe.DEFAULT_MAX_DEPTH

#: the one clock: returns the time written into the next entry
Clock = Callable[[], str]
Timespec = Literal["milliseconds", "microseconds"]


def utc_now(timespec: Timespec = "microseconds") -> str:
    """Now, UTC, ISO 8601 ending in ``Z`` (``2026-11-22T18:14:30.123456Z``)."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


#: one encoder for every canonical dump (``json.dumps`` with options builds one per call)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def canonical(obj: object) -> bytes:
    """Keys sorted, no spaces, ASCII only: the bytes that are hashed and written."""
    return _CANONICAL.encode(obj).encode()


# --------------------------------------------------------------------------- defects
class Defect(StrEnum):
    """What reading or chaining found wrong with an entry (the ``reason`` of the error)."""

    TORN = "incomplete last line"
    TOO_LONG = "line too long"
    TOO_DEEP = "nested too deeply"
    NOT_JSON = "not JSON"
    WRONG_KEYS = "wrong keys"
    WRONG_TYPE = "a value has the wrong type"
    NOT_CANONICAL = "not in canonical form"
    UNKNOWN_VERSION = "unknown format version"
    TOO_MANY_ENTRIES = "too many entries"
    FILE_TOO_LARGE = "file too large"
    # chain checks (walk)
    SEQUENCE = "out of sequence"
    CHAIN_BROKEN = "does not chain to the entry before it"
    HASH_MISMATCH = "content does not match its hash"


#: builds the log's own error: ``(index, defect, found)``; ``found`` is the position an
#: entry carries for :attr:`Defect.SEQUENCE`, else ``None``
ErrorFactory = Callable[[int, Defect, int | None], IntegrityError]


# --------------------------------------------------------------------------- secrets
SECRET_WORDS = frozenset(
    {"pin", "puk", "seed", "mnemonic", "share", "word", "dice", "passphrase", "password",
     "secret", "private", "privkey", "xprv", "tprv", "scalar", "entropy", "wif"}
)  # fmt: skip
#: secret words that are refused even inside a longer word (``privateKey``, ``CLIENTSECRET``)
SECRET_STEMS = ("private", "privkey", "secret", "passphrase", "password", "mnemonic", "xprv",
                "tprv")  # fmt: skip

_ID: tuple[type, ...] = (str, int)
_NUMBER: tuple[type, ...] = (int, float)
_FLAG: tuple[type, ...] = (bool,)
#: last word of a field name -> the value types under which it names a public derivative
PUBLIC_DERIVATIVES: Mapping[str, tuple[type, ...]] = {
    **dict.fromkeys(("fingerprint", "sha256", "hash", "digest", "id", "identifier"), _ID),
    **dict.fromkeys(
        ("count", "length", "size", "bits", "bytes", "rolls", "tries", "retries", "threshold"),
        _NUMBER,
    ),
    **dict.fromkeys(("set", "changed", "verified", "ok"), _FLAG),
}

_MNEMONIC_WORDS = frozenset(Mnemonic("english").wordlist) | frozenset(_SLIP39_WORDLIST)
_EXTENDED_PRIVATE_KEY = re.compile(r"\b[a-zA-Z]prv[1-9A-HJ-NP-Za-km-z]{100,}")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True)
class SecretFound:
    """Why a value may not be written (it never holds the value itself)."""

    path: str  # where, e.g. ``fields.accounts[0].seed``
    key: str  # the name of the field (the innermost named field holding the value)
    reason: str


def name_words(name: str) -> list[str]:
    """The words of a field name: ``userPIN-count`` -> ``["user", "pin", "count"]``."""
    return [w for w in re.split(r"[^a-z0-9]+", _CAMEL_HUMP.sub("_", name).lower()) if w]


def _is_secret_word(word: str) -> bool:
    stem = word.rstrip("0123456789")
    if stem in SECRET_WORDS or (stem.endswith("s") and stem[:-1] in SECRET_WORDS):
        return True
    return any(s in word for s in SECRET_STEMS)


def _has_type(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def names_a_secret(name: str, value: object = None) -> bool:
    """The name rule: a secret word, and not a public derivative of the right type."""
    words = name_words(name)
    if not any(_is_secret_word(w) for w in words):
        return False
    derivative = PUBLIC_DERIVATIVES.get(words[-1])
    return derivative is None or not (value is None or _has_type(value, derivative))


def secret_text(text: str) -> str | None:
    """The value rule: why ``text`` looks like a secret, or ``None``."""
    if _EXTENDED_PRIVATE_KEY.search(text):
        return "the value holds an extended private key"
    words = re.findall(r"[a-z]+", text.lower())
    if len(words) >= 12 and sum(w in _MNEMONIC_WORDS for w in words) >= 0.8 * len(words):
        return "the value looks like a mnemonic"
    return None


#: the reason :func:`find_secret` gives when a field's name (not its value) is refused
NAME_NAMES_A_SECRET = "the name names a secret"  # noqa: S105 - a reason, not a secret


def find_secret(value: Any, path: str = "", key: str = "") -> SecretFound | None:
    """The first field of ``value`` (at any depth) that the one rule refuses, or ``None``."""
    if isinstance(value, Mapping):
        for raw_name, item in value.items():
            name = str(raw_name)
            where = f"{path}.{name}" if path else name
            if names_a_secret(name, item):
                return SecretFound(where, name, NAME_NAMES_A_SECRET)
            found = find_secret(item, where, name)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = find_secret(item, f"{path}[{i}]", key)
            if found is not None:
                return found
    elif isinstance(value, str):
        reason = secret_text(value)
        if reason is not None:
            return SecretFound(path or key, key, reason)
    return None


def to_json(value: Any, where: str, depth: int = 1) -> Any:
    """``value`` as the JSON a chain log stores: bytes as hex, tuples as lists; refuses
    what cannot be stored or is how secrets are held (``ValueError``, value not echoed)."""
    if isinstance(value, Mapping | list | tuple) and depth > MAX_DEPTH:
        raise ValueError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-string key")
            out[key] = to_json(item, f"{where}.{key}", depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, bytearray | memoryview):
        raise ValueError(f"{where} is a {type(value).__name__} (how secrets are held); refused")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where} is not a finite number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"{where} has unsupported type {type(value).__name__}")


# --------------------------------------------------------------------------- format
@dataclass(frozen=True, eq=False)
class ChainFormat:
    """One chain log's on-disk format and the errors it raises."""

    name: str  # "audit", "transcript": used in messages
    domain: bytes  # hashed before the canonical JSON (b"" = none)
    keys: Mapping[str, type]  # every key of an entry and its JSON type
    index_key: str  # the entry's position, 0, 1, 2, ...
    time_key: str
    prev_key: str
    timespec: Timespec
    max_line_bytes: int  # including the newline
    error: ErrorFactory = field(repr=False)
    #: the log's refusal of a secret (raised by :func:`screen`)
    refuse_secret: Callable[[SecretFound], Exception] = field(repr=False)
    version: tuple[str, int] | None = None  # (key, value) every entry carries
    max_entries: int | None = None
    max_file_bytes: int | None = None

    def __post_init__(self) -> None:
        own = {self.index_key, self.time_key, self.prev_key, HASH_KEY}
        if self.version is not None:
            own.add(self.version[0])
        if not own <= set(self.keys) or self.max_line_bytes < 2:
            raise ValueError(f"chain format {self.name!r} is inconsistent")

    @cached_property
    def sorted_keys(self) -> tuple[str, ...]:
        return tuple(sorted(self.keys))

    @cached_property
    def sorted_types(self) -> tuple[type, ...]:
        return tuple(self.keys[key] for key in self.sorted_keys)

    @property
    def writer_keys(self) -> frozenset[str]:
        """The keys :class:`ChainWriter` fills in (the caller supplies the others)."""
        own = {self.index_key, self.time_key, self.prev_key, HASH_KEY}
        return frozenset(own | ({self.version[0]} if self.version else set()))

    def entry_hash(self, entry: Mapping[str, Any]) -> str:
        """SHA-256 (hex) of the domain and the canonical JSON of ``entry`` without ``hash``."""
        body = {k: v for k, v in entry.items() if k != HASH_KEY}
        return hashlib.sha256(self.domain + canonical(body)).hexdigest()

    def now(self) -> str:
        return utc_now(self.timespec)


def screen(value: Any, fmt: ChainFormat) -> Any:
    """``value`` as stored JSON (:func:`to_json`), or the log's refusal if it holds a secret."""
    stored = to_json(value, fmt.name)
    found = find_secret(stored)
    if found is not None:
        raise fmt.refuse_secret(found)
    return stored


def _structure_defect(fmt: ChainFormat, obj: object) -> Defect | None:
    if type(obj) is dict and tuple(obj) == fmt.sorted_keys:  # as a canonical line has them
        if tuple(map(type, obj.values())) == fmt.sorted_types:
            return None
    if not isinstance(obj, dict) or obj.keys() != fmt.keys.keys():
        return Defect.WRONG_KEYS
    # decoded JSON holds exact types, so ``type(...) is`` also keeps bools out of ints
    if not all(type(obj[key]) is kind for key, kind in fmt.keys.items()):
        return Defect.WRONG_TYPE
    return None


# --------------------------------------------------------------------------- reading
@dataclass(slots=True)  # not frozen: one is made per line read, and frozen is slower
class Line:
    """One entry read from a chain log."""

    index: int
    entry: dict[str, Any]
    end: int  # byte offset just after this line (the length of the valid prefix)
    #: the line as read (canonical JSON of ``entry`` and the newline)
    raw: bytes = field(default=b"", repr=False, compare=False)


def _canonical_fast(raw: bytes) -> dict[str, Any] | None:
    """The object of ``raw`` if it is certainly canonical, by the fast encoder; ``None``
    means "take the exact path" (:func:`canonical`), never "not canonical".

    orjson writes sorted keys without spaces like :func:`canonical` except for non-ASCII
    text, DEL and some floats (``0.00001`` against ``1e-05``), so a line holding none of
    them and equal to orjson's own encoding of its object is canonical.  Objects nested
    deeper than the bound take the exact path, which refuses them."""
    if not raw.isascii() or b"\x7f" in raw:
        return None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    dumped = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    if len(dumped) != len(raw) - 1 or not raw.startswith(dumped):  # raw is dumped + b"\n"
        return None
    return obj if _values_agree(obj) else None


def _values_agree(value: dict[str, Any] | list[Any]) -> bool:
    """``value`` (the line's object, level 1) nests at most :data:`MAX_DEPTH` deep, and
    every float in it is written alike by orjson and :func:`canonical`."""
    stack: list[tuple[Any, int]] = [(value, 1)]  # containers only; scalars where they stand
    dumps = orjson.dumps
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        for inner in item.values() if type(item) is dict else item:
            kind = type(inner)
            if kind is dict or kind is list:
                stack.append((inner, depth + 1))
            elif kind is float and dumps(inner) != float.__repr__(inner).encode():
                return False
    return True


def _parse(fmt: ChainFormat, index: int, raw: bytes) -> dict[str, Any]:
    obj = _canonical_fast(raw)
    exact = obj is None
    if obj is None:
        try:
            obj = jsonsafe.loads(raw)
        except jsonsafe.JsonTooDeep:
            raise fmt.error(index, Defect.TOO_DEEP, None) from None
        except jsonsafe.JsonRejected:
            raise fmt.error(index, Defect.NOT_JSON, None) from None
    defect = _structure_defect(fmt, obj)
    if defect is None and exact and canonical(obj) + b"\n" != raw:
        defect = Defect.NOT_CANONICAL
    if defect is None and fmt.version is not None and obj[fmt.version[0]] != fmt.version[1]:
        defect = Defect.UNKNOWN_VERSION
    if defect is not None:
        raise fmt.error(index, defect, None)
    return obj


def read(path: Path | str, fmt: ChainFormat, *, allow_torn_tail: bool = False) -> Iterator[Line]:
    """Every entry of a chain log, structure checked, never more than one line in memory.

    ``allow_torn_tail``: stop silently at an incomplete last line (a crash in the middle of
    an append) instead of raising :attr:`Defect.TORN`. ``FileNotFoundError`` propagates."""
    with open(path, "rb") as fh:
        if fmt.max_file_bytes is not None and os.fstat(fh.fileno()).st_size > fmt.max_file_bytes:
            raise fmt.error(0, Defect.FILE_TOO_LARGE, None)
        end, index = 0, 0
        longest, most = fmt.max_line_bytes, fmt.max_entries  # read once, not per line
        while raw := fh.readline(longest + 1):
            if most is not None and index >= most:
                raise fmt.error(index, Defect.TOO_MANY_ENTRIES, None)
            if len(raw) > longest:
                raise fmt.error(index, Defect.TOO_LONG, None)
            if not raw.endswith(b"\n"):
                if allow_torn_tail:
                    return
                raise fmt.error(index, Defect.TORN, None)
            entry = _parse(fmt, index, raw)
            end += len(raw)
            yield Line(index, entry, end, raw)
            index += 1


def _line_hash(fmt: ChainFormat, entry: Mapping[str, Any], raw: bytes, sliceable: bool) -> str:
    """:meth:`ChainFormat.entry_hash` of an entry read from its canonical line ``raw``,
    hashing a slice of the line instead of serialising the entry again.

    ``raw`` is ``canonical(entry) + b"\\n"`` (:func:`read` checked it). When ``hash`` is not
    the entry's first key and every key after it holds a scalar (``sliceable``), the last
    ``,"hash":`` in the line is the entry's own member (a ``"`` inside a JSON string is
    escaped, and nested objects all sort before it), and cutting that member out leaves
    the canonical JSON of the entry without its hash.  Anything else is serialised."""
    digest = entry[HASH_KEY]
    if sliceable and len(digest) == 64 and digest.isascii() and digest.isalnum():
        at = raw.rfind(_HASH_MEMBER)  # then the digest, its closing quote, the rest
        start = at + len(_HASH_MEMBER)
        end = start + 65
        if at > 0 and raw[start : end - 1] == digest.encode() and raw[end - 1] == 34:  # '"'
            return hashlib.sha256(fmt.domain + raw[:at] + raw[end:-1]).hexdigest()
    return fmt.entry_hash(entry)


def walk(path: Path | str, fmt: ChainFormat, *, allow_torn_tail: bool = False) -> Iterator[Line]:
    """:func:`read` plus the chain: each entry's position, ``prev`` link and ``hash``."""
    prev = GENESIS
    sliceable = all(kind not in (dict, list) for key, kind in fmt.keys.items() if key > HASH_KEY)
    index_key, prev_key = fmt.index_key, fmt.prev_key
    for line in read(path, fmt, allow_torn_tail=allow_torn_tail):
        entry, index = line.entry, line.index
        if entry[index_key] != index:
            raise fmt.error(index, Defect.SEQUENCE, entry[index_key])
        if entry[prev_key] != prev:
            raise fmt.error(index, Defect.CHAIN_BROKEN, None)
        if entry[HASH_KEY] != _line_hash(fmt, entry, line.raw, sliceable):
            raise fmt.error(index, Defect.HASH_MISMATCH, None)
        prev = entry[HASH_KEY]
        yield line


# --------------------------------------------------------------------------- writing
def fsync_dir(directory: Path) -> None:
    """Make a file's creation (its directory entry) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ChainWriter:
    """Appends entries to one existing chain log file, each durable before it returns.

    ``fd``: an open ``O_APPEND`` descriptor of the file that the caller owns (and keeps, e.g.
    for a lock); without it every append opens and closes the file. ``next_index``, ``head``
    and ``size`` continue an existing log (its entry count, last hash and byte length)."""

    def __init__(
        self,
        path: Path | str,
        fmt: ChainFormat,
        *,
        clock: Clock | None = None,
        fd: int | None = None,
        next_index: int = 0,
        head: str = GENESIS,
        size: int = 0,
    ) -> None:
        self.path = Path(path)
        self.format = fmt
        self._clock = clock or fmt.now
        self._fd = fd
        self._next, self._head, self._size = next_index, head, size

    @property
    def next_index(self) -> int:
        return self._next

    @property
    def head(self) -> str:
        """Hash of the last entry (:data:`GENESIS` for an empty log)."""
        return self._head

    def append(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Screen ``values`` (every key but the writer's own), chain, write, fsync; return
        the entry as written. Refuses (``ValueError``) what the reader would refuse."""
        fmt = self.format
        if set(values) != set(fmt.keys) - fmt.writer_keys:
            raise ValueError(f"a {fmt.name} entry takes exactly the keys {sorted(fmt.keys)}")
        if fmt.max_entries is not None and self._next >= fmt.max_entries:
            raise ValueError(f"a {fmt.name} log holds at most {fmt.max_entries} entries")
        entry: dict[str, Any] = dict(screen(dict(values), fmt))
        entry |= {fmt.index_key: self._next, fmt.time_key: self._clock(), fmt.prev_key: self._head}
        if fmt.version is not None:
            entry[fmt.version[0]] = fmt.version[1]
        entry[HASH_KEY] = fmt.entry_hash(entry)
        defect = _structure_defect(fmt, entry)
        if defect is not None:
            raise ValueError(f"{fmt.name} entry: {defect}")
        line = canonical(entry) + b"\n"
        if len(line) > fmt.max_line_bytes:
            raise ValueError(f"{fmt.name} entry exceeds {fmt.max_line_bytes} bytes")
        if fmt.max_file_bytes is not None and self._size + len(line) > fmt.max_file_bytes:
            raise ValueError(f"a {fmt.name} log holds at most {fmt.max_file_bytes} bytes")
        self._write(line)
        self._next, self._head, self._size = self._next + 1, entry[HASH_KEY], self._size + len(line)
        return entry

    def _write(self, line: bytes) -> None:
        fd = self._fd if self._fd is not None else os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise HardwareError(
                    f"Only {written} of {len(line)} bytes reached the {self.format.name} log."
                )
            os.fsync(fd)
        finally:
            if self._fd is None:
                os.close(fd)


__all__ = [
    "GENESIS",
    "HASH_KEY",
    "MAX_DEPTH",
    "PUBLIC_DERIVATIVES",
    "SECRET_STEMS",
    "SECRET_WORDS",
    "ChainFormat",
    "ChainWriter",
    "Clock",
    "Defect",
    "ErrorFactory",
    "Line",
    "SecretFound",
    "canonical",
    "find_secret",
    "fsync_dir",
    "name_words",
    "names_a_secret",
    "read",
    "screen",
    "secret_text",
    "to_json",
    "utc_now",
    "walk",
]

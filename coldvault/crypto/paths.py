"""BIP-32 derivation paths: the hardened bit, parsing ``"m/84h/0h/0h/0/5"`` and writing it.

A path is a ``tuple[int, ...]`` of child indices with the hardened bit (``HARDENED``) set
on hardened elements.  This is the one parser and the one writer of path text in
coldvault: wallet registries, descriptors, key labels and requests all use it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from coldvault.crypto.errors import CryptoInputError

#: The hardened bit of a child index (BIP-32): indices at or above it are hardened.
HARDENED = 0x8000_0000
#: BIP-32 serialises depth in one byte.
MAX_DEPTH = 255

_ELEMENT = re.compile(r"^(\d{1,10})([hH']?)$")


class InvalidPath(CryptoInputError):
    """A derivation path string is malformed."""

    code = "invalid-path"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"The derivation path {path!r} is invalid: {message}.")
        self.path = path


def parse_path(text: str) -> tuple[int, ...]:
    """``"m/84h/0'/0H/0/5"`` -> indices with the hardened bit set; ``"m"`` -> ``()``.

    ``h``, ``H`` and ``'`` all mark a hardened element.  Raises :class:`InvalidPath`.
    """
    parts = text.strip().split("/")
    if parts[0] != "m":
        raise InvalidPath(text, "it must start with 'm'")
    out: list[int] = []
    for part in parts[1:]:
        match = _ELEMENT.match(part)
        if match is None:
            raise InvalidPath(text, f"element {part!r} is not a number with an optional h")
        index = int(match.group(1))
        if index >= HARDENED:
            raise InvalidPath(text, f"index {index} is not below 2^31")
        out.append(index | HARDENED if match.group(2) else index)
    if len(out) > MAX_DEPTH:
        raise InvalidPath(text, f"it is deeper than {MAX_DEPTH}")
    return tuple(out)


def path_to_str(path: Sequence[int], *, prefix: str = "m") -> str:
    """``[84|H, 0|H, 0|H, 0, 5]`` -> ``"m/84h/0h/0h/0/5"`` (``prefix=""``: ``"84h/0h/0h/0/5"``)."""
    parts = [prefix] if prefix else []
    for index in path:
        if not 0 <= index <= 0xFFFF_FFFF:
            raise ValueError(f"child index {index} is not a 32-bit unsigned integer")
        parts.append(f"{index & ~HARDENED}h" if index & HARDENED else str(index))
    return "/".join(parts)


def unhardened(index: int) -> int:
    """The index without its hardened bit (``84h`` -> 84)."""
    return index & ~HARDENED

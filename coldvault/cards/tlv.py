"""BER-TLV as OpenPGP cards use it (ISO 7816-4 §5.2), read from untrusted card responses.

Tags are one or two bytes (a first byte with its low five bits set announces a second);
lengths are short (< 128), ``81 xx`` or ``82 xxxx``.  ``00`` and ``FF`` between objects are
padding.  Every length is checked against the bytes actually present: a malformed response
raises :class:`~coldvault.cards.errors.CardProtocolError`, never an ``IndexError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from coldvault.cards.errors import CardProtocolError


def parse(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The ``(tag, value)`` pairs at the top level of ``data``, in order."""
    i, n = 0, len(data)
    while i < n:
        if data[i] in (0x00, 0xFF):  # padding between objects
            i += 1
            continue
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= n:
                raise CardProtocolError("The card sent a truncated TLV tag.")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= n:
            raise CardProtocolError("The card sent a truncated TLV length.")
        length = data[i]
        i += 1
        if length in (0x81, 0x82):
            width = length - 0x80
            if i + width > n:
                raise CardProtocolError("The card sent a truncated TLV length.")
            length = int.from_bytes(data[i : i + width], "big")
            i += width
        elif length > 0x80:
            raise CardProtocolError("The card sent an unsupported TLV length form.")
        if i + length > n:
            raise CardProtocolError("The card sent a TLV value longer than its response.")
        yield tag, data[i : i + length]
        i += length


def find(data: bytes, *path: int) -> bytes | None:
    """The value at ``path`` (outer tag first; the first match at each level), or None."""
    current = data
    for tag in path:
        found = None
        for t, v in parse(current):
            if t == tag:
                found = v
                break
        if found is None:
            return None
        current = found
    return current

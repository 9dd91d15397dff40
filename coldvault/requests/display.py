"""Operator-facing text for untrusted request data (messages, origins)."""

from __future__ import annotations


def message_text(data: bytes) -> str:
    """``data`` as text when it is printable UTF-8 (newlines and tabs allowed), else hex."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + data.hex()
    if all(c.isprintable() or c in "\n\t" for c in text):
        return text
    return "0x" + data.hex()


def origin_text(origin: str) -> str:
    """A requester's self-description, at most 64 characters, escaped if not printable."""
    return origin[:64] if origin.isprintable() else repr(origin)[:64]

"""Minimal BER-TLV encoding for the virtual card (one- and two-byte tags, short forms)."""

from __future__ import annotations


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    if length < 0x100:
        return bytes([0x81, length])
    if length < 0x10000:
        return bytes([0x82]) + length.to_bytes(2, "big")
    raise ValueError("TLV value too long")


def tlv(tag: int, value: bytes) -> bytes:
    """Encode one TLV; ``tag`` is the full tag number (e.g. 0x5F52, 0x7F49, 0x4F)."""
    raw_tag = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    return raw_tag + encode_length(len(value)) + value


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """Parse a flat sequence of TLVs; raises ValueError on malformed input."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= len(data):
                raise ValueError("truncated tag")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= len(data):
            raise ValueError("truncated length")
        length = data[i]
        i += 1
        if length == 0x81 or length == 0x82:
            n = length - 0x80
            if i + n > len(data):
                raise ValueError("truncated length")
            length = int.from_bytes(data[i : i + n], "big")
            i += n
        elif length > 0x80:
            raise ValueError("unsupported length form")
        if i + length > len(data):
            raise ValueError("truncated value")
        out.append((tag, data[i : i + length]))
        i += length
    return out

"""Bytewords (BCR-2020-012): bytes as four-letter English words, with a CRC32 checksum.

Every byte maps to one of 256 words.  A bytewords string is the words of
``data || CRC32(data)`` (CRC32 as 4 big-endian bytes), in one of three styles:

* ``standard``: words separated by spaces (``able acid also ...``);
* ``uri``: words separated by hyphens (``able-acid-also-...``);
* ``minimal``: the first and last letter of each word, no separator (``aeadao...``).
  This is the style used inside ``ur:`` strings.

Decoding is case-insensitive (QR alphanumeric mode upper-cases text), checks the CRC32
and refuses bodies shorter than 5 bytes (4 checksum bytes and at least one data byte).
"""

from __future__ import annotations

import enum
import zlib

from coldvault.errors import DecodeError

# The 256 words in byte order, concatenated (each word is exactly four letters).
_WORDS_BLOB = (
    "ableacidalsoapexaquaarchatomauntawayaxisbackbaldbarnbeltbetabiasbluebodybragbrewbulb"
    "buzzcalmcashcatschefcityclawcodecolacookcostcruxcurlcuspcyandarkdatadaysdelidicediet"
    "doordowndrawdropdrumdulldutyeacheasyechoedgeepicevenexamexiteyesfactfairfernfigsfilm"
    "fishfizzflapflewfluxfoxyfreefrogfuelfundgalagamegeargemsgiftgirlglowgoodgraygrimguru"
    "gushgyrohalfhanghardhawkheathelphighhillholyhopehornhutsicedideaidleinchinkyintoiris"
    "ironitemjadejazzjoinjoltjowljudojugsjumpjunkjurykeepkenokeptkeyskickkilnkingkitekiwi"
    "knoblamblavalazyleaflegsliarlimplionlistlogoloudloveluaulucklungmainmanymathmazememo"
    "menumeowmildmintmissmonknailnavyneednewsnextnoonnotenumbobeyoboeomitonyxopenovalowls"
    "paidpartpeckplaypluspoempoolposepuffpumapurrquadquizraceramprealredorichroadrockroof"
    "rubyruinrunsrustsafesagascarsetssilkskewslotsoapsolosongstubsurfswantacotasktaxitent"
    "tiedtimetinytoiltombtoystriptunatwinuglyundouniturgeuservastveryvetovialvibeviewvisa"
    "voidvowswallwandwarmwaspwavewaxywebswhatwhenwhizwolfworkyankyawnyellyogayurtzapszero"
    "zestzinczonezoom"
)

#: The bytewords table: ``WORDS[b]`` is the word for byte ``b``.
WORDS: tuple[str, ...] = tuple(_WORDS_BLOB[i : i + 4] for i in range(0, 1024, 4))
#: Minimal form (first + last letter) per byte.
MINIMAL: tuple[str, ...] = tuple(w[0] + w[3] for w in WORDS)

#: ``bytes.translate`` tables to each byte's first and last letter: minimal encoding is two
#: translations interleaved (C speed; a long reply is ~1,000 frames of ~200 bytes)
_FIRST = bytes(ord(w[0]) for w in WORDS)
_LAST = bytes(ord(w[3]) for w in WORDS)

_WORD_TO_BYTE: dict[str, int] = {w: i for i, w in enumerate(WORDS)}
_MINIMAL_TO_BYTE: dict[str, int] = {m: i for i, m in enumerate(MINIMAL)}
_SEPARATOR = {"standard": " ", "uri": "-"}

#: Bytes of CRC32 appended to the data.
CHECKSUM_LEN = 4


class Style(enum.StrEnum):
    STANDARD = "standard"
    URI = "uri"
    MINIMAL = "minimal"


class BytewordsError(DecodeError):
    """A bytewords string could not be decoded."""

    code = "bytewords"


class InvalidWord(BytewordsError):
    """A word (or minimal letter pair) is not in the bytewords table."""

    code = "bytewords-invalid-word"

    def __init__(self, position: int, style: str) -> None:
        super().__init__(
            f"Bytewords {style} text has an unknown word at position {position}; "
            "the QR code or text is damaged or not bytewords. Rescan it."
        )
        self.position = position
        self.style = style


class ChecksumMismatch(BytewordsError):
    """The CRC32 at the end of the bytewords body does not match the data."""

    code = "bytewords-checksum"

    def __init__(self) -> None:
        super().__init__(
            "Bytewords checksum does not match the data; the QR code or text is damaged. "
            "Rescan it."
        )


class TooShort(BytewordsError):
    """The body is shorter than the 4-byte checksum plus one data byte."""

    code = "bytewords-too-short"

    def __init__(self, length: int) -> None:
        super().__init__(
            f"Bytewords text decodes to {length} byte(s), fewer than the 5 needed for a "
            "checksum and data; it is truncated. Rescan it."
        )
        self.length = length


class TooLong(BytewordsError):
    """The text is longer than the caller's bound."""

    code = "bytewords-too-long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"Bytewords text of {length} characters exceeds the limit of {limit} characters; "
            "refusing to decode it."
        )
        self.length = length
        self.limit = limit


def crc32(data: bytes) -> int:
    """CRC-32 (ISO-HDLC, as zlib) of ``data`` as an unsigned 32-bit integer."""
    return zlib.crc32(data) & 0xFFFFFFFF


def _with_checksum(data: bytes) -> bytes:
    return bytes(data) + crc32(data).to_bytes(4, "big")


def encode(data: bytes, style: Style | str = Style.MINIMAL) -> str:
    """Bytewords of ``data`` followed by its CRC32, in the given style (lower case)."""
    style = Style(style)
    body = _with_checksum(data)
    if style is Style.MINIMAL:
        letters = bytearray(2 * len(body))
        letters[0::2] = body.translate(_FIRST)
        letters[1::2] = body.translate(_LAST)
        return letters.decode("ascii")
    return _SEPARATOR[style].join([WORDS[b] for b in body])


def decode(text: str, style: Style | str = Style.MINIMAL, *, max_len: int | None = None) -> bytes:
    """Decode bytewords ``text`` of ``style`` and return the data without its checksum.

    ``max_len`` bounds the text length (characters) before any work is done.
    Raises :class:`InvalidWord`, :class:`ChecksumMismatch`, :class:`TooShort` or
    :class:`TooLong` (all :class:`BytewordsError`).
    """
    style = Style(style)
    if not isinstance(text, str):
        raise TypeError("bytewords text must be a str")
    if max_len is not None and len(text) > max_len:
        raise TooLong(len(text), max_len)
    text = text.lower()
    if style is Style.MINIMAL:
        if len(text) % 2:
            raise InvalidWord(len(text) // 2, style.value)
        table = _MINIMAL_TO_BYTE
        tokens = [text[i : i + 2] for i in range(0, len(text), 2)]
    else:
        table = _WORD_TO_BYTE
        tokens = text.split(_SEPARATOR[style]) if text else []
    out = bytearray(len(tokens))
    for i, token in enumerate(tokens):
        value = table.get(token)
        if value is None:
            raise InvalidWord(i, style.value)
        out[i] = value
    if len(out) < CHECKSUM_LEN + 1:
        raise TooShort(len(out))
    data, check = bytes(out[:-CHECKSUM_LEN]), bytes(out[-CHECKSUM_LEN:])
    if crc32(data).to_bytes(4, "big") != check:
        raise ChecksumMismatch()
    return data

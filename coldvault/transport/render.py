"""Render frame text as QR codes: matrix, PIL image, PNG, animated GIF and terminal text.

Text made only of the QR alphanumeric characters (``0-9 A-Z $%*+-./:`` and space) is
encoded in alphanumeric mode, 5.5 bits per character; anything else in byte mode.  UR frames
should therefore be upper-cased before rendering (``transport`` does this) and BBQr frames
are alphanumeric by construction.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import qrcode
import qrcode.base
import qrcode.constants
import qrcode.util
from PIL import Image

ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def _fix_zero_block_remainder() -> None:
    """Work around a python-qrcode 8.2 crash (``ValueError: glog(0)``).

    When every data codeword of one Reed-Solomon block is zero (a run of ``0`` characters
    in alphanumeric mode, e.g. zero bytes of a PSBT in a BBQr hex frame) the library's
    polynomial remainder takes the log of 0.  The remainder of the zero polynomial is zero,
    which is what this guard returns; every other case runs the library's own code.
    """
    polynomial = qrcode.base.Polynomial
    original = polynomial.__mod__
    if getattr(original, "_zero_block_guard", False):
        return

    def guarded_mod(self: qrcode.base.Polynomial, other: qrcode.base.Polynomial) -> object:
        if len(self) >= len(other) and self[0] == 0:
            return self
        return original(self, other)

    guarded_mod._zero_block_guard = True  # type: ignore[attr-defined]
    polynomial.__mod__ = guarded_mod  # type: ignore[method-assign,assignment]


_fix_zero_block_remainder()


class Ecc(StrEnum):
    """QR error-correction level; L suits screens (BBQr and UR recommend it)."""

    L = "L"
    M = "M"
    Q = "Q"
    H = "H"


_ECC = {
    Ecc.L: qrcode.constants.ERROR_CORRECT_L,
    Ecc.M: qrcode.constants.ERROR_CORRECT_M,
    Ecc.Q: qrcode.constants.ERROR_CORRECT_Q,
    Ecc.H: qrcode.constants.ERROR_CORRECT_H,
}


@dataclass(frozen=True)
class RenderOptions:
    """How a frame is drawn. ``box_size`` is pixels per module; ``border`` is in modules."""

    ecc: Ecc = Ecc.L
    box_size: int = 4
    border: int = 4
    #: Fixed mask pattern 0..7; None evaluates all eight and keeps the best (about 8x
    #: slower to render, marginally easier to scan).
    mask_pattern: int | None = None

    def __post_init__(self) -> None:
        if self.box_size < 1 or self.border < 0:
            raise ValueError("box_size must be >= 1 and border >= 0")
        if self.mask_pattern is not None and not 0 <= self.mask_pattern <= 7:
            raise ValueError("mask_pattern must be 0..7 or None")


def is_alphanumeric(text: str) -> bool:
    """True when every character of ``text`` is in the QR alphanumeric set."""
    return all(ch in ALPHANUMERIC for ch in text)


def qr_matrix(text: str, options: RenderOptions = RenderOptions()) -> list[list[bool]]:
    """The module matrix (True = dark), including the quiet-zone border."""
    if not text:
        raise ValueError("cannot render an empty QR code")
    mode = qrcode.util.MODE_ALPHA_NUM if is_alphanumeric(text) else qrcode.util.MODE_8BIT_BYTE
    code = qrcode.QRCode(
        version=None,
        error_correction=_ECC[options.ecc],
        border=options.border,
        mask_pattern=options.mask_pattern,
    )
    code.add_data(qrcode.util.QRData(text.encode("utf-8"), mode=mode, check_data=False))
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def qr_version(text: str, options: RenderOptions = RenderOptions()) -> int:
    """The QR version (1..40) ``text`` needs."""
    size = len(qr_matrix(text, options)) - 2 * options.border
    return (size - 17) // 4


def render_image(text: str, options: RenderOptions = RenderOptions()) -> Image.Image:
    """A greyscale (mode ``L``) image: black modules on white."""
    matrix = qr_matrix(text, options)
    modules = len(matrix)
    small = Image.new("L", (modules, modules), 255)
    small.putdata([0 if dark else 255 for row in matrix for dark in row])
    size = modules * options.box_size
    return small.resize((size, size), Image.Resampling.NEAREST)


def render_png(text: str, options: RenderOptions = RenderOptions()) -> bytes:
    """PNG bytes of :func:`render_image`."""
    buffer = io.BytesIO()
    render_image(text, options).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def render_frames(
    frames: Sequence[str], options: RenderOptions = RenderOptions()
) -> list[Image.Image]:
    """Render every frame, centred on a white canvas the size of the largest one."""
    if not frames:
        raise ValueError("no frames to render")
    images = [render_image(text, options) for text in frames]
    side = max(image.width for image in images)
    out = []
    for image in images:
        if image.width == side:
            out.append(image)
            continue
        canvas = Image.new("L", (side, side), 255)
        offset = (side - image.width) // 2
        canvas.paste(image, (offset, offset))
        out.append(canvas)
    return out


def render_gif(
    frames: Sequence[str],
    *,
    frame_duration_ms: int = 200,
    options: RenderOptions = RenderOptions(),
) -> bytes:
    """An endlessly looping animated GIF showing each frame for ``frame_duration_ms``."""
    if frame_duration_ms < 10:
        raise ValueError("frame_duration_ms must be at least 10 (GIF timing resolution)")
    images = [image.convert("P") for image in render_frames(frames, options)]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=frame_duration_ms,
        loop=0,
        disposal=1,
        optimize=False,
    )
    return buffer.getvalue()


def render_terminal(
    text: str,
    *,
    border: int = 2,
    invert: bool = False,
    ecc: Ecc = Ecc.L,
    mask_pattern: int | None = None,
) -> str:
    """The QR drawn with half-block characters, two module rows per text line.

    By default dark modules are drawn as blocks (for a light terminal background); pass
    ``invert=True`` on dark terminals so the quiet zone is drawn lit.  ``mask_pattern`` as
    in :class:`RenderOptions` (a fixed one renders about 8x faster).
    """
    options = RenderOptions(ecc=ecc, box_size=1, border=border, mask_pattern=mask_pattern)
    matrix = qr_matrix(text, options)
    if invert:
        matrix = [[not dark for dark in row] for row in matrix]
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    glyphs = {(False, False): " ", (True, False): "\u2580", (False, True): "\u2584",
              (True, True): "\u2588"}
    lines = []
    for top, bottom in zip(matrix[0::2], matrix[1::2], strict=True):
        lines.append("".join(glyphs[(a, b)] for a, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)

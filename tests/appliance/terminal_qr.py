"""Reading the console's text QR codes back: half-block characters to pixels."""

from __future__ import annotations

from PIL import Image

#: each character is two modules, one above the other (True: dark)
HALF_BLOCKS = {" ": (False, False), "\u2580": (True, False), "\u2584": (False, True),
               "\u2588": (True, True)}  # fmt: skip


def rasterise(picture: str, scale: int = 6, quiet: int = 4) -> Image.Image:
    """The text QR drawn by ``render_terminal`` as a greyscale image a decoder can read."""
    rows: list[list[bool]] = []
    for line in picture.split("\n"):
        cells = [HALF_BLOCKS[ch] for ch in line]
        rows += [[top for top, _ in cells], [bottom for _, bottom in cells]]
    width = max(len(r) for r in rows) + 2 * quiet
    height = len(rows) + 2 * quiet
    image = Image.new("L", (width, height), 255)
    image.putdata([
        0 if quiet <= y < len(rows) + quiet and quiet <= x < len(rows[y - quiet]) + quiet
        and rows[y - quiet][x - quiet] else 255
        for y in range(height) for x in range(width)
    ])  # fmt: skip
    return image.resize((width * scale, height * scale), Image.Resampling.NEAREST)

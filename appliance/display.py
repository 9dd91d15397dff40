"""Showing a signed response: each frame is rendered only when its turn to be shown comes.

Sinks (``[output] sink``, or ``coldvault appliance run --sink``; the names are
:data:`coldvault.config.OUTPUT_SINKS`):

* ``terminal`` -- production: the frames are drawn as text QR codes on the appliance's own
  console (:func:`coldvault.transport.render.render_terminal`), one after the other at the
  configured frame rate.  Frame *n* is rendered after frame *n-1* was shown, so the first
  frame is on screen after rendering one frame, whatever the response's size, and nothing
  is written to disk.  On an interactive console the stream loops (a fountain never ends)
  until the operator presses Enter or the response timeout passes; otherwise one cycle
  (``count`` frames) is shown.
* ``png-dir`` and ``gif`` -- the lab's sinks (camera tests, demos): files, written by
  :func:`write_png_dir` (each PNG as soon as it is rendered) and :func:`write_gif`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from coldvault.transport import render as qr_render


@runtime_checkable
class FrameScreen(Protocol):
    """Where the terminal sink draws (:class:`appliance.console.OperatorConsole`)."""

    @property
    def interactive(self) -> bool:
        """True when an operator can press Enter to end the display (a terminal)."""
        ...

    def show_frame(self, picture: str, caption: str) -> None:
        """Replace the frame on screen by ``picture`` (text) with ``caption`` under it."""
        ...

    def stop_requested(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when the operator asked to end the display."""
        ...


#: The terminal sink's fixed QR mask: one mask evaluated instead of eight (the best-mask
#: search is about 8x slower); its frames are decoded back in tests/appliance/test_display.py.
TERMINAL_MASK = 2


def _terminal_frame(text: str) -> str:
    return qr_render.render_terminal(text, mask_pattern=TERMINAL_MASK)


def show_on_screen(
    frames: Iterable[str],
    screen: FrameScreen,
    *,
    fps: float,
    limit: int | None,
    timeout: float,
    render: Callable[[str], str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Show ``frames`` one at a time, rendering each just before it is shown; returns how
    many were shown.  ``render`` draws one frame (default: a text QR code).  Ends after
    ``limit`` frames (None: no limit), when the operator asks, or after ``timeout``
    seconds."""
    if fps <= 0:
        raise ValueError("fps must be positive")
    render = render or _terminal_frame
    deadline = clock() + timeout
    shown = 0
    for text in frames:
        picture = render(text)
        shown += 1
        end = "press Enter when the coordinator has it" if screen.interactive else ""
        screen.show_frame(picture, f"response frame {shown}" + (f"; {end}" if end else ""))
        if limit is not None and shown >= limit:
            break
        if screen.stop_requested(1.0 / fps) or clock() > deadline:
            break
    return shown


def write_png_dir(texts: Iterable[str], target: Path) -> list[Path]:
    """``frame-NNNN.png`` for each text (each written as soon as it is rendered) and
    ``frames.txt``; older frames in ``target`` are removed first."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("frame-*.png"):
        old.unlink()
    written: list[Path] = []
    kept: list[str] = []
    for i, text in enumerate(texts):
        path = target / f"frame-{i:04d}.png"
        path.write_bytes(qr_render.render_png(text))
        written.append(path)
        kept.append(text)
    (target / "frames.txt").write_text("\n".join(kept) + "\n")
    written.append(target / "frames.txt")
    return written


def write_gif(texts: Iterable[str], target: Path, *, fps: float) -> list[Path]:
    """One looping animated GIF of ``texts`` (it needs every frame before it is written)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(qr_render.render_gif(list(texts), frame_duration_ms=int(1000 / fps)))
    return [target]


__all__ = ["FrameScreen", "show_on_screen", "write_gif", "write_png_dir"]

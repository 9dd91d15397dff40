"""A virtual camera pointed at a screen showing (animated) QR codes.

It implements :class:`coldvault.transport.frames.FrameSource`, and :func:`open_source` is
registered as the frame source ``virtual-camera`` (entry-point group
``coldvault.frame_sources``), so an appliance configured with ``source = "virtual-camera"``
plays it without importing this package by name. Each source frame (a rendered QR image,
a PNG path or every frame of a GIF) is scaled into a 1280x720 greyscale canvas the way a
camera sees a phone or monitor, then, deterministically from ``seed``:

* dropped with probability ``drop_rate`` (the camera missed that QR entirely),
* blurred with probability ``blur_rate`` (Gaussian, ``blur_radius`` pixels: motion/focus),
* overlaid with uniform sensor noise of amplitude ``noise`` (0..1 of full scale).

With ``realtime=True`` frames are paced at ``fps`` using the monotonic clock; tests use
``realtime=False`` so nothing sleeps.  ``loop=True`` replays a finite sequence until
``max_frames`` frames have been *shown* (dropped frames count as shown).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageFilter

from coldvault.transport.frames import FrameSourceSettings, ImageFileError, image_file_frames

CANVAS = (1280, 720)


@dataclass(frozen=True)
class CameraStats:
    """What the virtual camera did so far."""

    shown: int
    dropped: int
    blurred: int
    delivered: int


FrameInput = (
    Sequence[Image.Image] | Sequence[str | os.PathLike[str]] | str | os.PathLike[str]
)


def _load(
    frames: FrameInput | Iterable[Image.Image],
) -> Sequence[Image.Image] | Iterable[Image.Image]:
    if isinstance(frames, str | os.PathLike):
        return image_file_frames(frames)
    if isinstance(frames, Sequence):
        if not frames:
            raise ValueError("VirtualCamera needs at least one frame")
        if all(isinstance(f, Image.Image) for f in frames):
            return frames  # type: ignore[return-value]
        loaded: list[Image.Image] = []
        for item in frames:
            if isinstance(item, Image.Image):
                loaded.append(item)
            else:
                loaded.extend(image_file_frames(Path(item)))
        return loaded
    return frames  # a lazy iterable of images: played once


class VirtualCamera:
    """Plays QR frames like a camera would capture them (see module docstring)."""

    def __init__(
        self,
        frames: FrameInput | Iterable[Image.Image],
        *,
        fps: float = 5.0,
        loop: bool = False,
        max_frames: int | None = None,
        drop_rate: float = 0.0,
        blur_rate: float = 0.0,
        blur_radius: float = 1.5,
        noise: float = 0.0,
        seed: int = 0,
        realtime: bool = True,
        canvas: tuple[int, int] = CANVAS,
        fill: float = 0.85,
        background: int = 235,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        for name, rate in (("drop_rate", drop_rate), ("blur_rate", blur_rate), ("noise", noise)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within 0..1")
        if not 0.1 <= fill <= 1.0:
            raise ValueError("fill must be within 0.1..1")
        self._source = _load(frames)
        self._fps = float(fps)
        self.loop = loop and isinstance(self._source, Sequence)
        self.max_frames = max_frames
        self.drop_rate = drop_rate
        self.blur_rate = blur_rate
        self.blur_radius = blur_radius
        self.noise = noise
        self.realtime = realtime
        self.canvas = canvas
        self.fill = fill
        self.background = background
        # separate streams: drop/blur decisions do not depend on whether noise is enabled
        self._rng = random.Random(seed)  # noqa: S311 - deterministic simulation, not crypto
        self._noise_rng = random.Random(seed + 0x5EED)  # noqa: S311
        self._closed = False
        self._shown = self._dropped = self._blurred = self._delivered = 0

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def stats(self) -> CameraStats:
        return CameraStats(self._shown, self._dropped, self._blurred, self._delivered)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> VirtualCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sequence(self) -> Iterator[Image.Image]:
        while True:
            yield from self._source
            if not self.loop:
                return

    def capture(self, image: Image.Image) -> Image.Image:
        """Place ``image`` on the camera canvas (no drop/blur/noise decisions)."""
        width, height = self.canvas
        side = int(min(width, height) * self.fill)
        grey = image if image.mode == "L" else image.convert("L")
        scale = side / max(grey.width, grey.height)
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        scaled = grey.resize(size, Image.Resampling.BILINEAR)
        frame = Image.new("L", self.canvas, self.background)
        frame.paste(scaled, ((width - size[0]) // 2, (height - size[1]) // 2))
        return frame

    def _add_noise(self, frame: Image.Image) -> Image.Image:
        amplitude = self.noise
        raw = self._noise_rng.randbytes(frame.width * frame.height)
        grain = Image.frombytes("L", frame.size, raw).point(lambda v: int(v * amplitude))
        return ImageChops.add(frame, grain, scale=1.0, offset=-int(128 * amplitude))

    def frames(self) -> Iterator[Image.Image]:
        period = 1.0 / self._fps
        next_due = time.monotonic()
        for image in self._sequence():
            if self._closed or (self.max_frames is not None and self._shown >= self.max_frames):
                return
            if self.realtime:
                delay = next_due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                next_due = max(next_due + period, time.monotonic() - period)
            self._shown += 1
            # draw all random numbers in a fixed order so runs are reproducible
            dropped = self._rng.random() < self.drop_rate
            blurred = self._rng.random() < self.blur_rate
            if dropped:
                self._dropped += 1
                continue
            frame = self.capture(image)
            if blurred:
                self._blurred += 1
                frame = frame.filter(ImageFilter.GaussianBlur(self.blur_radius))
            if self.noise > 0:
                frame = self._add_noise(frame)
            self._delivered += 1
            yield frame


def screen(directory: Path) -> Iterator[Image.Image]:
    """A coordinator's screen as the camera sees it, for ever: the PNG files of
    ``directory`` in name order, read again at every pass, so whoever writes the directory
    changes what is shown; an empty directory is a blank screen (no code in view). A file
    that cannot be read at that moment (being written, just removed) is skipped."""
    blank = Image.new("L", (256, 256), 255)
    while True:
        shown = False
        for item in sorted(directory.glob("*.png")):
            try:
                images = image_file_frames(item)
            except (ImageFileError, OSError):
                continue
            for image in images:
                shown = True
                yield image
        if not shown:
            yield blank


def open_source(settings: FrameSourceSettings) -> VirtualCamera:
    """The registered ``virtual-camera`` frame source: a directory is a screen (its PNG files
    in name order, read again at every pass, :func:`screen`); one PNG or GIF is replayed in
    a loop. With the configured drops and blur, without sleeping (the appliance reads until
    the request is complete)."""
    path = Path(settings.path)
    items: FrameInput | Iterable[Image.Image] = screen(path) if path.is_dir() else [path]
    return VirtualCamera(
        items,
        fps=settings.fps,
        loop=True,
        drop_rate=settings.drop_rate,
        blur_rate=settings.blur_rate,
        seed=settings.seed,
        realtime=False,
    )

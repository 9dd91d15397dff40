"""Where QR frames come from: the FrameSource and TextSource seams.

A :class:`FrameSource` yields camera images (PIL); a QR decoder turns each into zero or more
texts.  A :class:`TextSource` (serial/HID scanner, stdin) already yields decoded texts, one
per line.  :func:`frame_texts` glues a frame source to a decoder so the rest of the appliance
only ever sees an iterator of texts, whatever the hardware.

Implementations: :class:`ImageFileSource` (PNG files and animated GIFs, here),
``coldvault.backends.v4l2_camera.V4l2Camera`` (real camera, OpenCV) and
``coldvault.backends.serial_scanner.SerialScanner`` (text lines).

Registered frame sources
------------------------
Other frame sources -- the lab's virtual camera -- are not imported by name: a package
registers an opener under the Python entry-point group :data:`FRAME_SOURCE_GROUP`, e.g.::

    [project.entry-points."coldvault.frame_sources"]
    virtual-camera = "hardware_emulators.virtual_camera:open_source"

and :func:`open_registered_source` finds it by the name the configuration gives. Every
registered source counts as emulated input: it is opened only when the caller says emulated
hardware is allowed (a lab run), and refused with :class:`EmulatedInputRefused` before its
module is even imported otherwise.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal, Protocol, overload, runtime_checkable

from PIL import Image, ImageSequence, UnidentifiedImageError

from coldvault.errors import ConfigError, HardwareError, InputError, Refused

#: Refuse image files larger than this (bytes) and frames larger than this many pixels.
MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
MAX_FRAME_PIXELS = 4096 * 4096


class CameraError(HardwareError):
    """A camera or scanner is missing, busy or stopped delivering frames."""

    code = "camera"

    def __init__(self, message: str, *, device: str) -> None:
        super().__init__(message)
        self.device = device


class ImageFileError(InputError):
    """An image file given as a frame source is missing, too large or not an image."""

    code = "image-file"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


@runtime_checkable
class FrameSource(Protocol):
    """Yields camera frames as PIL images, at roughly ``fps`` frames per second."""

    @property
    def fps(self) -> float: ...

    def frames(self) -> Iterator[Image.Image]: ...

    def close(self) -> None: ...


#: What a source with ticks yields when it saw no code at all: a camera frame without any
#: QR code, or a poll of a scanner silent for :data:`SILENT_SECONDS` (``None`` is "nothing
#: new"). One such frame is not an empty view (a blurred frame decodes to nothing too):
#: readers wait for :data:`SILENT_SECONDS` of them.
NOTHING_IN_VIEW = ""
#: How long a source must see nothing before the view counts as empty.
SILENT_SECONDS = 1.0


@runtime_checkable
class TextSource(Protocol):
    """Yields already-decoded QR texts (a hardware scanner that types out each code)."""

    def lines(self) -> Iterator[str]: ...

    def close(self) -> None: ...


def _open_image(path: Path) -> Image.Image:
    try:
        size = path.stat().st_size
    except OSError:
        raise ImageFileError(f"The image file {path} cannot be read.", path=str(path)) from None
    if size > MAX_IMAGE_FILE_BYTES:
        raise ImageFileError(
            f"The image file {path} is larger than {MAX_IMAGE_FILE_BYTES} bytes.", path=str(path)
        )
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError):
        raise ImageFileError(
            f"The file {path} is not a PNG or GIF image this appliance can read.", path=str(path)
        ) from None
    if image.width * image.height > MAX_FRAME_PIXELS:
        image.close()
        raise ImageFileError(
            f"The image {path} is {image.width}x{image.height}, larger than a camera frame.",
            path=str(path),
        )
    return image


def image_file_frames(path: str | os.PathLike[str]) -> list[Image.Image]:
    """Every frame of a PNG (one) or animated GIF (all), as greyscale images."""
    image = _open_image(Path(path))
    with image:
        try:
            return [frame.convert("L") for frame in ImageSequence.Iterator(image)]
        except (OSError, ValueError):
            raise ImageFileError(
                f"The image file {path} is damaged and cannot be decoded.", path=str(path)
            ) from None


def gif_frame_duration_ms(path: str | os.PathLike[str]) -> int | None:
    """The duration of the first GIF frame in milliseconds, if the file says."""
    with _open_image(Path(path)) as image:
        duration = image.info.get("duration")
    return int(duration) if isinstance(duration, int | float) and duration > 0 else None


class ImageFileSource:
    """Plays image files once, in order: each PNG is one frame, each GIF all its frames.

    ``fps`` is nominal (taken from the first GIF's frame duration when not given); this
    source never sleeps.
    """

    def __init__(self, paths: Sequence[str | os.PathLike[str]], *, fps: float | None = None):
        if not paths:
            raise ValueError("ImageFileSource needs at least one path")
        self._paths = [Path(p) for p in paths]
        if fps is None:
            duration = next(
                (gif_frame_duration_ms(p) for p in self._paths if p.suffix.lower() == ".gif"),
                None,
            )
            fps = 1000.0 / duration if duration else 5.0
        if fps <= 0:
            raise ValueError("fps must be positive")
        self._fps = float(fps)
        self._closed = False

    @property
    def fps(self) -> float:
        return self._fps

    def frames(self) -> Iterator[Image.Image]:
        for path in self._paths:
            if self._closed:
                return
            yield from image_file_frames(path)

    def close(self) -> None:
        self._closed = True


@runtime_checkable
class QrDecoder(Protocol):
    """Finds QR codes in one frame and returns their texts."""

    name: str

    def decode(self, image: Image.Image) -> list[str]: ...


#: Longest pause between frames that bring nothing new (a camera held on one code).
MAX_IDLE_PAUSE = 0.1


@overload
def frame_texts(
    frames: Iterable[Image.Image],
    decoder: QrDecoder,
    *,
    dedupe: bool = True,
    ticks: Literal[False] = False,
    idle_pause: float = 0.0,
) -> Iterator[str]: ...


@overload
def frame_texts(
    frames: Iterable[Image.Image],
    decoder: QrDecoder,
    *,
    dedupe: bool = True,
    ticks: Literal[True],
    idle_pause: float = 0.0,
) -> Iterator[str | None]: ...


def frame_texts(
    frames: Iterable[Image.Image],
    decoder: QrDecoder,
    *,
    dedupe: bool = True,
    ticks: bool = False,
    idle_pause: float = 0.0,
) -> Iterator[str | None]:
    """Decode every frame and yield the QR texts found.

    With ``dedupe`` the same text seen on consecutive frames (a camera holding on one QR
    code) is yielded once; a frame without any code ends the run, so a code taken away and
    shown again is yielded again. With ``ticks`` a frame that brings nothing new yields
    ``None``, and a frame in which no code was found yields :data:`NOTHING_IN_VIEW`, so a
    reader waiting with a deadline gets control back on every frame, even while the camera
    shows the same code for ever, and knows when the view was empty. ``idle_pause``
    (seconds, at most :data:`MAX_IDLE_PAUSE`) is slept after such a frame: a source that
    replays frames as fast as it can does not spin a core.
    """
    if idle_pause < 0:
        raise ValueError("idle_pause must not be negative")
    pause = min(idle_pause, MAX_IDLE_PAUSE)
    previous: str | None = None
    for frame in frames:
        fresh = seen = False
        for text in decoder.decode(frame):
            seen = True
            if dedupe and text == previous:
                continue
            previous = text
            fresh = True
            yield text
        if not seen:
            previous = None
        if not fresh:
            if pause:
                time.sleep(pause)
            if ticks:
                yield None if seen else NOTHING_IN_VIEW


# --------------------------------------------------------------------------- registered sources
#: The entry-point group registered frame sources are declared in.
FRAME_SOURCE_GROUP = "coldvault.frame_sources"


@dataclass(frozen=True)
class FrameSourceSettings:
    """What the configuration says about a registered frame source."""

    #: a PNG file, a directory of PNG files or an animated GIF
    path: str
    fps: float
    #: simulated frame loss and blur (fractions 0..1), drawn from ``seed``
    drop_rate: float = 0.0
    blur_rate: float = 0.0
    seed: int = 0


class FrameSourceOpener(Protocol):
    """What a registered entry point names: opens the source for the given settings."""

    def __call__(self, settings: FrameSourceSettings) -> FrameSource: ...


class EmulatedInputRefused(Refused):
    """A registered (emulated) frame source was asked for where emulators are not allowed."""

    code = "emulated-input"

    def __init__(self, source: str) -> None:
        super().__init__(
            f"The input source {source!r} is emulated (a lab frame source). Production refuses "
            "emulated input; a lab run needs both allow_emulated_hardware = true in the "
            "configuration and the --allow-emulated flag."
        )
        self.source = source


class UnknownFrameSource(ConfigError):
    """No package registers a frame source of that name (or more than one does)."""

    code = "unknown-frame-source"

    def __init__(self, message: str, *, source: str) -> None:
        super().__init__(message)
        self.source = source


def registered_frame_sources() -> tuple[str, ...]:
    """The names registered under :data:`FRAME_SOURCE_GROUP`, sorted (nothing is imported)."""
    return tuple(sorted({ep.name for ep in entry_points(group=FRAME_SOURCE_GROUP)}))


def open_registered_source(
    name: str, settings: FrameSourceSettings, *, allow_emulated: bool
) -> FrameSource:
    """Open the frame source registered as ``name``.

    Refused (:class:`EmulatedInputRefused`) unless ``allow_emulated``; the registering module
    is imported only after that check."""
    if not allow_emulated:
        raise EmulatedInputRefused(name)
    found = {ep.value: ep for ep in entry_points(group=FRAME_SOURCE_GROUP, name=name)}
    if not found:
        known = ", ".join(registered_frame_sources()) or "none"
        raise UnknownFrameSource(
            f"No frame source is registered as {name!r} (registered: {known}).", source=name
        )
    if len(found) > 1:
        raise UnknownFrameSource(
            f"More than one frame source is registered as {name!r}: {', '.join(sorted(found))}.",
            source=name,
        )
    (entry,) = found.values()
    opener: FrameSourceOpener = entry.load()
    source = opener(settings)
    if not isinstance(source, FrameSource):
        raise TypeError(f"the frame source registered as {name!r} is not a FrameSource")
    return source

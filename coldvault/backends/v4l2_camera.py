"""A real V4L2 camera read through OpenCV (optional extra ``camera``).

OpenCV is imported only when a camera is opened, so the appliance runs without it when a
serial scanner is used.  Frames come back as 8-bit greyscale PIL images (what the QR
decoders want).  Implements :class:`coldvault.transport.frames.FrameSource`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from PIL import Image

from coldvault.transport.frames import CameraError

#: Consecutive failed reads after which the camera is considered gone.
MAX_FAILED_READS = 30


class V4l2Camera:
    """``V4l2Camera("/dev/video0", fps=15)``; use as a context manager or call close()."""

    def __init__(
        self,
        device: str = "/dev/video0",
        *,
        fps: float = 15.0,
        width: int = 1280,
        height: int = 720,
    ) -> None:
        if fps <= 0 or width <= 0 or height <= 0:
            raise ValueError("fps, width and height must be positive")
        self.device = device
        self._fps = float(fps)
        self.width = width
        self.height = height
        self._cv2: Any = self._import_cv2()
        if not os.path.exists(device):
            raise CameraError(
                f"The camera {device} does not exist; check the cable and udev rules.",
                device=device,
            )
        capture = self._cv2.VideoCapture(device, self._cv2.CAP_V4L2)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"The camera {device} cannot be opened; check permissions and that no other "
                "program is using it.",
                device=device,
            )
        capture.set(self._cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(self._cv2.CAP_PROP_FRAME_HEIGHT, height)
        capture.set(self._cv2.CAP_PROP_FPS, fps)
        self._capture: Any = capture

    def _import_cv2(self) -> Any:
        try:
            import cv2
        except ImportError as exc:
            raise CameraError(
                "OpenCV is not installed, so the V4L2 camera cannot be used; install the "
                "'camera' extra (pip install 'coldvault[camera]') or use a serial QR scanner.",
                device=self.device,
            ) from exc
        return cv2

    @property
    def fps(self) -> float:
        return self._fps

    def frames(self) -> Iterator[Image.Image]:
        failures = 0
        while self._capture is not None:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                failures += 1
                if failures >= MAX_FAILED_READS:
                    raise CameraError(
                        f"The camera {self.device} stopped delivering frames.", device=self.device
                    )
                time.sleep(1.0 / self._fps)
                continue
            failures = 0
            grey = self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2GRAY)
            yield Image.fromarray(grey)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> V4l2Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

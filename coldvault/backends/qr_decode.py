"""QR decoders over camera frames: zxing-cpp and ZBar (pyzbar), behind one small Protocol.

``decode(image)`` takes a PIL image (any mode; converted to 8-bit greyscale) and returns the
text of every QR code found, in reading order, possibly empty.  Decoders never raise for
"nothing found"; a missing native library raises :class:`QrDecoderUnavailable` at
construction.  The libraries are imported lazily, so importing this module is cheap.

``default_decoder()`` returns zxing-cpp: in ``benchmarks/bench_qr.py`` it decoded 1280x720
camera frames of a version-24 UR code 11-15x faster than ZBar (~2 ms vs 26-33 ms a frame),
both reading every frame (see docs/qr-transport.md for the measured numbers).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from coldvault.errors import HardwareError
from coldvault.transport.frames import QrDecoder


class QrDecoderUnavailable(HardwareError):
    """The native QR decoding library is not installed or cannot be loaded."""

    code = "qr-decoder-unavailable"

    def __init__(self, message: str, *, library: str) -> None:
        super().__init__(message)
        self.library = library


def _grey(image: Image.Image) -> Image.Image:
    return image if image.mode == "L" else image.convert("L")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class ZxingDecoder:
    """zxing-cpp (``zxingcpp``), restricted to QR codes."""

    name = "zxing-cpp"

    def __init__(self, *, try_harder: bool = True) -> None:
        try:
            import zxingcpp
        except ImportError as exc:  # pragma: no cover - installed in every supported setup
            raise QrDecoderUnavailable(
                "The zxing-cpp QR decoder is not installed; install the 'zxing-cpp' package.",
                library="zxingcpp",
            ) from exc
        self._zx: Any = zxingcpp
        self._formats = zxingcpp.BarcodeFormat.QRCode
        self._try_harder = try_harder

    def decode(self, image: Image.Image) -> list[str]:
        results = self._zx.read_barcodes(
            _grey(image),
            formats=self._formats,
            try_rotate=self._try_harder,
            try_downscale=True,
            try_invert=False,
            text_mode=self._zx.TextMode.Plain,
        )
        return [_text(bytes(result.bytes)) for result in results if result.valid]


class PyzbarDecoder:
    """ZBar through ``pyzbar`` (needs the libzbar0 shared library)."""

    name = "pyzbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except (ImportError, OSError) as exc:
            raise QrDecoderUnavailable(
                "The ZBar QR decoder cannot be loaded; install the libzbar0 system package "
                "and the 'pyzbar' Python package.",
                library="pyzbar",
            ) from exc
        self._pyzbar: Any = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, image: Image.Image) -> list[str]:
        results = self._pyzbar.decode(_grey(image), symbols=self._symbols)
        return [_text(result.data) for result in results]


def default_decoder() -> QrDecoder:
    """The faster and more tolerant decoder available: zxing-cpp, else ZBar."""
    try:
        return ZxingDecoder()
    except QrDecoderUnavailable:
        return PyzbarDecoder()


def available_decoders() -> list[QrDecoder]:
    """Every decoder that loads on this host."""
    found: list[QrDecoder] = []
    for factory in (ZxingDecoder, PyzbarDecoder):
        try:
            found.append(factory())
        except QrDecoderUnavailable:
            continue
    return found

"""QR transport benchmark: how long a 35 KB PSBT takes to cross the air gap.

Payload: ``tests/vectors/bbqr/1in1000out.psbt`` (coinkite/BBQr test data; a real PSBT v0 of
35,644 bytes: 3 inputs, 1,001 outputs).

1. Transfer at 0 %, 10 % and 30 % frame loss, text level (seeded loss, 7 seeds averaged):
   frames shown vs fragments needed, and seconds at the stated frame period, for
   coldvault's UR setting (1600-byte fragments, what ``--fragment-len auto`` picks for
   35 KB; 800 B alongside), Keystone (200 B, 200 ms/frame), Sparrow
   (400 B, 200 ms/frame), and BBQr (Coldcard-style, no fountain: must wait for the loop).
2. The same through pixels: render -> VirtualCamera (loss plus 10 % blurred frames and
   sensor noise) -> zxing-cpp -> Assembler, for coldvault's setting at every loss rate and
   for Keystone's and Sparrow's at 30 %.
3. Decode time per 1280x720 frame, pyzbar vs zxing-cpp, on identical camera frames.
4. Encode rate: UR parts generated per second and QR frames rendered per second.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image

from coldvault.backends import qr_decode
from coldvault.transport import assemble as t
from coldvault.transport import render as qr_render
from coldvault.transport.formats import DENSE_FRAGMENT_LEN, TransportFormat
from coldvault.transport.frames import frame_texts
from coldvault.transport.reply import FrameStream, encode_reply
from hardware_emulators.virtual_camera import VirtualCamera

PSBT_PATH = Path(__file__).resolve().parents[1] / "tests" / "vectors" / "bbqr" / "1in1000out.psbt"
LOSSES = (0.0, 0.10, 0.30)
SEEDS = range(7)
FRAME_MS = 200
#: (label, format, bytes per fragment, ms per frame)
SETTINGS = (
    # what ``qr encode --fragment-len auto`` picks for this payload
    ("coldvault UR", TransportFormat.UR, DENSE_FRAGMENT_LEN, FRAME_MS),
    ("coldvault 800", TransportFormat.UR, 800, FRAME_MS),
    ("Keystone UR", TransportFormat.UR, 200, FRAME_MS),
    ("Sparrow UR", TransportFormat.UR, 400, FRAME_MS),
    ("BBQr Z (loop)", TransportFormat.BBQR, 800, FRAME_MS),
)
RENDER = qr_render.RenderOptions(box_size=4, border=4, mask_pattern=2)
QUICK_BYTES = 3000


def _psbt() -> bytes:
    data = PSBT_PATH.read_bytes()
    if not data.startswith(b"psbt\xff") or len(data) != 35_644:
        raise RuntimeError(f"unexpected benchmark payload {PSBT_PATH}")
    return data


def _frames_until_complete(stream: FrameStream, loss: float, seed: int) -> int:
    rng = random.Random(seed)  # noqa: S311 - simulation
    assembler = t.Assembler()
    shown = 0
    for text in stream.cycle():
        shown += 1
        if rng.random() < loss:
            continue
        if assembler.feed(text).complete:
            return shown
        if shown > 50 * stream.parts_needed:
            raise RuntimeError("transfer did not complete")
    raise RuntimeError("stream ended")


def _text_level(psbt: bytes) -> list[str]:
    lines = [
        "1) transfer, text level (loss only, mean of 7 seeds); ratio = frames shown / fragments",
        f"   {'setting':<15} {'frag B':>6} {'ms':>4} {'parts':>5} | "
        + " | ".join(f"{int(loss * 100):>2}% loss: shown ratio   secs" for loss in LOSSES),
    ]
    for label, fmt, frag, frame_ms in SETTINGS:
        parts = encode_reply(fmt, "crypto-psbt", psbt, max_fragment_len=frag).parts_needed
        cells = []
        for loss in LOSSES:
            shown = statistics.mean(
                _frames_until_complete(
                    encode_reply(fmt, "crypto-psbt", psbt, max_fragment_len=frag), loss, seed
                )
                for seed in SEEDS
            )
            cells.append(f"{shown:16.1f} {shown / parts:5.2f} {shown * frame_ms / 1000:6.1f}")
        lines.append(f"   {label:<15} {frag:>6} {frame_ms:>4} {parts:>5} | " + " | ".join(cells))
    return lines


def _rendered(stream: FrameStream) -> Iterator[Image.Image]:
    for text in stream.cycle():
        yield qr_render.render_image(text, RENDER)


def _pixel_level(psbt: bytes, found: dict[str, float], quick: bool) -> list[str]:
    lines = [
        "2) transfer through pixels: render -> virtual 720p camera (loss, +10 % blurred, "
        "noise 0.05) -> zxing-cpp -> Assembler",
    ]
    runs = [(SETTINGS[0], loss) for loss in LOSSES]
    if not quick:
        runs += [(setting, LOSSES[-1]) for setting in SETTINGS[1:4]]
    for (label, fmt, frag, frame_ms), loss in runs:
        stream = encode_reply(fmt, "crypto-psbt", psbt, max_fragment_len=frag)
        camera = VirtualCamera(
            _rendered(stream), fps=1000 / frame_ms, drop_rate=loss, blur_rate=0.10,
            blur_radius=1.2, noise=0.05, seed=11, realtime=False,
            max_frames=20 * stream.parts_needed,
        )
        assembler = t.Assembler()
        start = time.perf_counter()
        decoded = 0
        for text in frame_texts(camera.frames(), qr_decode.default_decoder()):
            decoded += 1
            if assembler.feed(text).complete:
                break
        wall = time.perf_counter() - start
        ok = assembler.is_complete and assembler.result().content == psbt
        stats = camera.stats
        ratio = stats.shown / stream.parts_needed
        if not ok:
            raise RuntimeError(f"{label} at {loss:.0%} loss did not arrive byte-exact")
        if label == SETTINGS[0][0] and loss == 0.0:
            found["qr_ratio_loss0"] = ratio
        if label == SETTINGS[0][0] and loss == LOSSES[-1]:
            found["qr_35k_loss30_frames_pixels"] = float(stats.shown)
            found["qr_35k_loss30_seconds_8fps"] = stats.shown / 8
        lines.append(
            f"   {label:<13} {frag:>4} B, loss {int(loss * 100):>2}%: shown {stats.shown:4d} "
            f"for {stream.parts_needed} fragments (ratio {ratio:.2f}), "
            f"dropped {stats.dropped}, blurred {stats.blurred}, "
            f"unreadable {stats.delivered - decoded}, "
            f"{stats.shown * frame_ms / 1000:.1f} s at {1000 / frame_ms:.0f} fps; "
            f"byte-exact {ok}; wall {wall:.1f} s"
        )
    return lines


def _camera_frames(psbt: bytes, count: int, fragment_len: int) -> list[Image.Image]:
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", psbt, max_fragment_len=fragment_len)
    camera = VirtualCamera(
        [qr_render.render_image(text, RENDER) for text in stream.frames(count)],
        blur_rate=0.3, blur_radius=1.0, noise=0.05, seed=5, realtime=False,
    )
    return list(camera.frames())


def _time_per_frame(decode: Callable[[Image.Image], list[str]], frames: list[Image.Image],
                    rounds: int = 3) -> tuple[float, int]:
    best = float("inf")
    found = 0
    for _ in range(rounds):
        start = time.perf_counter()
        found = sum(1 for frame in frames if decode(frame))
        best = min(best, (time.perf_counter() - start) / len(frames))
    return best, found


def _decoders(psbt: bytes, found: dict[str, float], quick: bool) -> list[str]:
    lines = ["3) decode time per 1280x720 camera frame (30 % blurred, noise 0.05; best of 3)"]
    for fragment_len in (DENSE_FRAGMENT_LEN, 800):
        frames = _camera_frames(psbt, 5 if quick else 20, fragment_len)
        results = {}
        for decoder in qr_decode.available_decoders():
            per_frame, read = _time_per_frame(decoder.decode, frames)
            results[decoder.name] = per_frame
            lines.append(f"   {fragment_len:>4} B fragments, {decoder.name:<10} "
                         f"{per_frame * 1000:7.1f} ms/frame, read {read}/{len(frames)} frames")
        if fragment_len == SETTINGS[0][2]:  # the setting the named transfer figures use
            found["decode_ms_720p"] = results[qr_decode.default_decoder().name] * 1000
        if {"pyzbar", "zxing-cpp"} <= results.keys():
            lines.append(f"   ratio pyzbar / zxing-cpp = "
                         f"{results['pyzbar'] / results['zxing-cpp']:.2f} "
                         f"(default_decoder() = {qr_decode.default_decoder().name})")
    return lines


def _encode_rate(psbt: bytes, found: dict[str, float], quick: bool) -> list[str]:
    lines = ["4) encode rate"]
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", psbt,
                          max_fragment_len=SETTINGS[0][2])
    start = time.perf_counter()
    texts = stream.frames(200)
    per_part = (time.perf_counter() - start) / len(texts)
    lines.append(f"   UR parts ({SETTINGS[0][2]} B fragments): {1 / per_part:8.0f} parts/s")
    count = 3 if quick else 15
    for label, options in (("fixed mask", RENDER),
                           ("best mask", qr_render.RenderOptions(box_size=4, border=4))):
        start = time.perf_counter()
        for text in texts[:count]:
            qr_render.render_image(text, options)
        per_frame = (time.perf_counter() - start) / count
        if options is RENDER:  # the setting the transfer above is rendered with
            found["render_ms_frame"] = per_frame * 1000
        lines.append(f"   render QR v{qr_render.qr_version(texts[0])} ({label}): "
                     f"{1 / per_frame:6.1f} frames/s ({per_frame * 1000:.0f} ms/frame)")
    return lines


def figures(quick: bool) -> tuple[dict[str, float], list[str]]:
    """The named figures this benchmark measures, and its report (quick mode: a 3 KB slice
    of the payload and no text-level table; its figures are not comparable)."""
    psbt = _psbt()
    if quick:
        psbt = psbt[:QUICK_BYTES]
    lines = [f"payload: {PSBT_PATH.name}, {len(psbt)} bytes (PSBT v0, 3 in / 1001 out)"]
    found: dict[str, float] = {}
    if not quick:
        lines += _text_level(psbt)
    for section in (_pixel_level, _decoders, _encode_rate):
        lines += section(psbt, found, quick)
    lines.append(
        f"named: 35 KB at 30 % loss through pixels: {found['qr_35k_loss30_frames_pixels']:.0f} "
        f"frames, {found['qr_35k_loss30_seconds_8fps']:.1f} s at 8 fps"
    )
    return found, lines


def run() -> list[str]:
    return figures(quick=False)[1]

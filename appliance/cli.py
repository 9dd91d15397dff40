"""``coldvault``: the appliance daemon and the operator/auditor tools around it.

Every command has ``--help``; commands that report results take ``--json``. Errors become
output only in :mod:`appliance.errors_out`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from appliance.errors_out import ReportingGroup
from coldvault.records.chain import verify


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, sort_keys=True, default=str))


@click.group(cls=ReportingGroup)
@click.version_option(package_name="coldvault")
def main() -> None:
    """coldvault: air-gapped signing appliance and key-ceremony toolkit."""


# ------------------------------------------------------------------------- appliance
@main.group(cls=ReportingGroup)
def appliance() -> None:
    """Run or check the signing appliance."""


def _input_texts(cfg: object, frames: Path | None) -> Iterator[str]:
    """The QR texts of the configured input. A source that is not built in is a registered
    (emulated) frame source: opened only if the configuration allows emulated hardware and
    the running command was given ``--allow-emulated``, and refused here, before anything
    is read, otherwise."""
    from appliance.config import BUILT_IN_SOURCES, ApplianceConfig
    from coldvault.backends.qr_decode import default_decoder
    from coldvault.transport.frames import (
        FrameSource,
        FrameSourceSettings,
        ImageFileSource,
        frame_texts,
        open_registered_source,
    )

    assert isinstance(cfg, ApplianceConfig)
    source_kind = cfg.input_source
    path = str(frames) if frames else cfg.input_path
    if source_kind not in BUILT_IN_SOURCES:
        context = click.get_current_context(silent=True)
        flag = bool(context is not None and context.params.get("allow_emulated"))
        settings = FrameSourceSettings(
            path=path, fps=cfg.input_fps, drop_rate=cfg.input_drop_rate,
            blur_rate=cfg.input_blur_rate, seed=cfg.input_seed,
        )
        registered = open_registered_source(
            source_kind, settings, allow_emulated=flag and cfg.allow_emulated_hardware
        )
        return frame_texts(registered.frames(), default_decoder())

    def built_in() -> Iterator[str]:
        if source_kind == "scanner":
            from coldvault.backends.serial_scanner import SerialScanner

            scanner = (
                SerialScanner(path) if path != "-" else SerialScanner(stream=sys.stdin.buffer)
            )
            yield from scanner.lines()
            return
        decoder = default_decoder()
        source: FrameSource
        if source_kind == "camera":
            from coldvault.backends.v4l2_camera import V4l2Camera

            source = V4l2Camera(path, fps=cfg.input_fps)
        else:
            p = Path(path)
            source = ImageFileSource(sorted(p.glob("*.png")) if p.is_dir() else [p])
        yield from frame_texts(source.frames(), decoder)

    return built_in()


def _build(config: Path, allow_emulated: bool, dev_allow_network: bool) -> object:
    from appliance.approvals import CardApprovalCollector
    from appliance.config import load_config
    from appliance.console import OperatorConsole
    from appliance.daemon import Appliance

    cfg = load_config(config)
    ui = OperatorConsole(timeout=cfg.timeouts.review)
    collector = CardApprovalCollector(
        ui, reader=cfg.reader, insert_timeout=cfg.timeouts.card_insert,
        allow_emulated=allow_emulated and cfg.allow_emulated_hardware,
    )
    pin = ui.secret(f"HSM user PIN for token {cfg.hsm_token_label}")
    return Appliance(
        cfg, ui=ui, collector=collector, hsm_pin=pin, allow_emulated=allow_emulated,
        dev_allow_network=dev_allow_network,
    )


_common = [
    click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
                 required=True, help="Appliance configuration TOML (docs/appliance.md)."),
    click.option("--allow-emulated", is_flag=True,
                 help="Accept SoftHSM / virtual cards (the config must allow it too). Lab only."),
    click.option("--dev-allow-network", is_flag=True,
                 help="Start even with a network interface up. Development machines only."),
    click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
]


def _with_common(f):  # type: ignore[no-untyped-def]
    for option in reversed(_common):
        f = option(f)
    return f


@appliance.command("check")
@_with_common
def appliance_check(config: Path, allow_emulated: bool, dev_allow_network: bool,
                    as_json: bool) -> None:
    """Run every start-up check (air gap, HSM, roster, policy, wallets, audit) and stop."""
    from appliance.daemon import Appliance

    app = _build(config, allow_emulated, dev_allow_network)
    assert isinstance(app, Appliance)
    with app:
        report = app.start()
    if as_json:
        _echo_json({"ok": True, **report.to_dict()})
    else:
        click.echo(f"appliance {report.appliance_id}: ready (roster v{report.roster_version}, "
                   f"policy v{report.policy_version}, wallets {', '.join(report.wallets)})")


@appliance.command("run")
@_with_common
@click.option("--frames", type=click.Path(path_type=Path),
              help="Override the input path (PNG directory or GIF) for file/virtual-camera input.")
@click.option("--once", is_flag=True, help="Handle one request, show the response and exit.")
@click.option("--out", type=click.Path(path_type=Path), help="Override the response output path.")
def appliance_run(config: Path, allow_emulated: bool, dev_allow_network: bool, as_json: bool,
                  frames: Path | None, once: bool, out: Path | None) -> None:
    """Run the signing appliance: receive, review, approve, sign, show the response."""
    from appliance.daemon import Appliance
    from coldvault.errors import ColdvaultError

    app = _build(config, allow_emulated, dev_allow_network)
    assert isinstance(app, Appliance)
    with app:
        report = app.start()
        ui = app.ui
        ui.info(f"Appliance {report.appliance_id} ready. Waiting for a request.")
        results = []
        while True:
            texts = _input_texts(app.config, frames)
            try:
                received = app.receive(texts)
                result = app.handle(received)
            except ColdvaultError as err:
                getattr(ui, "error", ui.warn)(err.message)
                results.append({"ok": False, **err.to_dict()})
                if once:
                    if as_json:
                        _echo_json(results[-1])
                    sys.exit(2)
                continue
            written = app.show(result.frames, out=out)
            summary = {
                "ok": True,
                "fingerprint": result.review.fingerprint,
                "response_type": result.response_type,
                "approvals": list(result.approvals),
                "frames": [str(p) for p in written],
            }
            results.append(summary)
            ui.info(f"Response for request {result.review.fingerprint} written: "
                    f"{len(written)} file(s) in {(out or app.config.output_path)}")
            if once:
                break
    if as_json:
        _echo_json(results[-1] if once else results)


# ------------------------------------------------------------------------- audit / ledger
@main.group(cls=ReportingGroup)
def audit() -> None:
    """Verify the tamper-evident audit trail."""


@audit.command("verify")
@click.argument("trail", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--audit-pubkey", required=True,
              help="The HSM audit key's public key (hex, compressed secp256k1).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def audit_verify(trail: Path, audit_pubkey: str, as_json: bool) -> None:
    """Check every hash link and seal of TRAIL; any edit, deletion or reordering fails."""
    from coldvault.errors import ConfigError

    try:
        key = bytes.fromhex(audit_pubkey)
    except ValueError as exc:
        raise ConfigError("--audit-pubkey must be hex") from exc
    report = verify(trail, key)
    if as_json:
        _echo_json({"ok": True, **report.to_dict()})
    else:
        click.echo(f"{trail}: OK, {report.entries} entries, {report.seals} seals, "
                   f"{report.unsealed} after the last seal")


@main.group(cls=ReportingGroup)
def ledger() -> None:
    """Reconciliation exports from the request ledger."""


@ledger.command("export")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="The appliance's ledger.sqlite3.")
@click.option("--client", required=True, help="Client whose movements to export.")
@click.option("--since", default=None, help="ISO date/time (UTC), inclusive.")
@click.option("--until", default=None, help="ISO date/time (UTC), exclusive.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
def ledger_export(db: Path, client: str, since: str | None, until: str | None, fmt: str) -> None:
    """Print CLIENT's signed movements as CSV or JSON."""
    from coldvault.records.ledger import Ledger

    book = Ledger(db, read_only=True)
    try:
        click.echo(book.export_movements(client, since=since, until=until, fmt=fmt), nl=False)
    finally:
        book.close()


# ------------------------------------------------------------------------- QR tools
@main.group(cls=ReportingGroup)
def qr() -> None:
    """Encode files as QR frames and decode QR frames (for coordinators and tests)."""


@qr.command("encode")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--type", "ur_type", default="crypto-psbt", show_default=True,
              help="UR type of the payload (crypto-psbt, eth-sign-request, ...).")
@click.option("--cbor", is_flag=True, help="FILE already holds the CBOR for --type.")
@click.option("--format", "fmt", type=click.Choice(["ur", "bbqr", "pmofn", "urv1"]),
              default="ur", show_default=True)
@click.option("--fragment-len", type=int, default=200, show_default=True,
              help="Message bytes per frame.")
@click.option("--frames", "count", type=int, default=None,
              help="How many frames to write (UR fountain: default twice the parts).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Directory for frame-NNNN.png + frames.txt, or a .gif file.")
@click.option("--fps", type=float, default=5.0, show_default=True, help="GIF frame rate.")
@click.option("--json", "as_json", is_flag=True)
def qr_encode(file: Path, ur_type: str, cbor: bool, fmt: str, fragment_len: int,
              count: int | None, out: Path, fps: float, as_json: bool) -> None:
    """Write FILE as QR frames in the chosen format."""
    from coldvault.transport import render as qr_render
    from coldvault.transport.formats import TransportFormat
    from coldvault.transport.registry import decode_registry
    from coldvault.transport.reply import encode_reply
    from coldvault.transport.ur import UR

    data = file.read_bytes()
    if cbor:
        decode_registry(UR(ur_type, data))  # validate before rendering
    fmts = {"ur": TransportFormat.UR, "bbqr": TransportFormat.BBQR,
            "pmofn": TransportFormat.PMOFN, "urv1": TransportFormat.URV1}
    stream = encode_reply(fmts[fmt], ur_type, data, max_fragment_len=fragment_len)
    n = stream.frame_count or count or 2 * stream.parts_needed
    texts = stream.frames(n)
    if out.suffix.lower() == ".gif":
        out.write_bytes(qr_render.render_gif(texts, frame_duration_ms=int(1000 / fps)))
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            (out / f"frame-{i:04d}.png").write_bytes(qr_render.render_png(text))
        (out / "frames.txt").write_text("\n".join(texts) + "\n")
    if as_json:
        _echo_json({"ok": True, "frames": len(texts), "out": str(out), "format": fmt})
    else:
        click.echo(f"wrote {len(texts)} frames to {out}")


@qr.command("decode")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--text", "text_file", type=click.Path(path_type=Path, exists=True),
              help="Read frame texts (one per line) instead of images.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the assembled payload here (raw file, or CBOR for CBOR URs).")
@click.option("--json", "as_json", is_flag=True)
def qr_decode(images: tuple[Path, ...], text_file: Path | None, out: Path | None,
              as_json: bool) -> None:
    """Assemble a message from QR images (PNG files, directories, GIFs) or frame texts."""
    from coldvault.errors import InputError
    from coldvault.transport.assemble import Assembler
    from coldvault.transport.frames import ImageFileSource, frame_texts

    if text_file is not None:
        texts: Iterator[str] = iter(
            line.strip() for line in text_file.read_text().splitlines() if line.strip()
        )
    else:
        from coldvault.backends.qr_decode import default_decoder

        paths: list[Path] = []
        for p in images:
            paths.extend(sorted(p.glob("*.png")) if p.is_dir() else [p])
        texts = frame_texts(ImageFileSource(paths).frames(), default_decoder())
    assembler = Assembler()
    for text in texts:
        if assembler.feed(text).complete:
            break
    if not assembler.is_complete:
        raise InputError("The frames do not hold a complete message; more frames are needed.")
    received = assembler.result()
    payload = received.content if received.ur_type == "crypto-psbt" else received.payload
    if out is not None:
        out.write_bytes(payload)
    if as_json:
        _echo_json({"ok": True, "format": str(received.format), "ur_type": received.ur_type,
                    "bytes": len(payload), **({} if out else {"hex": payload.hex()})})
    else:
        click.echo(f"{received.format} {received.ur_type}: {len(payload)} bytes"
                   + (f" written to {out}" if out else ""))


# ------------------------------------------------------------------------- ceremonies
def _mount_ceremonies() -> None:
    try:
        from ceremony_scripts.cli import ceremony, transcript
    except ImportError:  # pragma: no cover - the ceremony package is part of the product
        return
    main.add_command(ceremony, "ceremony")
    main.add_command(transcript, "transcript")


_mount_ceremonies()


if __name__ == "__main__":  # pragma: no cover
    main()

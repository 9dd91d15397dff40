"""``coldvault``: the appliance daemon and the operator/auditor tools around it.

Every command has ``--help``; commands that report results take ``--json``. Errors become
output only in :mod:`appliance.errors_out` (through the root :class:`ReportingGroup`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from appliance.errors_out import (
    EXIT_STATUS_HELP,
    ReportingGroup,
    done,
    emit_json,
    json_mode,
    json_option,
    wants_json,
)
from ceremony_scripts.card_tools import card
from ceremony_scripts.cli import ceremony, transcript
from ceremony_scripts.drills import drill
from ceremony_scripts.plans import backup
from coldvault.config import OUTPUT_SINKS
from coldvault.records.audit import verify

if TYPE_CHECKING:
    from appliance.console import OperatorConsole
    from appliance.daemon import Appliance
    from coldvault.config import ApplianceConfig


def _no_color(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:  # every console made from here on (rich reads NO_COLOR) is monochrome
        os.environ["NO_COLOR"] = "1"
    return value


@click.group(cls=ReportingGroup, epilog=EXIT_STATUS_HELP)
@click.version_option(package_name="coldvault")
@click.option("--no-color", is_flag=True, is_eager=True, expose_value=False, callback=_no_color,
              help="No colour on the console (as NO_COLOR=1); every meaning is also a word.")
def main() -> None:
    """coldvault: air-gapped signing appliance and key-ceremony toolkit."""


# ------------------------------------------------------------------------- appliance
@main.group(epilog=EXIT_STATUS_HELP)
def appliance() -> None:
    """Run or check the signing appliance."""


def _input_texts(cfg: object, frames: Path | None) -> Iterator[str | None]:
    """The QR texts of the configured input. A source that is not built in is a registered
    (emulated) frame source: opened only if the configuration allows emulated hardware and
    the running command was given ``--allow-emulated``, and refused here, before anything
    is read, otherwise."""
    from coldvault.backends.qr_decode import default_decoder
    from coldvault.config import BUILT_IN_SOURCES, ApplianceConfig
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
        return frame_texts(registered.frames(), default_decoder(), ticks=True,
                           idle_pause=1 / cfg.input_fps)

    def built_in() -> Iterator[str | None]:
        if source_kind == "scanner":
            from coldvault.backends.serial_scanner import SerialScanner

            scanner = (
                SerialScanner(path) if path != "-" else SerialScanner(stream=sys.stdin.buffer)
            )
            yield from scanner.lines(ticks=True)
            return
        decoder = default_decoder()
        source: FrameSource
        if source_kind == "camera":
            from coldvault.backends.v4l2_camera import V4l2Camera

            source = V4l2Camera(path, fps=cfg.input_fps)
        else:
            p = Path(path)
            source = ImageFileSource(sorted(p.glob("*.png")) if p.is_dir() else [p])
        # the V4L2 camera paces itself at its fps; image files are finite
        yield from frame_texts(source.frames(), decoder, ticks=True)

    return built_in()


def _build(config: Path, allow_emulated: bool, dev_allow_network: bool
           ) -> tuple[Appliance, OperatorConsole]:
    from appliance.approvals import CardApprovalCollector
    from appliance.console import OperatorConsole
    from appliance.daemon import Appliance
    from coldvault.config import load_config

    cfg = load_config(config)
    ui = OperatorConsole(timeout=cfg.timeouts.review)
    collector = CardApprovalCollector(
        ui, reader=cfg.reader, insert_timeout=cfg.timeouts.card_insert,
        allow_emulated=allow_emulated and cfg.allow_emulated_hardware,
    )
    pin = ui.secret(f"HSM user PIN for token {cfg.hsm_token_label}")
    app = Appliance(
        cfg, ui=ui, collector=collector, hsm_pin=pin, allow_emulated=allow_emulated,
        dev_allow_network=dev_allow_network,
    )
    return app, ui


_common = [
    click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
                 required=True, help="Appliance configuration TOML (docs/appliance.md)."),
    click.option("--allow-emulated", is_flag=True,
                 help="Accept SoftHSM / virtual cards (the config must allow it too). Lab only."),
    click.option("--dev-allow-network", is_flag=True,
                 help="Start even with a network interface up. Development machines only."),
    json_option,
]


def _with_common(f):  # type: ignore[no-untyped-def]
    for option in reversed(_common):
        f = option(f)
    return f


@appliance.command("check")
@_with_common
def appliance_check(config: Path, allow_emulated: bool, dev_allow_network: bool) -> None:
    """Run every start-up check (air gap, HSM, roster, policy, wallets, audit) and stop."""
    app, _ = _build(config, allow_emulated, dev_allow_network)
    with app:
        report = app.start()
    done(report.to_dict(),
         f"appliance {report.appliance_id}: ready (roster v{report.roster_version}, "
         f"policy v{report.policy_version}, wallets {', '.join(report.wallets)})")


@appliance.command("run")
@_with_common
@click.option("--frames", type=click.Path(path_type=Path),
              help="Override the input path (PNG directory or GIF) for file/virtual-camera input.")
@click.option("--once", is_flag=True, help="Handle one request, show the response and exit.")
@click.option("--out", type=click.Path(path_type=Path), help="Override the response output path.")
@click.option("--sink", type=click.Choice(OUTPUT_SINKS), default=None,
              help="Show the response on this sink instead of the configured one: 'terminal' "
              "draws its frames as text QR codes on this console, nothing written to disk.")
def appliance_run(config: Path, allow_emulated: bool, dev_allow_network: bool,
                  frames: Path | None, once: bool, out: Path | None, sink: str | None) -> None:
    """Run the signing appliance: receive, review, approve, sign, show the response.

    With --once the command's outcome is the request's: exit 0 when it was signed, else the
    refusal's exit status; with --json (which needs --once) stdout holds its one document.
    Without --once every request's outcome is shown on the console and recorded in the
    audit trail, and the appliance runs until it is stopped (Ctrl-C) or its input ends (the
    image files run out, standard input closes). A request just handled that is still in
    front of the camera is not taken again until the view has been empty.
    """
    import hashlib

    from appliance.session import SignedNotShown
    from appliance.states import InputEnded
    from coldvault.errors import ColdvaultError

    if wants_json() and not once:
        raise click.UsageError(
            "--json needs --once: a running appliance reports each request on its console "
            "and in the audit trail."
        )
    app, ui = _build(config, allow_emulated, dev_allow_network)
    with app:
        report = app.start()
        ui.info(f"Appliance {report.appliance_id} ready. Waiting for a request.")
        just_handled: bytes | None = None
        while True:
            texts = _input_texts(app.config, frames)
            try:
                received = app.receive(texts, just_handled=just_handled)
                just_handled = hashlib.sha256(received.payload).digest()
                result = app.handle(received)
            except ColdvaultError as err:
                if once or isinstance(err, InputEnded):
                    raise  # the command's outcome: reported by the root group
                ui.error(err.message)
                continue
            try:
                written = app.show(result.frames, out=out, sink=sink)
            except SignedNotShown as err:
                if once:
                    raise  # exit 3: signed and stored, not shown; the message says re-present
                ui.error(err.message)  # the appliance stays up: presenting it re-shows it
                continue
            if written:
                ui.info(f"Response for request {result.review.fingerprint} written: "
                        f"{len(written)} file(s) in {(out or app.config.output_path)}")
            else:
                ui.info(f"Response for request {result.review.fingerprint} shown.")
            if once:
                summary = {
                    "ok": True,
                    "fingerprint": result.review.fingerprint,
                    "response_type": result.response_type,
                    "approvals": list(result.approvals),
                    "frames": [str(p) for p in written],
                    "audit_seq": result.audit_seq,
                    "audit_head": result.audit_head,
                    "reshown": result.reshown,
                }
                break
    if wants_json():
        emit_json(summary)


# ------------------------------------------------------------------------- audit / ledger
@main.group(epilog=EXIT_STATUS_HELP)
def audit() -> None:
    """Verify the tamper-evident audit trail."""


@audit.command("verify")
@click.argument("trail", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--audit-pubkey", required=True,
              help="The HSM audit key's public key (hex, compressed secp256k1).")
@click.option("--ledger", "ledger_db", type=click.Path(path_type=Path, dir_okay=False,
                                                       exists=True), default=None,
              help="Also check the appliance's ledger.sqlite3 against the trail.")
@click.option("--anchor-config", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Also check the trail against the state anchored in the "
              "appliance's HSM (this configuration's token; asks for the user PIN).")
@click.option("--allow-emulated", is_flag=True, help="Accept SoftHSM for --anchor-config. Lab.")
@json_option
def audit_verify(trail: Path, audit_pubkey: str, ledger_db: Path | None,
                 anchor_config: Path | None, allow_emulated: bool) -> None:
    """Check every hash link and seal of TRAIL; any edit, deletion or reordering fails.

    With --anchor-config a trail cut short or replaced fails too (even after its last seal);
    with --ledger a ledger that lost, invented or changed signed requests or totals fails."""
    try:
        key = bytes.fromhex(audit_pubkey)
    except ValueError as exc:
        raise click.BadParameter("must be hex", param_hint="--audit-pubkey") from exc
    from coldvault.records.anchor import check_trail
    from coldvault.records.ledger import Ledger
    from coldvault.records.reconcile import TrailTotals, check_ledger

    book = Ledger(ledger_db, read_only=True) if ledger_db else None
    try:
        report = verify(trail, key,
                        expect_sealed_through=book.audit_sealed_through() if book else None)
        checked = []
        if anchor_config is not None:
            from appliance.console import OperatorConsole
            from appliance.daemon import read_anchor
            from coldvault.config import load_config

            cfg = load_config(anchor_config)
            pin = OperatorConsole(timeout=cfg.timeouts.review).secret(
                f"HSM user PIN for token {cfg.hsm_token_label}")
            anchor = read_anchor(cfg, pin, allow_emulated=allow_emulated)
            if anchor is not None:
                check_trail(anchor, trail, entries=report.entries,
                            sealed_through=report.sealed_through)
                checked.append(f"anchored through entry {anchor.audit_seq}")
            else:
                checked.append("no anchor on the token")
        if book is not None:
            check_ledger(book, TrailTotals.from_trail(trail), repair=False)
            checked.append("the ledger agrees")
    finally:
        if book is not None:
            book.close()
    done({**report.to_dict(), "checked": checked},
         f"{trail}: OK, {report.entries} entries, {report.seals} seals, "
         f"{report.unsealed} after the last seal" + "".join(f"; {c}" for c in checked))


# ------------------------------------------------------------------ state recovery
# (docs/audit.md "Recovery": a torn audit tail, a lost state directory)
def _recovery_console(config: Path) -> tuple[ApplianceConfig, str]:
    from appliance.console import OperatorConsole
    from coldvault.config import load_config

    cfg = load_config(config)
    ui = OperatorConsole(timeout=cfg.timeouts.review)
    return cfg, ui.secret(f"HSM user PIN for token {cfg.hsm_token_label}")


_recovery_options = [
    click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
                 required=True, help="The appliance's configuration TOML."),
    click.option("--allow-emulated", is_flag=True,
                 help="Accept SoftHSM / virtual cards (the config must allow it too). Lab only."),
    json_option,
]


def _with_recovery(f):  # type: ignore[no-untyped-def]
    from ceremony_scripts.options import stack

    return stack(f, _recovery_options)


@audit.command("repair-tail")
@_with_recovery
def audit_repair_tail(config: Path, allow_emulated: bool) -> None:
    """Move a torn last line of the audit trail aside (never deleted), after checking the
    rest against the HSM anchor; the repair is recorded and sealed in the trail."""
    from appliance.recovery import repair_tail

    cfg, pin = _recovery_console(config)
    result = repair_tail(cfg, pin, allow_emulated=allow_emulated)
    done(result.to_dict(),
         f"{result.trail}: {result.torn_bytes} torn bytes moved to {result.moved_to}; "
         f"{result.entries_kept} entries kept, repair recorded as entry {result.repair_seq}")


@main.group(epilog=EXIT_STATUS_HELP)
def state() -> None:
    """Recover the appliance's state directory (docs/audit.md, "Recovery")."""


@state.command("reset")
@_with_recovery
@click.option("--operator", "operator_name", required=True, help="Operator's name.")
@click.option("--reason", required=True, help="Why the state directory is lost (recorded).")
@click.option("--transcript", "transcript_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Transcript file (default: ./transcripts/state-reset-<time>-<id>.jsonl).")
@click.option("--yes", "assume_yes", is_flag=True, help="Skip the yes/no confirmation.")
def state_reset(config: Path, allow_emulated: bool, operator_name: str, reason: str,
                transcript_path: Path | None, assume_yes: bool) -> None:
    """Start a new state directory from the HSM anchor and the signed documents, approved
    by the admin quorum; the old directory is moved aside, never deleted."""
    from appliance.recovery import reset_state
    from ceremony_scripts.hardware import ReaderCards
    from ceremony_scripts.ui import ConsoleOperator
    from coldvault.ceremonies.params import CeremonyParams

    cfg, pin = _recovery_console(config)
    op = ConsoleOperator(assume_yes=assume_yes)
    emulated_ok = allow_emulated and cfg.allow_emulated_hardware
    params = CeremonyParams(actor=operator_name, transcript=transcript_path)
    result = reset_state(cfg, pin, op, ReaderCards(op, allow_emulated=emulated_ok),
                         params=params, reason=reason, allow_emulated=allow_emulated)
    done(result.to_dict(),
         f"state reset: new {result.state_dir}, the old one moved to {result.moved_to or '-'}; "
         f"approved by {', '.join(result.approved_by)}; transcript {result.transcript}")


@main.group(epilog=EXIT_STATUS_HELP)
def ledger() -> None:
    """Reconciliation exports from the request ledger."""


def _format_option(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if value == "json":
        json_mode(ctx)  # errors become a JSON document too
    return value


@ledger.command("export")
@click.option("--db", type=click.Path(path_type=Path, dir_okay=False, exists=True), required=True,
              help="The appliance's ledger.sqlite3.")
@click.option("--client", required=True, help="Client whose movements to export.")
@click.option("--since", default=None, help="ISO date/time (UTC), inclusive.")
@click.option("--until", default=None, help="ISO date/time (UTC), exclusive.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv",
              is_eager=True, callback=_format_option,
              help="csv, or json (then an error is a JSON document on stdout too).")
def ledger_export(db: Path, client: str, since: str | None, until: str | None, fmt: str) -> None:
    """Print CLIENT's signed movements as CSV or JSON."""
    from coldvault.records.ledger import Ledger

    book = Ledger(db, read_only=True)
    try:
        click.echo(book.export_movements(client, since=since, until=until, fmt=fmt), nl=False)
    finally:
        book.close()


# ------------------------------------------------------------------------- QR tools
@main.group(epilog=EXIT_STATUS_HELP)
def qr() -> None:
    """Encode files as QR frames and decode QR frames (for coordinators and tests)."""


class _FragmentLen(click.ParamType):
    """``--fragment-len``: bytes per frame, or ``auto`` (``None``: chosen by message size)."""

    name = "BYTES|auto"

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> int | None:
        if value is None or value == "auto":
            return None
        try:
            number = int(str(value))
        except ValueError:
            self.fail(f"{value!r} is neither a number of bytes nor auto", param, ctx)
        if number < 10:
            self.fail(f"{number} is below 10 bytes per frame", param, ctx)
        return number


FRAGMENT_LEN = _FragmentLen()


@qr.command("encode")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--type", "ur_type", default="crypto-psbt", show_default=True,
              help="UR type of the payload (crypto-psbt, eth-sign-request, ...).")
@click.option("--cbor", is_flag=True, help="FILE already holds the CBOR for --type.")
@click.option("--format", "fmt", type=click.Choice(["ur", "bbqr", "pmofn", "urv1"]),
              default="ur", show_default=True)
@click.option("--fragment-len", type=FRAGMENT_LEN, default="auto", show_default=True,
              help="Message bytes per frame, or auto: the lightest of 200, 400, 800, 1200 "
                   "and 1600 B that needs at most 20 frames, else 1600 B.")
@click.option("--frames", "count", type=int, default=None,
              help="How many frames to write (UR fountain: default twice the parts).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Directory for frame-NNNN.png + frames.txt, or a .gif file.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=5.0,
              show_default=True, help="GIF frame rate.")
@json_option
def qr_encode(file: Path, ur_type: str, cbor: bool, fmt: str, fragment_len: int | None,
              count: int | None, out: Path, fps: float) -> None:
    """Write FILE as QR frames in the chosen format."""
    from coldvault.transport import render as qr_render
    from coldvault.transport.formats import TransportFormat, adaptive_fragment_len
    from coldvault.transport.registry import decode_registry
    from coldvault.transport.reply import encode_reply
    from coldvault.transport.ur import UR

    data = file.read_bytes()
    if cbor:
        decode_registry(UR(ur_type, data))  # validate before rendering
    fmts = {"ur": TransportFormat.UR, "bbqr": TransportFormat.BBQR,
            "pmofn": TransportFormat.PMOFN, "urv1": TransportFormat.URV1}
    per_frame = fragment_len or adaptive_fragment_len(len(data))
    stream = encode_reply(fmts[fmt], ur_type, data, max_fragment_len=per_frame)
    n = stream.frame_count or count or 2 * stream.parts_needed
    texts = stream.frames(n)
    if out.suffix.lower() == ".gif":
        out.write_bytes(qr_render.render_gif(texts, frame_duration_ms=int(1000 / fps)))
    else:
        out.mkdir(parents=True, exist_ok=True)
        for i, text in enumerate(texts):
            (out / f"frame-{i:04d}.png").write_bytes(qr_render.render_png(text))
        (out / "frames.txt").write_text("\n".join(texts) + "\n")
    done({"frames": len(texts), "out": str(out), "format": fmt},
         f"wrote {len(texts)} frames to {out}")


@qr.command("decode")
@click.argument("images", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--text", "text_file", type=click.Path(path_type=Path, exists=True),
              help="Read frame texts (one per line) instead of images.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the assembled payload here (raw file, or CBOR for CBOR URs).")
@json_option
def qr_decode(images: tuple[Path, ...], text_file: Path | None, out: Path | None) -> None:
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
    done({"format": str(received.format), "ur_type": received.ur_type, "bytes": len(payload),
          **({} if out else {"hex": payload.hex()})},
         f"{received.format} {received.ur_type}: {len(payload)} bytes"
         + (f" written to {out}" if out else ""))


# ------------------------------------------------------------------------- whitelist
@main.group(epilog=EXIT_STATUS_HELP)
def whitelist() -> None:
    """Ownership proofs for the address book: issue a challenge, check a client's proof."""


@whitelist.command("challenge")
@click.option("--client", default="", help="The client the address will be whitelisted for.")
@click.option("--wallet", default="", help="The wallet whose address book it joins.")
@click.option("--address", default="", help="The address to be proven (recommended).")
@json_option
def whitelist_challenge(client: str, wallet: str, address: str) -> None:
    """Print a fresh challenge message for the client to sign with the address's key."""
    import datetime
    import secrets

    from coldvault.policy.ownership import challenge_message

    issued = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    nonce = secrets.token_hex(16)
    message = challenge_message(
        client=client, wallet=wallet, address=address, nonce=nonce, issued=issued
    )
    done({"message": message, "nonce": nonce, "issued": issued}, message)


@whitelist.command("verify")
@click.option("--address", required=True, help="The address whose control is claimed.")
@click.option("--message", required=True, help="The exact message that was signed.")
@click.option("--signature", required=True,
              help="BIP-322 (smp/ful, base64), BIP-137 (base64), EIP-191/712 (hex) or "
              "Ed25519 (base58/base64); the address decides which.")
@json_option
def whitelist_verify(address: str, message: str, signature: str) -> None:
    """Check a client's ownership proof: exit 0 if it proves control of ADDRESS, 1 if not
    (with the reason), 2 if the address or message cannot be read."""
    from coldvault.policy.ownership import check_address_proof

    result = check_address_proof(address, message, signature)
    done({"valid": True, "chain": str(result.chain), "address": result.address,
          "format": result.proof_format},
         f"valid: the {result.proof_format} proof shows control of {result.address} "
         f"({result.chain})")  # fmt: skip


# ------------------------------------------------------------------------- ceremonies
main.add_command(ceremony, "ceremony")
main.add_command(transcript, "transcript")
main.add_command(backup, "backup")
main.add_command(drill, "drill")

# ------------------------------------------------------------------------- card PIN tools
main.add_command(card, "card")


if __name__ == "__main__":  # pragma: no cover
    main()

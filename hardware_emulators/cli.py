"""``coldvault-lab``: bring the emulated hardware lab up and down (docs/lab.md).

A thin click front end over :mod:`hardware_emulators.lab`. Errors become output in one
place, the root :class:`~appliance.errors_out.ReportingGroup`, under the same contract as
``coldvault``: with ``--json`` stdout holds exactly one JSON document; messages go to stderr;
exit status 0 done, 1 cancelled, 2 bad input or a lab that cannot run here, 3 internal.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from appliance.errors_out import (
    EXIT_STATUS_HELP,
    ReportingGroup,
    emit_json,
    json_option,
    wants_json,
)
from coldvault.errors import ColdvaultError, HardwareError
from hardware_emulators import lab as labmod


class LabUnavailable(HardwareError):
    """The lab cannot run on this machine (a missing package, a failing tool, no ports)."""

    code = "lab-unavailable"


class LabGroup(ReportingGroup):
    """Reports like ``coldvault``; environment failures of the lab are bad input (exit 2)."""

    error_label = "coldvault-lab"

    def translate(self, exc: Exception) -> ColdvaultError | None:
        # SoftHsmUnavailable, pcsc_lab.LabError and a failing softhsm2-util are RuntimeErrors
        if isinstance(exc, OSError | RuntimeError):
            return LabUnavailable(str(exc))
        return None


class _Ctx:
    def __init__(self, lab_dir: Path, lab_file: Path) -> None:
        self.lab_dir = lab_dir.resolve()
        self.lab_file = lab_file.resolve()


pass_ctx = click.make_pass_decorator(_Ctx)


@click.group(cls=LabGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog=EXIT_STATUS_HELP)
@click.option(
    "--lab-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="COLDVAULT_LAB_DIR",
    default="lab-state",
    show_default=True,
    help="Directory holding the lab's state (env COLDVAULT_LAB_DIR).",
)
@click.option(
    "--lab-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="COLDVAULT_LAB_FILE",
    default=str(labmod.DEFAULT_LAB_FILE),
    show_default=True,
    help="Lab description (TOML). Its PINs are test-only.",
)
@click.pass_context
def main(ctx: click.Context, lab_dir: Path, lab_file: Path) -> None:
    """The emulated hardware lab: SoftHSM2 tokens, pcscd + vpcd readers, virtual cards."""
    ctx.obj = _Ctx(lab_dir, lab_file)


def _show_status(status: dict[str, Any]) -> None:
    if wants_json():
        emit_json({"ok": True, **status}, indent=2)
    else:
        _print_status(status)


def _print_status(status: dict[str, Any]) -> None:
    click.echo(f"lab {status['lab']} in {status['state_dir']}")
    daemon = status.get("daemon")
    click.echo(f"  supervisor: {'pid ' + str(daemon) if daemon else 'not running'}")
    click.echo(f"  SoftHSM conf: {status['softhsm']['conf']}")
    for t in status["softhsm"]["tokens"]:
        site = f" {t['site']}" if t.get("site") else ""
        click.echo(f"  token {t['label']:<22} serial {t['serial']} ({t['role']}{site})")
    pcsc = status["pcsc"]
    if pcsc["running"]:
        click.echo(f"  pcscd pid {pcsc['pid']} socket {pcsc['socket']}")
        for r in pcsc["readers"]:
            card = r["card"] or "(empty)"
            click.echo(f"  reader {r['index']} {r['name']!r} port {r['port']}: {card}")
    else:
        click.echo("  pcscd: not running")
    for c in status["cards"]:
        where = f"reader {c['reader']}" if c["reader"] is not None else "not inserted"
        enrolled = {True: "enrolled", False: "blank"}.get(c.get("enrolled"), "state unreadable")
        click.echo(
            f"  card {c['serial']} {c['holder']} ({c['role']}, {c['site']}, {enrolled}): {where}"
        )


def _status(obj: _Ctx) -> dict[str, Any]:
    if labmod.daemon_running(obj.lab_dir):
        status = labmod.send_command(obj.lab_dir, {"cmd": "status"})
        status["daemon"] = labmod.read_registry(obj.lab_dir)["supervisor"]["pid"]  # type: ignore[index]
        return status
    status = labmod.Lab.from_file(obj.lab_file, obj.lab_dir).status()
    status["daemon"] = None
    return status


@main.command()
@json_option
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for readiness.")
@pass_ctx
def up(obj: _Ctx, timeout: float) -> None:
    """Start the lab in the background (idempotent: existing tokens are kept)."""
    labmod.spawn_daemon(obj.lab_dir, obj.lab_file, timeout=timeout)
    _show_status(_status(obj))


@main.command()
@json_option
@pass_ctx
def status(obj: _Ctx) -> None:
    """Show tokens, pcscd, readers and which card is in which reader."""
    _show_status(_status(obj))


@main.command()
@click.option("--purge", is_flag=True, help="Also delete the lab dir (tokens, card state).")
@pass_ctx
def down(obj: _Ctx, purge: bool) -> None:
    """Stop exactly the processes 'up' started (verified by PID, command line, start time)."""
    try:
        stopped = labmod.stop_daemon(obj.lab_dir)
        click.echo(f"stopped pids: {' '.join(map(str, stopped)) or '(none alive)'}")
    except labmod.LabNotRunning:
        click.echo("no lab running")
    if purge and obj.lab_dir.exists():
        shutil.rmtree(obj.lab_dir)
        click.echo(f"removed {obj.lab_dir}")


@main.command()
@click.argument("card")
@click.argument("reader")
@pass_ctx
def insert(obj: _Ctx, card: str, reader: str) -> None:
    """Insert CARD (serial from the lab file) into READER (index or PC/SC name)."""
    labmod.send_command(obj.lab_dir, {"cmd": "insert", "card": card, "reader": reader})
    click.echo(f"inserted {card} into reader {reader}")


@main.command()
@click.argument("reader")
@pass_ctx
def remove(obj: _Ctx, reader: str) -> None:
    """Pull the card out of READER (index or PC/SC name)."""
    result = labmod.send_command(obj.lab_dir, {"cmd": "remove", "reader": reader})
    click.echo(f"removed {result['removed'] or 'nothing'} from reader {reader}")


@main.command()
@pass_ctx
def env(obj: _Ctx) -> None:
    """Print shell export lines (SOFTHSM2_CONF, PCSCLITE_CSOCK_NAME, ...): eval "$(... env)"."""
    values = _status(obj)["env"]
    for key in sorted(values):
        click.echo(f"export {key}={shlex.quote(values[key])}")


# ------------------------------------------------------------------------- the outside world
# Lab stand-ins for parties outside the air gap, used by the runbooks on the lab: a client's
# counterparty proving it owns a whitelisted address, and the online coordinator that builds
# the unsigned transaction. In production these come from the client and the coordinator.
@main.command()
@click.argument("label")
@click.option("--chain", type=click.Choice(["bitcoin", "ethereum", "solana"]), default="bitcoin",
              show_default=True)
@click.option("--network", default="main", show_default=True, help="Bitcoin network.")
def counterparty(label: str, chain: str, network: str) -> None:
    """Print a [[wallet.destination]] table for a lab counterparty called LABEL: its address
    and its signed ownership proof (append it under the wallet in policy.toml)."""
    import tomli_w

    from hardware_emulators.demo import parties

    if chain == "bitcoin":
        proof = parties.bitcoin_counterparty(label, network)
    elif chain == "ethereum":
        proof = parties.ethereum_counterparty(label)
    else:
        proof = parties.solana_counterparty(label)
    entry = {"address": proof.address, "chain": proof.chain, "label": proof.label,
             "message": proof.message, "signature": proof.signature}
    click.echo("\n[[wallet.destination]]\n" + tomli_w.dumps(entry), nl=False)


@main.command()
@click.option("--descriptor", required=True,
              help="The wallet's descriptor, wpkh([fp/84h/0h/0h]xpub/<0;1>/*), as exported.")
@click.option("--to", "pay_to", required=True, help="Destination address.")
@click.option("--amount", type=click.IntRange(1), required=True, help="Satoshis to send.")
@click.option("--fee", type=click.IntRange(1), default=2_000, show_default=True,
              help="Fee in satoshis.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the unsigned PSBT (binary).")
def psbt(descriptor: str, pay_to: str, amount: int, fee: int, out: Path) -> None:
    """Build an unsigned PSBT as an online coordinator would (one funding input of the
    wallet's first receive address, the payment and change): the lab's coordinator."""
    from hardware_emulators.demo import parties

    data = parties.bitcoin_psbt(descriptor.strip(), pay_to=pay_to, amount=amount, fee=fee)
    with out.open("xb") as f:
        f.write(data)
    click.echo(f"wrote {out} ({len(data)} bytes): pay {amount} sat to {pay_to}, fee {fee} sat")


@main.command()
@click.option("--request", "request_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The unsigned PSBT the coordinator sent (from 'psbt').")  # fmt: skip
@click.option("--signed", "signed_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signed PSBT decoded from the appliance's response.")  # fmt: skip
@click.option("--network", type=click.Choice(["main", "test", "regtest", "signet"]),
              default="main", show_default=True)  # fmt: skip
@json_option
def broadcast_check(request_path: Path, signed_path: Path, network: str) -> None:
    """The lab's coordinator before broadcasting (embit): the signed PSBT is the requested
    transaction, every signature verifies and it finalizes; shows each output in full and
    the fee. Exit 1 when the signed transaction must not be broadcast."""
    from hardware_emulators.demo import parties

    view = parties.coordinator_check(
        request_path.read_bytes(), signed_path.read_bytes(), network
    )
    if wants_json():
        emit_json({"ok": True, "txid": view.txid, "fee": view.fee, "raw_tx": view.raw_tx,
                   "outputs": [{"address": a, "amount": v} for a, v in view.outputs]})
        return
    click.echo(f"transaction {view.txid}: the requested one, signed; embit finalized it")
    for address, value in view.outputs:
        click.echo(f"  pays {value:,} sat to {address}")
    click.echo(f"  fee {view.fee:,} sat")
    click.echo(f"raw transaction ({len(view.raw_tx) // 2} bytes) ready to broadcast")


@main.command(hidden=True)
@pass_ctx
def serve(obj: _Ctx) -> None:
    """Run the lab supervisor in the foreground (what 'up' starts in the background)."""
    sys.exit(labmod.serve(obj.lab_dir, obj.lab_file))


if __name__ == "__main__":
    main()

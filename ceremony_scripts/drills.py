"""``coldvault drill run|verify|list``: restore drills at the console
(:mod:`coldvault.ceremonies.drill`) and their history (:mod:`coldvault.backup.history`).

Exit statuses: ``run`` 0 when the drill passed, 1 when it failed (the report says why);
``verify`` 0 when the report verifies; ``list`` 0 (the overdue warning is on stderr and in
the JSON).  Machine output is alone on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
from contextlib import AbstractContextManager
from pathlib import Path

import click

from ceremony_scripts import quorum_cards
from ceremony_scripts.hardware import ReaderCards
from ceremony_scripts.options import (
    common_options,
    config_option,
    config_roster,
    from_config,
    load_roster,
    require_signers,
    unsigned_option,
)
from ceremony_scripts.output import CeremonyGroup, emit, json_mode, json_option
from ceremony_scripts.plans import collusion_option, survive_option
from ceremony_scripts.sharding import ConsoleShareDevices, backup_token_options
from ceremony_scripts.ui import ConsoleOperator
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backup.drill import DrillScenario, named_scenario, parse_scenario
from coldvault.backup.history import DEFAULT_INTERVAL_DAYS, drill_history, verify_report
from coldvault.backup.plan import Plan, load_plan
from coldvault.ceremonies.drill import FreshToken, RestoreDrill, restore_drill
from coldvault.ceremonies.proposals import genesis_hex, load_chain
from coldvault.errors import EXIT_REFUSED
from coldvault.policy import load_policy

REPORTS = Path("drills")


@click.group("drill", cls=CeremonyGroup)
def drill() -> None:
    """Restore drills: prove the surviving sites rebuild the seed; their history."""


def _scenario(plan: Plan, value: str) -> DrillScenario:
    path = Path(value)
    if path.is_file():
        return parse_scenario(path.read_bytes()[: 16 * 1024 + 1])
    return named_scenario(plan, value)


@drill.command("run")
@common_options
@backup_token_options
@click.option("--plan", "plan_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path))  # fmt: skip
@click.option("--backup", "backup_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Backup directory: the record and the surviving sites' envelopes.")  # fmt: skip
@click.option("--scenario", required=True, help="A scenario file, or a name: 'site-b lost'.")
@click.option("--reports", "reports_dir", default=REPORTS, show_default=True,
              type=click.Path(file_okay=False, path_type=Path))  # fmt: skip
@click.option("--provisioning", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Public provisioning record (provisioning.json) to compare with.")  # fmt: skip
@click.option("--restore-token", default="",
              help="Restore the key pool into this fresh token (with --provisioning).")  # fmt: skip
@click.option("--passphrase", "use_passphrase", is_flag=True, help="The shares have one.")
@collusion_option
@survive_option
@click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16),
              help="Drill quorum cards signing the transcript (and the report).")  # fmt: skip
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster: the record's admin signatures are checked against it and "
                   "its admin quorum signs the report.")  # fmt: skip
@click.option("--audit-trail", type=click.Path(dir_okay=False, path_type=Path),
              help="The appliance's audit trail (audit.jsonl in the appliance configuration's "
                   "state_dir) to append the drill to.")  # fmt: skip
@config_option
@unsigned_option
@json_option
def run_cmd(
    operator_name: str, transcript_path: Path | None, assume_yes: bool, module: str,
    allow_emulated: bool, plan_path: Path, backup_dir: Path, scenario: str, reports_dir: Path,
    provisioning: Path | None, restore_token: str, use_passphrase: bool, collusion: int,
    survive: int, witnesses: int, roster_path: Path | None, audit_trail: Path | None,
    config_path: Path | None, unsigned: bool,
) -> None:  # fmt: skip
    """Run a restore drill: collect the surviving shares (each holder types their own PIN),
    rebuild in memory, compare, optionally restore into a fresh token; write the report.
    With --config, the appliance's roster chain and audit trail are used."""
    if restore_token and provisioning is None:
        raise click.UsageError("--restore-token needs --provisioning.")
    require_signers("drill report", given=roster_path is not None or config_path is not None,
                    unsigned=unsigned, how="--config or --roster")
    cfg = from_config(config_path, roster=roster_path, **{"audit-trail": audit_trail})
    roster = config_roster(cfg) if cfg else load_roster(roster_path)
    if cfg is not None:
        audit_trail = cfg.audit_log
    plan = load_plan(plan_path)
    params = RestoreDrill(
        actor=operator_name, transcript=transcript_path, plan=plan, backup_dir=backup_dir,
        scenario=_scenario(plan, scenario), reports_dir=reports_dir,
        provisioning=provisioning.read_bytes() if provisioning else None,
        use_passphrase=use_passphrase, collusion=collusion, survive=survive,
        witnesses=witnesses, roster=roster, audit_trail=audit_trail,
    )  # fmt: skip
    op = ConsoleOperator(assume_yes=assume_yes)
    devices = ConsoleShareDevices(op, module, allow_emulated=allow_emulated)

    def opener(label: str, pin: str) -> AbstractContextManager[Pkcs11Keystore]:
        return Pkcs11Keystore.open(module, label, pin, allow_emulated=allow_emulated)

    fresh = FreshToken(restore_token, opener) if restore_token else None
    cards = ReaderCards(op, allow_emulated=allow_emulated)
    result = restore_drill(op, params, devices, fresh, cards)
    emit(result)
    if not result.report.passed:
        click.get_current_context().exit(EXIT_REFUSED)


@drill.command("verify")
@click.argument("report", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--transcript", "transcript_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The drill's transcript (default: beside the report).")  # fmt: skip
@click.option("--roster", "roster_paths", multiple=True,
              type=click.Path(exists=True, path_type=Path),
              help="The signed roster: the report's admin signatures (and the witnesses) are "
                   "checked against it. Repeatable: the roster chain, genesis first; the "
                   "newest roster counts. Or --config.")  # fmt: skip
@click.option("--genesis-sha256", default="",
              help="The genesis roster SHA-256 pinned in the appliance configuration "
                   "(trust.genesis_roster_sha256): the --roster chain must start at "
                   "it.")  # fmt: skip
@click.option("--min-witnesses", default=0, show_default=True, type=click.IntRange(0))
@config_option
@json_option
def verify_cmd(
    report: Path, transcript_path: Path | None, roster_paths: tuple[Path, ...],
    genesis_sha256: str, min_witnesses: int, config_path: Path | None,
) -> None:  # fmt: skip
    """Check a drill report: the admin quorum's card signatures on it, and its transcript
    (hash chain, witnesses, report SHA-256); with --genesis-sha256 or --config, also that
    the roster chain is the appliance's."""
    cfg = from_config(config_path, roster=roster_paths, **{"genesis-sha256": genesis_sha256})
    if cfg is None and not roster_paths:
        raise click.UsageError("Give the roster chain: --roster (repeatable) or --config.")
    genesis = genesis_hex(genesis_sha256)
    if cfg is not None:
        roster = config_roster(cfg)
    elif genesis or len(roster_paths) > 1:
        roster, _docs = load_chain(roster_paths, genesis)
    else:
        roster = quorum_cards.load_roster(roster_paths[0])
    verified = verify_report(report, transcript_path, roster=roster, min_witnesses=min_witnesses)
    if json_mode():
        emit(verified)
        return
    r = verified.report
    click.echo(
        f"VERIFIED {report}: drill {r.scenario!r} of plan {r.plan!r} "
        f"{'PASSED' if r.passed else 'FAILED'}; sites used: {', '.join(r.sites_used) or 'none'}; "
        f"signed by {', '.join(verified.signed_by)}; "
        f"witnesses: {', '.join(verified.witnesses) or 'none'}."
    )


@drill.command("list")
@click.option("--reports", "reports_dir", default=REPORTS, show_default=True,
              type=click.Path(file_okay=False, path_type=Path))  # fmt: skip
@click.option("--interval-days", type=click.IntRange(1, 3650),
              help="Warn when the last passing drill is older than this many days (default: "
                   f"the policy's drill_interval_days, else {DEFAULT_INTERVAL_DAYS}).")  # fmt: skip
@click.option("--policy", "policy_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Signed policy: its drill_interval_days applies (with --roster).")  # fmt: skip
@click.option("--roster", "roster_path",
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signed roster whose admins approved --policy.")  # fmt: skip
@config_option
@json_option
def list_cmd(
    reports_dir: Path, interval_days: int | None, policy_path: Path | None,
    roster_path: Path | None, config_path: Path | None,
) -> None:  # fmt: skip
    """The stored drill reports, oldest first, with the overdue warning (at the appliance
    policy's drill_interval_days with --config)."""
    cfg = from_config(config_path, policy=policy_path, roster=roster_path)
    if interval_days is None:
        interval_days = DEFAULT_INTERVAL_DAYS
        if cfg is not None:
            policy = load_policy(cfg.policy_file, roster=config_roster(cfg))
            interval_days = policy.drill_interval_days
        elif policy_path is not None:
            roster = load_roster(roster_path)
            if roster is None:
                raise click.UsageError("--policy needs --roster (the admins who approved it).")
            interval_days = load_policy(policy_path, roster=roster).drill_interval_days
    history = drill_history(reports_dir, interval_days=interval_days)
    if json_mode():
        click.echo(json.dumps(history.to_dict(), sort_keys=True))
    else:
        for r in history.reports:
            when = dt.datetime.fromtimestamp(r.started_at, dt.UTC)
            click.echo(
                f"{when:%Y-%m-%d %H:%M}Z  {'PASSED' if r.passed else 'FAILED'}  "
                f"{r.scenario}  (plan {r.plan}, sites used: {', '.join(r.sites_used) or 'none'})"
                f"  {r.file}"
            )
        if not history.reports:
            click.echo(f"No drill reports in {reports_dir}.")
    for path in history.unreadable:
        click.echo(f"Warning: {path} is not a readable drill report.", err=True)
    if history.warning:
        click.echo(f"Warning: {history.warning}", err=True)


__all__ = ["drill"]

"""``backup plan check`` and ``backup plan propose``: the backup-plan commands.

The click group :data:`backup` is mounted by the top-level CLI as ``coldvault backup``.
Machine output (JSON, or the proposed plan's TOML) goes alone on stdout; human text goes to
stderr.  Exit statuses: 0 valid / proposed, 1 refused (the plan breaks a rule), 2 bad input
(an unreadable or invalid plan file, impossible bounds).  Errors become output in
the ceremony front end's one place (:class:`ceremony_scripts.output.CeremonyGroup`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ceremony_scripts import quorum_cards
from ceremony_scripts.output import CeremonyGroup, json_mode, json_option
from coldvault.backup.approvals import RECORD_KIND, verify_signed
from coldvault.backup.check import (
    DEFAULT_COLLUSION,
    DEFAULT_SURVIVE,
    MAX_COLLUSION,
    PlanReport,
    SiteRequest,
    check_plan,
    propose_plan,
)
from coldvault.backup.plan import MAX_SITES, load_plan
from coldvault.backup.record import load_record
from coldvault.ceremonies.sharding import RECORD_FILE
from coldvault.errors import EXIT_DONE, EXIT_REFUSED


def _json_out(data: object) -> None:
    click.echo(json.dumps(data, sort_keys=True))


def _say(text: str) -> None:
    click.echo(text, err=True)


def _print_report(report: PlanReport, plan_sha256: str) -> None:
    if report.ok:
        coalition = "" if report.collusion == 1 else f", no {report.collusion} custodians together"
        _say(
            f"VALID: backup plan {report.plan_id!r} passes every rule (no site or custodian "
            f"alone{coalition}, survives the loss of any {report.survive} site(s)); "
            f"{report.combinations_checked} combinations checked."
        )
        # the hash the backup ceremony shows and binds into the admin-signed record
        _say(f"Plan SHA-256: {plan_sha256}")
        return
    _say(f"REFUSED: backup plan {report.plan_id!r} breaks {len(report.findings)} rule(s):")
    for finding in report.findings:
        _say(f"  [{finding.rule.value}] {finding.message}")


collusion_option = click.option(
    "--collusion",
    default=DEFAULT_COLLUSION,
    show_default=True,
    type=click.IntRange(1, MAX_COLLUSION),
    help="No set of this many custodians may rebuild the seed together.",
)
survive_option = click.option(
    "--survive",
    default=DEFAULT_SURVIVE,
    show_default=True,
    type=click.IntRange(0, MAX_SITES),
    help="The seed must survive the loss of any this many sites.",
)


@click.group("backup", cls=CeremonyGroup)
def backup() -> None:
    """Sharded seed backups: plans (and, with the ceremonies, backups and drills)."""


@backup.group("plan")
def plan_group() -> None:
    """Check or propose a backup plan (which shares go to which sites and targets)."""


@plan_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@collusion_option
@survive_option
@json_option
def plan_check(path: Path, collusion: int, survive: int) -> None:
    """Refuse a plan where a site or custodian alone, or COLLUSION custodians together,
    could rebuild the seed, or where losing SURVIVE sites would lose it."""
    plan = load_plan(path)
    report = check_plan(plan, collusion=collusion, survive=survive)
    if json_mode():
        _json_out({**report.to_dict(), "plan_sha256": plan.sha256})
    else:
        _print_report(report, plan.sha256)
    sys.exit(EXIT_DONE if report.ok else EXIT_REFUSED)


def _pairs(values: tuple[str, ...], option: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        site, sep, item = value.partition("=")
        if not sep or not site or not item:
            raise click.BadParameter(f"{value!r} is not SITE=VALUE", param_hint=option)
        out.setdefault(site, []).append(item)
    return out


@plan_group.command("propose")
@click.option("--sites", required=True, help="Comma-separated site names, e.g. a,b,c.")
@survive_option
@collusion_option
@click.option(
    "--custodian",
    "custodians",
    multiple=True,
    metavar="SITE=CARD_ID",
    help="A custodian's roster card id at a site (repeatable).",
)
@click.option(
    "--token",
    "tokens",
    multiple=True,
    metavar="SITE=LABEL[:SERIAL]",
    help="The site's backup HSM token (default label backup-SITE).",
)
@click.option(
    "--custodians-per-site",
    default=1,
    show_default=True,
    type=click.IntRange(1, 8),
    help="Placeholder custodians for sites given no --custodian.",
)
@click.option("--id", "plan_id", default="proposed-plan", show_default=True, help="Plan id.")
@json_option
def plan_propose(
    sites: str,
    survive: int,
    collusion: int,
    custodians: tuple[str, ...],
    tokens: tuple[str, ...],
    custodians_per_site: int,
    plan_id: str,
) -> None:
    """Propose a plan over SITES that survives SURVIVE lost sites and resists COLLUSION
    custodians; prints the plan's TOML (or JSON with --json) on stdout."""
    names = [s.strip() for s in sites.split(",") if s.strip()]
    if not names:
        raise click.BadParameter("name at least one site", param_hint="--sites")
    people = _pairs(custodians, "--custodian")
    devices = _pairs(tokens, "--token")
    for site in set(people) | set(devices):
        if site not in names:
            raise click.BadParameter(f"site {site!r} is not in --sites")
    requests = []
    for name in names:
        token = devices.get(name, [""])[-1]
        label, _, serial = token.partition(":")
        requests.append(
            SiteRequest(
                name, custodians=tuple(people.get(name, ())), token_label=label, token_serial=serial
            )
        )
    plan = propose_plan(
        requests,
        survive=survive,
        collusion=collusion,
        plan_id=plan_id,
        custodians_per_site=custodians_per_site,
    )
    report = check_plan(plan, collusion=collusion, survive=survive)
    text = plan.to_toml()
    if json_mode():
        _json_out({"ok": True, "plan_id": plan.id, "plan_toml": text, "check": report.to_dict()})
        return
    click.echo(text, nl=False)
    _say(
        f"Proposed {plan.scheme.group_threshold}-of-{len(plan.sites)} site groups; fill in "
        "locations, token serials and custodian card ids, then run 'plan check'."
    )


@backup.group("record")
def record_group() -> None:
    """Check a backup record (which share went to which site, target and custodian)."""


@record_group.command("check")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--roster", "roster_path", required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The signed roster whose admin quorum must have signed the record.")  # fmt: skip
@json_option
def record_check(path: Path, roster_path: Path) -> None:
    """Check a backup record (PATH: the file, or the backup directory): it parses and
    carries the card signatures of the roster's admin quorum."""
    record_path = path / RECORD_FILE if path.is_dir() else path
    roster = quorum_cards.load_roster(roster_path)
    record = load_record(record_path)
    approvals = verify_signed(record_path, RECORD_KIND, roster)
    signed_by = [a.holder for a in approvals]
    if json_mode():
        _json_out({"ok": True, "record": str(record_path), "record_sha256": record.sha256,
                   "plan": record.plan_id, "share_set": record.share_set.identifier,
                   "signed_by": signed_by})  # fmt: skip
        return
    _say(
        f"VERIFIED {record_path}: backup of plan {record.plan_id!r}, share set "
        f"{record.share_set.identifier}, {len(record.entries)} targets; signed by "
        f"{', '.join(signed_by)}."
    )


__all__ = ["backup"]

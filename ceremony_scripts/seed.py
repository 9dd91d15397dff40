"""``generate-seed``, ``provision`` and ``extend-pool``: the seed and key-pool ceremonies.

The seed never leaves memory: ``generate-seed`` creates it, shows the backup only with
``--paper-backup``, and (by default) provisions the key pool into the appliance HSM in the
same run.  ``provision`` and ``extend-pool`` rebuild the seed from the typed backup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress

from ceremony_scripts import quorum_cards
from ceremony_scripts.backup import BackupPlan, make_seed, read_dice, recover_seed
from ceremony_scripts.exports import write_exports
from ceremony_scripts.hsm import HsmOptions, hsm_device, hsm_options, open_keystore
from ceremony_scripts.runner import CeremonyRun, default_transcript_path
from ceremony_scripts.ui import Operator
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import IntegrityError
from coldvault.keys.keystore import Keystore
from coldvault.keys.pool import (
    AccountSpec,
    ProvisioningRecord,
    Template,
    provision,
    ur_account,
    ur_output,
)

TEMPLATES = [t.value for t in Template]


class FingerprintMismatch(IntegrityError):
    """The typed backup rebuilds another seed than the one expected."""

    code = "fingerprint-mismatch"

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(
            f"The backup gives master fingerprint {found}, not the expected {expected}; "
            "no key was imported."
        )
        self.expected = expected
        self.found = found


def common_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--operator", "operator_name", required=True, help="Operator's name."),
            click.option(
                "--transcript",
                "transcript_path",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Transcript file (default: ./transcripts/<ceremony>-<time>-<id>.jsonl).",
            ),
            click.option("--yes", "assume_yes", is_flag=True, help="Skip yes/no confirmations."),
        ]
    ):
        func = option(func)
    return func


def pool_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--template",
                "templates",
                multiple=True,
                type=click.Choice(TEMPLATES),
                help="Wallet template (repeatable; default: all four).",
            ),
            click.option("--account", default=0, show_default=True, type=click.IntRange(0)),
            click.option(
                "--network",
                default="main",
                show_default=True,
                type=click.Choice(["main", "test", "regtest"]),
                help="Bitcoin network of the bitcoin templates.",
            ),
            click.option("--client", default="house", show_default=True),
            click.option(
                "--pool-size",
                default=20,
                show_default=True,
                type=click.IntRange(1, 10_000),
                help="Keys per branch (receive/change) per account.",
            ),
            click.option(
                "--export-dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=Path("exports"),
                show_default=True,
            ),
        ]
    ):
        func = option(func)
    return func


def specs_from(
    templates: Sequence[str], account: int, network: str, client: str
) -> list[AccountSpec]:
    chosen = templates or TEMPLATES
    return [
        AccountSpec(
            Template(t),
            account=account,
            network=network if Template(t).chain == "bitcoin" else "",
            client=client,
        )  # fmt: skip
        for t in chosen
    ]


def _provision_step(
    op: Operator,
    run: CeremonyRun,
    keystore: Keystore,
    seed: bytearray,
    specs: list[AccountSpec],
    pool_size: int,
    export_dir: Path,
) -> ProvisioningRecord:
    total = sum(len(s.key_paths(pool_size)) for s in specs)
    op.step(
        f"Derive and import {total} keys into the HSM",
        ["the HSM activity light shows work; no other device is connected"],
    )
    with Progress(console=op.console, transient=True) as progress:
        task = progress.add_task("importing", total=total)
        record = provision(
            keystore,
            seed,
            specs,
            pool_size,
            progress=lambda done, _total: progress.update(task, completed=done),
        )
    op.ok(f"{record.imported} keys imported, {record.already_present} already present.")
    run.record(
        "keys-imported",
        {
            "master_fingerprint": record.master_fingerprint.hex(),
            "pool_size": pool_size,
            "imported": record.imported,
            "already_present": record.already_present,
            "key_count": len(record.keys),
            "first_label": record.keys[0].label if record.keys else "",
            "last_label": record.keys[-1].label if record.keys else "",
        },
        devices=[hsm_device(keystore)],  # type: ignore[arg-type]
    )
    op.step("Write the public exports", [f"the export directory is {export_dir}"])
    files = write_exports(record, export_dir)
    accounts = [{**a.to_dict(), "ur_output": ur_output(a) or ""} for a in record.accounts]
    run.record(
        "exports-written",
        {
            "accounts": accounts,
            "ur_account": ur_account(record.accounts) or "",
            "files": files,
            "dir": str(export_dir),
        },
    )
    for account in record.accounts:
        rows = [("account path", account.account_path)]
        if account.key_origin:
            rows.append(("key origin", str(account.key_origin)))
        if account.descriptor:
            rows.append(("descriptor", account.descriptor))
        rows += [(f"address {i}", a) for i, a in enumerate(account.first_addresses)]
        op.table(account.spec.name, rows)
    return record


@click.command("generate-seed")
@common_options
@hsm_options
@pool_options
@click.option("--format", "fmt", type=click.Choice(["bip39", "slip39"]), default="slip39",
              show_default=True, help="Backup format.")  # fmt: skip
@click.option("--threshold", default=2, show_default=True, type=click.IntRange(1, 16))
@click.option("--shares", default=3, show_default=True, type=click.IntRange(1, 16))
@click.option("--paper-backup", is_flag=True, help="Show the words for writing on paper.")
@click.option("--no-backup", is_flag=True, help="Accept a seed with no backup (lab only).")
@click.option("--provision/--no-provision", "do_provision", default=True, show_default=True)
@click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16),
              help="Witness cards that sign the closed transcript.")  # fmt: skip
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster; witnesses must be active cards in it.")  # fmt: skip
def generate_seed(**kw: Any) -> None:
    """Generate a seed from HSM + OS + dice entropy, back it up, provision the key pool."""
    op = Operator(assume_yes=kw["assume_yes"])
    if kw["fmt"] == "slip39" and not 1 <= kw["threshold"] <= kw["shares"]:
        raise click.BadParameter("--threshold must be between 1 and --shares")
    if kw["fmt"] == "slip39" and kw["threshold"] == 1 and kw["shares"] > 1:
        raise click.BadParameter("1-of-N SLIP-39 sharing is not allowed; use N = 1")
    if not kw["paper_backup"] and not kw["no_backup"]:
        raise click.UsageError(
            "Choose --paper-backup (words shown for writing down) or --no-backup (lab only): "
            "without a backup the keys could never be rebuilt."
        )
    plan = BackupPlan(kw["fmt"], kw["threshold"], kw["shares"], kw["paper_backup"])
    specs = specs_from(kw["templates"], kw["account"], kw["network"], kw["client"])
    hsm = HsmOptions(kw["module"], kw["token"], kw["allow_emulated"])
    path = kw["transcript_path"] or default_transcript_path(Path("transcripts"), "generate-seed")
    params = {
        "backup": plan.to_dict(),
        "provision": kw["do_provision"],
        "templates": [str(s.template) for s in specs],
        "network": kw["network"],
        "account": kw["account"],
        "pool_size": kw["pool_size"],
        "token": kw["token"],
    }
    roster = quorum_cards.load_roster(kw["roster_path"]) if kw["roster_path"] else None
    with CeremonyRun(
        op, "generate-seed", path, actor=kw["operator_name"], parameters=params
    ) as run:
        op.step(
            "Prepare the room",
            [
                "the ceremony host has no network cable, Wi-Fi or Bluetooth",
                "only the named participants are present; cameras are covered",
                "the dice are casino-grade, six-sided, and rolled in view of the witnesses",
            ],
        )
        op.confirm("Is the room prepared as listed?")
        run.record("room-checked", {"confirmed_by": kw["operator_name"]})
        op.step("Log in to the appliance HSM")
        with open_keystore(op, hsm, purpose="seed ceremony") as keystore:
            run.record("hsm-opened", {"token": kw["token"]}, devices=[hsm_device(keystore)])
            op.step(
                "Enter the dice rolls",
                [f"at least {99} rolls, typed as digits 1-6; input is hidden"],
            )
            entropy = read_dice(op, run, keystore.random)
            op.step(
                "Create the seed and its backup",
                ["nobody but the operator can see the screen while words are shown"]
                if plan.paper
                else ["no words will be shown (no --paper-backup)"],
            )
            seed, fingerprint = make_seed(op, run, plan, entropy)
            op.table("Seed", [("master fingerprint", fingerprint)])
            run.record("seed-created", {"master_fingerprint": fingerprint, **plan.to_dict()})
            if kw["no_backup"] and not plan.paper:
                op.warn("No backup was made: these keys cannot be rebuilt (lab use only).")
            if kw["do_provision"]:
                _provision_step(op, run, keystore, seed, specs, kw["pool_size"], kw["export_dir"])
            run.wipe_secrets()
        op.step("Close the transcript", ["witnesses read the final hash on screen"])
        signers = quorum_cards.witness_signers(op, kw["witnesses"], roster, kw["allow_emulated"])
        run.finish({"master_fingerprint": fingerprint}, signers)
    op.ok("Ceremony complete. The seed has been wiped from memory.")


def _recovered_seed_ceremony(kw: dict[str, Any], ceremony: str, *, quorum: bool) -> None:
    op = Operator(assume_yes=kw["assume_yes"])
    specs = specs_from(kw["templates"], kw["account"], kw["network"], kw["client"])
    hsm = HsmOptions(kw["module"], kw["token"], kw["allow_emulated"])
    path = kw["transcript_path"] or default_transcript_path(Path("transcripts"), ceremony)
    params = {
        "backup_format": kw["fmt"],
        "templates": [str(s.template) for s in specs],
        "network": kw["network"],
        "account": kw["account"],
        "pool_size": kw["pool_size"],
        "token": kw["token"],
        "expected_fingerprint": kw["expect_fingerprint"] or "",
    }
    roster = quorum_cards.load_roster(kw["roster_path"]) if kw.get("roster_path") else None
    if quorum and roster is None:
        raise click.UsageError(f"{ceremony} needs --roster: the admin quorum must approve it.")
    with CeremonyRun(op, ceremony, path, actor=kw["operator_name"], parameters=params) as run:
        if quorum and roster is not None:
            op.step("Admin quorum approval", ["each admin checks the parameters shown"])
            approval = {k: v for k, v in params.items()}
            quorum_cards.collect_admin_quorum(
                op, run, roster, ceremony, approval, allow_emulated=kw["allow_emulated"]
            )
        op.step("Log in to the appliance HSM")
        with open_keystore(op, hsm, purpose=ceremony) as keystore:
            run.record("hsm-opened", {"token": kw["token"]}, devices=[hsm_device(keystore)])
            op.step("Enter the backup", ["input is hidden; type each word carefully"])
            seed = recover_seed(op, run, kw["fmt"])
            fingerprint = master_fingerprint(seed).hex()
            op.table("Seed", [("master fingerprint", fingerprint)])
            run.record("seed-recovered", {"master_fingerprint": fingerprint})
            expected = kw["expect_fingerprint"]
            if expected and expected.lower() != fingerprint:
                raise FingerprintMismatch(expected.lower(), fingerprint)
            op.confirm(f"Is {fingerprint} the fingerprint recorded at seed generation?")
            _provision_step(op, run, keystore, seed, specs, kw["pool_size"], kw["export_dir"])
            run.wipe_secrets()
        op.step("Close the transcript")
        signers = quorum_cards.witness_signers(op, kw["witnesses"], roster, kw["allow_emulated"])
        run.finish({"master_fingerprint": fingerprint}, signers)
    op.ok("Ceremony complete. The seed has been wiped from memory.")


def recovery_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--from",
                "fmt",
                type=click.Choice(["bip39", "slip39"]),
                default="slip39",
                show_default=True,
                help="Backup format to type in.",
            ),
            click.option("--expect-fingerprint", default="", help="Master fingerprint (hex)."),
            click.option("--witnesses", default=0, show_default=True, type=click.IntRange(0, 16)),
        ]  # fmt: skip
    ):
        func = option(func)
    return func


@click.command("provision")
@common_options
@hsm_options
@pool_options
@recovery_options
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path))
def provision_cmd(**kw: Any) -> None:
    """Rebuild the seed from its backup and import the key pool (e.g. a new appliance HSM)."""
    _recovered_seed_ceremony(kw, "provision", quorum=False)


@click.command("extend-pool")
@common_options
@hsm_options
@pool_options
@recovery_options
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              required=True, help="Signed roster (roster.json + .approvals.json).")  # fmt: skip
def extend_pool(**kw: Any) -> None:
    """Grow the key pool to --pool-size (admin quorum; seed rebuilt from its shares)."""
    _recovered_seed_ceremony(kw, "extend-pool", quorum=True)


__all__ = ["extend_pool", "generate_seed", "provision_cmd"]

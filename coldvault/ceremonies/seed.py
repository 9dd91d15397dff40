"""``generate-seed``: a new seed from HSM + OS + dice entropy, its backup, and (by default)
the key pool imported in the same run, so the seed never leaves memory.

A token that already holds a key pool is refused before the dice
(:class:`~coldvault.ceremonies.provision.PoolExists`):
the one path to another seed on a live appliance is ``init-appliance --destroy-existing``
with the admin quorum.  Exports that would replace files are refused before the
transcript opens.

Steps: prepare the room (confirmed), log in to the HSM, enter the dice rolls, create the
seed and its backup (words shown and checked only for a paper backup), derive and import
the pool and write the public exports, close the transcript (witness cards sign it).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from coldvault.ceremonies.backup import BackupPlan, make_seed, read_dice
from coldvault.ceremonies.exports import check_exports_free
from coldvault.ceremonies.hardware import Cards, HsmToken, hsm_device, log_in, witness_signers
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import (
    MAX_WITNESSES,
    CeremonyParams,
    ParameterError,
    PoolParams,
    check_int,
    check_type,
)
from coldvault.ceremonies.provision import Provisioned, provision_pool, refuse_other_pool
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.keys.entropy import MIN_ROLLS
from coldvault.quorum.roster import Roster


@dataclass(frozen=True, kw_only=True)
class GenerateSeed(CeremonyParams):
    """Parameters of ``generate-seed``.

    Without a paper backup the keys could never be rebuilt, so ``no_backup`` must then be
    chosen explicitly (lab use).  ``provision`` False stops after the seed and its backup."""

    backup: BackupPlan
    no_backup: bool = False
    provision: bool = True
    pool: PoolParams = field(default_factory=PoolParams)
    witnesses: int = 0
    roster: Roster | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("backup", self.backup, BackupPlan)
        check_type("no_backup", self.no_backup, bool)
        check_type("provision", self.provision, bool)
        check_type("pool", self.pool, PoolParams)
        check_int("witnesses", self.witnesses, 0, MAX_WITNESSES)
        if self.roster is not None:
            check_type("roster", self.roster, Roster)
        if not self.backup.paper and not self.no_backup:
            raise ParameterError(
                "paper-backup",
                "Choose --paper-backup (words shown for writing down) or --no-backup (lab "
                "only): without a backup the keys could never be rebuilt.",
            )


@dataclass(frozen=True)
class SeedResult:
    """A completed ``generate-seed``: the seed's fingerprint and the pool, if provisioned."""

    closed: Closed
    master_fingerprint: str
    provisioned: Provisioned | None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": True,
            **self.closed.to_dict(),
            "master_fingerprint": self.master_fingerprint,
        }
        if self.provisioned is not None:
            record = self.provisioned.record
            data.update(
                imported=record.imported,
                already_present=record.already_present,
                keys=len(record.keys),
                files=sorted(self.provisioned.files),
            )
        return data


def generate_seed(
    op: Operator, params: GenerateSeed, token: HsmToken, cards: Cards | None = None
) -> SeedResult:
    """Run ``generate-seed``; ``cards`` is needed only for witnesses."""
    if params.witnesses and cards is None:
        raise ValueError("witness signatures need the cards")
    plan = params.backup
    parameters: dict[str, Any] = {
        "backup": plan.to_dict(),
        "provision": params.provision,
        **params.pool.to_dict(),
        "token": token.label,
    }
    if params.provision:
        check_exports_free(params.pool.specs, params.pool.export_dir)
    with CeremonyRun(op, "generate-seed", params, parameters=parameters) as run:
        op.step(
            "Prepare the room",
            [
                "the ceremony host has no network cable, Wi-Fi or Bluetooth",
                "only the named participants are present; cameras are covered",
                "the dice are casino-grade, six-sided, and rolled in view of the witnesses",
            ],
        )
        confirm_or_cancel(op, "Is the room prepared as listed?")
        run.record("room-checked", {"confirmed_by": params.actor})
        op.step("Log in to the appliance HSM")
        provisioned = None
        with closing(log_in(op, token, purpose="seed ceremony")) as session:
            run.record("hsm-opened", {"token": token.label}, devices=[hsm_device(session)])
            if params.provision:
                refuse_other_pool(session, token.label, None)
            op.step(
                "Enter the dice rolls",
                [f"at least {MIN_ROLLS} rolls, typed as digits 1-6; input is hidden"],
            )
            entropy = read_dice(op, run, session.random)
            op.step(
                "Create the seed and its backup",
                ["nobody but the operator can see the screen while words are shown"]
                if plan.paper
                else ["no words will be shown (no --paper-backup)"],
            )
            seed, fingerprint = make_seed(op, run, plan, entropy)
            op.table("Seed", [("master fingerprint", fingerprint)])
            run.record("seed-created", {"master_fingerprint": fingerprint, **plan.to_dict()})
            if params.no_backup and not plan.paper:
                op.warn("No backup was made: these keys cannot be rebuilt (lab use only).")
            if params.provision:
                provisioned = provision_pool(op, run, session, seed, params.pool)
            run.wipe_secrets()
        op.step("Close the transcript", ["witnesses read the final hash on screen"])
        signers = witness_signers(cards, params.witnesses, params.roster)
        closed = run.finish({"master_fingerprint": fingerprint}, signers)
    op.ok("Ceremony complete. The seed has been wiped from memory.")
    return SeedResult(closed, fingerprint, provisioned)


__all__ = ["GenerateSeed", "SeedResult", "generate_seed"]

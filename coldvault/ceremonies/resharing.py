"""``backup reshare``: replace a lost or departed custodian's share with a new share set of
the same seed, approved by the admin quorum, and retire the old set.

Steps (each in the transcript, public data only):

1. **check** -- the old record carries the admin quorum's signatures and belongs to the old
   plan; the old set is not already retired; the new plan has its own id (share keys are
   named by plan and target, so the new set never reuses a key the old one loses), passes
   the rules, and the new directory is empty;
2. **approve** -- the admin quorum signs the re-sharing (old record, new plan, who is lost);
3. **rebuild** -- the old set's surviving targets give their shares (each custodian types
   their own PIN) and the seed is rebuilt in memory and checked against the old record;
4. **new set** -- the ceremony backup's own steps for the new plan: enrol, split, seal,
   write, read every share back, the admin quorum signs the new record;
5. **retire** -- ``retired-sets.json`` in both directories names the old set as retired
   (replaced by the new one); then the old set is wiped where reachable: the share key of
   each reachable old token target is destroyed in its token (its blob is useless
   without it) and every old sealed blob in the old directory is deleted.  A card's
   decryption key is not touched (the card may hold the new set's share with the same
   key); the old card blob is deleted instead.  Targets of lost sites or custodians are
   named as unreachable: their envelopes are to be destroyed where they are.

Nothing of the old set is wiped before the new set is written, read back and signed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.backup.approvals import RECORD_KIND, verify_signed
from coldvault.backup.drill import DrillScenario, rebuild_seed, surviving
from coldvault.backup.history import RetiredSet, read_retired, write_retired
from coldvault.backup.plan import Plan, TargetKind
from coldvault.backup.record import BackupRecord, parse_record
from coldvault.backup.targets import share_key_id
from coldvault.ceremonies.devices import ShareDevices, open_token
from coldvault.ceremonies.drill import ConsoleShareAccess
from coldvault.ceremonies.hardware import Cards, witness_signers
from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.params import ParameterError, check_type
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.ceremonies.sharding import (
    RECORD_FILE,
    ShardBackup,
    blob_path,
    check_new_backup,
    load_backup,
    write_backup,
)
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import ColdvaultError, InputError


class SetAlreadyRetired(InputError):
    """The backup to re-share from is a retired set already."""

    code = "backup-set-retired"

    def __init__(self, set_id: int, detail: str) -> None:
        super().__init__(
            f"Share set {set_id} is a retired set ({detail}): re-share from the backup that "
            "replaced it."
        )
        self.set_id = set_id


@dataclass(frozen=True, kw_only=True)
class ReshareBackup(ShardBackup):
    """Parameters of ``backup reshare``: the new plan and directory (as for ``ceremony
    backup``), the old plan and backup directory, and who or what is lost (the departed
    custodian, a lost site).  The roster is required: its admins approve."""

    old_plan: Plan
    old_dir: Path
    lost: DrillScenario

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("old_plan", self.old_plan, Plan)
        check_type("old_dir", self.old_dir, Path)
        check_type("lost", self.lost, DrillScenario)
        if self.roster is None:
            raise ParameterError("roster", "a re-sharing is approved by the roster's admins.")
        if self.plan.id == self.old_plan.id:
            raise ParameterError(
                "plan", f"the new plan needs its own id (not {self.plan.id!r}): the old set's "
                "share keys are destroyed, the new set's must not be the same keys.",
            )  # fmt: skip
        if not (self.lost.lost_sites or self.lost.lost_custodians):
            raise ParameterError("lost", "name the lost custodian(s) or site(s).")


@dataclass(frozen=True)
class ReshareResult:
    closed: Closed
    record: BackupRecord
    record_path: Path
    retired: RetiredSet

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "plan": self.record.plan_id,
            "share_set": self.record.share_set.identifier,
            "record": str(self.record_path),
            "record_sha256": self.record.sha256,
            "retired": self.retired.to_dict(),
        }


def _wipe_old(
    op: Operator,
    run: CeremonyRun,
    params: ReshareBackup,
    old: BackupRecord,
    devices: ShareDevices,
) -> dict[str, str]:
    """Wipe the old set where reachable; returns target -> what was done."""
    plan = params.old_plan
    reachable = set(t.id for t in surviving(plan, params.lost))
    wiped: dict[str, str] = {}
    for target in plan.targets:
        states = []
        if target.id not in reachable:
            states.append("unreachable (lost): destroy its envelope where it is")
        elif target.kind is TargetKind.HSM:
            try:
                with open_token(op, devices, target) as token:
                    token.delete(share_key_id(plan.id, target.id))
                states.append("share key destroyed in the token")
            except ColdvaultError as exc:
                states.append(f"share key NOT destroyed: {exc.message}")
                op.error(f"{target.id} at {target.site}: {exc.message}")
        path = blob_path(params.old_dir, target)
        if path.is_file():
            path.unlink()
            states.append("sealed blob deleted")
        elif target.kind is TargetKind.PAPER and target.id in reachable:
            states.append("paper sheet: its keeper destroys it")
        wiped[target.id] = "; ".join(states) or "nothing stored here"
        run.record("old-target-wiped", {"target": target.id, "site": target.site,
                                        "state": wiped[target.id]})  # fmt: skip
        op.info(f"{target.id} at {target.site} (set {old.share_set.identifier}): "
                f"{wiped[target.id]}.")  # fmt: skip
    return wiped


def reshare_backup(
    op: Operator, params: ReshareBackup, devices: ShareDevices, cards: Cards
) -> ReshareResult:
    """Run ``backup reshare`` (see the module docstring)."""
    roster = params.roster
    if roster is None:  # checked by the parameters
        raise ValueError("a re-sharing needs the roster")
    old_bytes, old_blobs = load_backup(params.old_dir)
    old = parse_record(old_bytes)
    parameters: dict[str, Any] = {
        "old_plan": params.old_plan.id,
        "old_record_sha256": old.sha256,
        "old_set_identifier": old.share_set.identifier,
        "lost": params.lost.to_dict(),
        "plan": params.plan.id,
        "plan_sha256": params.plan.sha256,
        "out": str(params.out),
        "passphrase_set": params.use_passphrase,
    }
    with CeremonyRun(op, "backup-reshare", params, parameters=parameters) as run:
        op.step("Check the old backup", ["its record carries the admin quorum's signatures"])
        signers = verify_signed(params.old_dir / RECORD_FILE, RECORD_KIND, roster)
        if (old.plan_id, old.plan_sha256) != (params.old_plan.id, params.old_plan.sha256):
            raise ParameterError("old-plan", f"the old backup was written for plan "
                                 f"{old.plan_id!r}, not for {params.old_plan.id!r}.")  # fmt: skip
        if not os.access(params.old_dir, os.W_OK):
            raise ParameterError("old", f"the old backup directory {params.old_dir} is not "
                                 "writable: its retirement is recorded there.")  # fmt: skip
        earlier = read_retired(params.old_dir)
        for retired in earlier:
            if retired.share_set == old.share_set.identifier:
                raise SetAlreadyRetired(retired.share_set, retired.detail)
        run.record("old-record-verified", {"record_sha256": old.sha256,
                                           "signed_by": [a.card_serial for a in signers]})
        op.table("Old backup", [("plan", old.plan_id), ("share set", str(old.share_set.identifier)),
                                ("record SHA-256", old.sha256),
                                ("master fingerprint", old.master_fingerprint)])  # fmt: skip
        check_new_backup(op, run, params)

        op.step("The admin quorum approves the re-sharing",
                [f"lost: {', '.join(sorted(params.lost.lost_custodians | params.lost.lost_sites))}",
                 f"the old set {old.share_set.identifier} will be retired and wiped"])  # fmt: skip
        cards.ceremony_quorum(run, roster, "backup-reshare", parameters)

        op.step("Rebuild the seed from the old set's surviving targets")
        passphrase = ""
        if old.passphrase_protected:
            passphrase = op.secret("SLIP-39 passphrase of the old set")
        access = ConsoleShareAccess(op, devices, params.old_plan.id)
        seed, outcomes = rebuild_seed(params.old_plan, old, params.lost, old_blobs, access,
                                      passphrase=passphrase,
                                      retired={r.share_set: r.detail for r in earlier})  # fmt: skip
        del passphrase
        seed = run.secret(seed)
        run.record("seed-rebuilt", {"master_fingerprint": old.master_fingerprint,
                                    "used": [o.target for o in outcomes if o.status == "used"]})
        op.ok(f"Seed rebuilt from the old set: fingerprint {old.master_fingerprint}.")

        op.step("Write the new share set", [f"plan {params.plan.id}"])
        record, record_path, _paths = write_backup(
            op, run, params, devices, cards, seed, master_fingerprint(seed)
        )

        op.step("Retire and wipe the old set", ["nothing of it is used again"])
        retired = RetiredSet(
            share_set=old.share_set.identifier, record_sha256=old.sha256,
            master_fingerprint=old.master_fingerprint, retired_at=int(time.time()),
            replaced_by_set=record.share_set.identifier, replaced_by_record=record.sha256,
            lost=params.lost.to_dict(), wiped={},
        )  # fmt: skip
        write_retired(params.old_dir, (*earlier, retired))
        write_retired(params.out, (*earlier, retired))
        run.record("old-set-retired", {
            "set_identifier": old.share_set.identifier, "record_sha256": old.sha256,
            "replaced_by_set_identifier": record.share_set.identifier,
            "replaced_by_record_sha256": record.sha256,
        })  # fmt: skip
        wiped = _wipe_old(op, run, params, old, devices)
        retired = RetiredSet(**{**retired.__dict__, "wiped": wiped})
        write_retired(params.old_dir, (*earlier, retired))
        write_retired(params.out, (*earlier, retired))
        op.ok(f"Share set {old.share_set.identifier} is retired; set "
              f"{record.share_set.identifier} replaces it.")  # fmt: skip
        witnesses = witness_signers(cards, params.witnesses, roster)
        closed = run.finish(
            {"record_sha256": record.sha256, "retired_set": old.share_set.identifier}, witnesses
        )
    return ReshareResult(closed, record, record_path, retired)


__all__ = ["ReshareBackup", "ReshareResult", "SetAlreadyRetired", "reshare_backup"]

"""``provision`` and ``extend-pool``: rebuild the seed from its typed backup and import the
key pool into the appliance HSM; and the pool step ``generate-seed`` shares with them.

``extend-pool`` is ``provision`` with a larger pool, approved first by the admin quorum of
the signed roster (each admin card signs the ceremony approval token of this run).  Keys
already on the token must match the derivation and are counted as already present, so a
re-run is safe.
"""

from __future__ import annotations

import re
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault.ceremonies.backup import BackupFormat, recover_seed
from coldvault.ceremonies.exports import check_exports_free, write_exports
from coldvault.ceremonies.hardware import (
    Cards,
    HsmSession,
    HsmToken,
    hsm_device,
    log_in,
    witness_signers,
)
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import (
    MAX_WITNESSES,
    CeremonyParams,
    ParameterError,
    PoolParams,
    check_int,
    check_type,
)
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import IntegrityError, Refused
from coldvault.keys.pool import (
    PoolKey,
    ProvisioningRecord,
    pool_seeds,
    provision,
    roll_back,
    ur_account,
    ur_output,
)
from coldvault.quorum.roster import Roster

_FINGERPRINT = re.compile(r"[0-9a-f]{8}")


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


class PoolExists(Refused):
    """The token already holds the key pool of another seed (or, for ``generate-seed``,
    of any seed): a second seed is never imported next to it."""

    code = "pool-exists"

    def __init__(self, token: str, seeds: dict[str, int]) -> None:
        held = ", ".join(f"{count} keys of seed {fp}" for fp, count in sorted(seeds.items()))
        super().__init__(
            f"Token {token} already holds a key pool ({held}); nothing was imported. Grow "
            "that pool with extend-pool, or start the appliance over with init-appliance "
            "--destroy-existing approved by the admin quorum."
        )
        self.token = token
        self.seeds = dict(seeds)


class ImportRolledBack(Refused):
    """An import failed part-way and the keys it had made were deleted again, but some
    could not be: their labels are named (and recorded in the transcript)."""

    code = "import-not-rolled-back"

    def __init__(self, left: list[str]) -> None:
        super().__init__(
            f"The key import was interrupted and {len(left)} of its keys could not be "
            f"deleted from the HSM: {', '.join(left)}. Delete them before the next run."
        )
        self.left = list(left)


def refuse_other_pool(session: HsmSession, token: str, fingerprint: str | None) -> None:
    """Refuse a token holding derived keys of a seed other than ``fingerprint`` (of any
    seed when ``fingerprint`` is None): :class:`PoolExists`."""
    seeds = pool_seeds(session.list_keys())
    other = {fp: n for fp, n in seeds.items() if fp != fingerprint}
    if other:
        raise PoolExists(token, seeds)


@dataclass(frozen=True, kw_only=True)
class RecoverPool(CeremonyParams):
    """Parameters of ``provision`` and ``extend-pool``.

    ``expect_fingerprint`` (8 hex digits, or empty) refuses a backup of another seed before
    any key is imported; ``roster`` is the signed roster whose admins approve
    ``extend-pool`` and whose active cards may witness; ``witnesses`` cards sign the
    closed transcript."""

    pool: PoolParams = field(default_factory=PoolParams)
    backup: BackupFormat = BackupFormat.SLIP39
    expect_fingerprint: str = ""
    witnesses: int = 0
    roster: Roster | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("pool", self.pool, PoolParams)
        check_type("backup", self.backup, BackupFormat)
        check_type("expect_fingerprint", self.expect_fingerprint, str)
        check_int("witnesses", self.witnesses, 0, MAX_WITNESSES)
        if self.roster is not None:
            check_type("roster", self.roster, Roster)
        expected = self.expect_fingerprint.strip().lower()
        if expected and not _FINGERPRINT.fullmatch(expected):
            raise ParameterError(
                "expect-fingerprint",
                "--expect-fingerprint must be a master fingerprint: 8 hex digits.",
            )
        object.__setattr__(self, "expect_fingerprint", expected)


@dataclass(frozen=True)
class PoolResult:
    """A provisioning run: the seed's fingerprint, what was imported, the exports."""

    closed: Closed
    master_fingerprint: str
    imported: int
    already_present: int
    keys: int
    export_dir: Path
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "master_fingerprint": self.master_fingerprint,
            "imported": self.imported,
            "already_present": self.already_present,
            "keys": self.keys,
            "export_dir": str(self.export_dir),
            "files": list(self.files),
        }


@dataclass(frozen=True)
class Provisioned:
    """What :func:`provision_pool` did (public facts)."""

    record: ProvisioningRecord
    files: dict[str, str]  # export file name -> SHA-256 hex


def provision_pool(
    op: Operator, run: CeremonyRun, session: HsmSession, seed: bytearray, pool: PoolParams
) -> Provisioned:
    """Steps "Derive and import the keys" and "Write the public exports".

    All or nothing up to the exports: if the import or the exports fail or are interrupted
    (Ctrl-C), the keys this run imported are deleted from the token again and the
    transcript records it (``import-rolled-back``); keys that were already there stay."""
    check_exports_free(pool.specs, pool.export_dir)
    total = pool.key_count
    op.step(
        f"Derive and import {total} keys into the HSM",
        ["the HSM activity light shows work; no other device is connected"],
    )
    imported: list[PoolKey] = []
    try:
        return _import_and_export(op, run, session, seed, pool, imported)
    except BaseException:
        _roll_back(op, run, session, imported)
        raise


def _roll_back(op: Operator, run: CeremonyRun, session: HsmSession, keys: list[PoolKey]) -> None:
    if not keys:
        return
    op.warn(f"The import did not complete: deleting the {len(keys)} key(s) it made.")
    left = roll_back(session, keys)
    run.record(
        "import-rolled-back",
        {"imported": len(keys), "deleted": len(keys) - len(left), "left": left},
        devices=[hsm_device(session)],
    )
    if left:
        raise ImportRolledBack(left)
    op.ok(f"{len(keys)} key(s) of the interrupted import deleted; the token is as before.")


def _import_and_export(
    op: Operator,
    run: CeremonyRun,
    session: HsmSession,
    seed: bytearray,
    pool: PoolParams,
    imported: list[PoolKey],
) -> Provisioned:
    total = pool.key_count
    op.progress(0, total)
    try:
        record = provision(
            session, seed, pool.specs, pool.pool_size, progress=op.progress, imported=imported
        )
    finally:
        op.progress(total, total)
    op.ok(f"{record.imported} keys imported, {record.already_present} already present.")
    run.record(
        "keys-imported",
        {
            "master_fingerprint": record.master_fingerprint.hex(),
            "pool_size": pool.pool_size,
            "imported": record.imported,
            "already_present": record.already_present,
            "key_count": len(record.keys),
            "first_label": record.keys[0].label if record.keys else "",
            "last_label": record.keys[-1].label if record.keys else "",
        },
        devices=[hsm_device(session)],
    )
    op.step("Write the public exports", [f"the export directory is {pool.export_dir}"])
    files = write_exports(record, pool.export_dir)
    accounts = [{**a.to_dict(), "ur_output": ur_output(a) or ""} for a in record.accounts]
    run.record(
        "exports-written",
        {
            "accounts": accounts,
            "ur_account": ur_account(record.accounts) or "",
            "files": files,
            "dir": str(pool.export_dir),
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
    return Provisioned(record, files)


def provision_from_backup(
    op: Operator, params: RecoverPool, token: HsmToken, cards: Cards | None = None
) -> PoolResult:
    """``provision``: rebuild the seed from its backup and import the key pool (e.g. a
    new or replacement appliance HSM).  ``cards`` is needed only for witnesses."""
    return _recovered(op, params, token, cards, "provision", quorum=False)


def extend_pool(op: Operator, params: RecoverPool, token: HsmToken, cards: Cards) -> PoolResult:
    """``extend-pool``: the admin quorum approves, then as :func:`provision_from_backup`."""
    if params.roster is None:
        raise ParameterError(
            "roster", "extend-pool needs --roster: the admin quorum must approve it."
        )
    return _recovered(op, params, token, cards, "extend-pool", quorum=True)


def _recovered(
    op: Operator,
    params: RecoverPool,
    token: HsmToken,
    cards: Cards | None,
    ceremony: str,
    *,
    quorum: bool,
) -> PoolResult:
    if cards is None and (quorum or params.witnesses):
        raise ValueError(f"{ceremony} with approvals or witnesses needs the cards")
    parameters: dict[str, Any] = {
        "backup_format": str(params.backup),
        **params.pool.to_dict(),
        "token": token.label,
        "expected_fingerprint": params.expect_fingerprint,
    }
    check_exports_free(params.pool.specs, params.pool.export_dir)
    with CeremonyRun(op, ceremony, params, parameters=parameters) as run:
        if quorum and params.roster is not None and cards is not None:
            op.step("Admin quorum approval", ["each admin checks the parameters shown"])
            cards.ceremony_quorum(run, params.roster, ceremony, dict(parameters))
        op.step("Log in to the appliance HSM")
        with closing(log_in(op, token, purpose=ceremony)) as session:
            run.record("hsm-opened", {"token": token.label}, devices=[hsm_device(session)])
            op.step("Enter the backup", ["input is hidden; type each word carefully"])
            seed = recover_seed(op, run, params.backup)
            fingerprint = master_fingerprint(seed).hex()
            op.table("Seed", [("master fingerprint", fingerprint)])
            run.record("seed-recovered", {"master_fingerprint": fingerprint})
            expected = params.expect_fingerprint
            if expected and expected != fingerprint:
                raise FingerprintMismatch(expected, fingerprint)
            refuse_other_pool(session, token.label, fingerprint)
            confirm_or_cancel(op, f"Is {fingerprint} the fingerprint recorded at seed generation?")
            done = provision_pool(op, run, session, seed, params.pool)
            run.wipe_secrets()
        op.step("Close the transcript")
        signers = witness_signers(cards, params.witnesses, params.roster)
        closed = run.finish({"master_fingerprint": fingerprint}, signers)
    op.ok("Ceremony complete. The seed has been wiped from memory.")
    return pool_result(closed, done, params.pool)


def pool_result(closed: Closed, done: Provisioned, pool: PoolParams) -> PoolResult:
    record = done.record
    return PoolResult(
        closed,
        record.master_fingerprint.hex(),
        record.imported,
        record.already_present,
        len(record.keys),
        pool.export_dir,
        tuple(sorted(done.files)),
    )


__all__ = [
    "FingerprintMismatch",
    "ImportRolledBack",
    "PoolExists",
    "PoolResult",
    "Provisioned",
    "RecoverPool",
    "extend_pool",
    "pool_result",
    "provision_from_backup",
    "provision_pool",
    "refuse_other_pool",
]

"""``ceremony backup``: shard the seed to an approved backup plan, seal every share to its
target, read every share back, and write the public backup record.

Steps (each in the transcript, public data only):

1. **plan** -- the plan passes :func:`~coldvault.backup.check_plan` with the ceremony's
   bounds; the output directory holds no earlier backup (an interrupted one is named, with
   the targets that hold its shares, and refused: its share set can never be completed);
2. **seed** -- typed SLIP-39 shares (or a BIP-39 mnemonic) of the existing seed, or a new
   seed from dice + the first backup token's random generator + the OS;
3. **enrol** -- each token target: its operator types the token's user PIN and the share
   key is generated inside the token (or found again); each card target: its holder types
   the admin PIN and the decryption key is generated on the card (or an existing one kept);
4. **seal and write** -- :func:`~coldvault.backup.split_for_plan` and
   :func:`~coldvault.backup.seal_backup`; the record is written first, then each blob
   into its site's envelope directory (``<out>/<site>/<target>.sealed``), never over an
   existing file; ``progress.json`` says after every file which targets hold a share;
   paper targets are shown one share at a time and checked;
5. **read back** -- every token and card share is opened through its own device
   (:func:`~coldvault.backup.open_share`: decrypt, checksum, set, group and member), and
   the shares read combine in memory to the seed's master fingerprint;
6. **sign** -- with a roster, the admin quorum's cards sign the record
   (:mod:`coldvault.backup.approvals`; ``backup-record.json.approvals.json``);
7. **close** -- ``progress.json`` says ``complete``; witnesses sign the transcript.

Nothing secret reaches the disk: blobs are sealed, the record and the progress file are
public metadata.  The seed and every share are wiped however the run ends.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault import schema
from coldvault.backup.approvals import RECORD_KIND, unsigned, verify_signed, with_approvals
from coldvault.backup.check import DEFAULT_COLLUSION, DEFAULT_SURVIVE, check_plan
from coldvault.backup.envelope import Recipient
from coldvault.backup.plan import Plan, Target, TargetKind
from coldvault.backup.record import BackupRecord, open_share, seal_backup
from coldvault.backup.shares import ShareFacts, combine, share_facts, split_for_plan
from coldvault.backup.targets import enrol_card, enrol_hsm
from coldvault.cards.openpgp import Pw
from coldvault.ceremonies.backup import (
    BackupFormat,
    check_words,
    read_dice,
    recover_seed,
    show_words,
)
from coldvault.ceremonies.devices import (
    ShareDevices,
    card_prompt,
    check_card,
    open_target,
    open_token,
    verify_card_pin,
)
from coldvault.ceremonies.hardware import Cards, card_device, witness_signers
from coldvault.ceremonies.operator import Operator, confirm_or_cancel, new_pin
from coldvault.ceremonies.params import (
    MAX_WITNESSES,
    CeremonyParams,
    ParameterError,
    check_int,
    check_type,
)
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.crypto import wipe
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import ColdvaultError, InputError
from coldvault.quorum.approvals import Approval
from coldvault.quorum.documents import write_signed_document
from coldvault.quorum.roster import Roster

RECORD_FILE = "backup-record.json"
PROGRESS_FILE = "progress.json"
PROGRESS_FORMAT = "coldvault-backup-progress/1"


class BackupOutputExists(InputError):
    """The output directory already holds a backup (complete or interrupted)."""

    code = "backup-output-exists"

    def __init__(self, out: Path, detail: str) -> None:
        super().__init__(f"The backup directory {out} is not empty: {detail}")
        self.out = str(out)
        self.detail = detail


class ReadBackFailed(InputError):
    """A share just written could not be read back and verified through its target."""

    code = "backup-read-back-failed"

    def __init__(self, target: str, site: str, reason: str) -> None:
        super().__init__(
            f"The share of target {target!r} at {site!r} did not read back: {reason} The "
            "backup is not complete; progress.json names what was written."
        )
        self.target = target
        self.site = site
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class ShardBackup(CeremonyParams):
    """Parameters of ``ceremony backup``.

    ``source`` is how the seed comes in: ``generate`` (dice + token + OS randomness),
    ``slip39`` or ``bip39`` (typed).  ``out`` is the backup directory (record, progress,
    one envelope directory per site).  ``passphrase`` is SLIP-39's, asked for (hidden)
    when ``use_passphrase``.  With ``roster``, the admin quorum of that roster signs the
    record (and witnesses must be active cards of it)."""

    plan: Plan
    out: Path
    source: str = "slip39"
    use_passphrase: bool = False
    expect_fingerprint: str = ""
    collusion: int = DEFAULT_COLLUSION
    survive: int = DEFAULT_SURVIVE
    witnesses: int = 0
    roster: Roster | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("plan", self.plan, Plan)
        check_type("out", self.out, Path)
        check_type("use_passphrase", self.use_passphrase, bool)
        if self.source not in ("generate", "slip39", "bip39"):
            raise ParameterError("source", "--seed must be generate, slip39 or bip39.")
        check_int("collusion", self.collusion, 1, 32)
        check_int("survive", self.survive, 0, 16)
        check_int("witnesses", self.witnesses, 0, MAX_WITNESSES)
        fp = self.expect_fingerprint
        if fp and (len(fp) != 8 or any(c not in "0123456789abcdef" for c in fp)):
            raise ParameterError("expect-fingerprint", "must be 8 lower-case hex digits.")


@dataclass(frozen=True)
class BackupResult:
    """A completed backup: the transcript, the record and where each blob went."""

    closed: Closed
    record: BackupRecord
    record_path: Path
    blobs: dict[str, Path]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "plan": self.record.plan_id,
            "share_set": self.record.share_set.identifier,
            "master_fingerprint": self.record.master_fingerprint,
            "record": str(self.record_path),
            "record_sha256": self.record.sha256,
            "blobs": {k: str(v) for k, v in sorted(self.blobs.items())},
        }


# -- the output directory ---------------------------------------------------------------------
def blob_path(out: Path, target: Target) -> Path:
    return out / target.site / f"{target.id}.sealed"


def _write_new(path: Path, data: bytes) -> None:
    """Write a new file (refuses to overwrite), flushed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _check_empty(out: Path) -> None:
    progress = out / PROGRESS_FILE
    if progress.is_file():
        try:
            data = schema.parse_json(progress.read_bytes())  # bounded nesting
            holders = [t for t, s in data.get("targets", {}).items() if s != "pending"]
            detail = (
                f"a backup of plan {data.get('plan')!r} (share set {data.get('share_set')}) is "
                f"{data.get('status')}; targets holding its shares: "
                f"{', '.join(sorted(holders)) or 'none'}."
            )
        except (OSError, ValueError, AttributeError):
            detail = f"{PROGRESS_FILE} is unreadable."
        raise BackupOutputExists(
            out,
            detail + " A backup is never resumed into another share set: keep or retire "
            "that directory and write the new backup into an empty one.",
        )
    if out.exists() and any(out.iterdir()):
        raise BackupOutputExists(out, "choose an empty or new directory.")


class _Progress:
    """``progress.json``: public, rewritten after every file (atomic replace)."""

    def __init__(self, out: Path, record: BackupRecord) -> None:
        self.path = out / PROGRESS_FILE
        self.data: dict[str, Any] = {
            "format": PROGRESS_FORMAT,
            "plan": record.plan_id,
            "share_set": record.share_set.identifier,
            "record_sha256": record.sha256,
            "status": "in-progress",
            "targets": {e.target: "pending" for e in record.entries},
        }
        self.save()

    def mark(self, target: str, state: str) -> None:
        self.data["targets"][target] = state
        self.save()

    def done(self) -> None:
        self.data["status"] = "complete"
        self.save()

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


def _record_summary(record: BackupRecord) -> dict[str, Any]:
    """The transcript's copy of the record: which target at which site holds which share."""
    return {
        "record_sha256": record.sha256,
        "plan": record.plan_id,
        "plan_sha256": record.plan_sha256,
        "set_identifier": record.share_set.identifier,
        "master_fingerprint": record.master_fingerprint,
        "entries": [
            {"target": e.target, "site": e.site, "kind": e.kind.value, "group": e.group,
             "member": e.member, "blob_sha256": e.blob_sha256}
            for e in record.entries
        ],
    }  # fmt: skip


# -- admin signatures -------------------------------------------------------------------------
def admin_sign_file(
    op: Operator,
    run: CeremonyRun,
    cards: Cards | None,
    roster: Roster,
    path: Path,
    kind: str,
    *,
    what: str,
) -> tuple[Approval, ...]:
    """The admin quorum of ``roster`` signs the file at ``path`` (a backup record or a
    drill report, :mod:`coldvault.backup.approvals`); the approvals are written beside it
    and read back through the verifier's own check."""
    if cards is None:
        raise ValueError("admin signatures need the cards")
    doc = unsigned(kind, path.read_bytes(), roster)
    digest = doc.sha256.hex()
    op.step(
        f"The admin quorum signs the {what}",
        [f"{roster.admin_threshold} distinct admins of roster version {roster.version}",
         f"each admin reads the SHA-256 {digest[:16]}... on screen before typing the PIN"],
    )  # fmt: skip
    op.info(f"SHA-256 {digest}")
    approvals = cards.admin_signatures(run, roster, doc.token, what=f"the signatures of the {what}")
    write_signed_document(path, with_approvals(doc, approvals, roster))
    verify_signed(path, kind, roster)
    run.record(
        f"{kind}-signed",
        {"file": path.name, "sha256": digest, "signed_by": [a.card_serial for a in approvals]},
    )
    op.ok(f"The {what} is signed by {', '.join(a.holder for a in approvals)}.")
    return approvals


# -- steps ------------------------------------------------------------------------------------
def _get_seed(
    op: Operator, run: CeremonyRun, params: ShardBackup, devices: ShareDevices
) -> bytearray:
    if params.source != "generate":
        return recover_seed(op, run, BackupFormat(params.source))
    first = next((t for t in params.plan.targets if t.kind is TargetKind.HSM), None)
    if first is None:
        raise ParameterError("seed", "generating a seed needs an HSM target for its randomness.")
    op.info(f"The random generator of token {first.label} is mixed into the dice entropy.")
    with open_token(op, devices, first) as token:
        entropy = read_dice(op, run, token.random)
    return entropy


def _enrol(
    op: Operator, run: CeremonyRun, plan: Plan, devices: ShareDevices
) -> dict[str, Recipient]:
    recipients: dict[str, Recipient] = {}
    for target in plan.targets:
        if target.kind is TargetKind.HSM:
            with open_token(op, devices, target) as token:
                recipients[target.id] = enrol_hsm(token, plan.id, target)
            device = {"kind": "hsm", "label": target.label, "serial": target.serial}
        elif target.kind is TargetKind.CARD:
            with devices.card(target.card, card_prompt(target, "enrolment")) as (session, card_id):
                check_card(target, card_id)
                verify_card_pin(op, session, target.card, Pw.ADMIN)
                recipients[target.id] = enrol_card(session, target)
            device = {"kind": "card", "card": target.card}
        else:
            continue
        binding = recipients[target.id].binding()
        run.record(
            "target-enrolled",
            {"target": target.id, "site": target.site, "custodians": list(target.custodians),
             **device,
             "key_sha256": binding.get("key_sha256", "")},
        )  # fmt: skip
        op.ok(f"{target.id} at {target.site}: share key ready.")
    return recipients


def paper_sheet_heading(target: Target, facts: ShareFacts) -> str:
    """The heading of a custodian's paper share sheet: whose it is, where it is kept, and
    the share's place in the set, all public; the words follow, and nothing of any other
    share.  The last three words are the share's RS1024 checksum."""
    return (
        f"Paper share sheet {target.id}, kept by {target.custodians[0]} at {target.site}: "
        f"share set {facts.identifier}, group {facts.group + 1} of {facts.group_count} "
        f"({facts.group_threshold} groups needed), member {facts.member + 1} "
        f"({facts.member_threshold} of the group needed); the last 3 words are its checksum"
    )


def _read_back(
    op: Operator,
    run: CeremonyRun,
    plan: Plan,
    record: BackupRecord,
    blobs: dict[str, bytes],
    devices: ShareDevices,
    progress: _Progress,
    passphrase: str,
) -> None:
    read: list[bytearray] = []
    try:
        for target in plan.targets:
            if target.kind is TargetKind.PAPER:
                continue
            try:
                with open_target(op, devices, plan.id, target, "the read-back") as device:
                    read.append(run.secret(open_share(record, target.id, blobs[target.id], device)))
            except ColdvaultError as exc:
                raise ReadBackFailed(target.id, target.site, exc.message) from None
            progress.mark(target.id, "verified")
            run.record("share-read-back", {"target": target.id, "site": target.site})
            op.ok(f"{target.id} at {target.site}: share decrypted, checksum and set verified.")
        if read:
            secret = run.secret(combine(read, passphrase))
            rebuilt = master_fingerprint(secret).hex()
            wipe(secret)
            if rebuilt != record.master_fingerprint:
                raise ReadBackFailed("(all)", "(all)", "the shares combine to another seed.")
            run.record("trial-combine", {"master_fingerprint": rebuilt, "count": len(read)})
            op.ok(f"Trial combine of the shares read back: fingerprint {rebuilt} matches.")
    finally:
        for buf in read:
            wipe(buf)


def check_new_backup(op: Operator, run: CeremonyRun, params: ShardBackup) -> None:
    """The plan passes the ceremony's bounds and the output directory holds no backup."""
    plan, out = params.plan, params.out
    op.step(
        "Check the plan and the backup directory",
        ["the plan is the one the admin quorum approved (its SHA-256 below)"],
    )
    op.table("Plan", [("id", plan.id), ("SHA-256", plan.sha256)])
    verdict = check_plan(plan, collusion=params.collusion, survive=params.survive)
    if not verdict.ok:
        raise ParameterError("plan", "the plan is refused: " + " ".join(verdict.reasons))
    _check_empty(out)
    run.record("plan-checked", {"plan": plan.id, "plan_sha256": plan.sha256})
    confirm_or_cancel(op, "Is this the approved plan, and is the room prepared?")


def write_backup(
    op: Operator,
    run: CeremonyRun,
    params: ShardBackup,
    devices: ShareDevices,
    cards: Cards | None,
    seed: bytearray,
    fingerprint: bytes,
) -> tuple[BackupRecord, Path, dict[str, Path]]:
    """Steps 3 to 6 for ``seed`` (wiped here): enrol, split, seal and write, read every
    share back, the admin quorum signs the record (with a roster); ``progress.json`` then
    says ``complete``.  Returns the record, its file and each blob's file."""
    plan, out = params.plan, params.out
    passphrase = ""
    if params.use_passphrase:
        # typed twice: a typo would be sealed into every share and pass the read-back
        passphrase = new_pin(op, "Passphrase of the shares (SLIP-39)", min_length=1)

    op.step("Enrol the targets", ["each custodian types their own PIN"])
    recipients = _enrol(op, run, plan, devices)

    op.step("Split, seal and write the shares")
    shares = split_for_plan(plan, seed, passphrase)
    try:
        record, blobs = seal_backup(
            shares,
            recipients,
            master_fingerprint=fingerprint,
            passphrase_protected=bool(passphrase),
        )
        out.mkdir(parents=True, exist_ok=True)
        progress = _Progress(out, record)
        record_path = out / RECORD_FILE
        _write_new(record_path, record.to_json())
        run.record("record-written", _record_summary(record))
        paths: dict[str, Path] = {}
        for target in plan.targets:
            if target.kind is TargetKind.PAPER:
                words = shares.words(target.id)
                try:
                    text = bytes(words).decode().split()
                    title = f"the share of {target.id} ({target.site})"
                    heading = paper_sheet_heading(target, share_facts(words))
                    show_words(op, run, title, text, heading=heading)
                    check_words(op, title, text)
                    text.clear()
                finally:
                    wipe(words)
                progress.mark(target.id, "shown")
                run.record("paper-share-shown", {"target": target.id, "site": target.site,
                                                 "custodians": list(target.custodians)})
                continue
            path = blob_path(out, target)
            _write_new(path, blobs[target.id])
            paths[target.id] = path
            progress.mark(target.id, "written")
            run.record(
                "share-written",
                {"target": target.id, "site": target.site, "file": str(path),
                 "blob_sha256": record.entry(target.id).blob_sha256},
                devices=[card_device(target.card)] if target.kind is TargetKind.CARD else (),
            )  # fmt: skip
            op.ok(f"{target.id} at {target.site}: sealed share written to {path}.")
    finally:
        shares.wipe()
    wipe(seed)

    op.step("Read every share back through its own target")
    _read_back(op, run, plan, record, blobs, devices, progress, passphrase)
    del passphrase
    run.wipe_secrets()
    if params.roster is not None:
        admin_sign_file(
            op, run, cards, params.roster, record_path, RECORD_KIND, what="backup record"
        )
    progress.done()
    return record, record_path, paths


def shard_backup(
    op: Operator, params: ShardBackup, devices: ShareDevices, cards: Cards | None = None
) -> BackupResult:
    """Run ``ceremony backup`` (see the module docstring); ``cards`` for the admin
    signatures (with a roster) and the witnesses."""
    plan, out = params.plan, params.out
    if params.roster is not None and cards is None:
        raise ValueError("signing the record with the roster's admin quorum needs the cards")
    parameters: dict[str, Any] = {
        "plan": plan.id,
        "plan_sha256": plan.sha256,
        "out": str(out),
        "origin": params.source,
        "passphrase_set": params.use_passphrase,
        "collusion": params.collusion,
        "survive": params.survive,
    }
    with CeremonyRun(op, "backup", params, parameters=parameters) as run:
        check_new_backup(op, run, params)

        op.step("Bring in the seed", ["input is hidden; nobody else can see the screen"])
        seed = run.secret(_get_seed(op, run, params, devices))
        fingerprint = master_fingerprint(seed)
        if params.expect_fingerprint and fingerprint.hex() != params.expect_fingerprint:
            raise ParameterError(
                "expect-fingerprint",
                f"the seed's master fingerprint is {fingerprint.hex()}, not "
                f"{params.expect_fingerprint}.",
            )
        op.table("Seed", [("master fingerprint", fingerprint.hex())])
        run.record("seed-ready", {"master_fingerprint": fingerprint.hex()})
        record, record_path, paths = write_backup(
            op, run, params, devices, cards, seed, fingerprint
        )
        op.step("Close the transcript", ["witnesses read the final hash on screen"])
        signers = witness_signers(cards, params.witnesses, params.roster)
        closed = run.finish(
            {"record_sha256": record.sha256, "set_identifier": record.share_set.identifier},
            signers,
        )
    op.ok(f"Backup complete: record {record_path} (SHA-256 {record.sha256}).")
    return BackupResult(closed, record, record_path, paths)


def load_backup(out: Path) -> tuple[bytes, dict[str, bytes]]:
    """The record bytes and every sealed blob present in a backup directory."""
    record = (out / RECORD_FILE).read_bytes()
    blobs = {p.stem: p.read_bytes() for p in sorted(out.glob("*/*.sealed"))}
    return record, blobs


__all__ = [
    "PROGRESS_FILE",
    "RECORD_FILE",
    "BackupOutputExists",
    "BackupResult",
    "ReadBackFailed",
    "admin_sign_file",
    "check_new_backup",
    "write_backup",
    "ShardBackup",
    "blob_path",
    "load_backup",
    "shard_backup",
]

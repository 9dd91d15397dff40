"""The backup record: which share went to which site, target and custodian (public only).

:func:`seal_backup` seals every token and card target's share to the recipient key read
from that target, and returns the :class:`BackupRecord` with the sealed blobs (to store in
the site's envelope).  The record holds identifiers, group and member indexes, recipient
bindings and each blob's SHA-256 -- never a word, a seed byte or a PIN.

:func:`open_share` is the one way a stored share is opened, by the backup's read-back and
by drills: the blob is checked against the record (its fingerprint, share set, target),
opened on its device, and the decrypted share is checked against the record (checksum,
set identifier, group and member).  Every failure names the target and its site.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault.backup.envelope import (
    KeyAgreement,
    Recipient,
    ShareHeader,
    open_sealed,
    parse_sealed,
    seal,
)
from coldvault.backup.errors import (
    BackupRecordInvalid,
    ForeignShare,
    SealedShareTampered,
    WrongShareSet,
    WrongShareTarget,
)
from coldvault.backup.plan import Plan, TargetKind
from coldvault.backup.shares import PlanShares, ShareSetInfo, share_facts
from coldvault.crypto import mnemonics, wipe
from coldvault.jsonsafe import JsonRejected, loads

FORMAT = "coldvault-backup-record/1"
MAX_RECORD_BYTES = 256 * 1024
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FP = re.compile(r"^[0-9a-f]{8}$")


@dataclass(frozen=True)
class RecordEntry:
    """Where one share went.  ``blob_sha256`` and ``recipient`` are empty for paper."""

    target: str
    site: str
    kind: TargetKind
    custodians: tuple[str, ...]
    group: int
    member: int
    blob_sha256: str = ""
    recipient: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "site": self.site,
            "kind": self.kind.value,
            "custodians": list(self.custodians),
            "group": self.group,
            "member": self.member,
            "blob_sha256": self.blob_sha256,
            "recipient": dict(self.recipient),
        }


@dataclass(frozen=True)
class BackupRecord:
    """Public metadata of one backup (share set) of one seed to one plan."""

    plan_id: str
    plan_sha256: str
    share_set: ShareSetInfo
    master_fingerprint: str
    passphrase_protected: bool
    entries: tuple[RecordEntry, ...]

    def entry(self, target_id: str) -> RecordEntry:
        for entry in self.entries:
            if entry.target == target_id:
                return entry
        raise KeyError(target_id)

    def to_dict(self) -> dict[str, object]:
        info = self.share_set
        return {
            "format": FORMAT,
            "plan": self.plan_id,
            "plan_sha256": self.plan_sha256,
            "master_fingerprint": self.master_fingerprint,
            "passphrase_protected": self.passphrase_protected,
            "share_set": {
                "identifier": info.identifier,
                "extendable": info.extendable,
                "iteration_exponent": info.iteration_exponent,
                "group_threshold": info.group_threshold,
                "groups": [list(g) for g in info.groups],
            },
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n").encode()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()


# -- parsing ----------------------------------------------------------------------------------
def _get(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BackupRecordInvalid(f"{where}{key}", "is missing or has the wrong type")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str, high: int) -> int:
    value = _get(obj, key, int, where)
    if not 0 <= value <= high:
        raise BackupRecordInvalid(f"{where}{key}", f"must be 0..{high}")
    return int(value)


def parse_record(data: bytes) -> BackupRecord:
    """Parse a backup record (bounded, strict); raise :class:`BackupRecordInvalid`."""
    if len(data) > MAX_RECORD_BYTES:
        raise BackupRecordInvalid("document", f"is larger than {MAX_RECORD_BYTES} bytes")
    try:
        doc = loads(data, max_depth=6)
    except JsonRejected as exc:
        raise BackupRecordInvalid("document", str(exc)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupRecordInvalid("format", f"must be {FORMAT!r}")
    info = _get(doc, "share_set", dict, "")
    groups = _get(info, "groups", list, "share_set.")
    if not 1 <= len(groups) <= 16 or not all(
        isinstance(g, list) and len(g) == 2 and all(type(v) is int and 1 <= v <= 16 for v in g)
        for g in groups
    ):
        raise BackupRecordInvalid("share_set.groups", "must be 1..16 [threshold, count] pairs")
    share_set = ShareSetInfo(
        identifier=_int(info, "identifier", "share_set.", 2**15 - 1),
        extendable=bool(_get(info, "extendable", bool, "share_set.")),
        iteration_exponent=_int(info, "iteration_exponent", "share_set.", 15),
        group_threshold=_int(info, "group_threshold", "share_set.", len(groups)),
        groups=tuple((int(g[0]), int(g[1])) for g in groups),
    )
    fingerprint = _get(doc, "master_fingerprint", str, "")
    plan_sha = _get(doc, "plan_sha256", str, "")
    if not _FP.match(fingerprint):
        raise BackupRecordInvalid("master_fingerprint", "must be 8 lower-case hex digits")
    if not _HEX64.match(plan_sha):
        raise BackupRecordInvalid("plan_sha256", "must be 64 lower-case hex digits")
    raw_entries = _get(doc, "entries", list, "")
    if not 1 <= len(raw_entries) <= 64:
        raise BackupRecordInvalid("entries", "must list 1..64 targets")
    entries = []
    for i, raw in enumerate(raw_entries):
        where = f"entries[{i}]."
        if not isinstance(raw, dict):
            raise BackupRecordInvalid(f"entries[{i}]", "must be an object")
        try:
            kind = TargetKind(_get(raw, "kind", str, where))
        except ValueError:
            raise BackupRecordInvalid(f"{where}kind", "must be hsm, card or paper") from None
        custodians = _get(raw, "custodians", list, where)
        recipient = _get(raw, "recipient", dict, where)
        blob = _get(raw, "blob_sha256", str, where)
        if not all(isinstance(c, str) for c in custodians) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in recipient.items()
        ):
            raise BackupRecordInvalid(f"entries[{i}]", "custodians/recipient must be strings")
        if (kind is TargetKind.PAPER) != (blob == "") or (blob and not _HEX64.match(blob)):
            raise BackupRecordInvalid(f"{where}blob_sha256", "does not fit the target kind")
        entries.append(
            RecordEntry(
                target=_get(raw, "target", str, where),
                site=_get(raw, "site", str, where),
                kind=kind,
                custodians=tuple(custodians),
                group=_int(raw, "group", where, 15),
                member=_int(raw, "member", where, 15),
                blob_sha256=blob,
                recipient=dict(recipient),
            )
        )
    return BackupRecord(
        plan_id=_get(doc, "plan", str, ""),
        plan_sha256=plan_sha,
        share_set=share_set,
        master_fingerprint=fingerprint,
        passphrase_protected=bool(_get(doc, "passphrase_protected", bool, "")),
        entries=tuple(entries),
    )


def load_record(path: Path) -> BackupRecord:
    """Read (bounded) and parse the backup record file at ``path``."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise BackupRecordInvalid("document", f"{path} cannot be read ({exc.strerror})") from None
    return parse_record(data)


# -- sealing ----------------------------------------------------------------------------------
def _check_recipient(plan: Plan, target_id: str, recipient: Recipient) -> None:
    target = plan.target(target_id)
    expected = (target.label, target.serial) if target.kind is TargetKind.HSM else ("", target.card)
    if recipient.kind is not target.kind or (recipient.label, recipient.serial) != expected:
        raise WrongShareTarget(target.id, target.describe(), recipient.describe())


def seal_backup(
    shares: PlanShares,
    recipients: Mapping[str, Recipient],
    *,
    master_fingerprint: bytes,
    passphrase_protected: bool,
) -> tuple[BackupRecord, dict[str, bytes]]:
    """Seal every token and card target's share to its recipient.

    Returns the record and ``{target id: blob}`` (nothing in them is secret).  Paper targets
    get a record entry and no blob; their words are shown by the front end."""
    plan = shares.plan
    if len(master_fingerprint) != 4:
        raise ValueError("master_fingerprint must be 4 bytes")
    entries: list[RecordEntry] = []
    blobs: dict[str, bytes] = {}
    for target in plan.targets:
        position = plan.position(target.id)
        entry = RecordEntry(
            target.id,
            target.site,
            target.kind,
            target.custodians,
            position.group,
            position.member,
        )
        if target.kind is not TargetKind.PAPER:
            recipient = recipients.get(target.id)
            if recipient is None:
                raise ValueError(f"no recipient key for target {target.id!r}")
            _check_recipient(plan, target.id, recipient)
            header = ShareHeader(
                plan_id=plan.id,
                set_id=shares.info.identifier,
                group=position.group,
                member=position.member,
                target=target.id,
                site=target.site,
                recipient=recipient.binding(),
            )
            words = shares.words(target.id)
            try:
                blob = seal(words, recipient, header)
            finally:
                wipe(words)
            blobs[target.id] = blob
            entry = RecordEntry(
                target.id,
                target.site,
                target.kind,
                target.custodians,
                position.group,
                position.member,
                hashlib.sha256(blob).hexdigest(),
                recipient.binding(),
            )
        entries.append(entry)
    record = BackupRecord(
        plan_id=plan.id,
        plan_sha256=plan.sha256,
        share_set=shares.info,
        master_fingerprint=master_fingerprint.hex(),
        passphrase_protected=passphrase_protected,
        entries=tuple(entries),
    )
    return record, blobs


# -- opening ----------------------------------------------------------------------------------
def open_share(
    record: BackupRecord, target_id: str, blob: bytes, device: KeyAgreement
) -> bytearray:
    """Open one stored share on its device and check it against the record.

    Returns the share words (UTF-8) to wipe.  Raises, naming the target and site:
    :class:`WrongShareSet` (a blob of another backup), :class:`ForeignShare` (another
    target's blob, or a share of another set inside), :class:`SealedShareTampered`,
    :class:`WrongShareTarget` (the wrong token or card), or the device's own errors
    (wrong PIN, missing key)."""
    entry = record.entry(target_id)
    if entry.kind is TargetKind.PAPER:
        raise ValueError("paper shares are typed, not opened")
    where = f"of target {entry.target!r} at site {entry.site!r}"
    sealed = parse_sealed(blob, where=where)
    header = sealed.header
    if sealed.sha256 != entry.blob_sha256:
        if header.set_id != record.share_set.identifier or header.plan_id != record.plan_id:
            raise WrongShareSet(
                entry.target, entry.site, record.share_set.identifier, header.set_id
            )
        if header.target != entry.target:
            raise ForeignShare(
                entry.target, entry.site, f"the blob is the sealed share of {header.target!r}"
            )
        raise SealedShareTampered(entry.target)
    words = open_sealed(sealed, device)
    try:
        facts = share_facts(words)
    except mnemonics.ShareError:
        wipe(words)
        raise SealedShareTampered(entry.target) from None
    expected = (record.share_set.identifier, entry.group, entry.member)
    found = (facts.identifier, facts.group, facts.member)
    if found != expected:
        wipe(words)
        raise ForeignShare(
            entry.target,
            entry.site,
            f"it is share {found[2] + 1} of group {found[1] + 1} of set {found[0]}, not "
            f"share {expected[2] + 1} of group {expected[1] + 1} of set {expected[0]}",
        )
    return words


__all__ = [
    "FORMAT",
    "BackupRecord",
    "RecordEntry",
    "load_record",
    "open_share",
    "parse_record",
    "seal_backup",
]

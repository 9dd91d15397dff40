"""Configuration documents (roster, policy, wallet registry) signed by the admin quorum.

A :class:`SignedDocument` is the document's exact bytes plus ``(card_serial, signature)``
pairs. Each admin card signs the *config approval token* (:func:`config_token`):

    b"coldvault/config-approval/v1\\x00" || canonical-CBOR({"v": 1, "kind": kind,
        "version": version, "sha256": SHA-256(content), "appliance": appliance_id})

On disk the document stays as it is (``policy.toml``, ``roster.json``...) and the approvals
live next to it in ``<file>.approvals.json`` (format in docs/quorum.md).

Trust: a roster is accepted when admins of the roster it *replaces* meet that roster's
``admin_threshold``. The genesis roster (version chain start) is signed by admins it lists
itself -- trust on first use at the enrolment ceremony -- and the appliance pins its SHA-256
at init, so only that exact genesis is ever accepted. Policy and wallet registry are
accepted when admins of the *active* roster meet its threshold.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cbor2

from coldvault import schema
from coldvault.errors import ConfigError, IntegrityError
from coldvault.quorum.approvals import Approval, Tally
from coldvault.quorum.errors import ThresholdNotMet
from coldvault.quorum.roster import Role, Roster, RosterMismatch, RosterRollback

CONFIG_TOKEN_PREFIX = b"coldvault/config-approval/v1\x00"
APPROVALS_SUFFIX = ".approvals.json"
APPROVALS_FORMAT = "coldvault-approvals/1"
#: configuration documents, then the backup documents the admins sign (coldvault.backup)
KINDS = ("roster", "policy", "wallets", "backup-record", "drill-report")
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_APPROVALS = 64


class SignedDocumentInvalid(ConfigError):
    code = "signed-document-invalid"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"The signed document {path} is invalid: {reason}.")
        self.path = path
        self.reason = reason


class DocumentHashMismatch(IntegrityError):
    code = "document-hash-mismatch"

    def __init__(self, kind: str, expected: str, found: str) -> None:
        super().__init__(
            f"The {kind} document does not match the hash its approvals cover "
            f"(approved {expected[:16]}..., found {found[:16]}...)."
        )
        self.kind = kind
        self.expected = expected
        self.found = found


class ConfigRollback(IntegrityError):
    code = "config-rollback"

    def __init__(self, kind: str, current_version: int, offered_version: int) -> None:
        super().__init__(
            f"The {kind} document version {offered_version} was refused: version "
            f"{current_version} is active and versions never go back."
        )
        self.kind = kind
        self.current_version = current_version
        self.offered_version = offered_version


@dataclass(frozen=True)
class ConfigVersion:
    """Which version of a configuration document is active: persisted by the appliance
    (:meth:`coldvault.records.ledger.Ledger.set_active_config`) so rollbacks are refused across
    restarts, not only within one run."""

    kind: str
    version: int
    sha256: bytes


def check_not_rolled_back(offered: ConfigVersion, recorded: ConfigVersion | None) -> None:
    """Refuse a lower version, or the same version with other content, than ``recorded``."""
    if recorded is None:
        return
    if offered.kind != recorded.kind:
        raise ValueError("comparing versions of different document kinds")
    if offered.version < recorded.version or (
        offered.version == recorded.version and offered.sha256 != recorded.sha256
    ):
        raise ConfigRollback(offered.kind, recorded.version, offered.version)


def config_token(kind: str, version: int, content: bytes, appliance_id: str) -> bytes:
    """The bytes each admin card signs to approve ``content`` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown document kind {kind!r}")
    body = {
        "v": 1,
        "kind": kind,
        "version": version,
        "sha256": hashlib.sha256(content).digest(),
        "appliance": appliance_id,
    }
    return CONFIG_TOKEN_PREFIX + cbor2.dumps(body, canonical=True)


@dataclass(frozen=True)
class SignedDocument:
    kind: str
    version: int
    appliance_id: str
    content: bytes = field(repr=False)
    approvals: tuple[tuple[str, bytes], ...] = ()

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.content).digest()

    @property
    def config_version(self) -> ConfigVersion:
        return ConfigVersion(self.kind, self.version, self.sha256)

    @property
    def token(self) -> bytes:
        return config_token(self.kind, self.version, self.content, self.appliance_id)

    def with_approval(self, card_serial: str, signature: bytes) -> SignedDocument:
        return SignedDocument(
            self.kind, self.version, self.appliance_id, self.content,
            (*self.approvals, (card_serial, signature)),
        )  # fmt: skip

    def approvals_json(self) -> dict[str, object]:
        return {
            "format": APPROVALS_FORMAT,
            "kind": self.kind,
            "version": self.version,
            "appliance_id": self.appliance_id,
            "content_sha256": self.sha256.hex(),
            "approvals": [{"card_serial": s, "signature": sig.hex()} for s, sig in self.approvals],
        }


def verify_admin_quorum(doc: SignedDocument, roster: Roster) -> tuple[Approval, ...]:
    """Check every approval on ``doc`` against ``roster``'s admins and its threshold.

    Any bad approval fails the document (with the exact :class:`QuorumError`): a config file
    carrying a forged or revoked signature is tampering, not noise."""
    if doc.appliance_id != roster.appliance_id:
        raise RosterMismatch(
            f"The {doc.kind} document is for appliance {doc.appliance_id}, "
            f"but this roster is for {roster.appliance_id}.",
            expected=roster.appliance_id,
            found=doc.appliance_id,
        )
    tally = Tally(roster, Role.ADMIN, doc.token, roster.admin_threshold)
    for serial, signature in doc.approvals:
        tally.add(serial, signature)
    if not tally.satisfied:
        raise ThresholdNotMet(f"The {doc.kind} version {doc.version}", tally.count, tally.threshold)
    return tally.approvals


def accept_roster(
    doc: SignedDocument, *, current: Roster | None, pinned_genesis_sha256: bytes | None = None
) -> Roster:
    """Verify a signed roster as the successor of ``current`` (or as the genesis roster)."""
    if doc.kind != "roster":
        raise ValueError("accept_roster needs a roster document")
    new = Roster.from_bytes(doc.content)
    if new.version != doc.version or new.appliance_id != doc.appliance_id:
        raise RosterMismatch(
            "The roster's approvals name another version or appliance than the roster itself.",
            expected=f"{new.appliance_id}@{new.version}",
            found=f"{doc.appliance_id}@{doc.version}",
        )
    if current is None:
        if pinned_genesis_sha256 is not None and doc.sha256 != pinned_genesis_sha256:
            raise RosterMismatch(
                "This is not the genesis roster pinned at appliance init.",
                expected=pinned_genesis_sha256.hex(),
                found=doc.sha256.hex(),
            )
        verify_admin_quorum(doc, new)
        return new
    if new.appliance_id != current.appliance_id:
        raise RosterMismatch(
            f"The roster is for appliance {new.appliance_id}, not {current.appliance_id}.",
            expected=current.appliance_id,
            found=new.appliance_id,
        )
    if new.version <= current.version:
        raise RosterRollback(current.version, new.version)
    verify_admin_quorum(doc, current)
    return new


def load_verified_document(
    path: Path, kind: str, roster: Roster, *, recorded: ConfigVersion | None = None
) -> SignedDocument:
    """Load ``path`` + approvals and check the admin quorum of the active ``roster`` and
    that the version does not go back from ``recorded`` (e.g. the wallet registry; the
    policy has :func:`coldvault.policy.load_policy`). Returns the document; parse
    ``doc.content`` (the verified bytes, not the file again)."""
    doc = load_signed_document(path, kind)
    verify_admin_quorum(doc, roster)
    check_not_rolled_back(doc.config_version, recorded)
    return doc


def verify_roster_chain(docs: Sequence[SignedDocument], pinned_genesis_sha256: bytes) -> Roster:
    """Replay a roster history from the pinned genesis; return the newest roster."""
    if not docs:
        raise ValueError("a roster chain needs at least the genesis roster")
    roster = accept_roster(docs[0], current=None, pinned_genesis_sha256=pinned_genesis_sha256)
    for doc in docs[1:]:
        roster = accept_roster(doc, current=roster)
    return roster


# --------------------------------------------------------------------------- files
#: An approvals file's declared shape (``approvals_json``); nothing else is accepted.
APPROVALS_SCHEMA = schema.Table(
    {
        "format": schema.Text(max_len=64),
        "kind": schema.Text(max_len=64),
        "version": schema.Number(integer=True, minimum=1),
        "appliance_id": schema.Text(max_len=64),
        "content_sha256": schema.Text(max_len=64),
        "approvals": schema.Items(
            schema.Table(
                {"card_serial": schema.Text(max_len=64), "signature": schema.Text(max_len=1024)},
                required=frozenset({"card_serial", "signature"}),
            ),
            max_items=MAX_APPROVALS,
        ),
    },
    required=frozenset(
        {"format", "kind", "version", "appliance_id", "content_sha256", "approvals"}
    ),
)


def approvals_path(path: Path) -> Path:
    return path.with_name(path.name + APPROVALS_SUFFIX)


def load_signed_document(path: Path, kind: str) -> SignedDocument:
    """Read ``path`` and ``path.approvals.json``; check the recorded content hash."""
    where = str(path)
    try:
        content = path.read_bytes()
        header_bytes = approvals_path(path).read_bytes()
    except FileNotFoundError as exc:
        raise SignedDocumentInvalid(where, f"{exc.filename} does not exist") from exc
    except OSError as exc:
        raise SignedDocumentInvalid(
            where, f"{exc.filename} cannot be read ({exc.strerror or type(exc).__name__})"
        ) from exc
    if len(content) > MAX_DOCUMENT_BYTES or len(header_bytes) > MAX_DOCUMENT_BYTES:
        raise SignedDocumentInvalid(where, "a file is larger than 1 MiB")
    try:
        header = schema.load_json(header_bytes, APPROVALS_SCHEMA)
    except schema.SchemaViolation as exc:
        at = f"{exc.where}: " if exc.where else ""
        raise SignedDocumentInvalid(where, f"the approvals file: {at}{exc.problem}") from None
    if header["format"] != APPROVALS_FORMAT or header["kind"] != kind:
        raise SignedDocumentInvalid(where, f"the approvals file is not a {kind} approvals file")
    try:
        approvals = tuple(
            (a["card_serial"], bytes.fromhex(a["signature"])) for a in header["approvals"]
        )
    except ValueError:
        raise SignedDocumentInvalid(
            where, "the approvals file: a signature is not hexadecimal"
        ) from None
    version, appliance_id, recorded = (
        header["version"],
        header["appliance_id"],
        header["content_sha256"],
    )
    doc = SignedDocument(kind, version, appliance_id, content, approvals)
    if doc.sha256.hex() != recorded:
        raise DocumentHashMismatch(kind, str(recorded), doc.sha256.hex())
    return doc


def write_signed_document(path: Path, doc: SignedDocument) -> None:
    """Write the document and its approvals file durably (fsync)."""
    for target, data in (
        (path, doc.content),
        (approvals_path(path), (json.dumps(doc.approvals_json(), indent=2) + "\n").encode()),
    ):
        tmp = target.with_name(target.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

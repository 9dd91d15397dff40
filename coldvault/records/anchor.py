"""The appliance's security state anchored outside the state directory (docs/audit.md).

Whoever can write to the state directory can delete or roll back the audit trail and the
ledger; they cannot change a private object on the HSM token without the user PIN. The
:class:`Anchor` is the high-water mark kept there (by an :class:`AnchorStore`, e.g.
:class:`coldvault.backends.pkcs11.anchor.TokenAnchorStore`):

* the version and SHA-256 of the roster, the policy and the wallet registry last in force;
* the audit trail's last anchored entry (``seq`` and its ``head`` hash) and the last sealed
  seq.

:func:`check_trail` and :func:`check_configs` compare what is on disk with it: a trail that
lacks the anchored entry (deleted, truncated, replaced) or a configuration older than the
anchored one is refused with :class:`StateRollback` / :class:`ConfigRollback`. A trail
*ahead* of the anchor is normal (a crash between an append and the anchor update).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from coldvault import schema
from coldvault.errors import IntegrityError
from coldvault.quorum.documents import ConfigVersion, check_not_rolled_back
from coldvault.records.audit import AUDIT
from coldvault.records.chain import walk

__all__ = [
    "ANCHOR_FORMAT",
    "Anchor",
    "AnchorCorrupt",
    "AnchorStore",
    "StateRollback",
    "check_configs",
    "check_roster_chain",
    "check_trail",
]

ANCHOR_FORMAT = "coldvault-anchor/1"
KINDS = ("roster", "policy", "wallets")


class StateRollback(IntegrityError):
    """The state directory is behind the HSM anchor: deleted, truncated or rolled back."""

    code = "state-rollback"

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(
            f"The {what} on disk is behind the state anchored in the HSM: {reason}. The "
            "appliance refuses to start; restore the state directory from its backup or follow "
            "the lost-state recovery in docs/appliance.md."
        )
        self.what = what
        self.reason = reason


class AnchorCorrupt(IntegrityError):
    code = "anchor-corrupt"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The state anchor on the HSM token cannot be read: {reason}.")
        self.reason = reason


class AnchorStore(Protocol):
    """Where the anchor lives: one small private object only the logged-in user can change."""

    def load(self) -> bytes | None: ...

    def save(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Anchor:
    configs: tuple[ConfigVersion, ...] = ()
    audit_seq: int = -1  # -1: no entry anchored yet
    audit_head: str = ""
    sealed_through: int = -1

    def config(self, kind: str) -> ConfigVersion | None:
        return next((c for c in self.configs if c.kind == kind), None)

    def with_configs(self, configs: tuple[ConfigVersion, ...]) -> Anchor:
        return replace(self, configs=tuple(sorted(configs, key=lambda c: c.kind)))

    def with_entry(self, seq: int, head: str, *, sealed: bool = False) -> Anchor:
        return replace(
            self, audit_seq=seq, audit_head=head,
            sealed_through=seq - 1 if sealed else self.sealed_through,
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        body = {
            "format": ANCHOR_FORMAT,
            "configs": {c.kind: [c.version, c.sha256.hex()] for c in self.configs},
            "audit": {"seq": self.audit_seq, "head": self.audit_head,
                      "sealed_through": self.sealed_through},
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Anchor:
        try:
            body = schema.parse_json(data)  # bounded: the file is untrusted
        except schema.SchemaViolation as exc:
            raise AnchorCorrupt(exc.problem) from None
        try:
            if body["format"] != ANCHOR_FORMAT:
                raise AnchorCorrupt(f"unknown format {str(body['format'])[:40]!r}")
            configs = tuple(
                ConfigVersion(kind, int(v[0]), bytes.fromhex(v[1]))
                for kind, v in sorted(body["configs"].items()) if kind in KINDS
            )  # fmt: skip
            audit = body["audit"]
            return cls(configs, int(audit["seq"]), str(audit["head"]),
                       int(audit["sealed_through"]))
        except AnchorCorrupt:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise AnchorCorrupt(type(exc).__name__) from exc


def check_configs(anchor: Anchor, offered: tuple[ConfigVersion, ...]) -> None:
    """Refuse an offered roster, policy or wallet registry older than the anchored one
    (:class:`coldvault.quorum.errors.ConfigRollback`)."""
    for version in offered:
        check_not_rolled_back(version, anchor.config(version.kind))


def check_roster_chain(anchor: Anchor, chain: Sequence[ConfigVersion]) -> None:
    """Refuse a roster chain (each roster's version and hash, genesis first) that does not
    contain the roster the HSM anchors: the pinned genesis or the roster files were replaced,
    so even a chain with higher versions is not the one whose admins were trusted."""
    anchored = anchor.config("roster")
    if anchored is None or anchored in chain:
        return
    raise StateRollback(
        "roster chain",
        f"it does not contain roster version {anchored.version} (sha256"
        f" {anchored.sha256.hex()[:16]}...), the roster in force when the HSM last anchored"
        " the state; the pinned genesis or the roster files were replaced",
    )


def check_trail(
    anchor: Anchor,
    path: Path,
    *,
    entries: int,
    sealed_through: int | None,
    allow_torn_tail: bool = False,
) -> None:
    """Refuse a trail (already verified, ``entries`` long) that lacks the anchored entry;
    ``allow_torn_tail`` checks the complete lines before a torn last one."""
    if anchor.audit_seq < 0:
        return
    if not path.exists():
        raise StateRollback(
            "audit trail", f"{path.name} is missing but the HSM anchors entry {anchor.audit_seq}"
        )
    if entries <= anchor.audit_seq:
        raise StateRollback(
            "audit trail",
            f"it has {entries} entries but the HSM anchors entry {anchor.audit_seq}",
        )
    found = sealed_through if sealed_through is not None else -1
    if found < anchor.sealed_through:
        raise StateRollback(
            "audit trail",
            f"it is sealed through entry {found} but the HSM anchors a seal through entry "
            f"{anchor.sealed_through}",
        )
    for line in walk(path, AUDIT, allow_torn_tail=allow_torn_tail):
        if line.index == anchor.audit_seq:
            if line.entry["hash"] != anchor.audit_head:
                raise StateRollback(
                    "audit trail",
                    f"entry {anchor.audit_seq} is not the entry the HSM anchors (a replaced trail)",
                )
            return
    raise StateRollback("audit trail", f"entry {anchor.audit_seq} is missing")

"""The card roster: who holds which OpenPGP card, in which role, at which site.

A roster is a versioned document signed by the admin quorum (see
:mod:`coldvault.quorum.documents` and docs/quorum.md). Its one byte representation is
*canonical JSON*: UTF-8, ASCII-only, keys sorted, two-space indent, holders sorted by card
serial, public keys in lower-case hex, one trailing newline (:meth:`Roster.to_bytes`). A
roster file must be exactly these bytes, so the hash the admins signed is the hash of the
roster, and :meth:`Roster.from_bytes` refuses any other spelling.

Revoking or replacing a card is a new roster version (same appliance id, version + 1),
signed by the admins of the roster it replaces.

An approver may belong to named *approver groups* ("treasury", "compliance"): the policy can
require approvals from each of them (:mod:`coldvault.quorum.groups`).  A holder's ``groups``
are written sorted, and only when there are any, so a roster without groups keeps its bytes.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from coldvault import schema
from coldvault.cards.signatures import CARD_ALGORITHMS, public_key_length_ok
from coldvault.errors import ConfigError, IntegrityError

FORMAT = "coldvault-roster/1"
MAX_HOLDERS = 256
MAX_GROUPS = 16
MAX_ROSTER_BYTES = 256 * 1024
_SERIAL_RE = re.compile(r"^[A-Za-z0-9:._-]{1,64}$")
_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Role(enum.StrEnum):
    APPROVER = "approver"  # approves sign requests
    ADMIN = "admin"  # approves roster, policy and wallet-registry changes
    BACKUP_CUSTODIAN = "backup-custodian"  # holds a backup share card; approves nothing


class CardStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


_HOLDER_TEXT = schema.Text(max_len=1024)
#: A roster's declared shape (its canonical JSON); nothing else is accepted.
ROSTER_SCHEMA = schema.Table(
    {
        "format": schema.Text(max_len=64),
        "version": schema.Number(integer=True, minimum=1),
        "appliance_id": schema.Text(max_len=64),
        "admin_threshold": schema.Number(integer=True, minimum=1, maximum=1000),
        "holders": schema.Items(
            schema.Table(
                {
                    **{
                        k: _HOLDER_TEXT
                        for k in (
                            "serial",
                            "holder",
                            "role",
                            "site",
                            "algorithm",
                            "public_key",
                            "status",
                        )
                    },
                    "groups": schema.Items(schema.Text(max_len=64), max_items=16),
                },
                required=frozenset(
                    {"serial", "holder", "role", "site", "algorithm", "public_key", "status"}
                ),
            ),
            max_items=MAX_HOLDERS,
        ),
    },
    required=frozenset({"format", "version", "appliance_id", "admin_threshold", "holders"}),
)


class RosterInvalid(ConfigError):
    """A roster document is malformed or inconsistent."""

    code = "roster-invalid"

    def __init__(self, reason: str, *, field: str = "") -> None:
        where = f" ({field})" if field else ""
        super().__init__(f"The roster is invalid{where}: {reason}.")
        self.reason = reason
        self.field = field


class RosterRollback(IntegrityError):
    """A roster whose version is not newer than the active one was offered."""

    code = "roster-rollback"

    def __init__(self, current_version: int, offered_version: int) -> None:
        super().__init__(
            f"Roster version {offered_version} was refused: the active roster is version "
            f"{current_version} and versions must strictly increase."
        )
        self.current_version = current_version
        self.offered_version = offered_version


class RosterMismatch(IntegrityError):
    """A roster does not belong here: other appliance, or not the pinned genesis roster."""

    code = "roster-mismatch"

    def __init__(self, message: str, *, expected: str, found: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.found = found


def normalise_holder(name: str) -> str:
    """The identity used to count distinct holders: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


@dataclass(frozen=True)
class CardHolder:
    serial: str  # OpenPGP card serial as the application identifier shows it, e.g. "0006:17684870"
    holder: str  # the person; two cards with the same holder count once
    role: Role
    site: str
    algorithm: str  # one of coldvault.cards.signatures.CARD_ALGORITHMS
    public_key: bytes = b""  # the card's signature-key public point
    status: CardStatus = CardStatus.ACTIVE
    groups: tuple[str, ...] = ()  # approver groups, e.g. ("compliance",); sorted, unique

    @property
    def active(self) -> bool:
        return self.status is CardStatus.ACTIVE

    @property
    def holder_id(self) -> str:
        return normalise_holder(self.holder)

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "serial": self.serial,
            "holder": self.holder,
            "role": self.role.value,
            "site": self.site,
            "algorithm": self.algorithm,
            "public_key": self.public_key.hex(),
            "status": self.status.value,
        }
        if self.groups:
            obj["groups"] = list(self.groups)
        return obj

    @classmethod
    def from_json(cls, obj: object, field: str = "card") -> CardHolder:
        """The inverse of :meth:`to_json`; :class:`RosterInvalid` naming ``field``."""
        return _holder_from_json(field, obj)


@dataclass(frozen=True)
class Roster:
    version: int
    appliance_id: str
    holders: tuple[CardHolder, ...]
    admin_threshold: int

    def __post_init__(self) -> None:
        _validate(self)

    # -- look-ups -------------------------------------------------------------------------
    def holder(self, serial: str) -> CardHolder | None:
        for h in self.holders:
            if h.serial == serial:
                return h
        return None

    def active(self, role: Role) -> tuple[CardHolder, ...]:
        return tuple(h for h in self.holders if h.active and h.role is role)

    def distinct_holders(self, role: Role) -> int:
        return len({h.holder_id for h in self.active(role)})

    def distinct_in_group(self, group: str) -> int:
        """Distinct active approvers who belong to ``group``."""
        return len({h.holder_id for h in self.active(Role.APPROVER) if group in h.groups})

    # -- bytes ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "appliance_id": self.appliance_id,
            "admin_threshold": self.admin_threshold,
            "holders": [h.to_json() for h in sorted(self.holders, key=lambda h: h.serial)],
        }

    def to_bytes(self) -> bytes:
        """The canonical bytes (see the module docstring)."""
        return (
            json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=True) + "\n"
        ).encode()

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Roster:
        """Parse canonical roster bytes; raise :class:`RosterInvalid` naming the problem."""
        if len(data) > MAX_ROSTER_BYTES:
            raise RosterInvalid(f"it is larger than {MAX_ROSTER_BYTES} bytes")
        if not data.isascii():
            raise RosterInvalid("it is not ASCII JSON (a byte above 0x7f)")
        try:
            obj = schema.parse_json(data)
        except schema.SchemaViolation as exc:
            raise RosterInvalid(exc.problem) from None
        roster = cls.from_json(obj)
        if roster.to_bytes() != data:
            raise RosterInvalid(
                "it is not in canonical form; re-serialise it with Roster.to_bytes()"
            )
        return roster

    @classmethod
    def from_json(cls, obj: object) -> Roster:
        if not isinstance(obj, dict):
            raise RosterInvalid("the top level is not an object")
        try:
            schema.check(obj, ROSTER_SCHEMA)
        except schema.SchemaViolation as exc:
            raise RosterInvalid(exc.problem, field=exc.path) from None
        if obj.get("format") != FORMAT:
            raise RosterInvalid(f"format must be {FORMAT!r}", field="format")
        raw_holders = obj.get("holders")
        if not isinstance(raw_holders, list) or len(raw_holders) > MAX_HOLDERS:
            raise RosterInvalid(f"holders must be a list of at most {MAX_HOLDERS}", field="holders")
        holders = tuple(_holder_from_json(f"holders[{i}]", h) for i, h in enumerate(raw_holders))
        version, threshold, appliance_id = (
            obj.get("version"),
            obj.get("admin_threshold"),
            obj.get("appliance_id"),
        )
        if not isinstance(version, int) or not isinstance(threshold, int):
            raise RosterInvalid("version and admin_threshold must be integers")
        if isinstance(version, bool) or isinstance(threshold, bool):
            raise RosterInvalid("version and admin_threshold must be integers")
        if not isinstance(appliance_id, str):
            raise RosterInvalid("appliance_id must be a string", field="appliance_id")
        return cls(version, appliance_id, holders, threshold)

    # -- successors -----------------------------------------------------------------------
    def successor(
        self, holders: Iterable[CardHolder], admin_threshold: int | None = None
    ) -> Roster:
        """The next version with the given holders (to be signed by this roster's admins)."""
        return Roster(
            self.version + 1,
            self.appliance_id,
            tuple(holders),
            self.admin_threshold if admin_threshold is None else admin_threshold,
        )

    def revoke(self, serial: str) -> Roster:
        """The next version with card ``serial`` revoked."""
        if self.holder(serial) is None:
            raise ValueError(f"card {serial} is not in roster version {self.version}")
        return self.successor(
            replace(h, status=CardStatus.REVOKED) if h.serial == serial else h for h in self.holders
        )


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _holder_from_json(field: str, obj: object) -> CardHolder:
    if not isinstance(obj, dict):
        raise RosterInvalid("not an object", field=field)
    try:
        return CardHolder(
            serial=_str(obj, "serial"),
            holder=_str(obj, "holder"),
            role=Role(_str(obj, "role")),
            site=_str(obj, "site"),
            algorithm=_str(obj, "algorithm"),
            public_key=bytes.fromhex(_str(obj, "public_key")),
            status=CardStatus(_str(obj, "status")),
            groups=_groups(obj),
        )
    except (ValueError, TypeError) as exc:
        raise RosterInvalid(f"{exc}", field=field) from exc


def _groups(obj: dict[str, Any]) -> tuple[str, ...]:
    value = obj.get("groups", [])
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise TypeError("groups must be a list of group names")
    return tuple(value)


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _validate(r: Roster) -> None:
    if not _is_int(r.version) or r.version < 1:
        raise RosterInvalid("version must be an integer of at least 1", field="version")
    if not isinstance(r.appliance_id, str) or not _ID_RE.match(r.appliance_id):
        raise RosterInvalid("appliance_id must be 1-64 of [A-Za-z0-9._-]", field="appliance_id")
    if len(r.holders) > MAX_HOLDERS:
        raise RosterInvalid(f"more than {MAX_HOLDERS} cards", field="holders")
    serials: set[str] = set()
    keys: set[bytes] = set()
    for i, h in enumerate(r.holders):
        field = f"holders[{i}]"
        if not isinstance(h, CardHolder):
            raise RosterInvalid("not a CardHolder", field=field)
        if not _SERIAL_RE.match(h.serial):
            raise RosterInvalid("serial must be 1-64 of [A-Za-z0-9:._-]", field=field)
        if not normalise_holder(h.holder) or len(h.holder) > 128:
            raise RosterInvalid(
                "holder must be a non-empty name of at most 128 characters", field=field
            )
        if not h.site or len(h.site) > 64:
            raise RosterInvalid("site must be non-empty, at most 64 characters", field=field)
        if h.algorithm not in CARD_ALGORITHMS:
            raise RosterInvalid(
                f"algorithm must be one of {', '.join(CARD_ALGORITHMS)}", field=field
            )
        if not public_key_length_ok(h.algorithm, h.public_key):
            raise RosterInvalid(f"public key is not a valid {h.algorithm} key", field=field)
        if not isinstance(h.groups, tuple) or len(h.groups) > MAX_GROUPS:
            raise RosterInvalid(f"groups must be a tuple of at most {MAX_GROUPS}", field=field)
        if any(not isinstance(g, str) or not _ID_RE.match(g) for g in h.groups):
            raise RosterInvalid("group names must be 1-64 of [A-Za-z0-9._-]", field=field)
        if list(h.groups) != sorted(set(h.groups)):
            raise RosterInvalid("groups must be sorted and unique", field=field)
        if h.groups and h.role is not Role.APPROVER:
            raise RosterInvalid("only approver cards belong to approver groups", field=field)
        if h.serial in serials:
            raise RosterInvalid(f"card serial {h.serial} appears twice", field=field)
        if h.public_key in keys:
            raise RosterInvalid(f"card {h.serial} reuses another card's public key", field=field)
        serials.add(h.serial)
        keys.add(h.public_key)
    if not _is_int(r.admin_threshold) or r.admin_threshold < 1:
        raise RosterInvalid("admin_threshold must be at least 1", field="admin_threshold")
    admins = r.distinct_holders(Role.ADMIN)
    if r.admin_threshold > admins:
        raise RosterInvalid(
            f"admin_threshold {r.admin_threshold} exceeds the {admins} distinct active "
            "admin holders",
            field="admin_threshold",
        )

"""The backup plan document: sites, their targets and custodians, and the SLIP-39 scheme.

A plan is a TOML document (format in docs/backup.md) approved by the admin quorum.  It says
where every share of the seed goes:

* **sites** (name, location, custodians by roster card id);
* **targets** per site: a backup HSM token (label, serial), a custodian's OpenPGP card, or a
  paper sheet kept by a custodian.  Each target holds exactly one share;
* the **scheme**: SLIP-39 groups (members = target ids, a member threshold) and a group
  threshold, or a flat M-of-N over targets.

A group with member threshold 1 is a SLIP-39 1-of-1 group whose single share is *copied* to
each listed target (SLIP-39 forbids 1-of-N member sharing with N > 1): "site A: 1 of
{token, card}" means both hold the same share.

Parsing is strict and bounded: unknown keys, wrong types, out-of-range numbers, duplicate
names and dangling references are refused with :class:`PlanInvalid` naming the field.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import tomli_w

from coldvault import tomlsafe
from coldvault.backup.errors import PlanInvalid

FORMAT = "coldvault-backup-plan/1"
MAX_PLAN_BYTES = 64 * 1024
MAX_SITES = 16
MAX_TARGETS_PER_SITE = 16
MAX_TARGETS = 64
MAX_CUSTODIANS = 32
#: SLIP-39 limits: at most 16 groups and 16 member shares per group.
MAX_GROUPS = 16
MAX_MEMBERS = 16
MAX_TEXT = 200
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: Custodians are named by roster card id (the roster's serial syntax).
_CARD_ID = re.compile(r"^[A-Za-z0-9:._-]{1,64}$")
_SERIAL = re.compile(r"^[\x21-\x7e]{0,32}$")


class TargetKind(enum.StrEnum):
    HSM = "hsm"
    CARD = "card"
    PAPER = "paper"


class CardCurve(enum.StrEnum):
    """Curves of a custodian card's decryption key (OpenPGP ECDH)."""

    CV25519 = "cv25519"
    NIST_P256 = "nistp256"


@dataclass(frozen=True)
class Target:
    """One place a share is stored.  ``custodians`` are the people who can each open it
    alone: the card's holder, the paper's keeper, or the operators of an HSM token."""

    id: str
    site: str
    kind: TargetKind
    custodians: tuple[str, ...]
    #: HSM token label and serial (``serial`` empty in an unbound proposal)
    label: str = ""
    serial: str = ""
    #: card: the roster card id of the custodian's card, and its decryption-key curve
    card: str = ""
    curve: CardCurve | None = None

    def describe(self) -> str:
        if self.kind is TargetKind.HSM:
            serial = f" serial {self.serial}" if self.serial else ""
            return f"HSM token {self.label!r}{serial}"
        if self.kind is TargetKind.CARD:
            return f"card {self.card}"
        return f"paper sheet kept by {self.custodians[0]}"


@dataclass(frozen=True)
class Site:
    name: str
    location: str
    custodians: tuple[str, ...]
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class Group:
    """A SLIP-39 group over targets.  ``member_threshold == 1``: one share, copied."""

    name: str
    member_threshold: int
    members: tuple[str, ...]

    @property
    def share_count(self) -> int:
        """Distinct SLIP-39 member shares in this group."""
        return 1 if self.member_threshold == 1 else len(self.members)

    def member_index(self, target_id: str) -> int:
        """The SLIP-39 member index the target's share has (copies share index 0)."""
        return 0 if self.member_threshold == 1 else self.members.index(target_id)


@dataclass(frozen=True)
class Scheme:
    group_threshold: int
    groups: tuple[Group, ...]
    #: written as a flat ``threshold`` + ``members`` (one group, group threshold 1)
    flat: bool = False

    @property
    def slip39_groups(self) -> list[tuple[int, int]]:
        """``(member_threshold, member_count)`` per group, as shamir-mnemonic takes them."""
        return [(g.member_threshold, g.share_count) for g in self.groups]


@dataclass(frozen=True)
class SharePosition:
    """Where a target's share sits in the SLIP-39 scheme."""

    group: int
    member: int

    def __str__(self) -> str:
        return f"group {self.group + 1} member {self.member + 1}"


@dataclass(frozen=True)
class Plan:
    id: str
    sites: tuple[Site, ...]
    scheme: Scheme
    description: str = ""

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(t for site in self.sites for t in site.targets)

    @property
    def custodians(self) -> tuple[str, ...]:
        return tuple(c for site in self.sites for c in site.custodians)

    def target(self, target_id: str) -> Target:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(target_id)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def position(self, target_id: str) -> SharePosition:
        for index, group in enumerate(self.scheme.groups):
            if target_id in group.members:
                return SharePosition(index, group.member_index(target_id))
        raise KeyError(target_id)

    def group_of(self, target_id: str) -> Group:
        return self.scheme.groups[self.position(target_id).group]

    def to_toml(self) -> str:
        return plan_to_toml(self)

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of the canonical TOML of this plan."""
        return hashlib.sha256(self.to_toml().encode()).hexdigest()


# -- parsing --------------------------------------------------------------------------------
class _Fields:
    """Strict access to one TOML table, with its path for error messages."""

    def __init__(self, where: str, table: object, path: str, allowed: Iterable[str]) -> None:
        if not isinstance(table, dict):
            raise PlanInvalid(where, path or "document", "must be a table")
        unknown = sorted(set(table) - set(allowed))
        if unknown:
            raise PlanInvalid(where, _join(path, unknown[0]), "is not a known field")
        self.where = where
        self.table: dict[str, Any] = table
        self.path = path

    def field(self, key: str) -> str:
        return _join(self.path, key)

    def fail(self, key: str, problem: str) -> PlanInvalid:
        return PlanInvalid(self.where, self.field(key), problem)

    def text(self, key: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return ""
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        if len(value) > limit or any(ord(ch) < 0x20 for ch in value):
            raise self.fail(key, f"must be at most {limit} printable characters")
        return value

    def ident(self, key: str, pattern: re.Pattern[str] = _ID) -> str:
        value = self.text(key)
        if not pattern.match(value):
            raise self.fail(key, f"{value[:64]!r} is not a valid identifier")
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.table.get(key)
        if value is None:
            raise self.fail(key, "is missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be an integer")
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}")
        return value

    def strings(
        self, key: str, limit: int, pattern: re.Pattern[str], *, required: bool = True
    ) -> tuple[str, ...]:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is missing")
            return ()
        if not isinstance(value, list):
            raise self.fail(key, "must be a list of strings")
        if len(value) > limit:
            raise self.fail(key, f"has more than {limit} entries")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not pattern.match(item):
                raise PlanInvalid(self.where, f"{self.field(key)}[{i}]", "is not a valid name")
            if item in out:
                raise PlanInvalid(self.where, f"{self.field(key)}[{i}]", f"{item!r} is repeated")
            out.append(item)
        return tuple(out)

    def tables(self, key: str, limit: int) -> list[tuple[str, object]]:
        value = self.table.get(key)
        if value is None:
            raise self.fail(key, "is missing")
        if not isinstance(value, list) or not value:
            raise self.fail(key, "must be a non-empty array of tables")
        if len(value) > limit:
            raise self.fail(key, f"has more than {limit} entries")
        return [(f"{self.field(key)}[{i}]", item) for i, item in enumerate(value)]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_TARGET_FIELDS = {
    TargetKind.HSM: {"id", "kind", "label", "serial", "custodians"},
    TargetKind.CARD: {"id", "kind", "card", "curve"},
    TargetKind.PAPER: {"id", "kind", "custodian"},
}


def _target(
    where: str, path: str, raw: object, site: str, site_custodians: tuple[str, ...]
) -> Target:
    probe = _Fields(where, raw, path, set().union(*_TARGET_FIELDS.values()))
    kind_text = probe.text("kind")
    try:
        kind = TargetKind(kind_text)
    except ValueError:
        raise probe.fail("kind", "must be one of hsm, card, paper") from None
    f = _Fields(where, raw, path, _TARGET_FIELDS[kind])
    target_id = f.ident("id")

    def site_custodian(key: str, value: str) -> str:
        if value not in site_custodians:
            raise f.fail(key, f"{value!r} is not a custodian of site {site!r}")
        return value

    if kind is TargetKind.HSM:
        label = f.text("label", limit=32)
        if not label:
            raise f.fail("label", "must not be empty")
        serial = f.text("serial", required=False, limit=32)
        if not _SERIAL.match(serial):
            raise f.fail("serial", "must be printable ASCII without spaces")
        operators = f.strings("custodians", MAX_CUSTODIANS, _CARD_ID, required=False)
        for i, who in enumerate(operators):
            site_custodian(f"custodians[{i}]", who)
        if not (operators or site_custodians):
            raise f.fail("custodians", "an HSM token needs a custodian who can operate it")
        return Target(
            target_id, site, kind, operators or site_custodians, label=label, serial=serial
        )
    if kind is TargetKind.CARD:
        card = site_custodian("card", f.ident("card", _CARD_ID))
        curve_text = f.text("curve", required=False) or CardCurve.CV25519.value
        try:
            curve = CardCurve(curve_text)
        except ValueError:
            raise f.fail("curve", "must be cv25519 or nistp256") from None
        return Target(target_id, site, kind, (card,), card=card, curve=curve)
    keeper = site_custodian("custodian", f.ident("custodian", _CARD_ID))
    return Target(target_id, site, kind, (keeper,))


def _site(where: str, path: str, raw: object) -> Site:
    f = _Fields(where, raw, path, {"name", "location", "custodians", "targets"})
    name = f.ident("name")
    location = f.text("location")
    custodians = f.strings("custodians", MAX_CUSTODIANS, _CARD_ID, required=False)
    targets = tuple(
        _target(where, p, item, name, custodians)
        for p, item in f.tables("targets", MAX_TARGETS_PER_SITE)
    )
    return Site(name, location, custodians, targets)


def _group(where: str, path: str, raw: object) -> Group:
    f = _Fields(where, raw, path, {"name", "member_threshold", "members"})
    name = f.ident("name")
    members = f.strings("members", MAX_MEMBERS, _ID)
    if not members:
        raise f.fail("members", "must name at least one target")
    threshold = f.integer("member_threshold", 1, MAX_MEMBERS)
    if threshold > len(members):
        raise f.fail("member_threshold", f"exceeds the {len(members)} members of the group")
    return Group(name, threshold, members)


def _scheme(where: str, raw: object) -> Scheme:
    f = _Fields(where, raw, "scheme", {"group_threshold", "groups", "threshold", "members"})
    if "groups" in f.table:
        if "threshold" in f.table or "members" in f.table:
            raise f.fail("threshold", "a scheme has either groups or a flat threshold/members")
        groups = tuple(_group(where, p, item) for p, item in f.tables("groups", MAX_GROUPS))
        threshold = f.integer("group_threshold", 1, len(groups))
        return Scheme(threshold, groups)
    if "group_threshold" in f.table:
        raise f.fail("groups", "is missing (group_threshold needs groups)")
    members = f.strings("members", MAX_MEMBERS, _ID)
    if not members:
        raise f.fail("members", "must name at least one target")
    threshold = f.integer("threshold", 1, len(members))
    return Scheme(1, (Group("all", threshold, members),), flat=True)


def _cross_check(where: str, plan: Plan) -> None:
    site_names: set[str] = set()
    custodian_site: dict[str, str] = {}
    target_ids: set[str] = set()
    hsm_ids: set[tuple[str, str]] = set()
    cards: set[str] = set()
    for i, site in enumerate(plan.sites):
        if site.name in site_names:
            raise PlanInvalid(where, f"sites[{i}].name", f"site {site.name!r} appears twice")
        site_names.add(site.name)
        for who in site.custodians:
            if who in custodian_site:
                raise PlanInvalid(
                    where,
                    f"sites[{i}].custodians",
                    f"custodian {who!r} is already a custodian of site {custodian_site[who]!r}",
                )
            custodian_site[who] = site.name
        for j, target in enumerate(site.targets):
            field = f"sites[{i}].targets[{j}]"
            if target.id in target_ids:
                raise PlanInvalid(where, f"{field}.id", f"target {target.id!r} appears twice")
            target_ids.add(target.id)
            if target.kind is TargetKind.HSM:
                key = (target.label, target.serial)
                if key in hsm_ids:
                    raise PlanInvalid(where, field, f"{target.describe()} is listed twice")
                hsm_ids.add(key)
            if target.kind is TargetKind.CARD:
                if target.card in cards:
                    raise PlanInvalid(where, f"{field}.card", f"card {target.card} is listed twice")
                cards.add(target.card)
    if len(target_ids) > MAX_TARGETS:
        raise PlanInvalid(where, "sites", f"more than {MAX_TARGETS} targets")
    if len(custodian_site) > MAX_CUSTODIANS:
        raise PlanInvalid(where, "sites", f"more than {MAX_CUSTODIANS} custodians")
    placed: dict[str, str] = {}
    for g, group in enumerate(plan.scheme.groups):
        field = "scheme.members" if plan.scheme.flat else f"scheme.groups[{g}].members"
        for member in group.members:
            if member not in target_ids:
                raise PlanInvalid(where, field, f"{member!r} is not a target of any site")
            if member in placed:
                raise PlanInvalid(
                    where, field, f"target {member!r} is already in group {placed[member]!r}"
                )
            placed[member] = group.name
    if not plan.scheme.flat:
        names = [g.name for g in plan.scheme.groups]
        for g, name in enumerate(names):
            if names.index(name) != g:
                raise PlanInvalid(where, f"scheme.groups[{g}].name", f"group {name!r} repeats")
    for i, site in enumerate(plan.sites):
        for j, target in enumerate(site.targets):
            if target.id not in placed:
                raise PlanInvalid(
                    where,
                    f"sites[{i}].targets[{j}]",
                    f"target {target.id!r} is in no group of the scheme, so it would hold no share",
                )


def parse_plan(content: bytes | str, *, where: str = "document") -> Plan:
    """Parse and validate a plan document; raise :class:`PlanInvalid` naming the field."""
    raw = content.encode() if isinstance(content, str) else content
    if len(raw) > MAX_PLAN_BYTES:
        raise PlanInvalid(where, "document", f"is larger than {MAX_PLAN_BYTES} bytes")
    try:
        data = tomlsafe.loads(raw)
    except tomlsafe.TomlRejected as exc:
        raise PlanInvalid(where, "document", str(exc)) from None
    f = _Fields(where, data, "", {"format", "id", "description", "sites", "scheme"})
    if f.text("format") != FORMAT:
        raise f.fail("format", f"must be {FORMAT!r}")
    plan = Plan(
        id=f.ident("id"),
        description=f.text("description", required=False, limit=1000),
        sites=tuple(_site(where, p, item) for p, item in f.tables("sites", MAX_SITES)),
        scheme=_scheme(where, data.get("scheme")),
    )
    _cross_check(where, plan)
    return plan


# -- writing --------------------------------------------------------------------------------
def _target_table(target: Target, site: Site) -> dict[str, object]:
    table: dict[str, object] = {"id": target.id, "kind": target.kind.value}
    if target.kind is TargetKind.HSM:
        table["label"] = target.label
        table["serial"] = target.serial
        if target.custodians != site.custodians:
            table["custodians"] = list(target.custodians)
    elif target.kind is TargetKind.CARD:
        table["card"] = target.card
        table["curve"] = (target.curve or CardCurve.CV25519).value
    else:
        table["custodian"] = target.custodians[0]
    return table


def plan_to_toml(plan: Plan) -> str:
    """The canonical TOML text of ``plan`` (parses back to an equal plan)."""
    doc: dict[str, object] = {"format": FORMAT, "id": plan.id}
    if plan.description:
        doc["description"] = plan.description
    if plan.scheme.flat:
        group = plan.scheme.groups[0]
        doc["scheme"] = {"threshold": group.member_threshold, "members": list(group.members)}
    else:
        doc["scheme"] = {
            "group_threshold": plan.scheme.group_threshold,
            "groups": [
                {"name": g.name, "member_threshold": g.member_threshold, "members": list(g.members)}
                for g in plan.scheme.groups
            ],
        }
    doc["sites"] = [
        {
            "name": site.name,
            "location": site.location,
            "custodians": list(site.custodians),
            "targets": [_target_table(t, site) for t in site.targets],
        }
        for site in plan.sites
    ]
    return "# coldvault backup plan (format: docs/backup.md)\n" + tomli_w.dumps(doc)


def build_plan(
    plan_id: str,
    sites: Sequence[Site],
    scheme: Scheme,
    *,
    description: str = "",
) -> Plan:
    """Assemble a plan from values and validate it exactly as a parsed document would be."""
    plan = Plan(plan_id, tuple(sites), scheme, description)
    return parse_plan(plan_to_toml(plan), where=f"{plan_id!r}")


__all__ = [
    "FORMAT",
    "CardCurve",
    "Group",
    "Plan",
    "Scheme",
    "SharePosition",
    "Site",
    "Target",
    "TargetKind",
    "build_plan",
    "parse_plan",
    "plan_to_toml",
]

"""Approver groups: "1 of compliance AND 2 of treasury".

A request's approval may require a number of distinct holders from named groups (the
policy's ``groups`` for the wallet and its amount tier; the roster says who is in which
group).  The requirement is a :class:`GroupRequirement`; the request's total threshold is at
least the sum of its group counts, so each approval fills exactly one *slot*: a slot of a
group its holder belongs to, or one of the ``threshold - sum`` free slots any approver fills.

A card counts only if every counted holder plus this one can still be given distinct slots
(a bipartite matching, so a holder in two groups is placed where it helps).  A card that
cannot is refused before its PIN, naming its groups and the groups still needed
(:class:`~coldvault.quorum.errors.GroupNotNeeded`).  When every slot is filled, every group
has its count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from coldvault.quorum.roster import CardHolder

MAX_GROUP_COUNT = 64
GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@dataclass(frozen=True)
class GroupRequirement:
    """How many distinct approvers each named group must provide, sorted by group name."""

    counts: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        names = [g for g, _ in self.counts]
        if names != sorted(set(names)):
            raise ValueError("group requirements must be sorted by name and unique")
        for group, count in self.counts:
            if not GROUP_NAME_RE.match(group):
                raise ValueError(f"group name {group!r} must be 1-64 of [A-Za-z0-9._-]")
            if not isinstance(count, int) or isinstance(count, bool):
                raise ValueError(f"group {group}: the count must be an integer")
            if not 1 <= count <= MAX_GROUP_COUNT:
                raise ValueError(f"group {group}: the count must be 1..{MAX_GROUP_COUNT}")

    @classmethod
    def of(cls, counts: Mapping[str, int]) -> GroupRequirement:
        return cls(tuple(sorted(counts.items())))

    @classmethod
    def strictest(cls, requirements: Iterable[GroupRequirement]) -> GroupRequirement:
        """For each group, the highest count any of ``requirements`` asks for."""
        merged: dict[str, int] = {}
        for req in requirements:
            for group, count in req.counts:
                merged[group] = max(merged.get(group, 0), count)
        return cls.of(merged)

    def __bool__(self) -> bool:
        return bool(self.counts)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.counts)

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)

    def __str__(self) -> str:
        return describe(self.counts)


#: no group requirement
NO_GROUPS = GroupRequirement()


def describe(counts: Iterable[tuple[str, int]]) -> str:
    """``1 from compliance and 2 from treasury`` (``""`` for none)."""
    parts = [f"{count} from {group}" for group, count in counts]
    return " and ".join(parts)


class GroupQuota:
    """The slots of one request's approvals (see the module docstring)."""

    def __init__(self, requirement: GroupRequirement, threshold: int) -> None:
        if threshold < requirement.total:
            raise ValueError("the threshold is below the sum of the group counts")
        self.requirement = requirement
        self.threshold = threshold
        self._slots: list[str | None] = [g for g, n in requirement.counts for _ in range(n)]
        self._slots += [None] * (threshold - requirement.total)

    def _match(self, holders: Sequence[CardHolder], slots: Sequence[str | None]) -> list[int]:
        """A maximum matching holder -> slot; returns ``owner[slot]`` (-1 = empty)."""
        owner = [-1] * len(slots)

        def fits(h: CardHolder, slot: str | None) -> bool:
            return slot is None or slot in h.groups

        def place(i: int, seen: set[int]) -> bool:
            for s, slot in enumerate(slots):
                if s in seen or not fits(holders[i], slot):
                    continue
                seen.add(s)
                if owner[s] == -1 or place(owner[s], seen):
                    owner[s] = i
                    return True
            return False

        for i in range(len(holders)):
            place(i, set())
        return owner

    def can_count(self, counted: Sequence[CardHolder], holder: CardHolder) -> bool:
        """Can ``holder`` count on top of ``counted`` with every one in a slot of their own?"""
        if not self.requirement:
            return True
        everyone = [*counted, holder]
        owner = self._match(everyone, self._slots)
        return sum(o != -1 for o in owner) == len(everyone)

    def still_needed(self, counted: Sequence[CardHolder]) -> tuple[tuple[str, int], ...]:
        """Per group, how many more of its members are needed (only groups still short)."""
        group_slots = [s for s in self._slots if s is not None]
        owner = self._match(counted, group_slots)
        short: dict[str, int] = {}
        for slot, o in zip(group_slots, owner, strict=True):
            if o == -1 and slot is not None:
                short[slot] = short.get(slot, 0) + 1
        return tuple(sorted(short.items()))


__all__ = ["GROUP_NAME_RE", "NO_GROUPS", "GroupQuota", "GroupRequirement", "describe"]

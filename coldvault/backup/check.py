"""Is a backup plan safe?  Exhaustive, bounded checks, and a proposer of safe plans.

A set of targets *rebuilds* the seed when, counting each distinct SLIP-39 share once, it
completes at least ``group_threshold`` groups (a group is complete with ``member_threshold``
distinct member shares).  :func:`check_plan` refuses a plan when

* ``site-alone``: the targets of one site rebuild the seed;
* ``custodian-alone``: the targets one custodian can open alone rebuild it;
* ``collusion``: some ``2..c`` custodians together can (reported as minimal coalitions);
* ``site-loss``: losing some ``1..k`` sites leaves targets that cannot (minimal site sets).

A custodian can open a card they hold, a paper sheet they keep, and an HSM token they
operate (the plan names its operators; by default every custodian of its site).  Cards of
one person can be merged into one custodian with ``holders`` (card id -> person).

Every subset of at most ``c`` custodians and at most ``k`` sites is tried, so the result is
exact; the number of combinations is bounded (:data:`MAX_COMBINATIONS`) and a larger check
is refused with :class:`PlanCheckTooLarge` rather than run for minutes.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from coldvault.backup.errors import PlanCheckTooLarge, PlanImpossible, PlanRefused
from coldvault.backup.plan import (
    CardCurve,
    Group,
    Plan,
    Scheme,
    Site,
    Target,
    TargetKind,
    build_plan,
)

MAX_COMBINATIONS = 200_000
MAX_COLLUSION = 8
DEFAULT_SURVIVE = 1
DEFAULT_COLLUSION = 1


class Rule(enum.StrEnum):
    SITE_ALONE = "site-alone"
    CUSTODIAN_ALONE = "custodian-alone"
    COLLUSION = "collusion"
    SITE_LOSS = "site-loss"


@dataclass(frozen=True)
class Finding:
    """One way the plan breaks a rule, naming the sites or custodians responsible."""

    rule: Rule
    message: str
    sites: tuple[str, ...] = ()
    custodians: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule.value,
            "message": self.message,
            "sites": list(self.sites),
            "custodians": list(self.custodians),
        }


@dataclass(frozen=True)
class PlanReport:
    """The verdict of :func:`check_plan`: ``ok`` when there is no finding."""

    plan_id: str
    collusion: int
    survive: int
    findings: tuple[Finding, ...]
    combinations_checked: int

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.message for f in self.findings)

    def enforce(self) -> None:
        """Raise :class:`PlanRefused` (with the first reason) unless the plan is ok."""
        if self.findings:
            raise PlanRefused(self.plan_id, self.reasons)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "plan": self.plan_id,
            "collusion": self.collusion,
            "survive": self.survive,
            "combinations_checked": self.combinations_checked,
            "findings": [f.to_dict() for f in self.findings],
        }


# -- the rebuild predicate --------------------------------------------------------------------
class _Shares:
    """The plan reduced to sets: which share each target holds, who can open what."""

    def __init__(self, plan: Plan, holders: Mapping[str, str] | None) -> None:
        self.plan = plan
        self.threshold = plan.scheme.group_threshold
        self.member_thresholds = [g.member_threshold for g in plan.scheme.groups]
        self.share = {t.id: plan.position(t.id) for t in plan.targets}
        self.site_targets = {s.name: frozenset(t.id for t in s.targets) for s in plan.sites}
        person = {c: (holders or {}).get(c, c) for c in plan.custodians}
        reach: dict[str, set[str]] = {}
        for target in plan.targets:
            for custodian in target.custodians:
                reach.setdefault(person[custodian], set()).add(target.id)
        for custodian in plan.custodians:
            reach.setdefault(person[custodian], set())
        self.reach = {who: frozenset(ids) for who, ids in sorted(reach.items())}

    def complete_groups(self, targets: Iterable[str]) -> int:
        members: dict[int, set[int]] = {}
        for target in targets:
            position = self.share[target]
            members.setdefault(position.group, set()).add(position.member)
        return sum(1 for g, have in members.items() if len(have) >= self.member_thresholds[g])

    def rebuilds(self, targets: Iterable[str]) -> bool:
        return self.complete_groups(targets) >= self.threshold


def _combinations(n: int, up_to: int, start: int = 1) -> int:
    return sum(math.comb(n, k) for k in range(start, up_to + 1))


def _and(items: Sequence[str]) -> str:
    quoted = [repr(i) for i in items]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _minimal_sets(
    universe: Sequence[str], up_to: int, bad: Callable[[frozenset[str]], bool]
) -> tuple[list[tuple[str, ...]], int]:
    """Every minimal subset of ``universe`` (size <= ``up_to``) for which ``bad(subset)``."""
    found: list[frozenset[str]] = []
    tried = 0
    result: list[tuple[str, ...]] = []
    for size in range(1, up_to + 1):
        for combo in itertools.combinations(universe, size):
            chosen = frozenset(combo)
            if any(f <= chosen for f in found):
                continue
            tried += 1
            if bad(chosen):
                found.append(chosen)
                result.append(combo)
    return result, tried


def check_plan(
    plan: Plan,
    *,
    collusion: int = DEFAULT_COLLUSION,
    survive: int = DEFAULT_SURVIVE,
    holders: Mapping[str, str] | None = None,
) -> PlanReport:
    """Check ``plan`` against every rule; see the module docstring."""
    if not 1 <= collusion <= MAX_COLLUSION:
        raise ValueError(f"collusion must be 1..{MAX_COLLUSION}")
    if survive < 0:
        raise ValueError("survive must be at least 0")
    shares = _Shares(plan, holders)
    sites = [s.name for s in plan.sites]
    people = list(shares.reach)
    site_budget = _combinations(len(sites), min(survive, len(sites)))
    if site_budget > MAX_COMBINATIONS:
        raise PlanCheckTooLarge(f"the loss of up to {survive} sites", site_budget, MAX_COMBINATIONS)
    people_budget = _combinations(len(people), min(collusion, len(people)))
    if people_budget > MAX_COMBINATIONS:
        raise PlanCheckTooLarge(
            f"coalitions of up to {collusion} custodians", people_budget, MAX_COMBINATIONS
        )
    findings: list[Finding] = []
    tried = 0
    needed = shares.threshold

    for site in sites:
        tried += 1
        held = shares.site_targets[site]
        if shares.rebuilds(held):
            findings.append(
                Finding(
                    Rule.SITE_ALONE,
                    f"Site {site!r} alone can rebuild the seed: its targets complete "
                    f"{shares.complete_groups(held)} groups and {needed} are needed.",
                    sites=(site,),
                )
            )

    for person in people:
        tried += 1
        if shares.rebuilds(shares.reach[person]):
            findings.append(
                Finding(
                    Rule.CUSTODIAN_ALONE,
                    f"Custodian {person!r} alone can rebuild the seed from the targets they can "
                    f"open ({_and(sorted(shares.reach[person]))}).",
                    custodians=(person,),
                )
            )

    if collusion >= 2 and len(people) >= 2:
        lone = {f.custodians[0] for f in findings if f.rule is Rule.CUSTODIAN_ALONE}
        candidates = [p for p in people if p not in lone]

        def coalition_rebuilds(group: frozenset[str]) -> bool:
            reach: set[str] = set()
            for who in group:
                reach |= shares.reach[who]
            return len(group) >= 2 and shares.rebuilds(reach)

        coalitions, count = _minimal_sets(
            candidates, min(collusion, len(candidates)), coalition_rebuilds
        )
        tried += count
        for coalition in coalitions:
            findings.append(
                Finding(
                    Rule.COLLUSION,
                    f"Custodians {_and(coalition)} together can rebuild the seed "
                    f"(collusion bound {collusion}).",
                    custodians=coalition,
                )
            )

    if survive >= len(sites):
        findings.append(
            Finding(
                Rule.SITE_LOSS,
                f"The plan has {len(sites)} site(s), so it cannot survive the loss of {survive}.",
                sites=tuple(sites),
            )
        )
    elif survive >= 1:
        everything = frozenset(shares.share)

        def loss_breaks(lost: frozenset[str]) -> bool:
            gone: set[str] = set()
            for site in lost:
                gone |= shares.site_targets[site]
            return not shares.rebuilds(everything - gone)

        losses, count = _minimal_sets(sites, survive, loss_breaks)
        tried += count
        for lost in losses:
            remaining = everything - {t for s in lost for t in shares.site_targets[s]}
            what = "site" if len(lost) == 1 else "sites"
            findings.append(
                Finding(
                    Rule.SITE_LOSS,
                    f"Losing {what} {_and(lost)} leaves too few shares: the remaining targets "
                    f"complete {shares.complete_groups(remaining)} of the {needed} groups needed.",
                    sites=lost,
                )
            )

    return PlanReport(plan.id, collusion, survive, tuple(findings), tried)


# -- proposals --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SiteRequest:
    """What a proposal knows of a site: its custodians' card ids and its backup token."""

    name: str
    location: str = ""
    custodians: tuple[str, ...] = ()
    token_label: str = ""
    token_serial: str = ""


def _site_plan(request: SiteRequest, custodians_per_site: int) -> Site:
    custodians = request.custodians or tuple(
        f"{request.name}-custodian-{i}" for i in range(1, custodians_per_site + 1)
    )
    label = request.token_label or f"backup-{request.name}"[:32]
    targets = [
        Target(
            f"{request.name}-hsm",
            request.name,
            TargetKind.HSM,
            custodians,
            label=label,
            serial=request.token_serial,
        ),
    ]
    for index, card in enumerate(custodians, start=1):
        targets.append(
            Target(
                f"{request.name}-card-{index}",
                request.name,
                TargetKind.CARD,
                (card,),
                card=card,
                curve=CardCurve.CV25519,
            )
        )
    location = request.location or f"{request.name} (location to be filled in)"
    return Site(request.name, location, custodians, tuple(targets))


def propose_plan(
    sites: Sequence[str | SiteRequest],
    *,
    survive: int = DEFAULT_SURVIVE,
    collusion: int = DEFAULT_COLLUSION,
    plan_id: str = "proposed-plan",
    custodians_per_site: int = 1,
) -> Plan:
    """A plan over ``sites`` that :func:`check_plan` accepts with the same bounds.

    One SLIP-39 group per site, holding a share on the site's backup HSM token and on each
    custodian's card; group threshold ``len(sites) - survive`` (the most that still survives
    ``survive`` lost sites).  The member threshold per site is the smallest that resists
    ``collusion`` custodians; custodians not given are placeholders to replace with roster
    card ids before approval.  Raises :class:`PlanImpossible` when nothing fits.
    """
    requests = [s if isinstance(s, SiteRequest) else SiteRequest(s) for s in sites]
    names = [r.name for r in requests]
    if len(set(names)) != len(names):
        raise PlanImpossible("a site is named twice")
    if not 1 <= custodians_per_site <= 8:
        raise ValueError("custodians_per_site must be 1..8")
    threshold = len(requests) - survive
    if threshold < 2:
        raise PlanImpossible(
            f"surviving the loss of {survive} of {len(requests)} sites leaves fewer than 2 "
            "sites, and a single site must never be able to rebuild the seed; "
            f"add sites (at least {survive + 2})"
        )
    site_plans = [_site_plan(r, custodians_per_site) for r in requests]
    smallest = min(len(s.targets) for s in site_plans)
    for member_threshold in range(1, smallest + 1):
        groups = tuple(
            Group(site.name, member_threshold, tuple(t.id for t in site.targets))
            for site in site_plans
        )
        plan = build_plan(
            plan_id,
            site_plans,
            Scheme(threshold, groups),
            description=(
                f"Proposed: {threshold} of {len(site_plans)} site groups, each "
                f"{member_threshold} of its targets; survives the loss of {survive} site(s); "
                + ("no single custodian" if collusion == 1 else f"no {collusion} custodians")
                + " can rebuild the seed."
            ),
        )
        if check_plan(plan, collusion=collusion, survive=survive).ok:
            return plan
    raise PlanImpossible(
        f"with {len(requests)} sites and these custodians, no member threshold keeps "
        f"{collusion} colluding custodians from rebuilding while surviving the loss of "
        f"{survive} site(s); add custodians per site or sites"
    )


__all__ = [
    "DEFAULT_COLLUSION",
    "DEFAULT_SURVIVE",
    "MAX_COMBINATIONS",
    "Finding",
    "PlanReport",
    "Rule",
    "SiteRequest",
    "check_plan",
    "propose_plan",
]

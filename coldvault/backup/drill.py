"""Restore drills: prove that the surviving sites can rebuild the seed, without moving funds.

:func:`run_drill` takes the plan, the backup record, a scenario ("site B lost"), the sealed
blobs from the surviving sites' envelopes and a :class:`ShareAccess` (the front end: it asks
each custodian to insert their card and type their PIN, or opens a site's token with its
PIN).  It then

1. checks the record belongs to the plan, and the plan to the rules (``plan``);
2. opens the share of every surviving target on its own device (``collect``); a failure
   (missing blob, tampered blob, foreign share, wrong PIN, lockout...) is recorded against
   that target and the drill goes on with the others;
3. rebuilds the seed in memory, or says exactly how many more shares are needed and which
   surviving targets could give them (``rebuild``), and checks the master fingerprint;
4. compares the re-derived accounts with the registered wallets (``compare``);
5. optionally restores the key pool into a fresh HSM token and signs a test digest verified
   against the production keys (``restore``);
6. wipes every share and the seed (``wipe``) and returns a frozen :class:`DrillReport`.

The report holds public data only: which targets and sites were used, how each failed, the
fingerprints, the comparison and the test signatures, and the time of each step.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from coldvault import schema
from coldvault.backup.check import DEFAULT_COLLUSION, DEFAULT_SURVIVE, check_plan
from coldvault.backup.envelope import KeyAgreement
from coldvault.backup.errors import (
    ForeignShare,
    NotEnoughShares,
    RecoveredSeedMismatch,
    RetiredShare,
    ShareMissing,
    WrongShareSet,
)
from coldvault.backup.plan import Plan, Target, TargetKind
from coldvault.backup.record import BackupRecord, open_share
from coldvault.backup.restore import (
    Expectations,
    RestoreResult,
    WalletCheck,
    compare_wallets,
    restore_into,
)
from coldvault.backup.shares import combine, share_facts
from coldvault.crypto import mnemonics, wipe
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import ColdvaultError, InputError
from coldvault.keys.keystore import Keystore

MAX_SCENARIO_BYTES = 16 * 1024


class ScenarioInvalid(InputError):
    """A drill scenario is malformed or names a site or custodian the plan does not have."""

    code = "backup-scenario-invalid"

    def __init__(self, problem: str) -> None:
        super().__init__(f"The drill scenario is invalid: {problem}.")
        self.problem = problem


@dataclass(frozen=True)
class DrillScenario:
    """What is lost: whole sites, and custodians (with their cards and paper)."""

    name: str
    lost_sites: frozenset[str] = frozenset()
    lost_custodians: frozenset[str] = frozenset()

    @classmethod
    def site_lost(cls, *sites: str) -> DrillScenario:
        names = ", ".join(sites)
        return cls(f"{names} lost" if sites else "nothing lost", frozenset(sites))

    def check(self, plan: Plan) -> None:
        known_sites = {s.name for s in plan.sites}
        known_people = set(plan.custodians)
        for site in sorted(self.lost_sites - known_sites):
            raise ScenarioInvalid(f"the plan has no site {site!r}")
        for who in sorted(self.lost_custodians - known_people):
            raise ScenarioInvalid(f"the plan has no custodian {who!r}")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "lost_sites": sorted(self.lost_sites),
            "lost_custodians": sorted(self.lost_custodians),
        }


_NAMES = schema.Items(schema.Text(max_len=64), max_items=64)
#: A scenario file's declared shape; nothing else is accepted.
SCENARIO_SCHEMA = schema.Table(
    {"name": schema.Text(max_len=200), "lost_sites": _NAMES, "lost_custodians": _NAMES},
    required=frozenset({"name"}),
)


def parse_scenario(content: bytes) -> DrillScenario:
    """A scenario file: ``name = "..."``, ``lost_sites = [...]``, ``lost_custodians = [...]``."""
    if len(content) > MAX_SCENARIO_BYTES:
        raise ScenarioInvalid("the file is too large")
    try:
        data = schema.load_toml(content, SCENARIO_SCHEMA)
    except schema.SchemaViolation as exc:
        at = f"{exc.where}: " if exc.where else ""
        raise ScenarioInvalid(at + exc.problem) from None
    name = data["name"]
    if not name:
        raise ScenarioInvalid("name must be a non-empty string")
    lists = {}
    for key in ("lost_sites", "lost_custodians"):
        value = data.get(key, [])
        if not all(0 < len(v) for v in value):
            raise ScenarioInvalid(f"{key} must list names")
        lists[key] = frozenset(value)
    return DrillScenario(name, lists["lost_sites"], lists["lost_custodians"])


def named_scenario(plan: Plan, name: str) -> DrillScenario:
    """A scenario by name: ``"site B lost"``, ``"site-b, site-c lost"``, ``"FFFFC0DE0002
    lost"`` (a custodian), ``"nothing lost"``.  Site names match case-insensitively with
    spaces read as hyphens."""
    text = " ".join(name.split())
    if not text.lower().endswith(" lost"):
        raise ScenarioInvalid(f"{name!r} is not a scenario file or a name like 'site B lost'")
    body = text[: -len(" lost")]
    if body.lower() == "nothing":
        return DrillScenario(text)
    sites = {s.name.lower(): s.name for s in plan.sites}
    people = {c.upper(): c for c in plan.custodians}
    lost_sites, lost_people = set(), set()
    for part in body.replace(" and ", ",").split(","):
        key = part.strip()
        if key.lower().replace(" ", "-") in sites:
            lost_sites.add(sites[key.lower().replace(" ", "-")])
        elif key.upper() in people:
            lost_people.add(people[key.upper()])
        else:
            raise ScenarioInvalid(f"the plan has no site or custodian {key!r}")
    return DrillScenario(text, frozenset(lost_sites), frozenset(lost_people))


def surviving(plan: Plan, scenario: DrillScenario) -> tuple[Target, ...]:
    """Targets the scenario leaves reachable: not at a lost site, and with a custodian left
    who can open them (a card's holder, a paper's keeper, one of a token's operators)."""
    return tuple(
        t
        for t in plan.targets
        if t.site not in scenario.lost_sites
        and any(c not in scenario.lost_custodians for c in t.custodians)
    )


class ShareAccess(Protocol):
    """The front end's half of a drill: reach a surviving target's device, with its PIN."""

    def open(self, target: Target) -> AbstractContextManager[KeyAgreement]:
        """A token logged in with its PIN, or a card with its user PIN verified (mode 82)."""
        ...

    def typed_words(self, target: Target) -> bytearray:
        """A paper share's words, typed by its keeper (UTF-8; wiped by the drill)."""
        ...


# -- the report -------------------------------------------------------------------------------
#: What each :attr:`ShareOutcome.status` means on a record.
OUTCOME_TEXT = {"used": "used", "failed": "refused", "lost": "not reachable in the scenario"}


@dataclass(frozen=True)
class ShareOutcome:
    """What happened to one target's share: ``used``, ``failed`` (refused, with the error)
    or ``lost`` (not reachable in the scenario).  ``group`` and ``member`` count from 0,
    as in the plan's scheme; :attr:`position` says them as people count (from 1)."""

    target: str
    site: str
    kind: str
    custodians: tuple[str, ...]
    group: int
    member: int
    status: str
    error: str = ""
    message: str = ""
    share_set: int = 0
    group_name: str = ""

    @property
    def position(self) -> str:
        """``set 1234, group 2 (sites), member 1``."""
        named = f" ({self.group_name})" if self.group_name else ""
        return f"set {self.share_set}, group {self.group + 1}{named}, member {self.member + 1}"

    @property
    def outcome(self) -> str:
        """``used``, ``refused: <why>`` or ``not reachable in the scenario``."""
        text = OUTCOME_TEXT.get(self.status, self.status)
        return f"{text}: {self.message}" if self.status == "failed" and self.message else text

    def record_entry(self) -> dict[str, object]:
        """The transcript's entry for this share (public data; what a printed record lists)."""
        return {
            "target": self.target,
            "custodians": list(self.custodians),
            "site": self.site,
            "held_on": self.kind,
            "position": self.position,
            "outcome": self.outcome,
            "error": self.error,
        }

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "site": self.site,
            "kind": self.kind,
            "custodians": list(self.custodians),
            "share_set": self.share_set,
            "group": self.group,
            "group_name": self.group_name,
            "member": self.member,
            "position": self.position,
            "status": self.status,
            "outcome": self.outcome,
            "error": self.error,
            "message": self.message,
        }


@dataclass(frozen=True)
class StepTime:
    step: str
    seconds: float


@dataclass(frozen=True)
class DrillReport:
    """The outcome of a drill (public data only)."""

    scenario: DrillScenario
    plan_id: str
    record_sha256: str
    share_set: int
    started_at: int
    passed: bool
    reasons: tuple[str, ...]
    shares: tuple[ShareOutcome, ...]
    expected_fingerprint: str
    rebuilt_fingerprint: str
    wallets: tuple[WalletCheck, ...] = ()
    restore: RestoreResult | None = None
    steps: tuple[StepTime, ...] = field(default=())

    @property
    def rebuilt(self) -> bool:
        """The surviving shares rebuilt the recorded seed (even if a target failed)."""
        return bool(self.rebuilt_fingerprint) and (
            self.rebuilt_fingerprint == self.expected_fingerprint
        )

    @property
    def sites_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.site for s in self.shares if s.status == "used"))

    def to_dict(self) -> dict[str, object]:
        return {
            "format": "coldvault-drill-report/1",
            "scenario": self.scenario.to_dict(),
            "plan": self.plan_id,
            "backup_record_sha256": self.record_sha256,
            "share_set": self.share_set,
            "started_at": self.started_at,
            "passed": self.passed,
            "rebuilt": self.rebuilt,
            "reasons": list(self.reasons),
            "sites_used": list(self.sites_used),
            "shares": [s.to_dict() for s in self.shares],
            "expected_fingerprint": self.expected_fingerprint,
            "rebuilt_fingerprint": self.rebuilt_fingerprint,
            "wallets": [w.to_dict() for w in self.wallets],
            "restore": self.restore.to_dict() if self.restore else None,
            "steps": [{"step": s.step, "seconds": round(s.seconds, 3)} for s in self.steps],
        }


# -- the drill --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestoreRequest:
    """Disaster recovery into a fresh token (logged in) as part of the drill."""

    keystore: Keystore
    keep_keys: bool = False


class _Timer:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.steps: list[StepTime] = []

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = self.clock()
        try:
            yield
        finally:
            self.steps.append(StepTime(name, self.clock() - start))


def _outcome(
    plan: Plan, record: BackupRecord, target: Target, status: str, err: ColdvaultError | None = None
) -> ShareOutcome:
    position = plan.position(target.id)
    return ShareOutcome(
        target.id,
        target.site,
        target.kind.value,
        target.custodians,
        position.group,
        position.member,
        status,
        err.code if err else "",
        err.message if err else "",
        record.share_set.identifier,
        plan.scheme.groups[position.group].name,
    )


def _read_paper(
    record: BackupRecord, target: Target, access: ShareAccess, retired: Mapping[int, str]
) -> bytearray:
    words = access.typed_words(target)
    try:
        facts = share_facts(words)
    except mnemonics.ShareError:
        wipe(words)
        raise
    if facts.identifier in retired and facts.identifier != record.share_set.identifier:
        wipe(words)
        raise RetiredShare(target.id, target.site, facts.identifier, retired[facts.identifier])
    entry = record.entry(target.id)
    expected = (record.share_set.identifier, entry.group, entry.member)
    if (facts.identifier, facts.group, facts.member) != expected:
        wipe(words)
        raise ForeignShare(target.id, target.site, "the typed words are another share")
    return words


def _needs(plan: Plan, used: Sequence[str], available: Sequence[Target]) -> NotEnoughShares | None:
    """None when ``used`` suffices; else the error saying what is missing, and from where."""
    scheme = plan.scheme
    have: dict[int, set[int]] = {}
    for target_id in used:
        position = plan.position(target_id)
        have.setdefault(position.group, set()).add(position.member)
    complete = [
        g for g, group in enumerate(scheme.groups) if len(have.get(g, ())) >= group.member_threshold
    ]
    if len(complete) >= scheme.group_threshold:
        return None
    needs = []
    used_set = set(used)
    for g, group in enumerate(scheme.groups):
        if g in complete:
            continue
        missing = group.member_threshold - len(have.get(g, ()))
        sources = [
            f"{t.id} at {t.site} ({', '.join(t.custodians)})"
            for t in available
            if t.id in group.members
            and t.id not in used_set
            and plan.position(t.id).member not in have.get(g, set())
        ]
        where = "from " + " or ".join(sources) if sources else "and no surviving target holds it"
        needs.append(f"group {group.name!r} needs {missing} more share(s) {where}")
    return NotEnoughShares(scheme.group_threshold, len(complete), needs)


def _open_one(
    record: BackupRecord,
    target: Target,
    blobs: Mapping[str, bytes],
    access: ShareAccess,
    retired: Mapping[int, str],
) -> bytearray:
    """One surviving target's share, opened on its own device (or typed, for paper)."""
    if target.kind is TargetKind.PAPER:
        return _read_paper(record, target, access, retired)
    blob = blobs.get(target.id)
    if blob is None:
        raise ShareMissing(target.id, target.site)
    try:
        with access.open(target) as device:
            return open_share(record, target.id, blob, device)
    except WrongShareSet as err:
        if err.found in retired:
            raise RetiredShare(target.id, target.site, err.found, retired[err.found]) from None
        raise


def _collect(
    plan: Plan,
    record: BackupRecord,
    available: Sequence[Target],
    blobs: Mapping[str, bytes],
    access: ShareAccess,
    retired: Mapping[int, str],
    words: dict[str, bytearray],
) -> tuple[list[ShareOutcome], list[str]]:
    """Open every surviving target's share into ``words``; a failing target is recorded
    (outcome and reason) and the others are still tried."""
    outcomes: list[ShareOutcome] = []
    reasons: list[str] = []
    for target in plan.targets:
        if target not in available:
            outcomes.append(_outcome(plan, record, target, "lost"))
            continue
        try:
            words[target.id] = _open_one(record, target, blobs, access, retired)
        except ColdvaultError as err:
            outcomes.append(_outcome(plan, record, target, "failed", err))
            reasons.append(f"Target {target.id!r} at {target.site!r}: {err.message}")
            continue
        outcomes.append(_outcome(plan, record, target, "used"))
    return outcomes, reasons


def rebuild_seed(
    plan: Plan,
    record: BackupRecord,
    scenario: DrillScenario,
    blobs: Mapping[str, bytes],
    access: ShareAccess,
    *,
    passphrase: str = "",
    retired: Mapping[int, str] | None = None,
) -> tuple[bytearray, list[ShareOutcome]]:
    """The seed rebuilt in memory from the surviving targets (to wipe), and what each
    target gave; raises :class:`NotEnoughShares` (what is missing and from where), the
    combine error, or :class:`RecoveredSeedMismatch`.  Used by a re-sharing."""
    scenario.check(plan)
    words: dict[str, bytearray] = {}
    try:
        available = surviving(plan, scenario)
        outcomes, _reasons = _collect(plan, record, available, blobs, access, retired or {},
                                      words)  # fmt: skip
        shortfall = _needs(plan, list(words), available)
        if shortfall is not None:
            raise shortfall
        secret = combine(list(words.values()), passphrase)
    finally:
        for buf in words.values():
            wipe(buf)
    rebuilt = master_fingerprint(secret).hex()
    if rebuilt != record.master_fingerprint:
        wipe(secret)
        raise RecoveredSeedMismatch(record.master_fingerprint, rebuilt)
    return secret, outcomes


def run_drill(
    plan: Plan,
    record: BackupRecord,
    scenario: DrillScenario,
    blobs: Mapping[str, bytes],
    access: ShareAccess,
    *,
    passphrase: str = "",
    expected: Expectations | None = None,
    restore: RestoreRequest | None = None,
    collusion: int = DEFAULT_COLLUSION,
    survive: int = DEFAULT_SURVIVE,
    clock: Callable[[], float] = time.monotonic,
    retired: Mapping[int, str] | None = None,
) -> DrillReport:
    """Run a drill; see the module docstring.  Never raises for a failing drill (the report
    says why); raises only for a programming mistake or an invalid scenario.  ``retired``:
    share set identifier -> how it was retired (a share of such a set is refused, naming
    the "retired set")."""
    retired = retired or {}
    scenario.check(plan)
    timer = _Timer(clock)
    started = int(time.time())
    reasons: list[str] = []
    outcomes: list[ShareOutcome] = []
    words: dict[str, bytearray] = {}
    secret = bytearray()
    rebuilt = ""
    wallets: tuple[WalletCheck, ...] = ()
    restored: RestoreResult | None = None
    try:
        with timer.step("plan"):
            if (record.plan_id, record.plan_sha256) != (plan.id, plan.sha256):
                reasons.append(
                    f"Plan violation: the backup record was written for plan {record.plan_id!r} "
                    f"(SHA-256 {record.plan_sha256[:16]}...), not for this plan {plan.id!r} "
                    f"(SHA-256 {plan.sha256[:16]}...)."
                )
            verdict = check_plan(plan, collusion=collusion, survive=survive)
            reasons += [f"Plan violation: {message}" for message in verdict.reasons]

            own = record.share_set.identifier
            if own in retired:
                reasons.append(
                    f"This backup's share set {own} is a retired set ({retired[own]}): drill "
                    "the backup that replaced it."
                )

        available = surviving(plan, scenario)
        with timer.step("collect"):
            outcomes, failed = _collect(plan, record, available, blobs, access, retired, words)
            reasons += failed

        with timer.step("rebuild"):
            shortfall = _needs(plan, list(words), available)
            if shortfall is not None:
                reasons.append(shortfall.message)
            else:
                try:
                    secret = combine(list(words.values()), passphrase)
                except ColdvaultError as err:
                    reasons.append(err.message)
                if secret:
                    rebuilt = master_fingerprint(secret).hex()
                    if rebuilt != record.master_fingerprint:
                        reasons.append(
                            RecoveredSeedMismatch(record.master_fingerprint, rebuilt).message
                        )

        seed_ok = bool(secret) and rebuilt == record.master_fingerprint
        if seed_ok and expected is not None:
            with timer.step("compare"):
                wallets = compare_wallets(secret, expected)
                for check in wallets:
                    if not check.ok:
                        reasons.append(
                            f"Wallet {check.name!r} does not match the rebuilt seed "
                            f"(fingerprint {'ok' if check.fingerprint_ok else 'differs'}, "
                            f"xpub {_word(check.xpub_ok)}, addresses {_word(check.addresses_ok)})."
                        )
                if not wallets:
                    reasons.append("No registered wallet belongs to the rebuilt seed.")

        if seed_ok and restore is not None:
            if expected is None:
                raise ValueError("a restore needs the expected wallets (provisioning record)")
            with timer.step("restore"):
                try:
                    restored = restore_into(
                        restore.keystore,
                        secret,
                        expected,
                        challenge=secrets.token_bytes(16),
                        keep_keys=restore.keep_keys,
                    )
                except ColdvaultError as err:
                    reasons.append(f"Restore into a fresh token failed: {err.message}")
                else:
                    if not restored.ok:
                        reasons.append(
                            "A test signature of the restored token does not verify against "
                            "the production public key."
                        )
    finally:
        with timer.step("wipe"):
            for buf in words.values():
                wipe(buf)
            words.clear()
            wipe(secret)
    return DrillReport(
        scenario=scenario,
        plan_id=plan.id,
        record_sha256=record.sha256,
        share_set=record.share_set.identifier,
        started_at=started,
        passed=not reasons and bool(rebuilt),
        reasons=tuple(reasons),
        shares=tuple(outcomes),
        expected_fingerprint=record.master_fingerprint,
        rebuilt_fingerprint=rebuilt,
        wallets=wallets,
        restore=restored,
        steps=tuple(timer.steps),
    )


def _word(value: bool | None) -> str:
    return "not compared" if value is None else ("ok" if value else "differs")


__all__ = [
    "DrillReport",
    "DrillScenario",
    "RestoreRequest",
    "ScenarioInvalid",
    "ShareAccess",
    "ShareOutcome",
    "StepTime",
    "named_scenario",
    "parse_scenario",
    "rebuild_seed",
    "run_drill",
    "surviving",
]

"""Drill history: the stored drill reports, their integrity, and the overdue warning.

A drill's report is ``<stem>.report.json`` beside its transcript ``<stem>.jsonl``; the
transcript's ``report-written`` entry holds the report's SHA-256, so
:func:`verify_report` checks the report against a verified transcript.
:func:`drill_history` lists the reports and says whether the last passing drill is older
than the policy's interval (default 180 days).

A drill is also recorded in the appliance's audit trail (:func:`append_to_trail`: a
``ceremony`` entry with ``"ceremony": "drill"``, the report's SHA-256 and pass/fail);
:func:`trail_history` reads those entries, which is how the appliance knows at start-up
whether a drill is overdue.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault import schema
from coldvault.backup.approvals import REPORT_KIND, verify_signed
from coldvault.errors import InputError, Refused
from coldvault.policy.rules import DEFAULT_DRILL_INTERVAL_DAYS
from coldvault.quorum.roster import Roster
from coldvault.records.audit import AUDIT, AuditEntry, AuditLog
from coldvault.records.chain import walk
from coldvault.records.transcript import read_entries, verify

REPORT_SUFFIX = ".report.json"
REPORT_FORMAT = "coldvault-drill-report/1"
DEFAULT_INTERVAL_DAYS = DEFAULT_DRILL_INTERVAL_DAYS
#: the audit trail's event for a drill (with ``"ceremony": "drill"`` in its fields)
TRAIL_EVENT = "ceremony"
MAX_REPORT_BYTES = 1024 * 1024
DAY = 86_400


class DrillReportInvalid(InputError):
    """A drill report does not verify: unreadable, malformed, or not the one its
    transcript recorded."""

    code = "drill-report-invalid"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"The drill report {path} does not verify: {problem}.")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class StoredReport:
    """One stored drill report (public summary)."""

    file: str
    scenario: str
    plan: str
    started_at: int
    passed: bool
    sites_used: tuple[str, ...]
    sha256: str

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "scenario": self.scenario,
            "plan": self.plan,
            "started_at": self.started_at,
            "passed": self.passed,
            "sites_used": list(self.sites_used),
            "sha256": self.sha256,
        }


def read_report(path: Path) -> StoredReport:
    """Parse a stored report (bounded); raises :class:`DrillReportInvalid`."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_REPORT_BYTES + 1)
    except OSError as exc:
        raise DrillReportInvalid(str(path), f"it cannot be read ({exc.strerror})") from None
    if len(data) > MAX_REPORT_BYTES:
        raise DrillReportInvalid(str(path), "it is too large")
    try:
        doc: Any = schema.parse_json(data)  # bounded nesting, UTF-8
        if doc.get("format") != REPORT_FORMAT:
            raise DrillReportInvalid(str(path), f"its format is not {REPORT_FORMAT}")
        return StoredReport(
            file=str(path),
            scenario=str(doc["scenario"]["name"]),
            plan=str(doc["plan"]),
            started_at=int(doc["started_at"]),
            passed=doc["passed"] is True,
            sites_used=tuple(str(s) for s in doc["sites_used"]),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise DrillReportInvalid(str(path), "it is not a drill report") from None


def transcript_of(report: Path) -> Path:
    return report.with_name(report.name.removesuffix(REPORT_SUFFIX) + ".jsonl")


@dataclass(frozen=True)
class VerifiedReport:
    report: StoredReport
    transcript: str
    ceremony_id: str
    witnesses: tuple[str, ...]
    #: the admins whose card signatures on the report verified (empty without a roster)
    signed_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": True,
            **self.report.to_dict(),
            "transcript": self.transcript,
            "ceremony_id": self.ceremony_id,
            "witnesses": list(self.witnesses),
            "signed_by": list(self.signed_by),
        }


def verify_report(
    path: Path,
    transcript: Path | None = None,
    *,
    roster: Roster | None = None,
    min_witnesses: int = 0,
) -> VerifiedReport:
    """The report parses, its transcript verifies (chain, close, witnesses) and records
    exactly this report's SHA-256.  With ``roster``, the report must also carry the admin
    quorum's card signatures (:func:`~coldvault.backup.approvals.verify_signed`: a missing,
    forged or non-admin signature is refused with its own error) and the witnesses must be
    active cards of that roster."""
    report = read_report(path)
    signed_by: tuple[str, ...] = ()
    if roster is not None:
        signed_by = tuple(a.holder for a in verify_signed(path, REPORT_KIND, roster))
    transcript = transcript or transcript_of(path)
    if not transcript.is_file():
        raise DrillReportInvalid(str(path), f"its transcript {transcript} is missing")
    result = verify(transcript, roster=roster, min_witnesses=min_witnesses)
    if result.ceremony != "drill" or result.status != "completed":
        raise DrillReportInvalid(str(path), "its transcript is not a completed drill")
    recorded = [
        e.get("data", {}).get("report_sha256")
        for e in read_entries(transcript)
        if e.get("step") == "report-written"
    ]
    if recorded != [report.sha256]:
        raise DrillReportInvalid(
            str(path), "its SHA-256 is not the one the drill's transcript recorded"
        )
    return VerifiedReport(
        report,
        str(transcript),
        result.ceremony_id,
        tuple(w.get("holder", "") for w in result.witnesses),
        signed_by,
    )


@dataclass(frozen=True)
class DrillHistory:
    reports: tuple[StoredReport, ...]
    unreadable: tuple[str, ...]
    interval_days: int
    now: int

    @property
    def last_passed(self) -> StoredReport | None:
        passed = [r for r in self.reports if r.passed]
        return max(passed, key=lambda r: r.started_at) if passed else None

    @property
    def overdue(self) -> bool:
        last = self.last_passed
        return last is None or self.now - last.started_at > self.interval_days * DAY

    @property
    def warning(self) -> str:
        if not self.overdue:
            return ""
        last = self.last_passed
        if last is None:
            return "No restore drill has passed yet: run one (coldvault drill run)."
        days = (self.now - last.started_at) // DAY
        return (
            f"The last passing restore drill ({last.scenario!r}) was {days} days ago, more "
            f"than the {self.interval_days}-day interval: run one (coldvault drill run)."
        )

    def to_dict(self) -> dict[str, object]:
        last = self.last_passed
        return {
            "ok": True,
            "reports": [r.to_dict() for r in self.reports],
            "unreadable": list(self.unreadable),
            "interval_days": self.interval_days,
            "last_passed": last.to_dict() if last else None,
            "overdue": self.overdue,
            "warning": self.warning,
        }


def drill_history(
    directory: Path, *, interval_days: int = DEFAULT_INTERVAL_DAYS, now: int | None = None
) -> DrillHistory:
    """Every report in ``directory`` (oldest first); unreadable ones are named, not used."""
    reports, bad = [], []
    paths = sorted(directory.glob(f"*{REPORT_SUFFIX}")) if directory.is_dir() else []
    for path in paths:
        try:
            reports.append(read_report(path))
        except DrillReportInvalid:
            bad.append(str(path))
    return _history(reports, bad, interval_days, now)


def _history(
    reports: list[StoredReport], bad: list[str], interval_days: int, now: int | None
) -> DrillHistory:
    if interval_days < 1:
        raise ValueError("interval_days must be at least 1")
    reports.sort(key=lambda r: r.started_at)
    return DrillHistory(
        tuple(reports), tuple(bad), interval_days, int(time.time()) if now is None else now
    )


def check_trail_free(trail: Path) -> None:
    """Before a drill collects any share: the trail exists (:class:`DrillTrailMissing`) and
    no other process holds it (:class:`DrillTrailBusy`: the running appliance keeps its
    trail locked, and the drill must not wait until its end to find out).  Only a probe:
    the lock is the one :class:`~coldvault.records.audit.AuditLog` takes, released here at
    once; :func:`append_to_trail` takes it again to append."""
    if not trail.is_file():
        raise DrillTrailMissing(str(trail))
    fd = os.open(trail, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise DrillTrailBusy(str(trail)) from None
    finally:
        os.close(fd)  # closing the descriptor releases the probe's lock


def append_to_trail(trail: Path, fields: dict[str, Any]) -> AuditEntry:
    """Append one drill (public fields: plan, scenario, started_at, passed, report_file,
    report_sha256...) to the appliance's audit trail, durably.  The trail must exist: it
    is the appliance's, never started here."""
    if not trail.is_file():
        raise DrillTrailMissing(str(trail))
    with AuditLog(trail) as log:
        return log.append(TRAIL_EVENT, {"ceremony": "drill", **fields})


def trail_history(
    trail: Path, *, interval_days: int = DEFAULT_INTERVAL_DAYS, now: int | None = None
) -> DrillHistory:
    """The drills recorded in an audit trail (read, not verified: the appliance verifies
    its trail before it asks), oldest first."""
    reports = []
    for line in walk(trail, AUDIT) if trail.is_file() else ():
        entry = line.entry
        fields = entry.get("fields", {})
        if entry.get("event") != TRAIL_EVENT or fields.get("ceremony") != "drill":
            continue
        try:
            reports.append(
                StoredReport(
                    file=str(fields.get("report_file", "")),
                    scenario=str(fields.get("scenario", "")),
                    plan=str(fields.get("plan", "")),
                    started_at=int(fields["started_at"]),
                    passed=fields.get("passed") is True,
                    sites_used=tuple(str(s) for s in fields.get("sites_used", ())),
                    sha256=str(fields.get("report_sha256", "")),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue  # not a drill this version wrote: it proves nothing
    return _history(reports, [], interval_days, now)


class DrillTrailMissing(InputError):
    """The appliance audit trail a drill is to be recorded in does not exist."""

    code = "drill-trail-missing"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"The appliance audit trail {path} does not exist: give the audit.jsonl in the "
            "state_dir of the appliance configuration (the drill never starts a new trail)."
        )
        self.path = path


class DrillTrailBusy(Refused):
    """The appliance audit trail is held by another process: the appliance is running."""

    code = "drill-trail-busy"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"The appliance audit trail {path} is in use by another process (the appliance is "
            "running); stop the appliance, then run the drill. No share was collected."
        )
        self.path = path


# -- retired share sets -----------------------------------------------------------------------
RETIRED_FILE = "retired-sets.json"
RETIRED_FORMAT = "coldvault-retired-sets/1"


@dataclass(frozen=True)
class RetiredSet:
    """A share set a re-sharing replaced: public facts, and what was wiped where."""

    share_set: int
    record_sha256: str
    master_fingerprint: str
    retired_at: int
    replaced_by_set: int
    replaced_by_record: str
    lost: dict[str, Any]
    wiped: dict[str, str]

    @property
    def detail(self) -> str:
        day = time.strftime("%Y-%m-%d", time.gmtime(self.retired_at))
        return f"retired on {day} by a re-sharing, replaced by set {self.replaced_by_set}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "share_set": self.share_set,
            "record_sha256": self.record_sha256,
            "master_fingerprint": self.master_fingerprint,
            "retired_at": self.retired_at,
            "replaced_by": {"share_set": self.replaced_by_set,
                            "record_sha256": self.replaced_by_record},
            "lost": self.lost,
            "wiped": self.wiped,
        }  # fmt: skip


def read_retired(directory: Path) -> tuple[RetiredSet, ...]:
    """The retired sets a backup directory knows of (its own, if it was retired, and those
    its set replaced); a malformed file is refused, never ignored."""
    path = directory / RETIRED_FILE
    if not path.is_file():
        return ()
    try:
        doc: Any = schema.parse_json(path.read_bytes()[:MAX_REPORT_BYTES])
        if doc.get("format") != RETIRED_FORMAT:
            raise ValueError("format")
        return tuple(
            RetiredSet(
                share_set=int(e["share_set"]), record_sha256=str(e["record_sha256"]),
                master_fingerprint=str(e["master_fingerprint"]),
                retired_at=int(e["retired_at"]),
                replaced_by_set=int(e["replaced_by"]["share_set"]),
                replaced_by_record=str(e["replaced_by"]["record_sha256"]),
                lost=dict(e["lost"]), wiped={str(k): str(v) for k, v in e["wiped"].items()},
            )  # fmt: skip
            for e in doc["sets"]
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # SchemaViolation too
        raise RetiredSetsInvalid(str(path)) from None


def retired_sets(directory: Path) -> dict[int, str]:
    """Share set identifier -> how it was retired, for :func:`~coldvault.backup.drill.run_drill`."""
    return {r.share_set: r.detail for r in read_retired(directory)}


def write_retired(directory: Path, sets: tuple[RetiredSet, ...]) -> Path:
    """(Re)write ``retired-sets.json`` in ``directory`` durably (atomic replace)."""
    path = directory / RETIRED_FILE
    tmp = path.with_name(path.name + ".tmp")
    data = {"format": RETIRED_FORMAT, "sets": [r.to_dict() for r in sets]}
    with tmp.open("w") as f:
        f.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


class RetiredSetsInvalid(InputError):
    """A backup directory's list of retired sets cannot be read."""

    code = "retired-sets-invalid"

    def __init__(self, path: str) -> None:
        super().__init__(f"The list of retired share sets {path} is malformed or unreadable.")
        self.path = path


__all__ = [
    "DEFAULT_INTERVAL_DAYS",
    "RETIRED_FILE",
    "RetiredSet",
    "RetiredSetsInvalid",
    "read_retired",
    "retired_sets",
    "write_retired",
    "DrillTrailBusy",
    "DrillTrailMissing",
    "append_to_trail",
    "check_trail_free",
    "trail_history",
    "REPORT_FORMAT",
    "REPORT_SUFFIX",
    "DrillHistory",
    "DrillReportInvalid",
    "StoredReport",
    "VerifiedReport",
    "drill_history",
    "read_report",
    "transcript_of",
    "verify_report",
]

"""``drill run``: a restore drill with the people at the console
(:func:`coldvault.backup.run_drill` behind a console :class:`ShareAccess`).

Each surviving target is reached through the front end's :class:`ShareDevices`: a
custodian inserts their card and types their own user PIN, a token's operator types the
token's user PIN; a paper share is typed by its keeper (hidden).  Optionally the key pool
is restored into a fresh token (its PIN typed by the drill lead) and test signatures are
verified against the production keys.  The report (public data only) is written as
``<stem>.report.json`` beside the drill's transcript ``<stem>.jsonl`` in the reports
directory; the transcript records the report's SHA-256, and the drill quorum's witness
cards sign the closed transcript (and so the report).

With a roster, the backup record must carry the admin quorum's signatures before anything
is asked of anyone, and the admin quorum signs the report
(``<stem>.report.json.approvals.json``, :mod:`coldvault.backup.approvals`).  With the
appliance's audit trail, a ``ceremony`` entry (drill, report SHA-256, pass/fail) is
appended to it once the report is written and signed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.backup.approvals import RECORD_KIND, REPORT_KIND, verify_signed
from coldvault.backup.check import DEFAULT_COLLUSION, DEFAULT_SURVIVE
from coldvault.backup.drill import DrillReport, DrillScenario, RestoreRequest, run_drill
from coldvault.backup.envelope import KeyAgreement
from coldvault.backup.history import (
    REPORT_SUFFIX,
    append_to_trail,
    check_trail_free,
    retired_sets,
)
from coldvault.backup.plan import Plan, Target
from coldvault.backup.record import parse_record
from coldvault.backup.restore import expectations_from_provisioning
from coldvault.ceremonies.devices import ShareDevices, open_target
from coldvault.ceremonies.hardware import Cards, witness_signers
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import (
    MAX_WITNESSES,
    CeremonyParams,
    ParameterError,
    check_int,
    check_type,
)
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.ceremonies.sharding import RECORD_FILE, admin_sign_file, load_backup
from coldvault.keys.keystore import Keystore
from coldvault.quorum.roster import Roster
from coldvault.records.printable import SHARE_STEP


class ConsoleShareAccess:
    """:class:`coldvault.backup.drill.ShareAccess` through the operator and the devices."""

    def __init__(self, op: Operator, devices: ShareDevices, plan_id: str) -> None:
        self._op = op
        self._devices = devices
        self._plan_id = plan_id

    def open(self, target: Target) -> AbstractContextManager[KeyAgreement]:
        self._op.info(f"Target {target.id} at {target.site} ({', '.join(target.custodians)}).")
        return open_target(self._op, self._devices, self._plan_id, target, "the drill")

    def typed_words(self, target: Target) -> bytearray:
        words = self._op.secret(f"Share words of {target.id} at {target.site}, typed by its keeper")
        try:
            return bytearray(" ".join(words.split()).encode())
        finally:
            del words


class FreshToken:
    """Where a drill restores the key pool: a token opened by label with its user PIN."""

    def __init__(self, label: str, opener: Any) -> None:
        self.label = label
        self._opener = opener  # (label, pin) -> context manager of a logged-in Keystore

    @contextmanager
    def open(self, op: Operator) -> Iterator[Keystore]:
        pin = op.secret(f"User PIN of the fresh token {self.label} (restore)")
        try:
            manager = self._opener(self.label, pin)
        finally:
            del pin
        with manager as keystore:
            yield keystore


@dataclass(frozen=True, kw_only=True)
class RestoreDrill(CeremonyParams):
    """Parameters of ``drill run``: the plan, the backup directory (record and the sealed
    shares of the surviving sites' envelopes), the scenario, where reports go, and the
    public provisioning record to compare the rebuilt keys with (needed for a restore).

    ``roster``: the record's admin signatures are checked against it and its admin quorum
    signs the report (witnesses, if any, are active cards of it).  ``audit_trail``: the
    appliance's audit trail (``<state dir>/audit.jsonl``) the drill is appended to."""

    plan: Plan
    backup_dir: Path
    scenario: DrillScenario
    reports_dir: Path
    provisioning: bytes | None = None
    use_passphrase: bool = False
    collusion: int = DEFAULT_COLLUSION
    survive: int = DEFAULT_SURVIVE
    witnesses: int = 0
    roster: Roster | None = None
    audit_trail: Path | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("plan", self.plan, Plan)
        check_type("scenario", self.scenario, DrillScenario)
        if self.audit_trail is not None:
            check_type("audit_trail", self.audit_trail, Path)
        check_type("backup_dir", self.backup_dir, Path)
        check_type("reports_dir", self.reports_dir, Path)
        check_int("collusion", self.collusion, 1, 32)
        check_int("survive", self.survive, 0, 16)
        check_int("witnesses", self.witnesses, 0, MAX_WITNESSES)


@dataclass(frozen=True)
class DrillResult:
    """A finished drill (passed or failed): the report, its file and the transcript."""

    closed: Closed
    report: DrillReport
    report_path: Path
    report_sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "report_file": str(self.report_path),
            "report_sha256": self.report_sha256,
            "report": self.report.to_dict(),
        }


def restore_drill(
    op: Operator,
    params: RestoreDrill,
    devices: ShareDevices,
    fresh: FreshToken | None = None,
    cards: Cards | None = None,
) -> DrillResult:
    """Run a drill; returns its result whether the drill passed or not (``report.passed``)."""
    plan, scenario = params.plan, params.scenario
    if params.roster is not None and cards is None:
        raise ValueError("signing the report with the roster's admin quorum needs the cards")
    stem = f"drill-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"
    params.reports_dir.mkdir(parents=True, exist_ok=True)
    if params.transcript is None:
        params = dataclasses.replace(params, transcript=params.reports_dir / f"{stem}.jsonl")
    report_path = params.reports_dir / f"{stem}{REPORT_SUFFIX}"
    expected = expectations_from_provisioning(params.provisioning) if params.provisioning else None
    if fresh is not None and (expected is None or not expected.keys or expected.pool_size < 1):
        raise ParameterError(
            "provisioning",
            "a restore needs the provisioning record of the key pool (with its keys).",
        )
    if params.audit_trail is not None:  # before any transcript, prompt or share
        check_trail_free(params.audit_trail)
    parameters: dict[str, Any] = {
        "plan": plan.id,
        "plan_sha256": plan.sha256,
        "scenario": scenario.to_dict(),
        "backup_dir": str(params.backup_dir),
        "restore_token": fresh.label if fresh else "",
        "passphrase_set": params.use_passphrase,
    }
    with CeremonyRun(op, "drill", params, parameters=parameters) as run:
        record_bytes, blobs = load_backup(params.backup_dir)
        record = parse_record(record_bytes)
        if params.roster is not None:
            signers = verify_signed(params.backup_dir / RECORD_FILE, RECORD_KIND, params.roster)
            run.record("record-verified", {"record_sha256": record.sha256,
                                           "signed_by": [a.card_serial for a in signers]})
            op.ok(f"The backup record is signed by {', '.join(a.holder for a in signers)}.")
        op.step(
            "Scenario",
            [f"lost sites: {', '.join(sorted(scenario.lost_sites)) or 'none'}",
             f"lost custodians: {', '.join(sorted(scenario.lost_custodians)) or 'none'}",
             "nobody types anyone else's PIN"],
        )  # fmt: skip
        op.table(
            "Backup",
            [("plan", plan.id), ("record SHA-256", record.sha256),
             ("share set", str(record.share_set.identifier)),
             ("master fingerprint", record.master_fingerprint)],
        )  # fmt: skip
        confirm_or_cancel(op, f"Run the drill {scenario.name!r}?")
        run.record("drill-started", {"record_sha256": record.sha256, "scenario": scenario.name})
        passphrase = op.secret("SLIP-39 passphrase") if params.use_passphrase else ""
        op.step("Collect the surviving shares and rebuild the seed in memory")
        access = ConsoleShareAccess(op, devices, plan.id)
        with ExitStack() as stack:
            restore = None
            if fresh is not None:
                restore = RestoreRequest(stack.enter_context(fresh.open(op)))
            report = run_drill(
                plan, record, scenario, blobs, access, passphrase=passphrase,
                expected=expected, restore=restore, collusion=params.collusion,
                survive=params.survive, retired=retired_sets(params.backup_dir),
            )  # fmt: skip
        del passphrase
        data = (json.dumps(report.to_dict(), indent=1, sort_keys=True) + "\n").encode()
        with report_path.open("xb") as f:
            f.write(data)
        digest = hashlib.sha256(data).hexdigest()
        run.record(
            "report-written",
            {"file": report_path.name, "report_sha256": digest, "passed": report.passed,
             "rebuilt_fingerprint": report.rebuilt_fingerprint},
        )  # fmt: skip
        for outcome in report.shares:
            run.record(SHARE_STEP, outcome.record_entry())
            line = (f"{outcome.target} at {outcome.site} ({', '.join(outcome.custodians)}; "
                    f"{outcome.position}): {outcome.outcome}")  # fmt: skip
            if outcome.status == "failed":
                op.error(line)
            elif outcome.status == "used":
                op.ok(line)
            else:
                op.info(line)
        for reason in report.reasons:
            op.warn(reason)
        if report.rebuilt_fingerprint == report.expected_fingerprint:
            op.ok(f"Rebuilt master fingerprint {report.rebuilt_fingerprint} matches the "
                  "backup record's.")  # fmt: skip
        elif report.rebuilt_fingerprint:
            op.error(f"Rebuilt master fingerprint {report.rebuilt_fingerprint} differs from the "
                     f"backup record's {report.expected_fingerprint}.")  # fmt: skip
        if report.passed:
            op.ok(f"DRILL PASSED: {scenario.name}; sites used: {', '.join(report.sites_used)}.")
        else:
            op.error(f"DRILL FAILED: {scenario.name}.")
        signed_by: list[str] = []
        if params.roster is not None:
            approvals = admin_sign_file(
                op, run, cards, params.roster, report_path, REPORT_KIND, what="drill report"
            )
            signed_by = [a.card_serial for a in approvals]
        if params.audit_trail is not None:
            entry = append_to_trail(
                params.audit_trail,
                {"ceremony_id": run.ceremony_id, "plan": report.plan_id,
                 "scenario": report.scenario.name, "started_at": report.started_at,
                 "passed": report.passed, "sites_used": list(report.sites_used),
                 "report_file": report_path.name, "report_sha256": digest,
                 "signed_by": signed_by},
            )  # fmt: skip
            run.record("audit-appended",
                       {"trail": str(params.audit_trail), "seq": entry.seq, "hash": entry.hash})
            op.ok(f"The drill is recorded in the appliance's audit trail {params.audit_trail}.")
        op.step("Close the transcript", ["witnesses read the final hash on screen"])
        witnesses = witness_signers(cards, params.witnesses, params.roster)
        closed = run.finish({"report_sha256": digest, "passed": report.passed}, witnesses)
    op.info(f"Report: {report_path}")
    return DrillResult(closed, report, report_path, digest)


__all__ = ["ConsoleShareAccess", "DrillResult", "FreshToken", "RestoreDrill", "restore_drill"]

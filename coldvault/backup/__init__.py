"""Sharded seed backups: plans, sealed shares on HSM tokens and cards, restore drills.

The public face (docs/backup.md):

* plans -- :func:`parse_plan` -> :class:`Plan`; :func:`check_plan` -> :class:`PlanReport`
  (no site or custodian alone, no ``c`` colluding custodians, any ``k`` sites lost
  survivable); :func:`propose_plan`;
* backups -- :func:`split_for_plan` (SLIP-39 shares per target), :class:`HsmTarget` /
  :class:`CardTarget` (keys that never leave the token or card), :func:`seal_backup` ->
  :class:`BackupRecord` (public) + sealed blobs, :func:`open_share`;
* drills -- :func:`run_drill` (:class:`DrillScenario`) -> :class:`DrillReport`;
  ``drill.rebuild_seed`` (a re-sharing's rebuild);
* admin signatures on records and reports -- ``approvals`` (kinds ``backup-record``,
  ``drill-report``, checked by ``approvals.verify_signed``);
* history -- reports, the drill entries of the appliance's audit trail, the overdue
  warning, retired share sets (``history``).

Modules: ``plan``, ``check``, ``shares``, ``envelope``, ``targets``, ``record``,
``restore``, ``drill``, ``approvals``, ``history``, ``errors``.
"""

from coldvault.backup.check import PlanReport, check_plan, propose_plan
from coldvault.backup.drill import DrillReport, DrillScenario, run_drill
from coldvault.backup.plan import Plan, parse_plan
from coldvault.backup.record import BackupRecord, open_share, parse_record, seal_backup
from coldvault.backup.shares import split_for_plan
from coldvault.backup.targets import CardTarget, HsmTarget

__all__ = [
    "BackupRecord",
    "CardTarget",
    "DrillReport",
    "DrillScenario",
    "HsmTarget",
    "Plan",
    "PlanReport",
    "check_plan",
    "open_share",
    "parse_plan",
    "parse_record",
    "propose_plan",
    "run_drill",
    "seal_backup",
    "split_for_plan",
]

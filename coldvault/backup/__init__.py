"""Sharded seed backups: plans, sealed shares on HSM tokens and cards, restore drills.

The public face:

* :func:`parse_plan` / :class:`Plan` -- the backup plan document (docs/backup.md);
* :func:`check_plan` -> :class:`PlanReport` -- no site or custodian alone, no ``c``
  colluding custodians, any ``k`` sites lost survivable; :func:`propose_plan`.
"""

from coldvault.backup.check import Finding, PlanReport, Rule, SiteRequest, check_plan, propose_plan
from coldvault.backup.plan import Plan, Target, TargetKind, parse_plan

__all__ = [
    "Finding",
    "Plan",
    "PlanReport",
    "Rule",
    "SiteRequest",
    "Target",
    "TargetKind",
    "check_plan",
    "parse_plan",
    "propose_plan",
]

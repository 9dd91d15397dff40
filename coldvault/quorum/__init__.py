"""Who may approve, what they sign, and the loop that collects their card signatures.

Modules:

* :mod:`~coldvault.quorum.roster` -- the roster: which OpenPGP card is whose, in which role
  (approver, admin, backup custodian), at which site; canonical bytes, versioned.
* :mod:`~coldvault.quorum.documents` -- configuration documents (roster, policy, wallet
  registry) signed by the admin quorum; the roster chain from the pinned genesis.
* :mod:`~coldvault.quorum.approvals` -- the request approval token, distinct-holder counting
  (:class:`Tally`), the one pre-PIN check (:meth:`Tally.precheck`), single-use approvals
  (:class:`ApprovalSession`, :class:`ReplayGuard`).
* :mod:`~coldvault.quorum.collect` -- the one card-approval loop
  (:func:`collect_signatures`, :func:`collect_witness`) behind :class:`ApprovalUi` and a
  :class:`~coldvault.cards.access.CardAccess`.
* :mod:`~coldvault.quorum.groups` -- approver groups: "1 of compliance AND 2 of treasury"
  (:class:`GroupRequirement`), one slot per approval (:class:`GroupQuota`).
* :mod:`~coldvault.quorum.errors` -- why a card does not count or a quorum is not met.

Card signatures are checked by :func:`coldvault.cards.signatures.verify_card_signature`
only.  Protocol and formats: docs/quorum.md.
"""

from __future__ import annotations

from coldvault.quorum.approvals import (
    Approval,
    ApprovalSession,
    ApprovalToken,
    MemoryReplayGuard,
    ReplayGuard,
    Tally,
)
from coldvault.quorum.collect import ApprovalUi, collect_signatures, collect_witness
from coldvault.quorum.documents import SignedDocument, accept_roster, verify_admin_quorum
from coldvault.quorum.groups import GroupQuota, GroupRequirement
from coldvault.quorum.roster import CardHolder, Role, Roster

__all__ = [
    "Approval",
    "ApprovalSession",
    "ApprovalToken",
    "ApprovalUi",
    "CardHolder",
    "GroupQuota",
    "GroupRequirement",
    "MemoryReplayGuard",
    "ReplayGuard",
    "Role",
    "Roster",
    "SignedDocument",
    "Tally",
    "accept_roster",
    "collect_signatures",
    "collect_witness",
    "verify_admin_quorum",
]

"""Approvals at the console: the appliance's adapter to the card-approval loop.

The loop itself (:func:`coldvault.quorum.collect.collect_signatures`) asks for one card at a
time in the appliance's reader, refuses an unknown, revoked, non-approver or emulated card
and a second card of a holder who already approved *before* its PIN is asked, has the card
sign the approval token and counts it in the :class:`coldvault.quorum.approvals.ApprovalSession`.
This module only words its prompts for the operator console and reports each approval and
each refusal to the audit trail (``on_approved`` / ``on_refused``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from coldvault.backends.pcsc import PcscCardAccess
from coldvault.errors import ColdvaultError
from coldvault.quorum.approvals import Approval, ApprovalSession
from coldvault.quorum.collect import MAX_ATTEMPTS, Signatory, collect_signatures


class CardUi(Protocol):
    """What the approval prompts need from the operator console."""

    def info(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...

    def error(self, text: str) -> None: ...

    def secret(self, prompt: str) -> str: ...


class _ConsolePrompts:
    """:class:`coldvault.quorum.collect.ApprovalUi` on the operator console."""

    def __init__(
        self,
        ui: CardUi,
        approvals: ApprovalSession,
        reader: str | None,
        on_approved: Callable[[str, str], None],
        on_refused: Callable[[str, ColdvaultError], None],
    ) -> None:
        self.ui, self.approvals, self.reader = ui, approvals, reader
        self.fingerprint = approvals.token.request_fingerprint
        self.on_approved, self.on_refused = on_approved, on_refused

    def ask_for_card(self, number: int, threshold: int) -> None:
        where = f" into {self.reader}" if self.reader else ""
        needed = self.approvals.still_needed
        groups = f" (still needed from groups: {needed})" if needed else ""
        self.ui.info(
            f"Approval {number} of {threshold} for request {self.fingerprint}{groups}: "
            f"insert an approver card{where}."
        )

    def show_card(self, who: Signatory, *, emulated: bool) -> None:
        groups = getattr(who, "groups", ())
        member = f", group {', '.join(groups)}" if groups else ""
        self.ui.info(
            f"Card {who.serial}: {who.holder} ({who.role}{member}, site {who.site}). "
            f"You are approving request {self.fingerprint}."
        )

    def ask_pin(self, who: Signatory) -> str:
        return self.ui.secret(f"User PIN for card {who.serial} ({who.holder})")

    def show_refusal(self, card_serial: str, error: ColdvaultError) -> None:
        self.on_refused(card_serial or "?", error)
        self.ui.error(error.message)

    def show_approval(self, approval: Approval, count: int, threshold: int) -> None:
        self.on_approved(approval.card_serial, approval.holder)
        self.ui.info(f"Approved by {approval.holder} ({count} of {threshold}).")

    def ask_to_remove_card(self) -> None:
        self.ui.info("Remove the card.")


class CardApprovalCollector:
    """Implements :class:`appliance.session.ApprovalCollector` over PC/SC."""

    def __init__(
        self,
        ui: CardUi,
        *,
        reader: str | None = None,
        insert_timeout: float = 120.0,
        max_attempts: int = MAX_ATTEMPTS,
        allow_emulated: bool = False,
    ) -> None:
        self.ui, self.reader = ui, reader
        self.insert_timeout, self.max_attempts = insert_timeout, max_attempts
        self.allow_emulated = allow_emulated

    def collect(
        self,
        approvals: ApprovalSession,
        *,
        on_approved: Callable[[str, str], None],
        on_refused: Callable[[str, ColdvaultError], None],
    ) -> None:
        fingerprint = approvals.token.request_fingerprint
        collect_signatures(
            approvals,
            _ConsolePrompts(self.ui, approvals, self.reader, on_approved, on_refused),
            PcscCardAccess(self.reader, timeout=self.insert_timeout),
            what=f"the approvals for request {fingerprint}",
            allow_emulated=self.allow_emulated,
            max_attempts=self.max_attempts,
        )

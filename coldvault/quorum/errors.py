"""Quorum errors: why a card's approval does not count, or why a quorum is not met.

Each names the cause and carries the card serial, holder or counts involved.  All are
:class:`~coldvault.errors.QuorumError` (a refusal: exit status 1).
"""

from __future__ import annotations

from coldvault.errors import QuorumError


class UnknownCard(QuorumError):
    code = "unknown-card"

    def __init__(self, card_serial: str, roster_version: int) -> None:
        super().__init__(f"Card {card_serial} is not in roster version {roster_version}.")
        self.card_serial = card_serial
        self.roster_version = roster_version


class CardRevoked(QuorumError):
    code = "card-revoked"

    def __init__(self, card_serial: str, holder: str, roster_version: int) -> None:
        super().__init__(
            f"Card {card_serial} of {holder} is revoked in roster version {roster_version}."
        )
        self.card_serial = card_serial
        self.holder = holder
        self.roster_version = roster_version


class WrongRole(QuorumError):
    code = "wrong-role"

    def __init__(self, card_serial: str, holder: str, role: str, needed: str) -> None:
        super().__init__(
            f"Card {card_serial} of {holder} has role {role}; only {needed} cards may approve this."
        )
        self.card_serial = card_serial
        self.holder = holder
        self.role = role
        self.needed = needed


class BadApprovalSignature(QuorumError):
    code = "bad-approval-signature"

    def __init__(self, card_serial: str, holder: str) -> None:
        super().__init__(
            f"The signature from card {card_serial} of {holder} does not verify over this approval."
        )
        self.card_serial = card_serial
        self.holder = holder


class ApprovalForOtherRequest(QuorumError):
    code = "approval-for-other-request"

    def __init__(self, card_serial: str, expected: str, signed: str) -> None:
        super().__init__(
            f"Card {card_serial} signed an approval for request {signed}, "
            f"not for request {expected}."
        )
        self.card_serial = card_serial
        self.expected_fingerprint = expected
        self.signed_fingerprint = signed


class DuplicateHolder(QuorumError):
    code = "duplicate-holder"

    def __init__(self, card_serial: str, holder: str, counted_card: str) -> None:
        super().__init__(
            f"{holder} already approved with card {counted_card}; "
            f"card {card_serial} does not count again."
        )
        self.card_serial = card_serial
        self.holder = holder
        self.counted_card = counted_card


class ApprovalExpired(QuorumError):
    code = "approval-expired"

    def __init__(self, fingerprint: str, expires_at: int, now: int) -> None:
        super().__init__(
            f"The approval window for request {fingerprint} closed at {expires_at} (now {now}); "
            "start a new approval session."
        )
        self.fingerprint = fingerprint
        self.expires_at = expires_at
        self.now = now


class ApprovalReplayed(QuorumError):
    code = "approval-replayed"

    def __init__(self, card_serial: str, fingerprint: str) -> None:
        who = f"from card {card_serial} " if card_serial else ""
        super().__init__(
            f"The approval {who}for request {fingerprint} was already used; "
            "approvals are single-use."
        )
        self.card_serial = card_serial
        self.fingerprint = fingerprint


class ThresholdNotMet(QuorumError):
    code = "threshold-not-met"

    def __init__(self, what: str, have: int, need: int) -> None:
        super().__init__(f"{what} has {have} of the {need} required approvals.")
        self.what = what
        self.have = have
        self.need = need


class MalformedToken(QuorumError):
    code = "malformed-token"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The approval token is malformed: {reason}.")
        self.reason = reason


class CardAttemptsExhausted(QuorumError):
    """Too many cards were offered without reaching the threshold (wrong PINs, refusals)."""

    code = "card-attempts"

    def __init__(
        self, what: str, *, have: int | None = None, need: int | None = None, missing: str = ""
    ) -> None:
        counts = (
            f" {have} of the {need} required signatures were collected."
            if have is not None and need is not None
            else ""
        )
        groups = f" Still needed: {missing}." if missing else ""
        super().__init__(f"Too many failed card attempts while collecting {what}.{counts}{groups}")
        self.what = what
        self.have = have
        self.need = need
        self.missing = missing


class CardKeyUnusable(QuorumError):
    """A card that is in no roster has no signature key coldvault can use."""

    code = "card-key-unusable"

    def __init__(self, card_serial: str) -> None:
        super().__init__(
            f"Card {card_serial} has no Ed25519, NIST P-256 or secp256k1 signature key; "
            "it cannot sign here."
        )
        self.card_serial = card_serial


class GroupNotNeeded(QuorumError):
    """The card's holder is in no approver group whose approvals are still needed."""

    code = "group-not-needed"

    def __init__(
        self, card_serial: str, holder: str, groups: tuple[str, ...], still_needed: str
    ) -> None:
        member = f"group {', '.join(groups)}" if groups else "no approver group"
        needed = f"still needed: {still_needed}" if still_needed else "no group is short"
        super().__init__(
            f"Card {card_serial} of {holder} ({member}) does not count: no more approvals are "
            f"needed from {', '.join(groups) if groups else 'outside the required groups'}; "
            f"{needed}."
        )
        self.card_serial = card_serial
        self.holder = holder
        self.groups = groups
        self.still_needed = still_needed


class GroupsNotMet(QuorumError):
    """The approvals do not include enough holders of every required group."""

    code = "groups-not-met"

    def __init__(self, what: str, missing: str) -> None:
        super().__init__(f"{what} lacks approvals from required groups: still needed {missing}.")
        self.what = what
        self.missing = missing

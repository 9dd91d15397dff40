"""Errors of seed backups: plan documents, sealed shares, share targets and drills.

Every message names the plan field, site, target or share involved and never a share word,
seed byte, PIN or key.  Codes are unique across coldvault (prefix ``backup-``).
"""

from __future__ import annotations

from collections.abc import Sequence

from coldvault.errors import ConfigError, InputError, IntegrityError, Refused


# -- plans ----------------------------------------------------------------------------------
class PlanInvalid(ConfigError):
    """A backup plan document is malformed; ``field`` names the offending entry."""

    code = "backup-plan-invalid"

    def __init__(self, where: str, field: str, problem: str) -> None:
        super().__init__(f"The backup plan {where} is invalid: {field}: {problem}.")
        self.where = where
        self.field = field
        self.problem = problem


class PlanCheckTooLarge(ConfigError):
    """The exhaustive plan check would need more combinations than it is allowed to try."""

    code = "backup-plan-check-bounds"

    def __init__(self, what: str, combinations: int, limit: int) -> None:
        super().__init__(
            f"Checking {what} needs {combinations} combinations, more than the limit of "
            f"{limit}; lower the collusion bound or the number of sites to survive."
        )
        self.what = what
        self.combinations = combinations
        self.limit = limit


class PlanImpossible(ConfigError):
    """No allocation of shares meets the requested survival and collusion bounds."""

    code = "backup-plan-impossible"

    def __init__(self, reason: str) -> None:
        super().__init__(f"No backup plan can be proposed: {reason}.")
        self.reason = reason


class PlanRefused(Refused):
    """A plan breaks a rule of :func:`coldvault.backup.check.check_plan` (``findings``)."""

    code = "backup-plan-refused"

    def __init__(self, plan_id: str, reasons: Sequence[str]) -> None:
        first = reasons[0] if reasons else "it breaks the backup rules"
        more = f" ({len(reasons) - 1} more reasons)" if len(reasons) > 1 else ""
        super().__init__(f"The backup plan {plan_id!r} is refused: {first}{more}")
        self.plan_id = plan_id
        self.reason_count = len(reasons)


class PassphraseInvalid(InputError):
    """A SLIP-39 passphrase must be printable ASCII."""

    code = "backup-passphrase-invalid"

    def __init__(self) -> None:
        super().__init__(
            "The backup passphrase must consist of printable ASCII characters (SLIP-39)."
        )


class ImportedCardKey(Refused):
    """A custodian card's decryption key was imported, not generated on the card."""

    code = "backup-card-key-imported"

    def __init__(self, card: str) -> None:
        super().__init__(
            f"The decryption key on card {card} was imported, not generated on the card; "
            "a share must be sealed to a key that never existed outside the card. Reset the "
            "card's decryption key (generate a new one) and repeat."
        )
        self.card = card


# -- sealed shares --------------------------------------------------------------------------
class SealedShareMalformed(InputError):
    """A stored share blob is not a coldvault sealed share (or is truncated)."""

    code = "backup-blob-malformed"

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"The sealed share {where} is malformed: {problem}.")
        self.where = where
        self.problem = problem


class SealedShareTampered(IntegrityError):
    """The blob failed authenticated decryption on the right target: it was altered."""

    code = "backup-blob-tampered"

    def __init__(self, target: str) -> None:
        super().__init__(
            f"The sealed share for target {target!r} fails its authentication check on the "
            "right key: the stored blob was altered or corrupted. It was not used."
        )
        self.target = target


class WrongShareTarget(Refused):
    """A blob was offered to a token or card other than the one it was sealed to."""

    code = "backup-wrong-target"

    def __init__(self, target: str, expected: str, presented: str) -> None:
        super().__init__(
            f"The sealed share for target {target!r} was sealed to {expected}, but "
            f"{presented} was presented; use the target named in the backup record."
        )
        self.target = target
        self.expected = expected
        self.presented = presented


class ForeignShare(IntegrityError):
    """A decrypted share does not belong to the expected share set, group or member."""

    code = "backup-foreign-share"

    def __init__(self, target: str, site: str, detail: str) -> None:
        super().__init__(
            f"The share from target {target!r} at site {site!r} does not belong to this "
            f"backup: {detail}. It was not used."
        )
        self.target = target
        self.site = site
        self.detail = detail


class WrongShareSet(IntegrityError):
    """A blob names another SLIP-39 share set identifier than the backup record."""

    code = "backup-wrong-set"

    def __init__(self, target: str, site: str, expected: int, found: int) -> None:
        super().__init__(
            f"The sealed share for target {target!r} at site {site!r} belongs to share set "
            f"{found}, not to set {expected} of this backup record. It was not used."
        )
        self.target = target
        self.site = site
        self.expected = expected
        self.found = found


class RetiredShare(IntegrityError):
    """A share of a retired share set (replaced by a re-sharing) was offered."""

    code = "backup-retired-share"

    def __init__(self, target: str, site: str, set_id: int, detail: str) -> None:
        super().__init__(
            f"The share of target {target!r} at site {site!r} belongs to retired set "
            f"{set_id} ({detail}). It was not used; destroy it."
        )
        self.target = target
        self.site = site
        self.set_id = set_id
        self.detail = detail


class ShareMissing(InputError):
    """A surviving target's sealed share could not be found."""

    code = "backup-share-missing"

    def __init__(self, target: str, site: str) -> None:
        super().__init__(
            f"No sealed share was supplied for target {target!r} at site {site!r}; "
            "fetch it from the site's envelope."
        )
        self.target = target
        self.site = site


class NotEnoughShares(Refused):
    """Too few shares were read to rebuild the seed; says how many more and from where."""

    code = "backup-too-few-shares"

    def __init__(self, groups_needed: int, groups_complete: int, needs: Sequence[str]) -> None:
        missing = groups_needed - groups_complete
        where = "; ".join(needs) if needs else "no surviving target can supply them"
        super().__init__(
            f"Too few shares to rebuild the seed: {groups_complete} of the {groups_needed} "
            f"groups needed are complete, {missing} more needed ({where})."
        )
        self.groups_needed = groups_needed
        self.groups_complete = groups_complete
        self.missing_groups = missing


class RecoveredSeedMismatch(IntegrityError):
    """The shares combine, but not to the seed the backup record describes."""

    code = "backup-seed-mismatch"

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(
            f"The shares rebuild a seed with master fingerprint {found}, not the recorded "
            f"{expected}; a share set from another seed or a wrong passphrase was used."
        )
        self.expected = expected
        self.found = found


class BackupRecordInvalid(ConfigError):
    """A backup record file is malformed; ``field`` names the offending entry."""

    code = "backup-record-invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"The backup record is invalid: {field}: {problem}.")
        self.field = field
        self.problem = problem


class ProvisioningRecordInvalid(ConfigError):
    """The provisioning record a drill compares against is malformed."""

    code = "backup-provisioning-invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"The provisioning record is invalid: {field}: {problem}.")
        self.field = field
        self.problem = problem


__all__ = [
    "BackupRecordInvalid",
    "ForeignShare",
    "RetiredShare",
    "ImportedCardKey",
    "NotEnoughShares",
    "PassphraseInvalid",
    "PlanCheckTooLarge",
    "PlanImpossible",
    "PlanInvalid",
    "PlanRefused",
    "ProvisioningRecordInvalid",
    "RecoveredSeedMismatch",
    "SealedShareMalformed",
    "SealedShareTampered",
    "ShareMissing",
    "WrongShareSet",
    "WrongShareTarget",
]

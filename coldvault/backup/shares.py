"""Split a seed into SLIP-39 shares shaped by a backup plan, and combine them again.

:func:`split_for_plan` calls shamir-mnemonic with the plan's groups and group threshold
(extendable backup by default, optional passphrase) and assigns each target its share: the
share of its group and member index, the *same* share for every target of a group with
member threshold 1 (copies).  The words are secrets: :class:`PlanShares` hands them out one
target at a time as a ``bytearray`` to wipe, and :meth:`PlanShares.wipe` drops them all.

Combining goes through :func:`coldvault.crypto.mnemonics.recover_secret`, whose errors never
quote a word.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import shamir_mnemonic

from coldvault.backup.errors import PassphraseInvalid
from coldvault.backup.plan import Plan
from coldvault.crypto import mnemonics

#: Master-secret lengths accepted: SLIP-39's 128/256-bit secrets, and a 64-byte BIP-39 seed.
SECRET_LENGTHS = (16, 32, 64)


@dataclass(frozen=True)
class ShareSetInfo:
    """Public parameters of one SLIP-39 share set."""

    identifier: int
    extendable: bool
    iteration_exponent: int
    group_threshold: int
    groups: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ShareFacts:
    """Public facts of one share, read from its words (checksum verified)."""

    identifier: int
    extendable: bool
    iteration_exponent: int
    group: int
    group_threshold: int
    group_count: int
    member: int
    member_threshold: int


def _passphrase(passphrase: str) -> bytes:
    if not all(0x20 <= ord(ch) < 0x7F for ch in passphrase):
        raise PassphraseInvalid()
    return passphrase.encode("ascii")


class PlanShares:
    """Every target's share words for one plan (secrets; never printed or logged)."""

    def __init__(self, plan: Plan, info: ShareSetInfo, words: dict[str, str]) -> None:
        self.plan = plan
        self.info = info
        self._words = words

    def __repr__(self) -> str:
        return f"<PlanShares plan={self.plan.id!r} set={self.info.identifier} (words hidden)>"

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self._words)

    def words(self, target_id: str) -> bytearray:
        """The target's share words as UTF-8 (a copy: wipe it after use)."""
        if not self._words:
            raise ValueError("the shares were wiped")
        return bytearray(self._words[target_id].encode())

    def wipe(self) -> None:
        """Drop every share (Python strings cannot be zeroed; this drops our references)."""
        self._words.clear()


def split_for_plan(
    plan: Plan,
    secret: bytes | bytearray,
    passphrase: str = "",
    *,
    extendable: bool = True,
    iteration_exponent: int = 1,
) -> PlanShares:
    """SLIP-39 shares of ``secret`` for every target of ``plan``."""
    if len(secret) not in SECRET_LENGTHS:
        raise ValueError("the secret must be 16, 32 or 64 bytes")
    if not 0 <= iteration_exponent <= 15:
        raise ValueError("iteration_exponent must be 0..15")
    groups = shamir_mnemonic.generate_mnemonics(
        plan.scheme.group_threshold,
        plan.scheme.slip39_groups,
        bytes(secret),
        _passphrase(passphrase),
        extendable=extendable,
        iteration_exponent=iteration_exponent,
    )
    words: dict[str, str] = {}
    for target in plan.targets:
        position = plan.position(target.id)
        words[target.id] = groups[position.group][position.member]
    first = shamir_mnemonic.Share.from_mnemonic(groups[0][0])
    info = ShareSetInfo(
        identifier=first.identifier,
        extendable=first.extendable,
        iteration_exponent=first.iteration_exponent,
        group_threshold=plan.scheme.group_threshold,
        groups=tuple(plan.scheme.slip39_groups),
    )
    groups.clear()
    return PlanShares(plan, info, words)


def share_facts(words: bytes | bytearray | str, *, position: int = 1) -> ShareFacts:
    """Parse one share (RS1024 checksum verified); raises a :class:`mnemonics.ShareError`."""
    text = words if isinstance(words, str) else bytes(words).decode("utf-8", "replace")
    summary = mnemonics.share_summary(text)
    parsed = shamir_mnemonic.Share.from_mnemonic(text)
    del text
    return ShareFacts(
        identifier=int(summary["identifier"]),
        extendable=bool(summary["extendable"]),
        iteration_exponent=parsed.iteration_exponent,
        group=int(summary["group_index"]),
        group_threshold=int(summary["group_threshold"]),
        group_count=int(summary["group_count"]),
        member=int(summary["member_index"]),
        member_threshold=int(summary["member_threshold"]),
    )


def combine(shares: Sequence[bytes | bytearray], passphrase: str = "") -> bytearray:
    """The master secret from enough shares (UTF-8 words); the caller wipes it.  Copies of
    one share (the targets of a member-threshold-1 group) count once."""
    _passphrase(passphrase)
    texts = list(
        dict.fromkeys(" ".join(bytes(s).decode("utf-8", "replace").split()) for s in shares)
    )
    try:
        return mnemonics.recover_secret(texts, passphrase)
    finally:
        texts.clear()


__all__ = [
    "SECRET_LENGTHS",
    "PlanShares",
    "ShareFacts",
    "ShareSetInfo",
    "combine",
    "share_facts",
    "split_for_plan",
]

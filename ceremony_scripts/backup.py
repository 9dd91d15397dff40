"""Seed creation and recovery at the console: dice, paper backup display and checks.

Nothing here writes to disk.  Words are shown on screen only with ``--paper-backup``, one
share at a time, and the screen is cleared after each; the operator then proves each
backup by typing two randomly chosen words of it (hidden).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ceremony_scripts.runner import CeremonyRun
from ceremony_scripts.ui import Operator
from coldvault.crypto import mnemonics
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import InputError
from coldvault.keys.entropy import MIN_ROLLS, DiceRejected, EntropyRecord, mix_entropy

MAX_ATTEMPTS = 3
SEED_BYTES = 32


class BackupCheckFailed(InputError):
    """The operator could not reproduce the words of a backup they wrote down."""

    code = "backup-check-failed"

    def __init__(self, which: str) -> None:
        super().__init__(
            f"The written backup of {which} could not be confirmed after {MAX_ATTEMPTS} "
            "attempts; the ceremony stops so that no unverified backup is relied on."
        )
        self.which = which


@dataclass(frozen=True)
class BackupPlan:
    """``fmt`` is ``bip39`` (24 words) or ``slip39`` (``threshold``-of-``shares``)."""

    fmt: str
    threshold: int = 1
    shares: int = 1
    paper: bool = False

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"format": self.fmt, "paper_backup": self.paper}
        if self.fmt == "slip39":
            data.update({"share_threshold": self.threshold, "share_count": self.shares})
        return data


def read_dice(op: Operator, run: CeremonyRun, hsm_random: Callable[[int], bytes]) -> bytearray:
    """Prompt for dice (hidden), retrying refused input; returns 32 bytes of seed entropy."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        dice = op.secret(f"Dice rolls (digits 1-6, at least {MIN_ROLLS})")
        try:
            entropy, record = mix_entropy(hsm_random=hsm_random, dice=dice, length=SEED_BYTES)
        except DiceRejected as exc:
            op.warn(exc.message)
            run.record("dice-rejected", {"attempt": attempt, "reason": exc.reason})
            continue
        finally:
            del dice
        run.secret(entropy)
        _record_entropy(run, record)
        op.ok(f"{record.dice_rolls} rolls accepted ({record.dice_bits:.1f} bits).")
        return entropy
    raise DiceRejected("attempts", f"Dice input was refused {MAX_ATTEMPTS} times.")


def _record_entropy(run: CeremonyRun, record: EntropyRecord) -> None:
    run.record("entropy", {"sources": record.to_dict()})


def _show_words(op: Operator, run: CeremonyRun, title: str, words: list[str]) -> None:
    op.clear()
    run.secret_on_screen = True
    op.console.print(f"[bold]{title}[/]  write every word down in order, on paper only")
    for row in range(0, len(words), 4):
        cells = [f"{i + 1:2d}. {w:<10}" for i, w in enumerate(words) if row <= i < row + 4]
        op.console.print("   " + "  ".join(cells), markup=False, highlight=False)
    op.pause(f"When {title} is written down and checked,")
    op.clear()
    run.secret_on_screen = False


def _check_words(op: Operator, title: str, words: list[str]) -> None:
    for _ in range(MAX_ATTEMPTS):
        picks = sorted(secrets.SystemRandom().sample(range(len(words)), 2))
        answers = [op.secret(f"{title}, word {i + 1}").strip().lower() for i in picks]
        good = all(a == words[i] for a, i in zip(answers, picks, strict=True))
        del answers
        if good:
            op.ok(f"{title} confirmed.")
            return
        op.warn(f"That does not match {title}; check the paper and try again.")
    raise BackupCheckFailed(title)


def make_seed(
    op: Operator, run: CeremonyRun, plan: BackupPlan, entropy: bytearray
) -> tuple[bytearray, str]:
    """Turn entropy into the BIP-32 seed (registered for wiping) and show/verify backups.

    Returns ``(seed, master fingerprint hex)``.
    """
    if plan.fmt == "bip39":
        phrase = mnemonics.entropy_to_mnemonic(entropy)
        seed = run.secret(mnemonics.mnemonic_to_seed(phrase))
        if plan.paper:
            words = phrase.split()
            _show_words(op, run, "the 24-word mnemonic", words)
            _check_words(op, "the mnemonic", words)
            del words
        del phrase
    else:
        shares = mnemonics.split_secret(entropy, plan.threshold, plan.shares)
        seed = run.secret(bytearray(entropy))
        summary = mnemonics.share_summary(shares[0])
        run.record(
            "shares-created",
            {
                "share_threshold": plan.threshold,
                "share_count": plan.shares,
                "share_set_identifier": summary["identifier"],
                "extendable": summary["extendable"],
            },
        )
        if plan.paper:
            for i, share in enumerate(shares, start=1):
                words = share.split()
                _show_words(op, run, f"share {i} of {plan.shares}", words)
                _check_words(op, f"share {i}", words)
                del words
        shares.clear()
    fingerprint = master_fingerprint(seed).hex()
    return seed, fingerprint


def recover_seed(op: Operator, run: CeremonyRun, fmt: str) -> bytearray:
    """Rebuild the seed from a typed BIP-39 mnemonic or SLIP-39 shares (hidden input)."""
    if fmt == "bip39":
        for _ in range(MAX_ATTEMPTS):
            phrase = op.secret("BIP-39 mnemonic (all words, space separated)")
            try:
                seed = run.secret(mnemonics.mnemonic_to_seed(phrase))
                return seed
            except mnemonics.InvalidMnemonic as exc:
                op.warn(exc.message)
                run.record("backup-input-rejected", {"reason": exc.reason})
            finally:
                del phrase
        raise BackupCheckFailed("the mnemonic")
    typed: list[str] = []
    failures = 0
    while failures < MAX_ATTEMPTS and len(typed) < mnemonics.MAX_SHARES:
        share = op.secret(f"SLIP-39 share {len(typed) + 1}")
        try:
            mnemonics.share_summary(share)
        except mnemonics.ShareError as exc:
            failures += 1
            op.warn(exc.message)
            run.record("backup-input-rejected", {"reason": type(exc).__name__})
            continue
        typed.append(share)
        try:
            secret = run.secret(mnemonics.recover_secret(typed))
        except mnemonics.InsufficientShares:
            op.info(f"{len(typed)} share(s) accepted; more are needed.")
            continue
        except mnemonics.ShareError as exc:
            typed.clear()
            failures += 1
            op.warn(exc.message + " Start again with the first share.")
            run.record("backup-input-rejected", {"reason": type(exc).__name__})
            continue
        count = len(typed)
        typed.clear()
        run.record("shares-combined", {"share_count": count})
        return secret
    typed.clear()
    raise BackupCheckFailed("the shares")


__all__ = ["BackupCheckFailed", "BackupPlan", "make_seed", "read_dice", "recover_seed"]

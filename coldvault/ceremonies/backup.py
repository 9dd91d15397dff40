"""Seed creation and recovery with the operator: dice, paper backup words and their checks.

Nothing here writes to disk.  Words are shown only for a paper backup, one share (or the
mnemonic) at a time, on a cleared screen that is cleared again afterwards; the operator
then proves each paper copy by typing two randomly chosen words of it (hidden).  Seeds and
entropy are ``bytearray``s registered with the run, so they are wiped however it ends.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coldvault.ceremonies.operator import Operator
from coldvault.ceremonies.params import ParameterError, check_int, check_type
from coldvault.ceremonies.run import CeremonyRun
from coldvault.crypto import mnemonics
from coldvault.crypto.bip32 import master_fingerprint
from coldvault.errors import InputError
from coldvault.keys.entropy import MIN_ROLLS, DiceRejected, mix_entropy

MAX_CUSTODIAN_NAME = 64
MAX_ATTEMPTS = 3
SEED_BYTES = 32
MAX_SHARES = 16


class BackupFormat(enum.StrEnum):
    """``bip39``: one 24-word mnemonic; ``slip39``: M-of-N SLIP-39 shares (one group)."""

    BIP39 = "bip39"
    SLIP39 = "slip39"


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
    """How the new seed is backed up: ``fmt``, ``threshold``-of-``shares`` for SLIP-39,
    and whether the words are shown for writing on paper (``paper``)."""

    fmt: BackupFormat
    threshold: int = 1
    shares: int = 1
    paper: bool = False
    custodians: tuple[str, ...] = ()  # who takes each paper share, in share order (public)

    def __post_init__(self) -> None:
        check_type("fmt", self.fmt, BackupFormat)
        check_type("paper", self.paper, bool)
        shares = check_int("shares", self.shares, 1, MAX_SHARES)
        threshold = check_int("threshold", self.threshold, 1, MAX_SHARES)
        if self.fmt is BackupFormat.SLIP39:
            if threshold > shares:
                raise ParameterError("threshold", "--threshold must be between 1 and --shares.")
            if threshold == 1 and shares > 1:
                raise ParameterError(
                    "threshold", "1-of-N SLIP-39 sharing is not allowed; use N = 1."
                )
        if self.custodians:
            self._check_custodians()

    def _check_custodians(self) -> None:
        pieces = self.shares if self.fmt is BackupFormat.SLIP39 else 1
        what = f"{pieces} shares" if pieces > 1 else "1 mnemonic"
        if not self.paper:
            raise ParameterError("custodian", "--custodian names who takes a paper share; "
                                 "add --paper-backup or leave --custodian out.")  # fmt: skip
        if len(self.custodians) != pieces:
            raise ParameterError("custodian", f"--custodian was given {len(self.custodians)} "
                                 f"times for {what}: name one custodian per share, in order.")
        for name in self.custodians:
            if not isinstance(name, str) or not 0 < len(name.strip()) <= MAX_CUSTODIAN_NAME or \
                    not name.isprintable():  # fmt: skip
                raise ParameterError("custodian", "A --custodian name is 1 to "
                                     f"{MAX_CUSTODIAN_NAME} printable characters.")
        if len({n.strip().casefold() for n in self.custodians}) != len(self.custodians):
            raise ParameterError("custodian", "A custodian is named for two shares: one person "
                                 "holding two shares weakens the threshold.")

    def to_dict(self) -> dict[str, object]:
        """What the transcript records: what exists, never what was only asked for (with
        no paper backup there are no words and no shares)."""
        data: dict[str, object] = {"format": str(self.fmt), "paper_backup": self.paper}
        if not self.paper:
            data["backup"] = "none"
        elif self.fmt is BackupFormat.SLIP39:
            data.update({"share_threshold": self.threshold, "share_count": self.shares})
        if self.custodians:
            data["custodians"] = list(self.custodians)
        return data

    def custodian(self, share: int) -> str:
        """Who takes paper share ``share`` (1-based), or "" when none was named."""
        return self.custodians[share - 1].strip() if self.custodians else ""


def read_dice(op: Operator, run: CeremonyRun, hsm_random: Callable[[int], bytes]) -> bytearray:
    """Ask for dice (hidden), retrying refused input; returns 32 bytes of seed entropy
    (registered with ``run`` for wiping)."""
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
        run.record("entropy", {"sources": record.to_dict()})
        op.ok(f"{record.dice_rolls} rolls accepted ({record.dice_bits:.1f} bits).")
        return entropy
    raise DiceRejected("attempts", f"Dice input was refused {MAX_ATTEMPTS} times.")


def show_words(
    op: Operator, run: CeremonyRun, title: str, words: Sequence[str], *, heading: str = ""
) -> None:
    """Show ``words`` alone on a cleared screen (under ``heading``, public facts for the
    sheet) until the operator has written them down."""
    op.clear()
    run.secret_on_screen = True
    if heading:
        op.info(heading)
    op.show_words(title, words)
    op.pause(f"When {title} is written down and checked,")
    op.clear()
    run.secret_on_screen = False


def check_words(op: Operator, title: str, words: Sequence[str]) -> None:
    """The operator types two random words of the paper copy (hidden); three tries."""
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
    """Turn entropy into the BIP-32 seed (registered for wiping) and show and check the
    paper backup if the plan has one.  Returns ``(seed, master fingerprint hex)``.

    For SLIP-39 the 32-byte master secret is the BIP-32 seed; for BIP-39 the seed is
    PBKDF2 of the mnemonic with an empty passphrase."""
    if not plan.paper:  # no words are shown and no shares made: the record says so
        run.record("no-backup", {"word_count": 0, "share_count": 0})
    if plan.fmt is BackupFormat.BIP39:
        phrase = mnemonics.entropy_to_mnemonic(entropy)
        seed = run.secret(mnemonics.mnemonic_to_seed(phrase))
        if plan.paper:
            words = phrase.split()
            show_words(op, run, "the 24-word mnemonic", words, heading=_sheet(plan, 1, 1))
            check_words(op, "the mnemonic", words)
            _record_sheet(run, plan, 1, "mnemonic")
            del words
        del phrase
    elif not plan.paper:
        seed = run.secret(bytearray(entropy))
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
        for i, share in enumerate(shares, start=1):
            words = share.split()
            show_words(op, run, f"share {i} of {plan.shares}", words,
                       heading=_sheet(plan, i, plan.shares))  # fmt: skip
            check_words(op, f"share {i}", words)
            _record_sheet(run, plan, i, f"share {i}")
            del words
        shares.clear()
    return seed, master_fingerprint(seed).hex()


def _sheet(plan: BackupPlan, share: int, count: int) -> str:
    who = plan.custodian(share)
    if not who:
        return ""
    piece = f"Share {share} of {count}" if plan.fmt is BackupFormat.SLIP39 else "The mnemonic"
    return f"{piece}, written down and kept by {who}."


def _record_sheet(run: CeremonyRun, plan: BackupPlan, share: int, target: str) -> None:
    """The custodian <-> share line of the record (public: the share's number and its
    custodian, never a word)."""
    who = plan.custodian(share)
    if who:
        run.record("paper-share-shown", {"target": target, "custodians": [who]})


def recover_seed(op: Operator, run: CeremonyRun, fmt: BackupFormat) -> bytearray:
    """Rebuild the seed from a typed BIP-39 mnemonic or SLIP-39 shares (hidden input)."""
    if fmt is BackupFormat.BIP39:
        for _ in range(MAX_ATTEMPTS):
            phrase = op.secret("BIP-39 mnemonic (all words, space separated)")
            try:
                return run.secret(mnemonics.mnemonic_to_seed(phrase))
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


__all__ = [
    "BackupCheckFailed",
    "BackupFormat",
    "BackupPlan",
    "check_words",
    "make_seed",
    "read_dice",
    "recover_seed",
    "show_words",
]

"""BIP-39 (python-mnemonic) and SLIP-39 (shamir-mnemonic) with coldvault domain errors.

Every error here describes *what* is wrong without quoting any word of the mnemonic: a
share's first words identify the backup and a bad word is part of a secret, so messages
refer to shares and words by position only (shamir-mnemonic's own messages quote words,
so they are never passed on).

Secret hygiene: both libraries work on ``str`` and ``bytes``.  Mnemonics are therefore
immutable ``str`` while they are shown or typed (they cannot be wiped); seeds and master
secrets are handed back to the caller as ``bytearray`` to wipe with
:func:`coldvault.crypto.memory.wipe`.
"""

from __future__ import annotations

from collections.abc import Sequence

import shamir_mnemonic
from mnemonic import Mnemonic
from shamir_mnemonic import MnemonicError, Share

from coldvault.crypto.errors import CryptoInputError

BIP39_WORD_COUNTS = (12, 15, 18, 21, 24)
SLIP39_SECRET_LENGTHS = (16, 32)
MAX_SHARES = 16

_BIP39 = Mnemonic("english")


# -- errors ---------------------------------------------------------------------------------
class InvalidMnemonic(CryptoInputError):
    """A BIP-39 mnemonic is malformed; ``reason``: word-count, unknown-word, checksum."""

    code = "invalid-mnemonic"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ShareError(CryptoInputError):
    """Family of SLIP-39 share problems; ``share`` is the 1-based position when known."""

    code = "slip39"

    def __init__(self, message: str, share: int | None = None) -> None:
        super().__init__(message)
        self.share = share


class ShareFormatError(ShareError):
    """A share has an unknown word, a wrong length or bad padding (``reason``)."""

    code = "slip39-format"

    def __init__(self, reason: str, message: str, share: int | None = None) -> None:
        super().__init__(message, share)
        self.reason = reason


class ShareChecksumError(ShareError):
    """A share's RS1024 checksum does not match (a word was mistyped)."""

    code = "slip39-checksum"


class ShareParameterError(ShareError):
    """A share's own parameters are impossible (group threshold above group count)."""

    code = "slip39-parameters"


class SharesMismatch(ShareError):
    """Shares from different backups or with different parameters were mixed.

    ``parameter`` names the field: identifier, iteration-exponent, extendable,
    group-threshold, group-count, member-threshold.
    """

    code = "slip39-mismatch"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class DuplicateShare(ShareError):
    """The same member index was given twice in one group."""

    code = "slip39-duplicate"


class InsufficientShares(ShareError):
    """Not enough groups, or not enough members in a group (``needed``/``given``)."""

    code = "slip39-insufficient"

    def __init__(self, message: str, needed: int, given: int) -> None:
        super().__init__(message)
        self.needed = needed
        self.given = given


class ShareDigestError(ShareError):
    """The recovered secret fails its digest: a share is wrong or altered."""

    code = "slip39-digest"


# -- BIP-39 ---------------------------------------------------------------------------------
def entropy_to_mnemonic(entropy: bytes | bytearray) -> str:
    """English BIP-39 mnemonic for 16/20/24/28/32 bytes of entropy (immutable str)."""
    if len(entropy) not in (16, 20, 24, 28, 32):
        raise ValueError("BIP-39 entropy must be 16, 20, 24, 28 or 32 bytes")
    return str(_BIP39.to_mnemonic(bytes(entropy)))


def validate_mnemonic(mnemonic: str) -> None:
    """Raise :class:`InvalidMnemonic` unless ``mnemonic`` is a valid English BIP-39 phrase."""
    words = mnemonic.split()
    if len(words) not in BIP39_WORD_COUNTS:
        raise InvalidMnemonic(
            "word-count",
            f"A BIP-39 mnemonic has 12, 15, 18, 21 or 24 words, not {len(words)}.",
        )
    known = set(_BIP39.wordlist)
    for position, word in enumerate(words, start=1):
        if word not in known:
            raise InvalidMnemonic(
                "unknown-word", f"Word {position} is not in the BIP-39 English word list."
            )
    if not _BIP39.check(" ".join(words)):
        raise InvalidMnemonic(
            "checksum", "The mnemonic checksum does not match; a word is wrong or out of order."
        )


def mnemonic_to_entropy(mnemonic: str) -> bytearray:
    """Entropy bytes of a valid mnemonic (validated first)."""
    validate_mnemonic(mnemonic)
    return bytearray(_BIP39.to_entropy(" ".join(mnemonic.split())))


def mnemonic_to_seed(mnemonic: str, passphrase: str = "") -> bytearray:
    """64-byte BIP-39 seed (PBKDF2-HMAC-SHA512, 2048 rounds), validated first."""
    validate_mnemonic(mnemonic)
    return bytearray(Mnemonic.to_seed(" ".join(mnemonic.split()), passphrase))


# -- SLIP-39 --------------------------------------------------------------------------------
def split_secret(
    secret: bytes | bytearray,
    threshold: int,
    count: int,
    passphrase: str = "",
    *,
    iteration_exponent: int = 1,
) -> list[str]:
    """Single-group M-of-N SLIP-39 shares of a 16- or 32-byte master secret (extendable)."""
    if len(secret) not in SLIP39_SECRET_LENGTHS:
        raise ValueError("SLIP-39 master secret must be 16 or 32 bytes")
    if not 1 <= threshold <= count <= MAX_SHARES or (threshold == 1 and count > 1):
        raise ValueError("SLIP-39 needs 1 <= threshold <= count <= 16 and no 1-of-N with N > 1")
    groups = shamir_mnemonic.generate_mnemonics(
        1,
        [(threshold, count)],
        bytes(secret),
        passphrase.encode("ascii"),
        extendable=True,
        iteration_exponent=iteration_exponent,
    )
    return list(groups[0])


def _parse(position: int, mnemonic: str) -> Share:
    try:
        return Share.from_mnemonic(mnemonic)
    except MnemonicError as exc:
        text = str(exc)
        where = f"Share {position}"
        if text.startswith("Invalid mnemonic word"):
            raise ShareFormatError(
                "unknown-word", f"{where} has a word that is not in the SLIP-39 list.", position
            ) from None
        if text.startswith("Invalid mnemonic checksum"):
            raise ShareChecksumError(
                f"{where} fails its checksum; a word is mistyped or missing.", position
            ) from None
        if text.startswith("Invalid mnemonic padding"):
            raise ShareFormatError(
                "padding", f"{where} has invalid padding bits.", position
            ) from None
        if "Group threshold cannot be greater" in text:
            raise ShareParameterError(
                f"{where} has a group threshold greater than its group count.", position
            ) from None
        if text.startswith("Invalid mnemonic length"):
            raise ShareFormatError(
                "length", f"{where} has an invalid number of words.", position
            ) from None
        raise ShareFormatError(
            "format", f"{where} is not a valid SLIP-39 share.", position
        ) from None


def _check_set(shares: Sequence[Share]) -> None:
    first = shares[0]
    common = (
        ("identifier", lambda s: s.identifier),
        ("iteration-exponent", lambda s: s.iteration_exponent),
        ("extendable", lambda s: s.extendable),
        ("group-threshold", lambda s: s.group_threshold),
        ("group-count", lambda s: s.group_count),
    )
    for name, get in common:
        for position, share in enumerate(shares, start=1):
            if get(share) != get(first):
                raise SharesMismatch(
                    name,
                    f"Share {position} does not match share 1 in its {name}; "
                    "shares from different backups or settings were mixed.",
                )
    groups: dict[int, list[Share]] = {}
    for share in shares:
        groups.setdefault(share.group_index, []).append(share)
    for members in groups.values():
        if len({s.member_threshold for s in members}) != 1:
            raise SharesMismatch(
                "member-threshold",
                "Shares of one group disagree on the member threshold.",
            )
        if len({s.index for s in members}) != len(members):
            raise DuplicateShare("Two shares of one group have the same member index.")
    if len(groups) < first.group_threshold:
        raise InsufficientShares(
            f"{first.group_threshold} groups are needed but shares of {len(groups)} were given.",
            first.group_threshold,
            len(groups),
        )
    for members in groups.values():
        needed = members[0].member_threshold
        if len(members) < needed:
            raise InsufficientShares(
                f"A group needs {needed} shares but {len(members)} were given.",
                needed,
                len(members),
            )


def recover_secret(mnemonics: Sequence[str], passphrase: str = "") -> bytearray:
    """Recover the master secret from enough SLIP-39 shares; raise a :class:`ShareError`."""
    if not mnemonics:
        raise InsufficientShares("No shares were given.", 1, 0)
    if len(mnemonics) > MAX_SHARES * MAX_SHARES:
        raise ShareFormatError("too-many", "Too many shares were given.")
    shares = [_parse(i, m) for i, m in enumerate(mnemonics, start=1)]
    _check_set(shares)
    # Only the threshold number of groups/members is passed on (the library insists).
    groups: dict[int, list[str]] = {}
    for share in shares:
        members = groups.setdefault(share.group_index, [])
        if len(members) < share.member_threshold:
            members.append(share.mnemonic())
    chosen = [m for members in list(groups.values())[: shares[0].group_threshold] for m in members]
    try:
        return bytearray(shamir_mnemonic.combine_mnemonics(chosen, passphrase.encode("ascii")))
    except MnemonicError as exc:
        if "digest" in str(exc):
            raise ShareDigestError(
                "The shares do not combine to a valid secret; one of them is wrong or altered."
            ) from None
        raise ShareFormatError("combine", "The shares could not be combined.") from None


def share_summary(mnemonic: str) -> dict[str, int | bool]:
    """Public parameters of one share (for transcripts: no words, no value)."""
    share = _parse(1, mnemonic)
    return {
        "identifier": share.identifier,
        "group_index": share.group_index,
        "group_threshold": share.group_threshold,
        "group_count": share.group_count,
        "member_index": share.index,
        "member_threshold": share.member_threshold,
        "extendable": share.extendable,
    }


__all__ = [
    "DuplicateShare",
    "InsufficientShares",
    "InvalidMnemonic",
    "ShareChecksumError",
    "ShareDigestError",
    "ShareError",
    "ShareFormatError",
    "ShareParameterError",
    "SharesMismatch",
    "entropy_to_mnemonic",
    "mnemonic_to_entropy",
    "mnemonic_to_seed",
    "recover_secret",
    "share_summary",
    "split_secret",
    "validate_mnemonic",
]

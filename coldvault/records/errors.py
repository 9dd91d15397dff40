"""The errors of the records package.

* Audit trail: tampering found by verification (:class:`AuditTampered`, with the entry
  index), and the errors of opening, locking and sealing a trail.
* Transcripts: verification failures (:class:`TranscriptError`, with the entry index) and
  the writer's refusals (a secret, an existing file, a closed transcript).

Both logs share one reader (:mod:`coldvault.records.chain`): the same defect in a line is the
same ``reason`` (a :class:`~coldvault.records.chain.Defect`) at the same index in either.
"""

from __future__ import annotations

from coldvault.errors import ConfigError, HardwareError, InputError, IntegrityError, Refused


class AuditTampered(IntegrityError):
    """Base of audit-trail verification failures; ``index`` is the 0-based line number."""

    code = "audit-tampered"

    def __init__(self, index: int, message: str) -> None:
        super().__init__(f"Audit entry {index}: {message}")
        self.index = index


class AuditMalformed(AuditTampered):
    code = "audit-malformed"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, f"the line is not a well-formed entry ({reason}).")
        self.reason = reason


class AuditSequenceError(AuditTampered):
    code = "audit-sequence"

    def __init__(self, index: int, found: int) -> None:
        super().__init__(
            index,
            f"sequence number {found} where {index} was expected: an entry was deleted, "
            "inserted or moved.",
        )
        self.found = found


class AuditChainBroken(AuditTampered):
    code = "audit-chain-broken"

    def __init__(self, index: int) -> None:
        super().__init__(index, "it does not chain to the entry before it.")


class AuditHashMismatch(AuditTampered):
    code = "audit-hash-mismatch"

    def __init__(self, index: int) -> None:
        super().__init__(index, "its content does not match its hash: the entry was edited.")


class AuditSealInvalid(AuditTampered):
    code = "audit-seal-invalid"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, f"the seal does not verify ({reason}).")
        self.reason = reason


class AuditTruncated(AuditTampered):
    code = "audit-truncated"

    def __init__(self, index: int, expected_through: int, found_through: int) -> None:
        super().__init__(
            index,
            f"the last seal covers entries up to {found_through}, but seals up to "
            f"{expected_through} were recorded: the trail was cut short.",
        )
        self.expected_through = expected_through
        self.found_through = found_through


class AuditLogNotFound(ConfigError):
    code = "audit-not-found"

    def __init__(self, path: str) -> None:
        super().__init__(f"The audit log {path} does not exist.")
        self.path = path


class BadAuditPublicKey(ConfigError):
    code = "audit-bad-pubkey"

    def __init__(self) -> None:
        super().__init__("The audit public key is not a valid secp256k1 point (33 or 65 bytes).")


class AuditLogLocked(Refused):
    code = "audit-locked"

    def __init__(self, path: str) -> None:
        super().__init__(f"The audit log {path} is already open in another process.")
        self.path = path


class SealFailed(HardwareError):
    code = "audit-seal-failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The HSM audit seal failed: {reason}.")
        self.reason = reason


# --------------------------------------------------------------------------- transcripts
class TranscriptError(IntegrityError):
    """Family of transcript verification failures; ``index`` is the 0-based entry."""

    code = "transcript"

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class TranscriptDecodeError(TranscriptError):
    """A line is not canonical JSON of a transcript entry (``reason`` says why)."""

    code = "transcript-decode"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, f"Transcript line {index + 1} cannot be read: {reason}.")
        self.reason = reason


class TranscriptTampered(TranscriptError):
    """Entry ``index`` does not match the hash chain (changed, removed, reordered)."""

    code = "transcript-tampered"

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(index, f"Transcript entry {index} fails verification: {reason}.")
        self.reason = reason


class WitnessSignatureInvalid(TranscriptError):
    """A witness signature does not verify, or the card is not an active roster member."""

    code = "transcript-witness"

    def __init__(self, index: int, card_serial: str, reason: str) -> None:
        super().__init__(
            index,
            f"Transcript entry {index}: the witness signature of card {card_serial} {reason}.",
        )
        self.card_serial = card_serial


class SecretInTranscript(Refused):
    """A caller tried to write something that looks like a secret into a transcript."""

    code = "secret-in-transcript"

    def __init__(self, key: str) -> None:
        super().__init__(
            f"Refusing to write the field {key!r} to a transcript: it looks like a secret."
        )
        self.key = key


class SecretInAudit(Refused):
    """Request content (a message, a review text) looks like a seed phrase or private key.

    The audit trail records everything the operator is shown, and never a secret: such a
    request is refused before anything is recorded or signed.
    """

    code = "secret-in-audit"

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"Refused: the request's {path or 'content'} looks like a secret ({reason}); "
            "it is neither recorded nor signed. Never sign or transmit seed words or keys."
        )
        self.path = path
        self.reason = reason


class TranscriptExists(Refused):
    """A transcript is never overwritten or appended to by a new ceremony."""

    code = "transcript-exists"

    def __init__(self, path: str) -> None:
        super().__init__(f"The transcript file {path} already exists; choose a new file.")
        self.path = path


class TranscriptClosed(Refused):
    """Only witness signatures may follow the close entry."""

    code = "transcript-closed"

    def __init__(self) -> None:
        super().__init__("The transcript is closed; only witness signatures may be added.")


class PrintoutExists(InputError):
    """A printable record (PDF or HTML) is never written over an existing file."""

    code = "printout-exists"

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} already exists; a record is never overwritten: name a new file.")
        self.path = path

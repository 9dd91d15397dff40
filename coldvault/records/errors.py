"""Audit-trail errors: tampering found by verification (with the entry index), and the
errors of opening, locking and sealing a trail."""

from __future__ import annotations

from coldvault.errors import ConfigError, HardwareError, IntegrityError, Refused


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

"""The one exception root of coldvault.

Rules (see docs/architecture.md):

* ``ValueError``/``TypeError`` mean a programming or configuration mistake by the caller.
* :class:`ColdvaultError` and its subclasses mean bad *untrusted* input or a hardware
  condition an operator must act on.  Every subclass names the cause and carries data as
  attributes; ``str(err)`` is a complete sentence fit to show an operator.  Secrets (PINs,
  seeds, shares, key material) never appear in an error.
* Front ends turn these into output in exactly one place each (CLI, console, QR reply).

Modules define their specific errors next to the code that raises them, always deriving
from one of the families below so front ends can group them.
"""

from __future__ import annotations


class ColdvaultError(Exception):
    """Root of every error coldvault raises on purpose."""

    #: Short stable machine-readable code, used in ``--json`` output and audit records.
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe description for ``--json`` output and audit records."""
        data: dict[str, object] = {"error": self.code, "message": self.message}
        for key, value in vars(self).items():
            if key == "message" or key.startswith("_"):
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                data[key] = value
        return data


class InputError(ColdvaultError):
    """Untrusted input (QR payload, PSBT, CBOR, file) is malformed or inconsistent."""

    code = "bad-input"


class DecodeError(InputError):
    """A transport encoding (QR, UR, BBQr, bytewords, CBOR) could not be decoded."""

    code = "decode"


class HardwareError(ColdvaultError):
    """An HSM, card, reader or camera is missing, locked or misbehaving."""

    code = "hardware"


class AuthError(ColdvaultError):
    """Authentication failed (wrong PIN, locked credential, bad signature on a token)."""

    code = "auth"


class PolicyViolation(ColdvaultError):
    """A request breaks policy; carries the rule and the values that decided it."""

    code = "policy"


class QuorumError(ColdvaultError):
    """An approval is invalid, replayed, from a revoked card, or the threshold is not met."""

    code = "quorum"


class IntegrityError(ColdvaultError):
    """A signed or hash-chained record (audit trail, transcript, roster) does not verify."""

    code = "integrity"


class ConfigError(ColdvaultError):
    """Operator-supplied configuration (TOML, lab file) is invalid."""

    code = "config"


class Refused(ColdvaultError):
    """The appliance refuses to do something unsafe (e.g. sign taproot, run on a network)."""

    code = "refused"


class Cancelled(ColdvaultError):
    """The operator stopped the action (answered "no", or pressed Ctrl-C); nothing was done."""

    code = "cancelled"


class Unfinished(ColdvaultError):
    """The appliance did what counts (a request signed, its response stored durably) but
    could not finish its own last step (showing the response) for a reason no input
    caused. Nothing is lost; the message says how to finish (present the request again).
    Exit status 3: not bad input, not a refusal."""

    code = "unfinished"


#: Documented exit statuses of every command-line front end (docs/architecture.md).
EXIT_DONE = 0
EXIT_REFUSED = 1  # refused by policy, quorum or the appliance, or cancelled by the operator
EXIT_BAD_INPUT = 2  # bad input or usage: a file, a QR payload, a PIN, a missing device
EXIT_INTERNAL = 3  # a bug, or the appliance could not finish its own step (Unfinished)

_REFUSALS = (PolicyViolation, QuorumError, Refused, Cancelled)


def exit_status(err: ColdvaultError) -> int:
    """The exit status a front end reports for ``err``: refusals 1, :class:`Unfinished` 3
    (the appliance's own step failed after the work was done), everything else 2."""
    if isinstance(err, Unfinished):
        return EXIT_INTERNAL
    return EXIT_REFUSED if isinstance(err, _REFUSALS) else EXIT_BAD_INPUT

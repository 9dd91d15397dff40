"""Errors raised by the PKCS#11 keystore, and the one place PKCS#11 failures are translated.

Every call into python-pkcs11 made by :mod:`coldvault.backends.pkcs11.keystore` runs inside
:func:`translated`, which turns a ``pkcs11.exceptions.PKCS11Error`` (one class per ``CKR_*``
return value) into a :class:`coldvault.errors.ColdvaultError` subclass defined here (or
:class:`coldvault.keys.keystore.KeyNotFound`, the seam's "not found").  Nothing else in
coldvault catches PKCS#11 exceptions.

Messages are complete sentences naming the token or key involved, never a PIN or key material.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pkcs11 import exceptions as p11

from coldvault.errors import AuthError, ConfigError, HardwareError, Refused
from coldvault.keys.keystore import KeyNotFound


class Pkcs11Error(HardwareError):
    """The HSM reported a failure that has no more specific meaning for an operator."""

    code = "hsm-error"

    def __init__(self, message: str, *, ckr: str | None = None) -> None:
        super().__init__(message)
        #: Name of the python-pkcs11 exception (one per ``CKR_*`` code), for diagnostics.
        self.ckr = ckr


class ModuleLoadError(HardwareError):
    """The PKCS#11 module (shared library) could not be loaded or initialised."""

    code = "hsm-module"

    def __init__(self, module_path: str, *, ckr: str | None = None) -> None:
        why = f" ({ckr})" if ckr else ""
        super().__init__(
            f"The PKCS#11 module {module_path!r} could not be loaded or initialised{why}; check "
            "the path, that the HSM client software is installed, and its configuration "
            "(for SoftHSM2: the file SOFTHSM2_CONF names)."
        )
        self.module_path = module_path
        self.ckr = ckr


class TokenNotFound(HardwareError):
    """No initialised token carries the requested label."""

    code = "token-not-found"

    def __init__(self, token_label: str, *, available: tuple[str, ...] = ()) -> None:
        known = ", ".join(repr(label) for label in available) or "none"
        super().__init__(
            f"No HSM token labelled {token_label!r} is present (tokens present: {known})."
        )
        self.token_label = token_label
        self.available = ", ".join(available)


class WrongToken(HardwareError):
    """A token has the expected label but not the serial the configuration pins."""

    code = "wrong-token"

    def __init__(self, token_label: str, *, expected: str, actual: str) -> None:
        super().__init__(
            f"HSM token {token_label!r} has serial {actual!r}, not the configured {expected!r}; "
            "refusing to use a different device."
        )
        self.token_label = token_label
        self.expected = expected
        self.actual = actual


class EmulatedTokenRefused(Refused):
    """An emulated HSM (SoftHSM) was offered where real hardware is required."""

    code = "emulated-hsm-refused"

    def __init__(self, token_label: str, manufacturer: str, model: str) -> None:
        super().__init__(
            f"REFUSING EMULATED HSM: token {token_label!r} is a software emulation "
            f"({manufacturer}, {model}) and keys on it are not protected by hardware. "
            "Production refuses emulated hardware; pass allow_emulated=True only in a lab or test."
        )
        self.token_label = token_label
        self.manufacturer = manufacturer
        self.model = model


class WrongPin(AuthError):
    """The token rejected the PIN."""

    code = "hsm-wrong-pin"

    def __init__(self, token_label: str, *, role: str, tries_left: int | None) -> None:
        if tries_left is None:
            tail = "the token does not report how many tries are left."
        else:
            tail = f"{tries_left} tries are left before the PIN is locked."
        super().__init__(f"The {role} PIN for HSM token {token_label!r} is wrong; {tail}")
        self.token_label = token_label
        self.role = role
        #: ``None`` when the token does not report it (SoftHSM 2.6.1 never does, see docs).
        self.tries_left = tries_left


class TokenLocked(AuthError):
    """The PIN is locked after too many wrong attempts."""

    code = "token-locked"

    def __init__(self, token_label: str, *, role: str) -> None:
        super().__init__(
            f"The {role} PIN of HSM token {token_label!r} is locked after too many wrong "
            "attempts; it must be reset by the security officer."
        )
        self.token_label = token_label
        self.role = role


class PinRejected(AuthError):
    """A new PIN does not meet the token's length or strength rules."""

    code = "pin-rejected"

    def __init__(self, token_label: str) -> None:
        super().__init__(
            f"HSM token {token_label!r} rejected the new PIN: it is too short, too long "
            "or too weak for this token."
        )
        self.token_label = token_label


class TokenInUse(HardwareError):
    """The token is already logged in by another keystore or helper in this process."""

    code = "token-in-use"

    def __init__(self, token_label: str) -> None:
        super().__init__(
            f"HSM token {token_label!r} is already open and logged in within this process; "
            "use one keystore per token per process and close it before a PIN ceremony."
        )
        self.token_label = token_label


class PrivateKeyHidden(HardwareError):
    """The token shows a key's public object but not its private one.

    Keys are always stored as both objects, so this is never "the key is not held": the
    session has lost its login (private objects are invisible to a public session) or the
    private object was destroyed.
    """

    code = "hsm-private-key-hidden"

    def __init__(self, token_label: str, key_id: bytes) -> None:
        super().__init__(
            f"HSM token {token_label!r} shows the public key {key_id.hex()!r} but not its private "
            "key: the session may have been logged out, or the private key was deleted."
        )
        self.token_label = token_label
        self.key_id = key_id.hex()


class DuplicateKey(HardwareError):
    """A key with the requested CKA_ID already exists (refusing to shadow it)."""

    code = "duplicate-key"

    def __init__(self, token_label: str, key_id: bytes) -> None:
        super().__init__(
            f"HSM token {token_label!r} already holds a key with id {key_id.hex()!r}; "
            "refusing to create a second one."
        )
        self.token_label = token_label
        self.key_id = key_id.hex()


class UnsupportedKey(HardwareError):
    """A key on the token uses a curve or key type coldvault does not sign with."""

    code = "unsupported-key"

    def __init__(self, token_label: str, key_id: bytes, description: str) -> None:
        super().__init__(
            f"Key {key_id.hex()!r} on HSM token {token_label!r} is {description}; coldvault "
            "only signs with secp256k1 and Ed25519 keys."
        )
        self.token_label = token_label
        self.key_id = key_id.hex()
        self.description = description


class KeyAlgorithmMismatch(ConfigError):
    """A key was asked to sign with the other algorithm's operation."""

    code = "key-algorithm-mismatch"

    def __init__(self, key_id: bytes, *, expected: str, actual: str) -> None:
        super().__init__(
            f"Key {key_id.hex()!r} is a {actual} key and cannot make a {expected} signature."
        )
        self.key_id = key_id.hex()
        self.expected = expected
        self.actual = actual


class MechanismUnsupported(HardwareError):
    """The token does not offer a PKCS#11 mechanism coldvault needs."""

    code = "mechanism-unsupported"

    def __init__(self, token_label: str, mechanism: str, purpose: str) -> None:
        super().__init__(
            f"HSM token {token_label!r} does not support {mechanism}, which is needed to {purpose}."
        )
        self.token_label = token_label
        self.mechanism = mechanism
        self.purpose = purpose


class SignatureCheckFailed(HardwareError):
    """A signature produced by the HSM did not verify on the host; it was discarded."""

    code = "hsm-signature-invalid"

    def __init__(self, token_label: str, key_id: bytes, algorithm: str) -> None:
        super().__init__(
            f"A {algorithm} signature from key {key_id.hex()!r} on HSM token {token_label!r} "
            "did not verify on the host and was discarded; the HSM may be faulty."
        )
        self.token_label = token_label
        self.key_id = key_id.hex()
        self.algorithm = algorithm


@contextmanager
def translated(
    token_label: str,
    *,
    role: str = "user",
    key_id: bytes | None = None,
    purpose: str = "complete the operation",
    mechanism: str | None = None,
    tries_left: int | None = None,
) -> Iterator[None]:
    """Run a block of PKCS#11 calls; re-raise any PKCS#11 failure as a coldvault error.

    ``tries_left`` is what the caller learnt from the token flags before the call; the
    PKCS#11 return codes themselves never carry a retry counter.
    """
    try:
        yield
    except p11.PKCS11Error as exc:
        raise translate(
            exc,
            token_label=token_label,
            role=role,
            key_id=key_id,
            purpose=purpose,
            mechanism=mechanism,
            tries_left=tries_left,
        ) from exc


def translate(
    exc: p11.PKCS11Error,
    *,
    token_label: str,
    role: str = "user",
    key_id: bytes | None = None,
    purpose: str = "complete the operation",
    mechanism: str | None = None,
    tries_left: int | None = None,
) -> HardwareError | AuthError:
    """Map one python-pkcs11 exception (one per ``CKR_*`` code) to a coldvault error."""
    name = type(exc).__name__
    if isinstance(exc, p11.PinIncorrect):
        return WrongPin(token_label, role=role, tries_left=tries_left)
    if isinstance(exc, p11.PinLocked):
        return TokenLocked(token_label, role=role)
    if isinstance(exc, p11.PinLenRange | p11.PinInvalid | p11.PinTooWeak):
        return PinRejected(token_label)
    if isinstance(exc, p11.UserAlreadyLoggedIn | p11.AnotherUserAlreadyLoggedIn):
        return TokenInUse(token_label)
    if isinstance(exc, p11.NoSuchToken | p11.TokenNotPresent | p11.TokenNotRecognised):
        return TokenNotFound(token_label)
    if isinstance(exc, p11.NoSuchKey) and key_id is not None:
        return KeyNotFound(token_label, key_id)
    if isinstance(exc, p11.MechanismInvalid | p11.MechanismParamInvalid):
        return MechanismUnsupported(token_label, mechanism or "the requested mechanism", purpose)
    if isinstance(exc, p11.DeviceRemoved | p11.DeviceError | p11.DeviceMemory):
        return Pkcs11Error(
            f"HSM token {token_label!r} failed or was removed while trying to {purpose} ({name}).",
            ckr=name,
        )
    if isinstance(exc, p11.UserPinNotInitialized):
        return Pkcs11Error(
            f"The user PIN of HSM token {token_label!r} is not initialised; run the "
            "appliance-initialisation ceremony first.",
            ckr=name,
        )
    return Pkcs11Error(
        f"HSM token {token_label!r} failed to {purpose} ({name}).",
        ckr=name,
    )

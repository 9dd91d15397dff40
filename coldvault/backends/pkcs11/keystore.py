"""The :class:`coldvault.keys.keystore.Keystore` (both :class:`~coldvault.keys.keystore.Signer`
and :class:`~coldvault.keys.keystore.KeyAdmin`) over PKCS#11 (python-pkcs11), e.g. SoftHSM2 or a
network-less HSM attached to the appliance.

Threading: python-pkcs11 with SoftHSM2 is **not thread-safe**.  Every PKCS#11 call made by
this module runs under one process-wide re-entrant lock, so a stray second thread is
serialised rather than corrupting the module; the supported pattern remains one keystore (one
PKCS#11 worker) per process.  :meth:`Pkcs11Keystore.sign_all` starts a second thread that
only checks signatures on the host; it makes no PKCS#11 call.  The PKCS#11 module is loaded
once per process and path, and is finalised (``C_Finalize``) when the last keystore using it
closes, so a later open re-reads configuration such as ``SOFTHSM2_CONF``.

Errors: PKCS#11 failures are translated in exactly one place,
:func:`coldvault.backends.pkcs11.errors.translated`; the error classes live in
:mod:`coldvault.backends.pkcs11.errors` (and ``KeyNotFound`` in :mod:`coldvault.keys.keystore`).

Key layout (docs/keystore.md): each key is a private-key object (``CKA_TOKEN``,
``CKA_PRIVATE``, ``CKA_SENSITIVE``, not ``CKA_EXTRACTABLE``, ``CKA_SIGN`` only) plus its
public-key object, both carrying the same ``CKA_ID``/``CKA_LABEL`` (scheme in
:mod:`coldvault.keys.keystore`).
"""

from __future__ import annotations

import enum
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import coincurve
import nacl.signing
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11

from coldvault.backends.pkcs11.errors import (
    DuplicateKey,
    EmulatedTokenRefused,
    KeyAlgorithmMismatch,
    MechanismUnsupported,
    ModuleLoadError,
    Pkcs11Error,
    PrivateKeyHidden,
    SignatureCheckFailed,
    TokenInUse,
    TokenLocked,
    TokenNotFound,
    UnsupportedKey,
    WrongPin,
    WrongToken,
    translated,
)
from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.secp256k1 import EcdsaSignature, InvalidSignature
from coldvault.keys.keystore import (
    KeyAlgorithm,
    KeyInfo,
    KeyNotFound,
    Keystore,
    Signature,
    TokenInfo,
    ToSign,
)

__all__ = [
    "PinRole",
    "Pkcs11Keystore",
    "KeyAttributes",
    "init_pin",
    "is_emulated",
    "list_tokens",
    "set_pin",
]

#: DER of OID 1.3.132.0.10 (secp256k1), the ``CKA_EC_PARAMS`` of our ECDSA keys.
SECP256K1_PARAMS = bytes.fromhex("06052b8104000a")
#: DER of OID 1.3.101.112 (id-Ed25519, RFC 8410), the ``CKA_EC_PARAMS`` we write for Ed25519.
ED25519_OID_PARAMS = bytes.fromhex("06032b6570")
#: DER PrintableString "edwards25519": the other form PKCS#11 3.0 allows; accepted on read.
ED25519_NAME_PARAMS = b"\x13\x0cedwards25519"

#: Token manufacturer/model strings that identify an emulated (software) HSM.
EMULATED_MANUFACTURERS = ("SoftHSM",)
EMULATED_MODELS = ("SoftHSM",)

# CKF_* token flags python-pkcs11 0.10.1 does not name.
_CKF_USER_PIN_FINAL_TRY = 0x0002_0000
_CKF_USER_PIN_LOCKED = 0x0004_0000
_CKF_SO_PIN_FINAL_TRY = 0x0020_0000
_CKF_SO_PIN_LOCKED = 0x0040_0000
_CKF_TOKEN_INITIALIZED = 0x0000_0400

_MAX_RANDOM = 1 << 16

_LOCK = threading.RLock()


class PinRole(enum.StrEnum):
    """Who logs in: the security officer (initialisation ceremony) or the user (signing)."""

    USER = "user"
    SO = "security-officer"


def is_emulated(manufacturer: str, model: str) -> bool:
    """Whether a token's manufacturer or model names a software emulation (SoftHSM)."""
    return manufacturer.startswith(EMULATED_MANUFACTURERS) or model.startswith(EMULATED_MODELS)


@dataclass(frozen=True)
class KeyAttributes:
    """Security attributes of a stored private key, as the token reports them (for audits)."""

    sensitive: bool
    extractable: bool
    always_sensitive: bool
    never_extractable: bool
    local: bool  # generated on the token (False for imported keys)
    token: bool
    private: bool
    sign: bool
    derive: bool


_KEY_ATTRIBUTES = {
    "sensitive": Attribute.SENSITIVE,
    "extractable": Attribute.EXTRACTABLE,
    "always_sensitive": Attribute.ALWAYS_SENSITIVE,
    "never_extractable": Attribute.NEVER_EXTRACTABLE,
    "local": Attribute.LOCAL,
    "token": Attribute.TOKEN,
    "private": Attribute.PRIVATE,
    "sign": Attribute.SIGN,
    "derive": Attribute.DERIVE,
}


# --------------------------------------------------------------------------- module loading
class _Modules:
    """Process-wide PKCS#11 module handles, reference counted (see module docstring)."""

    def __init__(self) -> None:
        self._libs: dict[str, tuple[Any, int]] = {}

    @staticmethod
    def _key(module_path: str) -> str:
        # One handle per library file: two spellings of one .so (symlinks) share it, since
        # C_Finalize through either would end the other's sessions.
        return os.path.realpath(module_path)

    def acquire(self, module_path: str) -> Any:
        module_path = self._key(module_path)
        with _LOCK:
            if module_path in self._libs:
                lib, count = self._libs[module_path]
                self._libs[module_path] = (lib, count + 1)
                return lib
            try:
                lib = pkcs11.lib(module_path)
            except p11.PKCS11Error as exc:
                ckr = type(exc).__name__ if type(exc) is not p11.PKCS11Error else None
                raise ModuleLoadError(module_path, ckr=ckr) from exc
            self._libs[module_path] = (lib, 1)
            return lib

    def release(self, module_path: str) -> None:
        module_path = self._key(module_path)
        with _LOCK:
            lib, count = self._libs[module_path]
            if count > 1:
                self._libs[module_path] = (lib, count - 1)
                return
            del self._libs[module_path]
            try:
                lib.finalize()
            except p11.PKCS11Error:
                pass  # nothing an operator can act on while shutting down


_MODULES = _Modules()

#: Tokens with a logged-in session in this process: (module file, token serial) -> count.
_open_tokens: dict[tuple[str, bytes], int] = {}


def _token_key(lib: Any, token: Any) -> tuple[str, bytes]:
    return (os.path.realpath(lib.so), bytes(token.serial))


def _mark_open(key: tuple[str, bytes]) -> None:
    _open_tokens[key] = _open_tokens.get(key, 0) + 1


def _mark_closed(key: tuple[str, bytes]) -> None:
    _open_tokens[key] -= 1
    if not _open_tokens[key]:
        del _open_tokens[key]


def _end_session(session: Any, key: tuple[str, bytes]) -> None:
    """Close a session (logging out when it is the last one) and unmark the token."""
    try:
        session.close()
    except p11.PKCS11Error:
        pass  # the token may already be gone; nothing an operator can act on
    finally:
        _mark_closed(key)


@contextmanager
def _module(module_path: str) -> Iterator[Any]:
    lib = _MODULES.acquire(module_path)
    try:
        yield lib
    finally:
        _MODULES.release(module_path)


def _info(token: Any) -> TokenInfo:
    manufacturer, model = token.manufacturer_id, token.model
    return TokenInfo(
        label=token.label,
        manufacturer=manufacturer,
        model=model,
        serial=token.serial.decode("ascii", "replace").strip(),
        emulated=is_emulated(manufacturer, model),
    )


def _initialised_tokens(lib: Any) -> list[Any]:
    tokens = []
    for slot in lib.get_slots(token_present=True):
        token = slot.get_token()
        if int(token.flags) & _CKF_TOKEN_INITIALIZED:
            tokens.append(token)
    return tokens


def _find_token(lib: Any, token_label: str) -> Any:
    with translated(token_label, purpose="list its slots"):
        matches = [t for t in _initialised_tokens(lib) if t.label == token_label]
        if not matches:
            available = tuple(t.label for t in _initialised_tokens(lib))
            raise TokenNotFound(token_label, available=available)
    if len(matches) > 1:
        raise Pkcs11Error(
            f"{len(matches)} HSM tokens are labelled {token_label!r}; labels must be unique."
        )
    return matches[0]


def _tries_left(lib: Any, token_label: str, role: PinRole) -> int | None:
    """What the token flags say about remaining PIN tries (1 on the final try, else unknown)."""
    flags = int(_find_token(lib, token_label).flags)
    final = _CKF_USER_PIN_FINAL_TRY if role is PinRole.USER else _CKF_SO_PIN_FINAL_TRY
    return 1 if flags & final else None


def _is_locked(lib: Any, token_label: str, role: PinRole) -> bool:
    flags = int(_find_token(lib, token_label).flags)
    locked = _CKF_USER_PIN_LOCKED if role is PinRole.USER else _CKF_SO_PIN_LOCKED
    return bool(flags & locked)


def _login(lib: Any, token: Any, pin: str | bytes | bytearray, role: PinRole, *, rw: bool) -> Any:
    """Open a session and log in.

    PKCS#11 login state is per process and token: a second login while another session of
    this process is logged in would *not* check the PIN (CKR_USER_ALREADY_LOGGED_IN), so it is
    refused as :class:`TokenInUse` instead of silently accepted.
    """
    label = token.label
    if _open_tokens.get(_token_key(lib, token), 0):
        raise TokenInUse(label)
    if _is_locked(lib, label, role):
        raise TokenLocked(label, role=role.value)
    secret = _pin_text(pin)
    try:
        with translated(label, role=role.value, purpose=f"log in as {role.value}"):
            if role is PinRole.USER:
                return token.open(rw=rw, user_pin=secret)
            return token.open(rw=rw, so_pin=secret)
    except WrongPin as err:
        # The CKR code never says how many tries remain; the token flags might.
        if _is_locked(lib, label, role):
            raise TokenLocked(label, role=role.value) from err
        raise WrongPin(label, role=role.value, tries_left=_tries_left(lib, label, role)) from err


def _pin_text(pin: str | bytes | bytearray) -> str:
    """python-pkcs11 takes PINs as ``str`` (it encodes them as UTF-8 itself)."""
    if isinstance(pin, str):
        return pin
    try:
        return bytes(pin).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("PIN must be UTF-8") from exc


def _refuse_emulated(info: TokenInfo, allow_emulated: bool) -> None:
    if info.emulated and not allow_emulated:
        raise EmulatedTokenRefused(info.label, info.manufacturer, info.model)


# --------------------------------------------------------------------------- discovery / PINs
def list_tokens(module_path: str) -> list[TokenInfo]:
    """The initialised tokens the module offers (uninitialised free slots are skipped)."""
    with _LOCK, _module(module_path) as lib, translated("(any)", purpose="list tokens"):
        return [_info(t) for t in _initialised_tokens(lib)]


def init_pin(
    module_path: str,
    token_label: str,
    *,
    so_pin: str | bytes | bytearray,
    user_pin: str | bytes | bytearray,
    allow_emulated: bool = False,
) -> None:
    """Initialisation ceremony: log in as security officer and set the user PIN (C_InitPIN)."""
    with _LOCK, _module(module_path) as lib:
        token = _find_token(lib, token_label)
        _refuse_emulated(_info(token), allow_emulated)
        session = _login(lib, token, so_pin, PinRole.SO, rw=True)
        key = _token_key(lib, token)
        _mark_open(key)
        try:
            with translated(token_label, role=PinRole.SO.value, purpose="set the user PIN"):
                session.init_pin(_pin_text(user_pin))
        finally:
            _end_session(session, key)


def set_pin(
    module_path: str,
    token_label: str,
    *,
    role: PinRole,
    old_pin: str | bytes | bytearray,
    new_pin: str | bytes | bytearray,
    allow_emulated: bool = False,
) -> None:
    """Change the user or SO PIN (C_SetPIN) after logging in with the old one."""
    with _LOCK, _module(module_path) as lib:
        token = _find_token(lib, token_label)
        _refuse_emulated(_info(token), allow_emulated)
        session = _login(lib, token, old_pin, role, rw=True)
        key = _token_key(lib, token)
        _mark_open(key)
        old, new = _pin_text(old_pin), _pin_text(new_pin)
        try:
            with translated(token_label, role=role.value, purpose=f"change the {role} PIN"):
                session.set_pin(old, new)
        finally:
            _end_session(session, key)


# --------------------------------------------------------------------------- key encoding
def _unwrap_octet_string(value: bytes) -> bytes:
    """``CKA_EC_POINT`` is a DER OCTET STRING; some HSMs return the bare point. Bounded."""
    if len(value) >= 2 and value[0] == 0x04:
        length = value[1]
        if length < 0x80 and len(value) == 2 + length:
            return value[2:]
        if length == 0x81 and len(value) >= 3 and len(value) == 3 + value[2]:
            return value[3:]
    return value


def _octet_string(value: bytes) -> bytes:
    if len(value) >= 0x80:
        raise ValueError("EC point too long")
    return b"\x04" + bytes([len(value)]) + value


def _algorithm_of(key: Any, token_label: str) -> KeyAlgorithm:
    key_type = key.key_type
    params = (
        bytes(key[Attribute.EC_PARAMS]) if key_type in (KeyType.EC, KeyType.EC_EDWARDS) else b""
    )
    return _algorithm(bytes(key.id or b""), key_type, params, token_label)


#: what a look-up reads of an EC key pair, in one request per object (see ``_pair_attributes``)
_PRIVATE_ATTRIBUTES = (Attribute.ID, Attribute.KEY_TYPE, Attribute.EC_PARAMS,
                       Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.LABEL)  # fmt: skip
_PUBLIC_ATTRIBUTES = (Attribute.ID, Attribute.KEY_TYPE, Attribute.EC_PARAMS, Attribute.EC_POINT)


def _pair_attributes(private: Any, public: Any) -> tuple[dict[Any, Any], dict[Any, Any]] | None:
    """The attributes a look-up checks, read in one ``C_GetAttributeValue`` per object (a
    file-backed token such as SoftHSM re-reads the object's file for every request), or
    ``None`` when the token does not hand every one of them over (python-pkcs11 leaves out
    what the token calls unavailable: a key that is not EC has no ``CKA_EC_PARAMS``) or
    refuses the request: the caller then reads them one by one, as it always did."""
    try:
        private_attrs = private.get_attributes(_PRIVATE_ATTRIBUTES)
        public_attrs = public.get_attributes(_PUBLIC_ATTRIBUTES)
    except p11.PKCS11Error:
        return None
    if len(private_attrs) != len(_PRIVATE_ATTRIBUTES):
        return None
    if len(public_attrs) != len(_PUBLIC_ATTRIBUTES):
        return None
    return private_attrs, public_attrs


def _algorithm_in(attrs: dict[Any, Any], token_label: str) -> KeyAlgorithm:
    """:func:`_algorithm_of` from attributes already read (:func:`_pair_attributes`)."""
    key_type = attrs[Attribute.KEY_TYPE]
    params = (
        bytes(attrs[Attribute.EC_PARAMS]) if key_type in (KeyType.EC, KeyType.EC_EDWARDS) else b""
    )
    return _algorithm(bytes(attrs[Attribute.ID] or b""), key_type, params, token_label)


def _algorithm(key_id: bytes, key_type: Any, params: bytes, token_label: str) -> KeyAlgorithm:
    if key_type == KeyType.EC and params == SECP256K1_PARAMS:
        return KeyAlgorithm.SECP256K1
    if key_type == KeyType.EC_EDWARDS and params in (ED25519_OID_PARAMS, ED25519_NAME_PARAMS):
        return KeyAlgorithm.ED25519
    name = getattr(key_type, "name", str(key_type))
    what = f"a {name} key" + (f" with curve parameters {params.hex()}" if params else "")
    raise UnsupportedKey(token_label, key_id, what)


def _public_bytes(algorithm: KeyAlgorithm, ec_point: bytes) -> bytes:
    point = _unwrap_octet_string(ec_point)
    if algorithm is KeyAlgorithm.SECP256K1:
        return coincurve.PublicKey(point).format(compressed=True)
    if len(point) != 32:
        raise ValueError("Ed25519 point must be 32 bytes")
    return point


# --------------------------------------------------------------------------- the keystore
class Pkcs11Keystore:
    """One logged-in PKCS#11 token implementing :class:`coldvault.keys.keystore.Keystore`.

    Use :meth:`open`; close with :meth:`close` or a ``with`` block.
    """

    def __init__(
        self, *, module_path: str, info: TokenInfo, session: Any, mechanisms: frozenset[int]
    ) -> None:
        self._module_path = module_path
        self._info = info
        self._session: Any = session
        self._mechanisms = mechanisms
        self._cache: dict[bytes, tuple[Any, KeyInfo]] = {}
        self._key_index: dict[bytes, tuple[list[Any], list[Any]]] | None = None
        #: every CKA_ID on the token (either object class) as of the index read, kept up to
        #: date by this keystore's own imports, generations and deletions
        self._token_ids: set[bytes] = set()
        self._token_key: tuple[str, bytes] = ("", b"")

    @classmethod
    def open(
        cls,
        module_path: str,
        token_label: str,
        user_pin: str | bytes | bytearray,
        *,
        allow_emulated: bool = False,
        expected_serial: str | None = None,
    ) -> Pkcs11Keystore:
        """Find the token by label, refuse emulation unless allowed, log in as user.

        ``expected_serial`` pins the exact device (production configuration, destructive
        tests): a token with the right label but another serial is refused before login.
        """
        with _LOCK:
            return cls._open_locked(
                module_path, token_label, user_pin, allow_emulated, expected_serial
            )

    @classmethod
    def _open_locked(
        cls,
        module_path: str,
        token_label: str,
        user_pin: str | bytes | bytearray,
        allow_emulated: bool,
        expected_serial: str | None,
    ) -> Pkcs11Keystore:
        lib = _MODULES.acquire(module_path)
        try:
            token = _find_token(lib, token_label)
            info = _info(token)
            if expected_serial is not None and info.serial != expected_serial.strip():
                raise WrongToken(token_label, expected=expected_serial, actual=info.serial)
            _refuse_emulated(info, allow_emulated)
            with translated(token_label, purpose="list its mechanisms"):
                mechanisms = frozenset(int(m) for m in token.slot.get_mechanisms())
            session = _login(lib, token, user_pin, PinRole.USER, rw=True)
        except BaseException:
            _MODULES.release(module_path)
            raise
        key = _token_key(lib, token)
        _mark_open(key)
        keystore = cls(module_path=module_path, info=info, session=session, mechanisms=mechanisms)
        keystore._token_key = key
        return keystore

    # -- lifecycle
    def close(self) -> None:
        with _LOCK:
            if self._session is None:
                return
            session, self._session = self._session, None
            self._cache.clear()
            self._key_index = None
            self._token_ids = set()
            try:
                _end_session(session, self._token_key)
            finally:
                _MODULES.release(self._module_path)

    def __enter__(self) -> Pkcs11Keystore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._session is not None else "closed"
        return f"<Pkcs11Keystore token={self._info.label!r} serial={self._info.serial} {state}>"

    # -- facts
    @property
    def token_info(self) -> TokenInfo:
        return self._info

    @property
    def is_emulated(self) -> bool:
        return self._info.emulated

    def supports(self, mechanism: int) -> bool:
        """Whether the token lists the PKCS#11 mechanism (``CKM_*`` value)."""
        return int(mechanism) in self._mechanisms

    def require(self, mechanism: int, purpose: str) -> None:
        """Raise :class:`MechanismUnsupported` unless the token offers ``mechanism``."""
        if not self.supports(mechanism):
            try:
                name = "CKM_" + Mechanism(mechanism).name
            except ValueError:
                name = f"CKM 0x{int(mechanism):08x}"
            raise MechanismUnsupported(self._info.label, name, purpose)

    @contextmanager
    def raw_session(self, purpose: str) -> Iterator[Any]:
        """The logged-in python-pkcs11 session, for a backend module of this package that
        keeps its own objects on the token (the state anchor): held under the keystore's
        lock, with PKCS#11 errors translated as failing to ``purpose``."""
        with _LOCK, translated(self._info.label, purpose=purpose):
            yield self._live()

    # -- internals
    def _live(self) -> Any:
        if self._session is None:
            raise ValueError("keystore is closed")
        return self._session

    def _objects(self, object_class: ObjectClass, key_id: bytes) -> list[Any]:
        attrs = {Attribute.CLASS: object_class, Attribute.ID: key_id}
        return list(self._live().get_objects(attrs))

    def _index(self) -> dict[bytes, tuple[list[Any], list[Any]]]:
        """All key objects by CKA_ID, read in two passes over the token.

        SoftHSM searches linearly, so looking keys up one at a time costs O(objects) each;
        a pool of 1,000 keys took ~40 ms per first use. Indexing once makes the first
        request after start-up as fast as the next."""
        index: dict[bytes, tuple[list[Any], list[Any]]] = {}
        for slot, object_class in ((0, ObjectClass.PRIVATE_KEY), (1, ObjectClass.PUBLIC_KEY)):
            for obj in self._live().get_objects({Attribute.CLASS: object_class}):
                index.setdefault(bytes(obj[Attribute.ID]), ([], []))[slot].append(obj)
        return index

    def _indexed(self) -> dict[bytes, tuple[list[Any], list[Any]]]:
        """The key index, read from the token on first use after opening (or forgetting)."""
        if self._key_index is None:
            self._key_index = self._index()
            self._token_ids = set(self._key_index)
        return self._key_index

    def _load(self, key_id: bytes) -> tuple[Any, KeyInfo]:
        if key_id in self._cache:
            return self._cache[key_id]
        label = self._info.label
        with translated(label, key_id=key_id, purpose=f"look up key {key_id.hex()}"):
            # each indexed entry serves one first look-up, then the cache takes over
            private, public = self._indexed().pop(key_id, ([], []))
            if not private:  # created since the index was read (or absent): ask the token
                private = self._objects(ObjectClass.PRIVATE_KEY, key_id)
                public = self._objects(ObjectClass.PUBLIC_KEY, key_id)
            if not private and public:
                # every key is stored as both objects; a lone public object means the
                # private one is invisible (the session was logged out) or was destroyed
                raise PrivateKeyHidden(label, key_id)
            if not private:
                raise KeyNotFound(label, key_id)
            if len(private) > 1 or len(public) > 1:
                raise Pkcs11Error(
                    f"HSM token {label!r} holds several keys with id {key_id.hex()!r}."
                )
            if not public:
                raise UnsupportedKey(label, key_id, "a private key without its public-key object")
            pair = _pair_attributes(private[0], public[0])
            if pair is not None:
                attrs, public_attrs = pair
                algorithm = _algorithm_in(attrs, label)
                public_algorithm = _algorithm_in(public_attrs, label)
                point = bytes(public_attrs[Attribute.EC_POINT])
            else:
                algorithm = _algorithm_of(private[0], label)
                public_algorithm = _algorithm_of(public[0], label)
                attrs = private[0].get_attributes(
                    [Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.LABEL]
                )
                point = b""  # read below, once the pair is known to match
            if public_algorithm is not algorithm:
                raise UnsupportedKey(label, key_id, "a private key whose public key does not match")
            if pair is None:
                point = bytes(public[0][Attribute.EC_POINT])
            info = KeyInfo(
                key_id=key_id,
                label=str(attrs[Attribute.LABEL]),
                algorithm=algorithm,
                public_key=_public_bytes(algorithm, point),
                sensitive=bool(attrs[Attribute.SENSITIVE]),
                extractable=bool(attrs[Attribute.EXTRACTABLE]),
            )
        self._cache[key_id] = (private[0], info)
        return private[0], info

    def _ensure_absent(self, key_id: bytes) -> None:
        """Refuse an id the token already uses, checked against the key index (one token
        read per keystore, not one search per new key: on SoftHSM a search scans every
        object, which made importing a pool quadratic in its size).  Keys that another
        program creates while this keystore is open are seen after :meth:`forget_keys`."""
        with translated(self._info.label, key_id=key_id, purpose="look up keys"):
            self._indexed()
            if key_id in self._token_ids:
                raise DuplicateKey(self._info.label, key_id)

    def _created(self, key_id: bytes, private: Any, public: Any) -> KeyInfo:
        """Register a pair this keystore just created and look it up from its handles
        (the same checks as any look-up, without searching the token for it)."""
        self._indexed()[key_id] = ([private], [public])
        self._token_ids.add(key_id)
        return self._load(key_id)[1]

    @staticmethod
    def _check_new(algorithm: KeyAlgorithm, key_id: bytes, label: str) -> KeyAlgorithm:
        if not isinstance(key_id, bytes) or not 0 < len(key_id) <= 64:
            raise ValueError("key_id must be 1..64 bytes")
        if not label or len(label.encode()) > 128:
            raise ValueError("label must be 1..128 bytes of UTF-8")
        return KeyAlgorithm(algorithm)  # ValueError for an unknown algorithm name

    @staticmethod
    def _private_template(key_id: bytes, label: str) -> dict[Attribute, Any]:
        return {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DERIVE: False,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.ID: key_id,
            Attribute.LABEL: label,
        }

    @staticmethod
    def _public_template(key_id: bytes, label: str, params: bytes) -> dict[Attribute, Any]:
        return {
            Attribute.TOKEN: True,
            Attribute.PRIVATE: False,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.WRAP: False,
            Attribute.DERIVE: False,
            Attribute.EC_PARAMS: params,
            Attribute.ID: key_id,
            Attribute.LABEL: label,
        }

    # -- Keystore protocol
    def list_keys(self) -> list[KeyInfo]:
        """Every supported key on the token (keys of other curves are skipped)."""
        with _LOCK:
            with translated(self._info.label, purpose="list keys"):
                ids = sorted(
                    {
                        bytes(obj[Attribute.ID])
                        for obj in self._live().get_objects(
                            {Attribute.CLASS: ObjectClass.PRIVATE_KEY}
                        )
                    }
                )
            keys = []
            for key_id in ids:
                try:
                    keys.append(self._load(key_id)[1])
                except UnsupportedKey:
                    continue
            return keys

    def find_key(self, key_id: bytes) -> KeyInfo:
        with _LOCK:
            return self._load(key_id)[1]

    def forget_keys(self) -> None:
        """Drop cached key handles and the key index, as if just opened (use after another
        program changed the token's keys; benchmarks use it to measure a cold start)."""
        with _LOCK:
            self._cache.clear()
            self._key_index = None
            self._token_ids = set()

    def key_attributes(self, key_id: bytes) -> KeyAttributes:
        """The private key's security attributes (sensitive, never extractable, local ...)."""
        with _LOCK:
            key, _ = self._load(key_id)
            with translated(self._info.label, key_id=key_id, purpose="read key attributes"):
                values = key.get_attributes(list(_KEY_ATTRIBUTES.values()))
            return KeyAttributes(**{k: bool(values[a]) for k, a in _KEY_ATTRIBUTES.items()})

    def generate_key(self, algorithm: KeyAlgorithm, key_id: bytes, label: str) -> KeyInfo:
        """Generate a key pair inside the HSM (never extractable, always sensitive)."""
        algorithm = self._check_new(algorithm, key_id, label)
        with _LOCK:
            self._ensure_absent(key_id)
            if algorithm is KeyAlgorithm.SECP256K1:
                key_type, mech, params = KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, SECP256K1_PARAMS
            else:
                key_type, mech = KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN
                params = ED25519_OID_PARAMS
            self.require(mech, f"generate {algorithm} keys")
            with translated(
                self._info.label,
                key_id=key_id,
                purpose=f"generate a {algorithm} key",
                mechanism="CKM_" + mech.name,
            ):
                public, private = self._live().generate_keypair(
                    key_type,
                    mechanism=mech,
                    store=True,
                    id=key_id,
                    label=label,
                    capabilities=MechanismFlag.SIGN | MechanismFlag.VERIFY,
                    public_template=self._public_template(key_id, label, params),
                    private_template=self._private_template(key_id, label),
                )
            return self._created(key_id, private, public)

    def import_private_key(
        self,
        algorithm: KeyAlgorithm,
        private_key: bytes | bytearray,
        key_id: bytes,
        label: str,
    ) -> KeyInfo:
        """Import a seed-derived private key as sensitive and non-extractable.

        The public key is computed on the host from the scalar (secp256k1) or seed (Ed25519)
        and stored beside it.  python-pkcs11 copies the value into an immutable ``bytes``
        for the call; the caller wipes its own buffer afterwards.
        """
        algorithm = self._check_new(algorithm, key_id, label)
        if len(private_key) != 32:
            raise ValueError("private key must be 32 bytes")
        if algorithm is KeyAlgorithm.SECP256K1:
            try:
                host_key = coincurve.PrivateKey(bytes(private_key))
            except ValueError as exc:
                raise ValueError("private key is not a valid secp256k1 scalar") from exc
            point = host_key.public_key.format(compressed=False)
            key_type, params = KeyType.EC, SECP256K1_PARAMS
        else:
            point = bytes(nacl.signing.SigningKey(bytes(private_key)).verify_key)
            key_type, params = KeyType.EC_EDWARDS, ED25519_OID_PARAMS
        private_template = self._private_template(key_id, label)
        private_template.update(
            {
                Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                Attribute.KEY_TYPE: key_type,
                Attribute.EC_PARAMS: params,
                Attribute.VALUE: bytes(private_key),
            }
        )
        public_template = self._public_template(key_id, label, params)
        public_template.update(
            {
                Attribute.CLASS: ObjectClass.PUBLIC_KEY,
                Attribute.KEY_TYPE: key_type,
                Attribute.EC_POINT: _octet_string(point),
            }
        )
        with _LOCK:
            self._ensure_absent(key_id)
            with translated(self._info.label, key_id=key_id, purpose=f"import a {algorithm} key"):
                session = self._live()
                created = session.create_object(private_template)
                try:
                    public = session.create_object(public_template)
                except BaseException:  # an error or Ctrl-C: never leave half a pair
                    for orphan in self._objects(ObjectClass.PUBLIC_KEY, key_id):
                        orphan.destroy()  # made just before a Ctrl-C took effect
                    created.destroy()
                    raise
            return self._created(key_id, created, public)

    def delete_key(self, key_id: bytes) -> None:
        """Destroy the private and public objects with this ``CKA_ID`` (key-pool ceremonies)."""
        label = self._info.label
        with _LOCK:
            with translated(label, key_id=key_id, purpose="delete a key"):
                private = self._objects(ObjectClass.PRIVATE_KEY, key_id)
                public = self._objects(ObjectClass.PUBLIC_KEY, key_id)
                if not private and public:  # see _load: never delete half of a hidden pair
                    raise PrivateKeyHidden(label, key_id)
                if not private:
                    raise KeyNotFound(label, key_id)
                for obj in private + public:  # also half a pair an interrupt left behind
                    obj.destroy()
            self._cache.pop(key_id, None)
            self._indexed().pop(key_id, None)
            self._token_ids.discard(key_id)

    def _signing_key(self, key_id: bytes, algorithm: KeyAlgorithm) -> tuple[Any, KeyInfo]:
        key, info = self._load(key_id)
        if info.algorithm is not algorithm:
            raise KeyAlgorithmMismatch(key_id, expected=algorithm.value, actual=info.algorithm)
        return key, info

    def sign_ecdsa(self, key_id: bytes, digest: bytes) -> EcdsaSignature:
        """CKM_ECDSA over a 32-byte digest, normalised to low-S and verified on the host.

        Raw ``r || s`` of the wrong length or out of range, or a signature that does not
        verify with libsecp256k1, is discarded as :class:`SignatureCheckFailed`."""
        signature = self._sign_checked(_Job(key_id, KeyAlgorithm.SECP256K1, digest))
        assert isinstance(signature, EcdsaSignature)  # noqa: S101 - by the job's algorithm
        return signature

    def sign_ed25519(self, key_id: bytes, message: bytes) -> Ed25519Signature:
        """CKM_EDDSA (pure Ed25519) over ``message``, verified on the host."""
        signature = self._sign_checked(_Job(key_id, KeyAlgorithm.ED25519, message))
        assert isinstance(signature, Ed25519Signature)  # noqa: S101 - by the job's algorithm
        return signature

    def sign_all(self, jobs: Sequence[ToSign]) -> list[Signature]:
        """One signature per job, in order, made and checked exactly as :meth:`sign_ecdsa`
        and :meth:`sign_ed25519` make them, but pipelined: this thread keeps the token busy
        while a second thread checks the signatures it returned (low-S, verification with
        libsecp256k1 or libsodium), so the host checks overlap the token's work instead of
        adding to it.  Signatures are handed over in groups of :data:`_CHECK_GROUP` (one
        thread wake-up per signature cost more than the check itself).  No PKCS#11 call is
        made outside this thread and the module lock.

        Every payload is validated, every key looked up and every mechanism checked before
        the first signature.  The first failure (an HSM error, or
        :class:`SignatureCheckFailed`) stops the token within a group and is raised; then
        nothing is returned."""
        for job in jobs:
            _check_payload(job)
        results: list[Signature | None] = [None] * len(jobs)
        failures: list[BaseException] = []
        made: queue.SimpleQueue[list[tuple[int, bytes]] | None] = queue.SimpleQueue()
        with _LOCK:
            keys = [self._signing_key(job.key_id, job.algorithm) for job in jobs]
            for algorithm in {job.algorithm for job in jobs}:
                self._require_signing(algorithm)

        def check() -> None:
            while (group := made.get()) is not None:
                for index, raw in group:
                    if failures:
                        break  # the batch has already failed: drain
                    try:
                        results[index] = self._checked(jobs[index], raw, keys[index][1])
                    except BaseException as exc:  # noqa: BLE001 - raised by the signing thread
                        failures.append(exc)

        checker = threading.Thread(target=check, name="coldvault-signature-check", daemon=True)
        checker.start()
        group: list[tuple[int, bytes]] = []
        try:
            with _LOCK:
                for index, (job, (key, _)) in enumerate(zip(jobs, keys, strict=True)):
                    group.append((index, self._sign_with(key, job)))
                    if len(group) == _CHECK_GROUP:
                        made.put(group)
                        group = []
                        if failures:
                            break
            made.put(group)
        finally:
            made.put(None)
            checker.join()
        if failures:
            raise failures[0]
        return [r for r in results if r is not None]

    def _sign_checked(self, job: ToSign) -> Signature:
        _check_payload(job)
        with _LOCK:
            key, info = self._signing_key(job.key_id, job.algorithm)
            self._require_signing(job.algorithm)
            raw = self._sign_with(key, job)
        return self._checked(job, raw, info)

    def _require_signing(self, algorithm: KeyAlgorithm) -> None:
        mechanism, _, words, _ = _MECHANISMS[algorithm]
        self.require(mechanism, f"sign with {words} keys")

    def _sign_with(self, key: Any, job: ToSign) -> bytes:
        """The token's raw signature for ``job`` by ``key`` (the caller holds the lock)."""
        mechanism, name, _, purpose = _MECHANISMS[job.algorithm]
        with translated(self._info.label, key_id=job.key_id, purpose=purpose, mechanism=name):
            return bytes(key.sign(job.payload, mechanism=mechanism))

    def _checked(self, job: ToSign, raw: bytes, info: KeyInfo) -> Signature:
        """``raw`` as a signature that verifies for the key over the payload (ECDSA: low-S),
        or :class:`SignatureCheckFailed`; makes no PKCS#11 call."""
        signature: Signature
        try:
            if job.algorithm is KeyAlgorithm.SECP256K1:
                signature = EcdsaSignature.from_compact(raw).low_s()
            else:
                signature = Ed25519Signature(raw)
            ok = signature.verify(info.public_key, job.payload)
        except (InvalidSignature, ValueError, TypeError):
            ok = False
        if not ok:
            algorithm = "secp256k1 ECDSA" if job.algorithm is KeyAlgorithm.SECP256K1 else "Ed25519"
            raise SignatureCheckFailed(self._info.label, job.key_id, algorithm)
        return signature

    def random(self, length: int) -> bytes:
        """``length`` bytes from C_GenerateRandom."""
        if not 0 < length <= _MAX_RANDOM:
            raise ValueError(f"length must be 1..{_MAX_RANDOM}")
        with _LOCK, translated(self._info.label, purpose="generate random bytes"):
            data = bytes(self._live().generate_random(length * 8))
        if len(data) != length:
            raise Pkcs11Error(f"HSM token {self._info.label!r} returned too few random bytes.")
        return data


@dataclass(frozen=True)
class _Job:
    key_id: bytes
    algorithm: KeyAlgorithm
    payload: bytes


#: the PKCS#11 mechanism each key algorithm signs with, and the words its errors use
_MECHANISMS = {
    KeyAlgorithm.SECP256K1: (Mechanism.ECDSA, "CKM_ECDSA", "secp256k1", "sign with ECDSA"),
    KeyAlgorithm.ED25519: (Mechanism.EDDSA, "CKM_EDDSA", "Ed25519", "sign with EdDSA"),
}


#: signatures handed to the checking thread at a time (benchmarks/bench_appliance.py)
_CHECK_GROUP = 16


def _check_payload(job: ToSign) -> None:
    if not isinstance(job.payload, bytes):
        raise ValueError("a signing payload must be bytes")
    if job.algorithm is KeyAlgorithm.SECP256K1 and len(job.payload) != 32:
        raise ValueError("digest must be 32 bytes")


if TYPE_CHECKING:  # mypy proves the class satisfies the Keystore protocol

    def _conforms(keystore: Pkcs11Keystore) -> Keystore:
        return keystore

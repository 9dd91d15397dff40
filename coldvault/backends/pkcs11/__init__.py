"""The keystore over PKCS#11 (python-pkcs11): SoftHSM2 in the lab, the vendor's module in
production (docs/keystore.md).

The face (import these from ``coldvault.backends.pkcs11``):

* :class:`Pkcs11Keystore` -- one logged-in token; a :class:`coldvault.keys.Keystore` (both
  the appliance's ``Signer`` and the ceremonies' ``KeyAdmin``).
* :func:`list_tokens`, :func:`init_pin`, :func:`set_pin`, :class:`PinRole`,
  :class:`KeyAttributes` -- discovery, PIN ceremonies and key attributes for audits.
* The errors an operator meets most: :class:`Pkcs11Error`, :class:`WrongPin`,
  :class:`TokenLocked`, :class:`TokenNotFound`, :class:`TokenInUse`,
  :class:`EmulatedTokenRefused`, :class:`PrivateKeyHidden`, :class:`SignatureCheckFailed`;
  every error is in :mod:`coldvault.backends.pkcs11.errors`, the one place PKCS#11 return
  codes are translated.
"""

from __future__ import annotations

from coldvault.backends.pkcs11.errors import (
    EmulatedTokenRefused,
    Pkcs11Error,
    PrivateKeyHidden,
    SignatureCheckFailed,
    TokenInUse,
    TokenLocked,
    TokenNotFound,
    WrongPin,
)
from coldvault.backends.pkcs11.keystore import (
    KeyAttributes,
    PinRole,
    Pkcs11Keystore,
    init_pin,
    list_tokens,
    set_pin,
)

__all__ = [
    "EmulatedTokenRefused",
    "KeyAttributes",
    "PinRole",
    "Pkcs11Error",
    "Pkcs11Keystore",
    "PrivateKeyHidden",
    "SignatureCheckFailed",
    "TokenInUse",
    "TokenLocked",
    "TokenNotFound",
    "WrongPin",
    "init_pin",
    "list_tokens",
    "set_pin",
]

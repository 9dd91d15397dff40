"""Keys: the keystore seam, the key pool, and entropy for new seeds.

The face (import these from ``coldvault.keys``), all from :mod:`coldvault.keys.keystore`:

* :class:`Signer` -- what the signing appliance needs from an HSM (find a key, sign);
  :class:`KeyAdmin` -- what the ceremonies need (import, generate, delete, RNG, token info);
  :class:`Keystore` -- both.
* :data:`Signature` -- a signer's result: ``EcdsaSignature | Ed25519Signature``.
* :class:`KeyInfo`, :class:`TokenInfo`, :class:`KeyAlgorithm` -- the value types.
* :class:`KeyNotFound` and :func:`held_key` -- "not held" is exactly ``KeyNotFound``; every
  other look-up failure propagates.
* :func:`derived_key_id`, :func:`derived_key_label`, ``AUDIT_KEY_ID``, ``IDENTITY_KEY_ID`` --
  the key identifier scheme (docs/keystore.md).

Modules imported by name: :mod:`coldvault.keys.pool` (derive a key pool from a seed and
import it) and :mod:`coldvault.keys.entropy` (dice and HSM entropy for a new seed).
"""

from __future__ import annotations

from coldvault.keys.keystore import (
    AUDIT_KEY_ID,
    IDENTITY_KEY_ID,
    KeyAdmin,
    KeyAlgorithm,
    KeyInfo,
    KeyNotFound,
    Keystore,
    Signature,
    Signer,
    TokenInfo,
    derived_key_id,
    derived_key_label,
    held_key,
)

__all__ = [
    "AUDIT_KEY_ID",
    "IDENTITY_KEY_ID",
    "KeyAdmin",
    "KeyAlgorithm",
    "KeyInfo",
    "KeyNotFound",
    "Keystore",
    "Signature",
    "Signer",
    "TokenInfo",
    "derived_key_id",
    "derived_key_label",
    "held_key",
]

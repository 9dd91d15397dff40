"""Key-derivation and seed-backup primitives used by the key ceremonies.

Modules:

* :mod:`coldvault.crypto.bip32` -- BIP-32 secp256k1 extended keys (bip-utils underneath),
  strict import of serialised keys, xpub/tpub export.
* :mod:`coldvault.crypto.slip10` -- SLIP-10 for secp256k1, nist256p1, ed25519, curve25519.
* :mod:`coldvault.crypto.mnemonics` -- BIP-39 (python-mnemonic) and SLIP-39
  (shamir-mnemonic) with domain errors.

Secret hygiene
--------------
Secrets we own live in ``bytearray`` and are zeroed with :func:`wipe` as soon as they are
no longer needed.  Honest limits: the libraries we build on (bip-utils, coincurve,
python-mnemonic, shamir-mnemonic, hashlib) take and return immutable ``bytes``/``str``, so
short-lived immutable copies of keys, seeds and mnemonics exist inside them until the
garbage collector reclaims the memory.  We keep such copies as few and as short-lived as
the APIs allow and never write them anywhere; the ceremony host is air-gapped and runs
without swap (docs/ceremonies.md).
"""

from __future__ import annotations

from coldvault.errors import InputError


class CryptoInputError(InputError):
    """Key material, a path or a mnemonic supplied by an operator or a file is invalid."""

    code = "crypto-input"


def wipe(buf: bytearray | memoryview | None) -> None:
    """Overwrite a mutable buffer with zeros in place (no-op for ``None``).

    Immutable ``bytes`` cannot be wiped; passing one is a programming mistake.
    """
    if buf is None:
        return
    if isinstance(buf, bytes):
        raise TypeError("wipe() needs a bytearray or writable memoryview, not bytes")
    view = memoryview(buf).cast("B")
    view[:] = b"\x00" * len(view)
    view.release()


__all__ = ["CryptoInputError", "wipe"]

"""Secret hygiene: wiping the mutable buffers that hold keys, seeds and shares.

Secrets we own live in ``bytearray`` and are zeroed with :func:`wipe` as soon as they are
no longer needed.  Honest limits: the libraries we build on (bip-utils, coincurve,
python-mnemonic, shamir-mnemonic, hashlib) take and return immutable ``bytes``/``str``, so
short-lived immutable copies of keys, seeds and mnemonics exist inside them until the
garbage collector reclaims the memory.  We keep such copies as few and as short-lived as
the APIs allow and never write them anywhere; the ceremony host is air-gapped and runs
without swap (docs/ceremonies.md).
"""

from __future__ import annotations


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

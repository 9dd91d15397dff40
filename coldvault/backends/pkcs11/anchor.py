"""The appliance's state anchor as a private data object on its PKCS#11 token.

One ``CKO_DATA`` object (``CKA_TOKEN``, ``CKA_PRIVATE``; label :data:`ANCHOR_LABEL`,
application :data:`ANCHOR_APPLICATION`) holds the bytes of a
:class:`coldvault.records.anchor.Anchor`. Tokens may refuse to change a data object's value
(SoftHSM does), so an update writes a new object whose ``CKA_ID`` is the next generation
(8 bytes, big-endian) and then destroys the old one: a crash in between leaves two, and the
highest generation wins. Being private, it can be read, created or changed
only in a session logged in with the user PIN: a person who can write to the appliance's
state directory but does not know the PIN can neither roll it back nor delete it.
"""

from __future__ import annotations

from typing import Any

from pkcs11 import Attribute, ObjectClass

from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.records.anchor import AnchorCorrupt

__all__ = ["ANCHOR_APPLICATION", "ANCHOR_LABEL", "MAX_ANCHOR_BYTES", "TokenAnchorStore"]

ANCHOR_LABEL = "coldvault-state-anchor"
ANCHOR_APPLICATION = "coldvault"
MAX_ANCHOR_BYTES = 4096


class TokenAnchorStore:
    """An :class:`coldvault.records.anchor.AnchorStore` on a logged-in keystore's token."""

    def __init__(self, keystore: Pkcs11Keystore) -> None:
        self._keystore = keystore

    @staticmethod
    def _objects(session: Any) -> list[tuple[int, Any]]:
        found = session.get_objects(
            {
                Attribute.CLASS: ObjectClass.DATA,
                Attribute.LABEL: ANCHOR_LABEL,
                Attribute.PRIVATE: True,
            }
        )
        return sorted(
            ((int.from_bytes(bytes(obj[Attribute.OBJECT_ID] or b""), "big"), obj)
             for obj in found), key=lambda pair: pair[0],
        )  # fmt: skip

    def load(self) -> bytes | None:
        with self._keystore.raw_session("read the state anchor") as session:
            objects = self._objects(session)
            if not objects:
                return None
            data = bytes(objects[-1][1][Attribute.VALUE])
        if len(data) > MAX_ANCHOR_BYTES:
            raise AnchorCorrupt(f"it is {len(data)} bytes long")
        return data

    def save(self, data: bytes) -> None:
        if len(data) > MAX_ANCHOR_BYTES:
            raise ValueError("the anchor is too large")
        with self._keystore.raw_session("update the state anchor") as session:
            objects = self._objects(session)
            generation = objects[-1][0] + 1 if objects else 1
            session.create_object(
                {
                    Attribute.CLASS: ObjectClass.DATA,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.LABEL: ANCHOR_LABEL,
                    Attribute.APPLICATION: ANCHOR_APPLICATION,
                    Attribute.OBJECT_ID: generation.to_bytes(8, "big"),
                    Attribute.VALUE: bytes(data),
                }
            )
            for _, old in objects:
                old.destroy()

    def destroy(self) -> None:
        """Remove the anchor (the admin-approved lost-state recovery, and tests)."""
        with self._keystore.raw_session("remove the state anchor") as session:
            for _, old in self._objects(session):
                old.destroy()

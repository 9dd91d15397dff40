"""The state anchor on the real SoftHSM appliance token: private, persistent, user-only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.quorum.documents import ConfigVersion
from coldvault.records.anchor import Anchor

pytestmark = pytest.mark.lab


@pytest.fixture
def store(keystore: Pkcs11Keystore) -> Iterator[TokenAnchorStore]:
    anchors = TokenAnchorStore(keystore)
    saved = anchors.load()
    anchors.destroy()
    try:
        yield anchors
    finally:
        anchors.destroy()
        if saved is not None:
            anchors.save(saved)


def test_anchor_round_trips_and_the_newest_generation_wins(
    store: TokenAnchorStore, keystore: Pkcs11Keystore
) -> None:
    assert store.load() is None
    anchor = Anchor().with_configs((ConfigVersion("roster", 2, b"\x11" * 32),)).with_entry(
        7, "ab" * 32, sealed=True
    )
    store.save(anchor.to_bytes())
    store.save(anchor.with_entry(9, "cd" * 32).to_bytes())
    data = TokenAnchorStore(keystore).load()
    assert data is not None
    back = Anchor.from_bytes(data)
    assert (back.audit_seq, back.audit_head, back.sealed_through) == (9, "cd" * 32, 6)
    assert back.config("roster") == ConfigVersion("roster", 2, b"\x11" * 32)


def test_anchor_object_is_private_on_the_token(store: TokenAnchorStore, keystore) -> None:
    from pkcs11 import Attribute, ObjectClass

    store.save(Anchor().to_bytes())
    session = keystore._live()
    (obj,) = session.get_objects({Attribute.CLASS: ObjectClass.DATA,
                                  Attribute.LABEL: "coldvault-state-anchor"})
    assert obj[Attribute.PRIVATE] is True and obj[Attribute.TOKEN] is True


def test_check_trail_refuses_a_trail_whose_anchored_entry_differs(tmp_path) -> None:
    """The anchored head hash is compared, not only the length."""
    from coldvault.records.anchor import StateRollback, check_trail
    from coldvault.records.audit import AuditLog

    with AuditLog(tmp_path / "a.jsonl") as real:
        real.append("startup", {"n": 1})
        anchored = real.append("startup", {"n": 2})
    with AuditLog(tmp_path / "b.jsonl") as forged:
        forged.append("startup", {"n": 1})
        forged.append("startup", {"n": 3})
        forged.append("startup", {"n": 4})
    anchor = Anchor().with_entry(anchored.seq, anchored.hash)
    check_trail(anchor, tmp_path / "a.jsonl", entries=2, sealed_through=None)
    with pytest.raises(StateRollback, match="not the entry the HSM anchors"):
        check_trail(anchor, tmp_path / "b.jsonl", entries=3, sealed_through=None)
    with pytest.raises(StateRollback, match="missing"):
        check_trail(anchor, tmp_path / "c.jsonl", entries=0, sealed_through=None)

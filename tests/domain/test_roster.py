from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.quorum.documents import (
    DocumentHashMismatch,
    SignedDocument,
    SignedDocumentInvalid,
    accept_roster,
    approvals_path,
    load_signed_document,
    verify_roster_chain,
    write_signed_document,
)
from coldvault.quorum.errors import (
    BadApprovalSignature,
    CardRevoked,
    DuplicateHolder,
    ThresholdNotMet,
    UnknownCard,
    WrongRole,
)
from coldvault.quorum.roster import (
    CardStatus,
    Role,
    Roster,
    RosterInvalid,
    RosterMismatch,
    RosterRollback,
)

from .conftest import APPLIANCE


def sign_roster(roster: Roster, signers) -> SignedDocument:
    doc = SignedDocument("roster", roster.version, roster.appliance_id, roster.to_bytes())
    for card in signers:
        doc = doc.with_approval(card.serial, card.sign(doc.token))
    return doc


def test_canonical_bytes_round_trip(cards) -> None:
    roster = cards.roster()
    data = roster.to_bytes()
    assert Roster.from_bytes(data) == dataclasses.replace(
        roster, holders=tuple(sorted(roster.holders, key=lambda h: h.serial))
    )
    assert data.endswith(b"\n") and json.loads(data)["format"] == "coldvault-roster/1"
    assert Roster.from_bytes(data).sha256 == roster.sha256


def test_non_canonical_bytes_refused(cards) -> None:
    data = cards.roster().to_bytes()
    compact = json.dumps(json.loads(data)).encode()
    with pytest.raises(RosterInvalid, match="canonical"):
        Roster.from_bytes(compact)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda o: o.update(version=0), "version"),
        (lambda o: o.update(admin_threshold=4), "admin_threshold"),
        (lambda o: o["holders"][0].update(algorithm="rsa2048"), "holders[0]"),
        (lambda o: o["holders"][0].update(public_key="00" * 31), "holders[0]"),
        (lambda o: o["holders"][1].update(serial=o["holders"][0]["serial"]), "holders[1]"),
        (lambda o: o["holders"][0].update(role="root"), "holders[0]"),
        (lambda o: o.update(format="other"), "format"),
    ],
)
def test_invalid_rosters(cards, mutate, field) -> None:
    obj = cards.roster().to_json()
    mutate(obj)
    with pytest.raises(RosterInvalid) as info:
        Roster.from_json(obj)
    assert info.value.field == field


def test_revoked_admins_do_not_count_toward_threshold(cards) -> None:
    roster = cards.roster(threshold=3)
    with pytest.raises(RosterInvalid):
        roster.revoke("ADM-0")


def test_genesis_accepted_with_pin(cards) -> None:
    roster = cards.roster()
    doc = sign_roster(roster, cards.admins[:2])
    assert accept_roster(doc, current=None, pinned_genesis_sha256=doc.sha256) == Roster.from_bytes(
        roster.to_bytes()
    )


def test_genesis_other_than_pinned_refused(cards) -> None:
    doc = sign_roster(cards.roster(), cards.admins[:2])
    with pytest.raises(RosterMismatch):
        accept_roster(doc, current=None, pinned_genesis_sha256=b"\x00" * 32)


def test_genesis_below_threshold(cards) -> None:
    doc = sign_roster(cards.roster(), cards.admins[:1])
    with pytest.raises(ThresholdNotMet) as info:
        accept_roster(doc, current=None)
    assert (info.value.have, info.value.need) == (1, 2)


def test_update_signed_by_previous_admins(cards) -> None:
    v1 = cards.roster()
    v2 = v1.revoke("APR-1")
    assert v2.version == 2 and v2.holder("APR-1").status is CardStatus.REVOKED
    new = accept_roster(sign_roster(v2, cards.admins[1:]), current=v1)
    assert new.version == 2


def test_update_cannot_be_signed_by_admins_it_adds(cards) -> None:
    v1 = cards.roster()
    rogue = [c for c in cards.approvers[:2]]
    holders = [h for h in v1.holders if h.role is not Role.ADMIN]
    holders = [
        dataclasses.replace(h, role=Role.ADMIN) if h.serial in {c.serial for c in rogue} else h
        for h in holders
    ]
    v2 = v1.successor(holders)
    with pytest.raises(WrongRole):
        accept_roster(sign_roster(v2, rogue), current=v1)


def test_rollback_refused(cards) -> None:
    v1 = cards.roster()
    v2 = cards.roster(version=2)
    same = sign_roster(cards.roster(version=1), cards.admins[:2])
    with pytest.raises(RosterRollback) as info:
        accept_roster(same, current=v1)
    assert (info.value.current_version, info.value.offered_version) == (1, 1)
    with pytest.raises(RosterRollback):
        accept_roster(sign_roster(v1, cards.admins[:2]), current=v2)


def test_approval_errors_on_roster(cards) -> None:
    v1 = cards.roster()
    v2 = v1.successor(v1.holders)
    doc = sign_roster(v2, cards.admins[:1])
    with pytest.raises(UnknownCard):
        accept_roster(doc.with_approval("OUT-0", cards.outsider.sign(doc.token)), current=v1)
    with pytest.raises(BadApprovalSignature):
        accept_roster(doc.with_approval("ADM-1", cards.admins[1].sign(b"other")), current=v1)
    with pytest.raises(DuplicateHolder):
        accept_roster(doc.with_approval("ADM-0", cards.admins[0].sign(doc.token)), current=v1)
    with pytest.raises(WrongRole):
        accept_roster(doc.with_approval("APR-1", cards.approvers[1].sign(doc.token)), current=v1)
    revoked = v1.revoke("ADM-2")
    doc3 = sign_roster(revoked.successor(revoked.holders), cards.admins[:1])
    with pytest.raises(CardRevoked):
        accept_roster(
            doc3.with_approval("ADM-2", cards.admins[2].sign(doc3.token)), current=revoked
        )


def test_chain_and_files(cards, tmp_path: Path) -> None:
    v1 = cards.roster()
    v2 = v1.revoke("APR-3")
    v3 = v2.revoke("APR-2")
    docs = [
        sign_roster(v1, cards.admins[:2]),
        sign_roster(v2, cards.admins[1:]),
        sign_roster(v3, cards.admins[::2]),
    ]
    paths = []
    for doc in docs:
        path = tmp_path / f"roster-{doc.version}.json"
        write_signed_document(path, doc)
        paths.append(path)
    loaded = [load_signed_document(p, "roster") for p in paths]
    assert loaded == docs
    assert verify_roster_chain(loaded, docs[0].sha256).version == 3
    # skipping v2 means v3 is checked against v1's admins -- still fine; swapping order is not
    with pytest.raises(RosterRollback):
        verify_roster_chain([loaded[0], loaded[2], loaded[1]], docs[0].sha256)


def test_tampered_roster_file(cards, tmp_path: Path) -> None:
    doc = sign_roster(cards.roster(), cards.admins[:2])
    path = tmp_path / "roster.json"
    write_signed_document(path, doc)
    path.write_bytes(path.read_bytes().replace(b'"hk"', b'"hq"', 1))
    with pytest.raises(DocumentHashMismatch):
        load_signed_document(path, "roster")
    approvals_path(path).write_text("{")
    with pytest.raises(SignedDocumentInvalid):
        load_signed_document(path, "roster")
    with pytest.raises(SignedDocumentInvalid):
        load_signed_document(tmp_path / "missing.json", "roster")


def test_other_appliance_refused(cards) -> None:
    v1 = cards.roster()
    other = Roster(2, "cv-sg-02", v1.holders, 2)
    with pytest.raises(RosterMismatch):
        accept_roster(sign_roster(other, cards.admins[:2]), current=v1)
    assert APPLIANCE == v1.appliance_id


def test_load_verified_wallet_registry(cards, tmp_path: Path) -> None:
    from coldvault.quorum.documents import ConfigRollback, ConfigVersion, load_verified_document

    text = b'[[wallet]]\nname = "acme-btc-cold"\n'
    doc = SignedDocument("wallets", 4, APPLIANCE, text)
    for c in cards.admins[:2]:
        doc = doc.with_approval(c.serial, c.sign(doc.token))
    path = tmp_path / "wallets.toml"
    write_signed_document(path, doc)
    assert load_verified_document(path, "wallets", cards.roster()).content == text
    with pytest.raises(ConfigRollback):
        load_verified_document(
            path, "wallets", cards.roster(), recorded=ConfigVersion("wallets", 5, b"\x00" * 32)
        )
    with pytest.raises(ConfigRollback):  # same version, other content
        load_verified_document(
            path, "wallets", cards.roster(), recorded=ConfigVersion("wallets", 4, b"\x00" * 32)
        )
    same = load_verified_document(path, "wallets", cards.roster(), recorded=doc.config_version)
    assert same.config_version == doc.config_version
    with pytest.raises(SignedDocumentInvalid):  # a policy approval is not a wallets approval
        load_signed_document(path, "policy")


def test_deeply_nested_inputs_are_clean_errors(cards, tmp_path: Path) -> None:
    with pytest.raises(RosterInvalid):
        Roster.from_bytes(b"[" * 100_000)
    path = tmp_path / "r.json"
    path.write_bytes(cards.roster().to_bytes())
    approvals_path(path).write_bytes(b"[" * 100_000)
    with pytest.raises(SignedDocumentInvalid):
        load_signed_document(path, "roster")


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(0, 10_000), xor=st.integers(1, 255))
def test_mutated_roster_bytes_never_parse_silently(cards, pos: int, xor: int) -> None:
    data = bytearray(cards.roster().to_bytes())
    data[pos % len(data)] ^= xor
    try:
        roster = Roster.from_bytes(bytes(data))
    except RosterInvalid:
        return
    assert roster.to_bytes() == bytes(data)  # only a canonical, valid roster ever comes back


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_roster_is_roster_invalid(obj) -> None:
    with pytest.raises(RosterInvalid):
        Roster.from_json(obj)

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.errors import QuorumError
from coldvault.quorum.approvals import (
    TOKEN_PREFIX,
    ApprovalSession,
    ApprovalToken,
    MemoryReplayGuard,
    Tally,
)
from coldvault.quorum.errors import (
    ApprovalExpired,
    ApprovalForOtherRequest,
    ApprovalReplayed,
    BadApprovalSignature,
    CardRevoked,
    DuplicateHolder,
    MalformedToken,
    ThresholdNotMet,
    UnknownCard,
    WrongRole,
)
from coldvault.quorum.roster import CardHolder, Role

from .conftest import make_review

T0 = 1_800_000_000


class Clock:
    def __init__(self, t: int = T0) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


def token_for(cards, review=None, nonce=b"\x11" * 16, m=2) -> ApprovalToken:
    return ApprovalToken.for_review(
        review or make_review(),
        policy_version=7,
        roster=cards.roster(),
        required_approvals=m,
        now=T0,
        ttl=600,
        nonce=nonce,
    )


def session(cards, token=None, guard=None, clock=None, **kw) -> ApprovalSession:
    token = token or token_for(cards)
    return ApprovalSession(
        cards.roster(), token, guard=guard or MemoryReplayGuard(), now=clock or Clock(), **kw
    )


def test_token_bytes_are_canonical_and_round_trip(cards) -> None:
    token = token_for(cards)
    data = token.to_bytes()
    assert data.startswith(TOKEN_PREFIX) and len(data) < 255
    assert ApprovalToken.from_bytes(data) == token
    assert token_for(cards).to_bytes() == data  # deterministic
    assert token_for(cards, nonce=b"\x22" * 16).to_bytes() != data
    assert token.request_fingerprint == make_review().fingerprint


@pytest.mark.parametrize(
    "data",
    [b"", b"junk", TOKEN_PREFIX + b"\xff", TOKEN_PREFIX + b"\xa0", TOKEN_PREFIX + b"\x00" * 2000],
)
def test_malformed_tokens(data: bytes) -> None:
    with pytest.raises(MalformedToken):
        ApprovalToken.from_bytes(data)


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_token_parser_only_raises_malformed(data: bytes) -> None:
    try:
        ApprovalToken.from_bytes(TOKEN_PREFIX + data)
    except MalformedToken:
        pass


def test_two_of_n_satisfied_with_all_card_types(cards) -> None:
    s = session(cards)
    assert not s.satisfied
    s.add("APR-0", cards.approvers[0].sign(s.token_bytes))
    assert not s.satisfied
    s.add("APR-2", cards.approvers[2].sign(s.token_bytes, high_s=True))
    assert s.satisfied
    assert [a.holder for a in s.approvals] == ["Approver 0", "Approver 2"]
    s.add("APR-1", cards.approvers[1].sign(s.token_bytes))  # extra approvals are fine
    assert len(s.consume()) == 3


def test_unknown_card(cards) -> None:
    s = session(cards)
    with pytest.raises(UnknownCard) as info:
        s.add("OUT-0", cards.outsider.sign(s.token_bytes))
    assert info.value.card_serial == "OUT-0" and info.value.roster_version == 1


def test_revoked_card(cards) -> None:
    roster = cards.roster().revoke("APR-1")
    token = ApprovalToken.for_review(
        make_review(), policy_version=7, roster=roster, required_approvals=2, now=T0
    )
    s = ApprovalSession(roster, token, now=Clock())
    with pytest.raises(CardRevoked):
        s.add("APR-1", cards.approvers[1].sign(s.token_bytes))


@pytest.mark.parametrize("who", ["admin", "custodian"])
def test_admins_and_custodians_do_not_approve_requests(cards, who: str) -> None:
    s = session(cards)
    card = cards.admins[0] if who == "admin" else cards.custodian
    with pytest.raises(WrongRole):
        s.add(card.serial, card.sign(s.token_bytes))


def test_bad_signature(cards) -> None:
    s = session(cards)
    with pytest.raises(BadApprovalSignature):
        s.add("APR-0", cards.approvers[1].sign(s.token_bytes))  # another card's signature
    with pytest.raises(BadApprovalSignature):
        s.add("APR-0", b"\x00" * 64)
    assert s.approvals == ()


def test_duplicate_holder_two_cards_counts_once(cards) -> None:
    s = session(cards)
    s.add("APR-0", cards.approvers[0].sign(s.token_bytes))
    with pytest.raises(DuplicateHolder) as info:
        s.add("APR-0B", cards.spare.sign(s.token_bytes))  # "approver 0" == "Approver 0"
    assert info.value.counted_card == "APR-0"
    with pytest.raises(DuplicateHolder):
        s.add("APR-0", cards.approvers[0].sign(s.token_bytes))
    assert not s.satisfied


def test_expired(cards) -> None:
    clock = Clock()
    s = session(cards, clock=clock)
    s.add("APR-0", cards.approvers[0].sign(s.token_bytes))
    s.add("APR-1", cards.approvers[1].sign(s.token_bytes))
    clock.t = T0 + 600
    assert not s.satisfied
    with pytest.raises(ApprovalExpired):
        s.add("APR-2", cards.approvers[2].sign(s.token_bytes))
    with pytest.raises(ApprovalExpired):
        s.consume()


def test_threshold_not_met(cards) -> None:
    s = session(cards)
    s.add("APR-0", cards.approvers[0].sign(s.token_bytes))
    with pytest.raises(ThresholdNotMet) as info:
        s.consume()
    assert (info.value.have, info.value.need) == (1, 2)


def test_approval_for_other_request(cards) -> None:
    other = token_for(cards, review=make_review(request_digest=b"\x01" * 32))
    s = session(cards, recent_tokens=[other.to_bytes()])
    sig = cards.approvers[0].sign(other.to_bytes())
    with pytest.raises(ApprovalForOtherRequest) as info:
        s.add("APR-0", sig)
    assert info.value.signed_fingerprint == other.request_fingerprint
    s2 = session(cards)
    with pytest.raises(ApprovalForOtherRequest):
        s2.add("APR-0", sig, signed_token=other.to_bytes())
    with pytest.raises(BadApprovalSignature):  # nothing to say which request it was for
        s2.add("APR-0", sig)


def test_same_request_new_session_refuses_old_signature(cards) -> None:
    first = token_for(cards)
    second = token_for(cards, nonce=b"\x33" * 16)  # same request, new session nonce
    sig = cards.approvers[0].sign(first.to_bytes())
    s = session(cards, token=second, recent_tokens=[first.to_bytes()])
    with pytest.raises(ApprovalForOtherRequest):
        s.add("APR-0", sig)


def test_replay_after_consume(cards) -> None:
    guard = MemoryReplayGuard()
    token = token_for(cards)
    sigs = {c.serial: c.sign(token.to_bytes()) for c in cards.approvers[:2]}
    s = session(cards, token=token, guard=guard)
    for serial, sig in sigs.items():
        s.add(serial, sig)
    s.consume()
    with pytest.raises(ApprovalReplayed):
        s.consume()
    again = session(cards, token=token, guard=guard)  # e.g. after a restart, same token
    with pytest.raises(ApprovalReplayed):
        again.add("APR-0", sigs["APR-0"])
    with pytest.raises(ApprovalReplayed):  # even a fresh card on a consumed token
        again.add("APR-3", cards.approvers[3].sign(token.to_bytes()))


def test_replay_guard_consume_is_atomic(cards) -> None:
    guard = MemoryReplayGuard()
    token = token_for(cards)
    a, b = session(cards, token=token, guard=guard), session(cards, token=token, guard=guard)
    for s in (a, b):
        for c in cards.approvers[:2]:
            s.add(c.serial, c.sign(token.to_bytes()))
    a.consume()
    with pytest.raises(ApprovalReplayed):  # the race loser
        b.consume()


def test_session_mismatch_is_programmer_error(cards) -> None:
    token = token_for(cards)
    with pytest.raises(ValueError):
        ApprovalSession(cards.roster(version=2), token)
    with pytest.raises(ValueError):
        ApprovalSession(cards.roster(), token, threshold=1)


@settings(max_examples=40, deadline=None)
@given(picks=st.lists(st.integers(0, 5), max_size=8), m=st.integers(1, 4))
def test_satisfied_iff_enough_distinct_approver_holders(cards, picks: list[int], m: int) -> None:
    """Any sequence of cards (approvers, the spare card, an admin): counted == distinct
    approver holders, and satisfied iff that reaches the threshold."""
    pool = [*cards.approvers, cards.spare, cards.admins[0]]  # indexes 0-3, 4 = spare, 5 = admin
    token = token_for(cards, m=m)
    s = session(cards, token=token)
    holders: set[str] = set()
    for i in picks:
        card = pool[i]
        try:
            s.add(card.serial, card.sign(token.to_bytes()))
        except (DuplicateHolder, WrongRole):
            pass
        if i < 5:
            holders.add("0" if i == 4 else str(i))
    assert len(s.approvals) == len(holders)
    assert s.satisfied == (len(holders) >= m)


# --------------------------------------------------------------------------- pre-PIN check
@pytest.mark.parametrize(
    "serial,error",
    [
        ("OUT-0", UnknownCard),
        ("ADM-0", WrongRole),
        ("BKP-0", WrongRole),
    ],
)
def test_precheck_refuses_what_add_would_refuse_without_a_signature(cards, serial, error) -> None:
    s = session(cards)
    with pytest.raises(error):
        s.precheck(serial)
    assert s.precheck("APR-0").holder == "Approver 0"  # nothing was counted by prechecks
    assert s.approvals == ()


def test_precheck_refuses_a_revoked_card(cards) -> None:
    roster = cards.roster().revoke("APR-1")
    tally = Tally(roster, Role.APPROVER, b"data", 1)
    with pytest.raises(CardRevoked):
        tally.precheck("APR-1")


def test_precheck_refuses_a_second_card_of_a_counted_holder(cards) -> None:
    s = session(cards)
    s.add("APR-0", cards.approvers[0].sign(s.token_bytes))
    with pytest.raises(DuplicateHolder) as info:
        s.precheck("APR-0B")
    assert (info.value.card_serial, info.value.counted_card) == ("APR-0B", "APR-0")
    with pytest.raises(DuplicateHolder):
        s.precheck("APR-0")
    assert s.precheck("APR-1").serial == "APR-1"


def test_precheck_refuses_an_expired_or_consumed_token(cards) -> None:
    clock, guard = Clock(), MemoryReplayGuard()
    token = token_for(cards)
    s = session(cards, token=token, guard=guard, clock=clock)
    for c in cards.approvers[:2]:
        s.add(c.serial, c.sign(s.token_bytes))
    s.consume()
    with pytest.raises(ApprovalReplayed):
        session(cards, token=token, guard=guard, clock=clock).precheck("APR-3")
    clock.t = T0 + 600
    with pytest.raises(ApprovalExpired):
        session(cards, token=token, clock=clock).precheck("APR-3")


def test_excluded_cards_never_count(cards) -> None:
    class Excluded(QuorumError):
        code = "test-excluded"

    def exclude(holder: CardHolder) -> None:
        if holder.serial == "ADM-0":
            raise Excluded("excluded")

    data = b"config approval token"
    tally = Tally(cards.roster(), Role.ADMIN, data, 2, exclude=exclude)
    with pytest.raises(Excluded):
        tally.precheck("ADM-0")
    with pytest.raises(Excluded):
        tally.add("ADM-0", cards.admins[0].sign(data))
    tally.add("ADM-1", cards.admins[1].sign(data))
    tally.add("ADM-2", cards.admins[2].sign(data))
    assert tally.satisfied and [a.card_serial for a in tally.approvals] == ["ADM-1", "ADM-2"]


def test_a_tally_without_a_role_counts_any_active_card_once_per_holder(cards) -> None:
    data = b"close message"
    tally = Tally(cards.roster(), None, data, 3)
    tally.add("BKP-0", cards.custodian.sign(data))
    tally.add("ADM-0", cards.admins[0].sign(data))
    tally.add("APR-0", cards.approvers[0].sign(data))
    with pytest.raises(DuplicateHolder):
        tally.precheck("APR-0B")
    with pytest.raises(UnknownCard):
        tally.precheck("OUT-0")
    assert tally.satisfied

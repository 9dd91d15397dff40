"""The domain pieces together, as appliance/session.py strings them: policy -> approvals ->
ledger -> audit -> verify. Software keys stand in for the cards and the HSM audit key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import coincurve
import pytest

from coldvault.errors import QuorumError
from coldvault.policy import parse_policy
from coldvault.policy.errors import DailyLimitExceeded
from coldvault.quorum.approvals import ApprovalSession, ApprovalToken
from coldvault.quorum.errors import ApprovalReplayed
from coldvault.records.audit import AuditLog, review_fields, verify
from coldvault.records.ledger import DuplicateRequest, Ledger
from coldvault.requests.base import Movement, MovementKind

from .conftest import make_review
from .test_policy import EXAMPLE, fake_ownership

AUDIT_KEY = coincurve.PrivateKey(b"\x09" * 32)


def test_request_to_verified_trail(tmp_path: Path, cards) -> None:
    policy = parse_policy(EXAMPLE, ownership_verifier=fake_ownership)
    roster = cards.roster()
    clock = lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC)  # noqa: E731
    ledger = Ledger(tmp_path / "ledger.db", now=clock)
    log = AuditLog(
        tmp_path / "audit.jsonl",
        sealer=lambda d: AUDIT_KEY.sign(d, hasher=None),
        audit_public_key=AUDIT_KEY.public_key.format(),
        seal_every=50,
        on_seal=ledger.set_audit_sealed_through,
    )
    log.append("startup", {"roster_version": roster.version, "policy_version": policy.version})

    def run(review, signers, tokens) -> None:
        log.append(
            "request-received", {"digest": review.request_digest, "fingerprint": review.fingerprint}
        )
        log.append("review", review_fields(review))
        ledger.record_received(review)  # refuses a request already signed
        decision = policy.evaluate(review, day_total=ledger.day_totals(review.wallet))
        log.append("decision", decision.to_dict())
        if not decision.allowed:
            ledger.mark_refused(review.request_digest, decision.failures[0].rule)
            decision.enforce()
        token = ApprovalToken.for_review(
            review, policy_version=policy.version, roster=roster,
            required_approvals=decision.required_approvals,
        )  # fmt: skip
        session = ApprovalSession(roster, token, guard=ledger)
        tokens.append(token)
        for card in signers:
            try:
                log.append(
                    "approval", session.add(card.serial, card.sign(session.token_bytes)).to_dict()
                )
            except QuorumError as exc:
                log.append("approval-refused", exc.to_dict())
        approvals = session.consume()
        ledger.mark_approved(review.request_digest, approvals, required=decision.required_approvals,
                             policy_version=policy.version)  # fmt: skip
        log.append("signature", {"digest": review.request_digest, "jobs": 1})
        ledger.mark_signed(review.request_digest)
        log.append("response", {"fingerprint": review.fingerprint})

    tokens: list[ApprovalToken] = []
    big = make_review()  # 0.5 BTC: three approvals
    run(big, [cards.approvers[0], cards.spare, cards.approvers[1], cards.approvers[2]], tokens)
    for i in range(5):  # 5 x 0.5 BTC more: 3 BTC, the daily limit
        run(make_review(request_digest=bytes([i + 1]) * 32), cards.approvers[1:4], tokens)
    with pytest.raises(DuplicateRequest):  # the same request again
        run(big, cards.approvers[:3], tokens)
    replay = ApprovalSession(roster, tokens[0], guard=ledger)
    with pytest.raises(ApprovalReplayed):  # its approvals, replayed into a new session
        replay.add("APR-1", cards.approvers[1].sign(tokens[0].to_bytes()))
    small = make_review(
        request_digest=b"\x09" * 32,
        movements=(Movement(MovementKind.EXTERNAL, "BTC", 1_000, "bc1qtreasury"),),
    )
    with pytest.raises(DailyLimitExceeded):  # 3 BTC already today
        run(small, cards.approvers[:2], tokens)
    log.seal()
    log.close()

    report = verify(tmp_path / "audit.jsonl", AUDIT_KEY.public_key.format(),
                    expect_sealed_through=ledger.audit_sealed_through())  # fmt: skip
    assert report.unsealed == 0
    assert report.events["approval-refused"] == 1  # the spare card of approver 0
    assert report.events["signature"] == 6  # 0.5 BTC x 6 = 3 BTC
    assert ledger.day_totals("acme-btc-cold") == {"BTC": 300_000_000}
    assert ledger.status(small.request_digest) == "refused"
    text = (tmp_path / "audit.jsonl").read_text()
    assert "ADM-" not in text and '"pin' not in text
    refused = [json.loads(x) for x in text.splitlines() if '"approval-refused"' in x]
    assert refused[0]["fields"]["error"] == "duplicate-holder"
    ledger.close()

"""The address book: proven and attested entries, and the policy knobs that govern them.

An attested entry (an exchange deposit address, a contract, a custodial counterparty)
carries evidence instead of a proof. It is admitted only by the admin quorum's approval of
the policy document, only with sufficient evidence, and only where the wallet or the
amount's tier allows attested destinations, within their own lower cap."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from coldvault.errors import ColdvaultError
from coldvault.policy import Destination, PolicyInvalid, load_policy, parse_policy, policy_toml
from coldvault.policy.errors import (
    AttestedCapExceeded,
    AttestedNotAllowed,
    DestinationNotWhitelisted,
)
from coldvault.policy.model import DestinationKind, Evidence
from coldvault.quorum.documents import SignedDocument, write_signed_document
from coldvault.requests.base import Chain, Movement, MovementKind

from .conftest import make_review
from .test_policy import EXAMPLE, fake_ownership

DEPOSIT = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"  # BIP-173's P2WPKH example
TXID = "ab" * 32
ATTESTED = f'''
[[wallet.destination]]
address = "{DEPOSIT}"
chain = "bitcoin"
label = "Bitstamp deposit"
kind = "attested"
test_txid = "{TXID}"
beneficiary = "Acme Treasury Ltd"
vasp = "Bitstamp Ltd"
reference = "BS-2291-77"
'''
WALLET_END = '[[wallet]]\nname = "globex-eth"'


def with_attested(extra: str = ATTESTED, **wallet: str) -> str:
    text = EXAMPLE.replace(WALLET_END, extra + "\n" + WALLET_END, 1)
    for key, value in wallet.items():
        text = text.replace("max_fee_rate = 80.0", f"max_fee_rate = 80.0\n{key} = {value}", 1)
    return text


def pay(amount: int, to: str = DEPOSIT):
    return make_review(movements=(Movement(MovementKind.EXTERNAL, "BTC", amount, to),))


def test_attested_entry_loads_with_its_evidence() -> None:
    policy = parse_policy(with_attested(), ownership_verifier=fake_ownership)
    d = policy.wallets["acme-btc-cold"].find_destination(DEPOSIT)
    assert d is not None and d.kind is DestinationKind.ATTESTED
    assert d.evidence == Evidence(TXID, "Acme Treasury Ltd", "Bitstamp Ltd", "BS-2291-77")
    assert d.message == d.signature == ""


def test_policy_requires_proven_destinations_by_default() -> None:
    policy = parse_policy(with_attested(), ownership_verifier=fake_ownership)
    decision = policy.evaluate(pay(1_000_000))
    assert [r.rule for r in decision.failures] == ["attested-allowed"]
    with pytest.raises(AttestedNotAllowed, match="requires proven destinations"):
        decision.enforce()
    # the proven entry of the same wallet still pays
    assert policy.evaluate(pay(1_000_000, "bc1qtreasury")).allowed


def test_review_shows_kind_label_and_evidence() -> None:
    policy = parse_policy(with_attested(allow_attested="true"), ownership_verifier=fake_ownership)
    decision = policy.evaluate(pay(1_000_000))
    assert decision.allowed
    rule = next(r for r in decision.reasons if r.rule == "destination-whitelisted")
    assert rule.message == (
        f"Destination {DEPOSIT} is whitelisted as 'Bitstamp deposit', attested: test "
        f"transaction {TXID}, beneficiary Acme Treasury Ltd, VASP Bitstamp Ltd, reference "
        "BS-2291-77."
    )
    assert rule.values["destination_kind"] == "attested"
    proven = policy.evaluate(pay(1_000_000, "bc1qtreasury"))
    rule = next(r for r in proven.reasons if r.rule == "destination-whitelisted")
    assert "proven by an ownership proof" in rule.message
    assert rule.values["destination_kind"] == "proven"


def test_attested_allowed_per_tier_and_capped_lower() -> None:
    text = (
        with_attested(allow_attested="true")
        .replace(
            "up_to = 10_000_000              # up to 0.1 BTC: 2 approvals\napprovals = 2",
            "up_to = 10_000_000\napprovals = 2\nallow_attested = true",
        )
        .replace(
            'asset = "BTC"                   # above: 3 approvals\napprovals = 3',
            'asset = "BTC"\napprovals = 3\nallow_attested = false',
        )
        .replace(
            "per_day = 300_000_000           # 3 BTC per UTC day",
            "per_day = 300_000_000\nattested_per_transaction = 5_000_000",
        )
    )
    policy = parse_policy(text, ownership_verifier=fake_ownership)
    assert policy.evaluate(pay(5_000_000)).allowed
    with pytest.raises(AttestedCapExceeded, match="exceeds their cap of 5000000"):
        policy.evaluate(pay(5_000_001)).enforce()
    above_tier = policy.evaluate(pay(20_000_000))
    assert {r.rule for r in above_tier.failures} == {"attested-allowed", "attested-cap"}
    assert policy.evaluate(pay(20_000_000, "bc1qtreasury")).allowed  # proven: the tier is fine


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (f'test_txid = "{TXID}"\nbeneficiary = "Acme Treasury Ltd"\n', "", "no evidence"),
        (f'test_txid = "{TXID}"\n', "", None),  # full travel-rule data is evidence enough
        ('reference = "BS-2291-77"\n', "", None),  # a test transaction is enough
        (
            f'test_txid = "{TXID}"\nbeneficiary = "Acme Treasury Ltd"\nvasp = "Bitstamp Ltd"\n'
            'reference = "BS-2291-77"\n',
            "",
            "no evidence",
        ),
        (f'test_txid = "{TXID}"', 'test_txid = "0x1234"', "64 hex digits"),
        ('kind = "attested"', 'kind = "trusted"', "one of proven, attested"),
        ('kind = "attested"', 'kind = "attested"\nsignature = "x"', "carries a proof"),
        ('beneficiary = "Acme Treasury Ltd"', f'beneficiary = "{"x" * 201}"', "at most 200"),
        (f'address = "{DEPOSIT}"', f'address = "{DEPOSIT[:-1]}5"', "not a valid bitcoin address"),
    ],
)
def test_attested_entries_without_evidence_do_not_load(
    old: str, new: str, words: str | None
) -> None:
    text = with_attested(ATTESTED.replace(old, new, 1))
    assert old in ATTESTED
    if words is None:
        parse_policy(text, ownership_verifier=fake_ownership)
        return
    with pytest.raises(PolicyInvalid, match=words):
        parse_policy(text, ownership_verifier=fake_ownership)


def test_attested_cap_must_be_lower() -> None:
    text = with_attested().replace(
        "per_day = 300_000_000           # 3 BTC per UTC day",
        "per_day = 300_000_000\nattested_per_transaction = 100_000_001",
    )
    with pytest.raises(PolicyInvalid, match="the attested cap is the lower one"):
        parse_policy(text, ownership_verifier=fake_ownership)


def test_an_attested_value_without_evidence_never_pays() -> None:
    """Built in code, past the loader: the rule itself refuses it."""
    policy = parse_policy(with_attested(allow_attested="true"), ownership_verifier=fake_ownership)
    w = policy.wallets["acme-btc-cold"]
    bare = Destination(DEPOSIT, Chain.BITCOIN, "bare", kind=DestinationKind.ATTESTED)
    wallet = dataclasses.replace(w, destinations=(bare,))
    policy = dataclasses.replace(policy, wallets={**policy.wallets, w.name: wallet})
    with pytest.raises(DestinationNotWhitelisted, match="attested without evidence"):
        policy.evaluate(pay(1_000)).enforce()


def test_an_entry_added_after_the_admins_approved_does_not_load(tmp_path: Path, cards) -> None:
    approved = EXAMPLE.encode()
    doc = SignedDocument("policy", 7, "cv-hk-01", approved)
    for c in cards.admins[:2]:
        doc = doc.with_approval(c.serial, c.sign(doc.token))
    path = tmp_path / "policy.toml"
    write_signed_document(path, doc)
    roster = cards.roster()
    assert DEPOSIT not in path.read_text()
    load_policy(path, roster=roster, ownership_verifier=fake_ownership)
    path.write_text(with_attested(allow_attested="true"))  # edited after the approval
    with pytest.raises(ColdvaultError) as info:
        load_policy(path, roster=roster, ownership_verifier=fake_ownership)
    assert type(info.value).__name__ == "DocumentHashMismatch"


def test_writer_round_trips_attested_entries() -> None:
    text = (
        with_attested(allow_attested="true")
        .replace(
            "per_day = 300_000_000           # 3 BTC per UTC day",
            "per_day = 300_000_000\nattested_per_transaction = 5_000_000",
        )
        .replace("approvals = 3", "approvals = 3\nallow_attested = false")
    )
    policy = parse_policy(text, ownership_verifier=fake_ownership)
    written = policy_toml(policy)
    assert 'kind = "attested"' in written and f'test_txid = "{TXID}"' in written
    assert "allow_attested = true" in written and "allow_attested = false" in written
    again = parse_policy(written, ownership_verifier=fake_ownership)
    assert dataclasses.replace(again, sha256=b"") == dataclasses.replace(policy, sha256=b"")


def test_admins_are_shown_full_address_label_kind_and_evidence(cards) -> None:
    import re

    from coldvault.ceremonies.proposals import _policy

    text = with_attested(allow_attested="true").replace(
        "per_day = 300_000_000           # 3 BTC per UTC day",
        "per_day = 300_000_000\nattested_per_transaction = 5_000_000",
    )
    # the example's proven entries carry placeholder proofs; the proposal checks real ones
    text = re.sub(r'\[\[wallet\.destination\]\]\n(?:[^\n]+\n)*?signature = "proof:[^"]*"\n', "",
                  text)  # fmt: skip
    _, _, proposal = _policy(text.encode(), cards.roster(), None)
    rows = dict(dict(proposal.tables)["Policy for wallet acme-btc-cold"])
    assert rows["destination Bitstamp deposit"] == (
        f"{DEPOSIT}  [attested: test transaction {TXID}, beneficiary Acme Treasury Ltd, "
        "VASP Bitstamp Ltd, reference BS-2291-77]"
    )
    assert rows["attested destinations"] == "allowed"
    assert rows["attested cap BTC"] == "0.05000000 BTC (5,000,000 sat) per transaction"
    assert proposal.facts["attested_destinations"] == 1


def test_the_admins_see_what_a_new_version_adds_removes_and_changes() -> None:
    from coldvault.ceremonies.proposals import address_book_changes

    old = parse_policy(with_attested(), ownership_verifier=fake_ownership)
    changed = with_attested(ATTESTED.replace("BS-2291-77", "BS-2291-78")).replace(
        'address = "0x1111111111111111111111111111111111111111"',
        'address = "0x2222222222222222222222222222222222222222"',
    ).replace("globex-eth 0x1111111111111111111111111111111111111111",
              "globex-eth 0x2222222222222222222222222222222222222222").replace(
        "proof:0x1111111111111111111111111111111111111111",
        "proof:0x2222222222222222222222222222222222222222")  # fmt: skip
    new = parse_policy(changed, ownership_verifier=fake_ownership)
    rows = address_book_changes(old, new)
    assert rows == [
        ("acme-btc-cold", f"CHANGED: {DEPOSIT} 'Bitstamp deposit' [attested: test transaction "
         f"{TXID}, beneficiary Acme Treasury Ltd, VASP Bitstamp Ltd, reference BS-2291-78], was "
         f"'Bitstamp deposit' [attested: test transaction {TXID}, beneficiary Acme Treasury Ltd, "
         "VASP Bitstamp Ltd, reference BS-2291-77]"),
        ("globex-eth", "ADDED: 0x2222222222222222222222222222222222222222 'Globex settlement' "
         "[proven by an ownership proof]"),
        ("globex-eth", "REMOVED: 0x1111111111111111111111111111111111111111 'Globex settlement' "
         "[proven by an ownership proof]"),
    ]  # fmt: skip
    assert address_book_changes(old, old) == [
        ("address book", "no entry added, removed or changed")
    ]

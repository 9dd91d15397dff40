from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.errors import ConfigError
from coldvault.policy import (
    Policy,
    PolicyInvalid,
    PolicyRollback,
    PolicyRuleFailed,
    UnprovenDestination,
    load_policy,
    parse_policy,
)
from coldvault.policy.errors import (
    RULE_ERRORS,
    AssetNotAllowed,
    ChainNotAllowed,
    ClientMismatch,
    DailyLimitExceeded,
    DestinationNotWhitelisted,
    FeeCapExceeded,
    FeeRateCapExceeded,
    KindNotAllowed,
    NetworkNotAllowed,
    PerTransactionLimitExceeded,
    UnknownWallet,
)
from coldvault.quorum.documents import SignedDocument, write_signed_document
from coldvault.quorum.errors import ThresholdNotMet
from coldvault.requests.base import Chain, Movement, MovementKind

from .conftest import make_review

EXAMPLE = (Path(__file__).parent / "policy_example.toml").read_text()
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
ETH_DEST = "0x1111111111111111111111111111111111111111"


def fake_ownership(chain: str, address: str, message: str, signature: str) -> bool:
    return signature == f"proof:{address}" and address in message


@pytest.fixture(scope="module")
def policy() -> Policy:
    return parse_policy(EXAMPLE, ownership_verifier=fake_ownership)


def eth_review(**kw):
    fields = dict(
        chain=Chain.ETHEREUM,
        network="1",
        kind="eth-transaction",
        wallet="globex-eth",
        client="globex",
        movements=(Movement(MovementKind.EXTERNAL, "ETH", 10**18, ETH_DEST.lower()),),
        fee=10**15,
        fee_rate=None,
    )
    fields.update(kw)
    return make_review(**fields)


def test_allowed_small_payment(policy: Policy) -> None:
    d = policy.evaluate(
        make_review(movements=(Movement(MovementKind.EXTERNAL, "BTC", 5_000_000, "BC1QTREASURY"),))
    )
    assert d.allowed and d.required_approvals == 2 and d.policy_version == 7
    assert d.failures == ()
    assert {r.rule for r in d.reasons} >= {
        "wallet-known", "client-match", "chain-allowed", "network", "kind-allowed",
        "destination-whitelisted", "asset-allowed", "per-transaction-limit", "per-day-limit",
        "fee-cap", "fee-rate-cap", "approval-tier",
    }  # fmt: skip
    assert d.enforce() is d


def test_tier_above_threshold_needs_three(policy: Policy) -> None:
    d = policy.evaluate(make_review())  # 0.5 BTC
    assert d.allowed and d.required_approvals == 3
    tier = [r for r in d.reasons if r.rule == "approval-tier"][0]
    assert tier.values == {
        "asset": "BTC",
        "amount": 50_000_000,
        "approvals": 3,
        "tier_up_to": "unbounded",
    }


def test_change_does_not_count(policy: Policy) -> None:
    review = make_review(
        movements=(
            Movement(MovementKind.EXTERNAL, "BTC", 1_000, "bc1qtreasury"),
            Movement(MovementKind.CHANGE, "BTC", 10**9, "bc1qchange"),
        )
    )
    assert policy.evaluate(review).allowed


CASES = [
    (UnknownWallet, lambda: make_review(wallet="nope"), {"wallet": "nope", "policy_version": 7}),
    (ClientMismatch, lambda: make_review(client="globex"), {"request_client": "globex"}),
    (ChainNotAllowed, lambda: make_review(chain=Chain.SOLANA), {"chain": "solana"}),
    (NetworkNotAllowed, lambda: make_review(network="test"), {"network": "test"}),
    (
        KindNotAllowed,
        lambda: eth_review(kind="eth-typed-data", movements=(), fee=None),
        {"kind": "eth-typed-data"},
    ),
    (
        DestinationNotWhitelisted,
        lambda: make_review(movements=(Movement(MovementKind.EXTERNAL, "BTC", 1, "bc1qthief"),)),
        {"destination": "bc1qthief", "movement": 0},
    ),
    (
        AssetNotAllowed,
        lambda: eth_review(
            movements=(Movement(MovementKind.EXTERNAL, "ERC20:0xdead", 1, ETH_DEST),)
        ),
        {"asset": "ERC20:0xdead"},
    ),
    (
        PerTransactionLimitExceeded,
        lambda: make_review(
            movements=(Movement(MovementKind.EXTERNAL, "BTC", 100_000_001, "bc1qtreasury"),)
        ),
        {"amount": 100_000_001, "limit": 100_000_000},
    ),
    (FeeCapExceeded, lambda: make_review(fee=500_001), {"fee": 500_001, "cap": 500_000}),
    (FeeRateCapExceeded, lambda: make_review(fee_rate=80.5), {"fee_rate": "80.50 sat/vB"}),
    (FeeRateCapExceeded, lambda: make_review(fee_rate=None), {"fee_rate": "unknown"}),
]


@pytest.mark.parametrize("error, build, values", CASES)
def test_each_rule_names_itself(policy: Policy, error, build, values) -> None:
    d = policy.evaluate(build())
    assert not d.allowed
    failed = d.failures[0]
    assert failed.rule == error.rule and RULE_ERRORS[failed.rule] is error
    assert values.items() <= failed.values.items()
    with pytest.raises(error) as info:
        d.enforce()
    assert isinstance(info.value, PolicyRuleFailed)
    assert info.value.rule == error.rule and values.items() <= info.value.values.items()
    data = info.value.to_dict()
    assert data["rule"] == error.rule and data["error"] == f"policy-{error.rule}"
    assert str(info.value).endswith(".")


def test_daily_limit(policy: Policy) -> None:
    review = make_review()  # 0.5 BTC
    assert policy.evaluate(review, day_total=250_000_000).allowed
    with pytest.raises(DailyLimitExceeded) as info:
        policy.enforce(review, day_total=250_000_001)
    assert info.value.values == {
        "asset": "BTC", "amount": 50_000_000, "day_total": 250_000_001, "limit": 300_000_000,
    }  # fmt: skip
    assert policy.evaluate(review, day_total={"BTC": 250_000_001}).allowed is False


def test_erc20_transfer_via_whitelisted_contract(policy: Policy) -> None:
    review = eth_review(
        movements=(
            Movement(MovementKind.CONTRACT_CALL, "ETH", 0, USDC, note="call 0xa9059cbb"),
            Movement(MovementKind.EXTERNAL, f"ERC20:{USDC}", 5_000_000, ETH_DEST),
        )
    )
    d = policy.evaluate(review, day_total={f"ERC20:{USDC}": 0})
    assert d.allowed and d.required_approvals == 2
    with pytest.raises(ValueError):
        policy.evaluate(
            eth_review(movements=(Movement(MovementKind.EXTERNAL, "ETH", 1, ETH_DEST),
                                  Movement(MovementKind.EXTERNAL, f"ERC20:{USDC}", 1, ETH_DEST))),
            day_total=5,
        )  # fmt: skip


def test_erc20_approve_to_unknown_spender_refused(policy: Policy) -> None:
    review = eth_review(
        movements=(
            Movement(MovementKind.CONTRACT_CALL, "ETH", 0, USDC),
            Movement(MovementKind.CONTRACT_CALL, f"ERC20:{USDC}", 2**256 - 1, "0x" + "22" * 20),
        )
    )
    d = policy.evaluate(review)
    assert [f.rule for f in d.failures] == [
        "destination-whitelisted",
        "per-transaction-limit",
        "per-day-limit",
    ]


def test_personal_message_uses_min_approvals(policy: Policy) -> None:
    d = policy.evaluate(eth_review(kind="eth-personal-message", movements=(), fee=None))
    assert d.allowed and d.required_approvals == 2


@settings(max_examples=100, deadline=None)
@given(amount=st.integers(0, 2 * 10**8), day=st.integers(0, 4 * 10**8))
def test_limits_property(policy: Policy, amount: int, day: int) -> None:
    review = make_review(
        movements=(Movement(MovementKind.EXTERNAL, "BTC", amount, "bc1qtreasury"),)
    )
    d = policy.evaluate(review, day_total=day)
    assert d.allowed == (amount <= 100_000_000 and day + amount <= 300_000_000)
    assert d.required_approvals == (2 if amount <= 10_000_000 else 3)


# ------------------------------------------------------------------ loading
def test_unproven_destination_refused() -> None:
    with pytest.raises(UnprovenDestination) as info:
        parse_policy(EXAMPLE, ownership_verifier=lambda *a: False)
    assert info.value.address == "bc1qtreasury"
    tampered = EXAMPLE.replace('address = "bc1qtreasury"', 'address = "bc1qattacker"')
    with pytest.raises(UnprovenDestination):
        parse_policy(tampered, ownership_verifier=fake_ownership)

    def raising(*a: str) -> bool:
        raise ConfigError("unsupported proof type")

    with pytest.raises(UnprovenDestination, match="unsupported proof type"):
        parse_policy(EXAMPLE, ownership_verifier=raising)


@pytest.mark.parametrize(
    "old, new",
    [
        ('format = "coldvault-policy/1"', 'format = "x"'),
        ("min_approvals = 2\nmax_fee = 500_000", "min_approvals = 0\nmax_fee = 500_000"),
        ('asset = "BTC"                   # above', 'asset = "BTC"\nup_to = 5'),
        ('chains = ["bitcoin", "ethereum"]', 'chains = ["dogecoin"]'),
        ("per_day = 300_000_000", "per_day = -1"),
        ('chain = "ethereum"\nlabel = "Globex', 'chain = "bitcoin"\nlabel = "Globex'),
        ("version = 7", "version = 7\nversion = 8"),
    ],
)
def test_invalid_policy(old: str, new: str) -> None:
    assert old in EXAMPLE
    with pytest.raises(PolicyInvalid):
        parse_policy(EXAMPLE.replace(old, new, 1), ownership_verifier=fake_ownership)


def _signed(tmp_path: Path, text: str, cards, signers, version: int = 7) -> Path:
    doc = SignedDocument("policy", version, "cv-hk-01", text.encode())
    for c in signers:
        doc = doc.with_approval(c.serial, c.sign(doc.token))
    path = tmp_path / f"policy-{version}.toml"
    write_signed_document(path, doc)
    return path


def test_load_signed_policy(tmp_path: Path, cards) -> None:
    roster = cards.roster()
    path = _signed(tmp_path, EXAMPLE, cards, cards.admins[:2])
    p7 = load_policy(path, roster=roster, ownership_verifier=fake_ownership)
    assert p7.version == 7 and "globex-eth" in p7.wallets
    assert load_policy(path, roster=roster, current=p7, ownership_verifier=fake_ownership) == p7
    recorded = p7.config_version  # what the ledger keeps across restarts
    assert load_policy(path, roster=roster, current=recorded, ownership_verifier=fake_ownership)
    with pytest.raises(ThresholdNotMet):
        load_policy(_signed(tmp_path, EXAMPLE, cards, cards.admins[:1]), roster=roster,
                    ownership_verifier=fake_ownership)  # fmt: skip
    v6 = EXAMPLE.replace("version = 7", "version = 6")
    with pytest.raises(PolicyRollback):
        load_policy(_signed(tmp_path, v6, cards, cards.admins[:2], version=6), roster=roster,
                    current=p7, ownership_verifier=fake_ownership)  # fmt: skip
    other7 = EXAMPLE.replace("per_day = 300_000_000", "per_day = 900_000_000")
    with pytest.raises(PolicyRollback):
        load_policy(_signed(tmp_path, other7, cards, cards.admins[:2]), roster=roster,
                    current=p7, ownership_verifier=fake_ownership)  # fmt: skip
    with pytest.raises(PolicyInvalid):  # approvals say version 8, the document says 7
        load_policy(_signed(tmp_path, EXAMPLE, cards, cards.admins[:2], version=8), roster=roster,
                    ownership_verifier=fake_ownership)  # fmt: skip
    too_many = EXAMPLE.replace("approvals = 3", "approvals = 9")
    with pytest.raises(PolicyInvalid, match="active approvers"):
        load_policy(_signed(tmp_path, too_many, cards, cards.admins[:2]), roster=roster,
                    ownership_verifier=fake_ownership)  # fmt: skip


def test_default_verifier_is_coldvault_ownership() -> None:
    """No injected verifier: the real ownership check runs (Solana Ed25519 proof)."""
    from embit import base58
    from nacl.signing import SigningKey

    key = SigningKey(b"\x05" * 32)
    address = base58.encode(bytes(key.verify_key))
    message = f"coldvault whitelist: initech-sol {address}"
    signature = key.sign(message.encode()).signature.hex()
    text = f"""
format = "coldvault-policy/1"
version = 1
appliance_id = "cv-hk-01"
chains = ["solana"]

[[wallet]]
name = "initech-sol"
client = "initech"
chain = "solana"
network = "mainnet-beta"
kinds = ["sol-transaction"]
min_approvals = 2
[wallet.limits.SOL]
per_transaction = 1_000_000_000
per_day = 5_000_000_000
[[wallet.destination]]
address = "{address}"
chain = "solana"
label = "Initech hot wallet"
message = "{message}"
signature = "{signature}"
"""
    policy = parse_policy(text)
    assert policy.wallets["initech-sol"].destinations[0].address == address
    forged = text.replace(signature, signature[:-2] + ("00" if signature[-2:] != "00" else "01"))
    with pytest.raises(UnprovenDestination, match="does not verify"):
        parse_policy(forged)


def test_deeply_nested_policy_is_policy_invalid() -> None:
    with pytest.raises(PolicyInvalid):
        parse_policy("a = " + "[" * 100_000, ownership_verifier=fake_ownership)


@settings(max_examples=150, deadline=None)
@given(pos=st.integers(0, 10_000), xor=st.integers(1, 127))
def test_mutated_policy_only_raises_config_errors(pos: int, xor: int) -> None:
    data = bytearray(EXAMPLE.encode())
    data[pos % len(data)] ^= xor
    try:
        parse_policy(bytes(data), ownership_verifier=fake_ownership)
    except (PolicyInvalid, UnprovenDestination):
        pass

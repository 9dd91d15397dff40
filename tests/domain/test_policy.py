from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldvault.errors import ConfigError
from coldvault.policy import (
    AssetLimits,
    Destination,
    Policy,
    PolicyInvalid,
    PolicyRollback,
    PolicyRuleFailed,
    Tier,
    UnprovenDestination,
    WalletPolicy,
    load_policy,
    parse_policy,
    policy_toml,
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
    wallet = WalletPolicy(
        name="initech-sol", client="initech", chain=Chain.SOLANA, network="mainnet-beta",
        kinds=frozenset({"sol-transaction"}), min_approvals=2,
        limits={"SOL": AssetLimits(per_transaction=1_000_000_000, per_day=5_000_000_000)},
        destinations=(
            Destination(address, Chain.SOLANA, "Initech hot wallet", message, signature),
        ),
    )  # fmt: skip
    text = policy_toml(Policy(1, "cv-hk-01", frozenset({Chain.SOLANA}), {wallet.name: wallet}))
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


# --------------------------------------------------------------------------- the writer


def _read_back(text: str) -> Policy:
    return parse_policy(text, ownership_verifier=lambda *proof: None)


def _same(policy: Policy, text: str) -> bool:
    """``text`` reads back to ``policy`` (the hash is that of the text)."""
    digest = hashlib.sha256(text.encode()).digest()
    return _read_back(text) == dataclasses.replace(policy, sha256=digest)


def test_writer_round_trips_the_documented_example(policy: Policy) -> None:
    text = policy_toml(policy)
    assert _same(policy, text)
    assert policy_toml(_read_back(text)) == text  # the writer's output is its own fixpoint
    written, example = tomllib.loads(text), tomllib.loads(EXAMPLE)
    for doc in (written, example):  # kinds are a set: the writer sorts them
        for wallet in doc["wallet"]:
            wallet["kinds"] = sorted(wallet["kinds"])
    assert written == example  # the same document, comments and digit separators aside


def _wallet(name: str, **kw) -> WalletPolicy:  # noqa: ANN003 - WalletPolicy fields
    fields: dict = dict(
        name=name, client="acme", chain=Chain.BITCOIN, network="main",
        kinds=frozenset({"psbt"}), min_approvals=2, limits={},
    )  # fmt: skip
    fields.update(kw)
    return WalletPolicy(**fields)


def _policy(*wallets: WalletPolicy, version: int = 3) -> Policy:
    return Policy(version, "cv-lab-01", frozenset({Chain.BITCOIN}), {w.name: w for w in wallets})


LONG_ADDRESS = "bc1p" + "q" * 1000


def test_writer_keeps_amounts_and_strings_whole() -> None:
    huge = 2**255 + 12345
    dest = Destination(LONG_ADDRESS, Chain.BITCOIN, 'Acme "treasury"\tsite\\b',
                       "line 1\nline 2\u0007\u007f", "sig/+=")
    value = _policy(_wallet(
        "acme-btc", max_fee=huge, max_fee_rate=0.1, destinations=(dest,),
        limits={"BTC": AssetLimits(huge, huge + 1), "ERC20:0xAbC": AssetLimits(0, 1)},
        tiers=(Tier("BTC", 5, 2), Tier("BTC", None, 3)), contracts=(("0xAbC", "token"),),
    ))  # fmt: skip
    text = policy_toml(value)
    assert _same(value, text)
    lines = text.splitlines()
    assert f'address = "{LONG_ADDRESS}"' in lines  # never cut or wrapped
    assert f"max_fee = {huge}" in lines and f"per_day = {huge + 1}" in lines
    assert "max_fee_rate = 0.1" in lines
    assert '[wallet.limits."ERC20:0xAbC"]' in lines and "[wallet.limits.BTC]" in lines
    assert 'label = "Acme \\"treasury\\"\\tsite\\\\b"' in lines
    assert 'message = "line 1\\nline 2\\u0007\\u007F"' in lines
    assert text.startswith('format = "coldvault-policy/1"\nversion = 3\n')


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (Policy(1, "a", frozenset(), {"other": _wallet("acme-btc")}), "does not read back"),
        (_policy(_wallet("w", limits={"BTC": AssetLimits(-1, 5)})), "per_transaction"),
        (_policy(_wallet("w", limits={"BTC": AssetLimits(True, 5)})), "integer amount"),
        (_policy(_wallet("w", limits={"BTC": AssetLimits(1.5, 5)})), "integer amount"),  # type: ignore[arg-type]
        (_policy(_wallet("w", tiers=(Tier("BTC", None, 2),))), "has no limits"),
        (_policy(_wallet("w", min_approvals=0)), "min_approvals"),
        (_policy(_wallet("w", destinations=(Destination("0x1", Chain.ETHEREUM, "l", "m", "s"),))),
         "is for chain ethereum"),
    ],
)
def test_writer_refuses_values_the_parser_would_not_produce(value: Policy, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        policy_toml(value)


_texts = st.text(st.characters(codec="utf-8"), max_size=30)
_amounts = st.integers(0, 2**256)


@st.composite
def _tiers(draw: st.DrawFn, asset: str) -> list[Tier]:
    bounds = sorted(draw(st.lists(_amounts, max_size=3)))
    approvals = sorted(draw(st.lists(st.integers(1, 9), min_size=len(bounds) + 1,
                                     max_size=len(bounds) + 1)))
    return [Tier(asset, up_to, n) for up_to, n in zip([*bounds, None], approvals, strict=True)]


@st.composite
def _wallets(draw: st.DrawFn, name: str) -> WalletPolicy:
    chain = draw(st.sampled_from(list(Chain)))
    limits = draw(st.dictionaries(_texts, st.builds(AssetLimits, _amounts, _amounts),
                                  max_size=3))
    tiers = [t for asset in draw(st.sets(st.sampled_from(sorted(limits)), max_size=2))
             if limits for t in draw(_tiers(asset))] if limits else []
    return WalletPolicy(
        name=name, client=draw(_texts), chain=chain, network=draw(_texts),
        kinds=frozenset(draw(st.sets(_texts, max_size=3))),
        min_approvals=draw(st.integers(1, 9)), limits=limits, tiers=tuple(tiers),
        destinations=tuple(draw(st.lists(st.builds(
            Destination, st.text(st.characters(codec="utf-8"), max_size=300), st.just(chain),
            _texts, _texts, _texts), max_size=2))),
        contracts=tuple(draw(st.lists(st.tuples(_texts, _texts), max_size=2))),
        max_fee=draw(st.none() | _amounts),
        max_fee_rate=draw(
            st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False) | _amounts
        ),
    )  # fmt: skip


@st.composite
def _policies(draw: st.DrawFn) -> Policy:
    names = draw(st.lists(_texts, unique=True, max_size=3))
    return Policy(
        version=draw(st.integers(1, 2**64)), appliance_id=draw(_texts),
        chains=frozenset(draw(st.sets(st.sampled_from(list(Chain))))),
        wallets={name: draw(_wallets(name)) for name in names},
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(value=_policies())
def test_writer_round_trip_property(value: Policy) -> None:
    text = policy_toml(value)
    assert _same(value, text)
    assert policy_toml(_read_back(text)) == text

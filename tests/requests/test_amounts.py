"""Exact amounts: one formatter, integers only, used by the review screen and the requests'
detail lines; wire enums defined once; wallet account paths parsed once."""

from __future__ import annotations

import ast
import io
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldvault.errors import ConfigError
from coldvault.requests import Asset, Chain, Movement, MovementKind, format_amount, parse_wallets
from coldvault.requests.amounts import ASSETS, NATIVE

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("asset", "amount", "text"),
    [
        ("BTC", 150_000, "0.00150000 BTC (150,000 sat)"),
        ("BTC", 0, "0.00000000 BTC (0 sat)"),
        ("BTC", 1, "0.00000001 BTC (1 sat)"),
        ("BTC", 2_099_999_997_690_000, "20999999.97690000 BTC (2,099,999,997,690,000 sat)"),
        ("BTC", 100_000_000, "1.00000000 BTC (100,000,000 sat)"),
        ("BTC", 1_250_000, "0.01250000 BTC (1,250,000 sat)"),
        (
            "ETH",
            1234567890123456789,
            "1.234567890123456789 ETH (1,234,567,890,123,456,789 wei)",
        ),
        ("ETH", 1, "0.000000000000000001 ETH (1 wei)"),
        (
            "ETH",
            2**256 - 1,  # the largest uint256 value: far beyond a float's 53 bits
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935 ETH"
            " (115,792,089,237,316,195,423,570,985,008,687,907,853,269,984,665,640,564,039,457,"
            "584,007,913,129,639,935 wei)",
        ),
        ("SOL", 1_500_000_001, "1.500000001 SOL (1,500,000,001 lamports)"),
        ("SOL", 5000, "0.000005000 SOL (5,000 lamports)"),
        ("ERC20:0xA0b8", 1_000_000, "1,000,000 ERC20:0xA0b8"),
    ],
)
def test_amounts_are_exact(asset: str, amount: int, text: str) -> None:
    assert format_amount(asset, amount) == text


def test_whole_units_only() -> None:
    assert format_amount("ETH", 1234567890123456789, base_units=False) == (
        "1.234567890123456789 ETH"
    )
    assert format_amount("SOL", 10**9, base_units=False) == "1.000000000 SOL"
    assert format_amount("BTC", -150_000) == "-0.00150000 BTC (-150,000 sat)"


@given(st.sampled_from(sorted(ASSETS)), st.integers(0, 2**256))
def test_the_text_is_the_amount(asset: str, amount: int) -> None:
    """Reading the decimal text back gives exactly the integer (no float ever involved)."""
    known = ASSETS[asset]
    shown = format_amount(asset, amount, base_units=False).removesuffix(f" {asset}")
    with localcontext() as exact:
        exact.prec = 200  # enough digits for any uint256: no rounding in the check itself
        assert Decimal(shown) * 10**known.decimals == amount
    assert format_amount(asset, amount).endswith(f" ({amount:,} {known.base_unit})")


def test_floats_are_refused() -> None:
    for bad in (1.5, Decimal("1"), True, "1"):
        with pytest.raises(TypeError):
            format_amount("BTC", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Movement(MovementKind.EXTERNAL, "BTC", 1.0, "bc1q")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Movement(MovementKind.EXTERNAL, "BTC", -1, "bc1q")


def test_assets_and_native_fees() -> None:
    assert NATIVE[Chain.BITCOIN] == Asset("BTC", 8, "sat")
    assert NATIVE[Chain.ETHEREUM] == Asset("ETH", 18, "wei")
    assert NATIVE[Chain.SOLANA] == Asset("SOL", 9, "lamports")
    assert set(NATIVE.values()) == set(ASSETS.values())


def test_the_review_screen_shows_exact_amounts() -> None:
    from appliance.console import OperatorConsole
    from coldvault.policy import Decision
    from coldvault.requests import Review

    review = Review(
        chain=Chain.ETHEREUM, network="1", kind="eth-transaction", wallet="w", client="c",
        movements=(Movement(MovementKind.EXTERNAL, "ETH", 1234567890123456789, "0xabc"),),
        fee=21_000 * 1_000_000_007,
    )  # fmt: skip
    out = io.StringIO()
    OperatorConsole(stream=out, width=200).show_review(review, Decision(False, 0, (), 1))
    text = out.getvalue()
    assert "1.234567890123456789 ETH (1,234,567,890,123,456,789 wei)" in text
    assert "0.000021000000147000 ETH (21,000,000,147,000 wei)" in text
    assert "1.23456789 ETH" not in text.replace("1.234567890123456789", "")


def test_wire_enums_are_defined_once() -> None:
    """Every IntEnum in coldvault has one home; Ethereum/Solana wire codes are the registry's."""
    homes: dict[str, list[str]] = {}
    for path in sorted((ROOT / "coldvault").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Attribute | ast.Name) and ast.unparse(b).endswith("IntEnum")
                for b in node.bases
            ):
                homes.setdefault(node.name, []).append(str(path.relative_to(ROOT)))
    assert {k: v for k, v in homes.items() if len(v) > 1} == {}
    keystone = "coldvault/transport/registry/keystone.py"
    assert homes["EthDataType"] == [keystone] and homes["SolSignType"] == [keystone]


def test_wallet_account_path_is_parsed_once_when_loaded() -> None:
    text = (
        '[[wallet]]\nname = "w"\nclient = "c"\nchain = "ethereum"\nnetwork = "1"\n'
        'template = "bip44-eth"\nmaster_fingerprint = "D34DB33F"\naccount_path = "{path}"\n'
    )
    (wallet,) = parse_wallets(text.replace("{path}", "m/44h/60h/0'").encode()).values()
    assert wallet.account == (44 | 0x8000_0000, 60 | 0x8000_0000, 0x8000_0000)
    assert wallet.master_fingerprint == "d34db33f"
    with pytest.raises(ConfigError, match="invalid account_path.*must start with 'm'"):
        parse_wallets(text.replace("{path}", "44h/60h/0h").encode())

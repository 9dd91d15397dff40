"""Assets and exact amount text: the one formatter for every screen and document.

Amounts are integers of base units everywhere in coldvault (sat, wei, lamports).  They are
shown in whole units by integer arithmetic only -- never through a float, which has 53 bits
of precision and would show 1234567890123456789 wei as "1.23456789 ETH".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from coldvault.requests.base import Chain


@dataclass(frozen=True)
class Asset:
    """A native asset: its symbol, how many decimals its base unit has, and that unit's name."""

    symbol: str
    decimals: int
    base_unit: str

    def __post_init__(self) -> None:
        if not 0 <= self.decimals <= 36:
            raise ValueError("decimals must be 0..36")


BTC = Asset("BTC", 8, "sat")
ETH = Asset("ETH", 18, "wei")
SOL = Asset("SOL", 9, "lamports")

#: The native assets by symbol (``Movement.asset``); tokens (``"ERC20:0x..."``) are not here.
ASSETS: Mapping[str, Asset] = MappingProxyType({a.symbol: a for a in (BTC, ETH, SOL)})
#: The asset each chain's fees are paid in.
NATIVE: Mapping[Chain, Asset] = MappingProxyType(
    {Chain.BITCOIN: BTC, Chain.ETHEREUM: ETH, Chain.SOLANA: SOL}
)


def format_amount(asset: str, amount: int, *, base_units: bool = True) -> str:
    """Exact text of ``amount`` base units of ``asset``: whole units with every decimal
    digit of the asset (so the scale is never misread), then the base units.

    * ``format_amount("BTC", 1_250_000)`` -> ``"0.01250000 BTC (1,250,000 sat)"``
    * ``format_amount("SOL", 5000, base_units=False)`` -> ``"0.000005000 SOL"``
    * an asset without known decimals (an ERC-20 token) is shown in base units:
      ``format_amount("ERC20:0x...", 5)`` -> ``"5 ERC20:0x..."``
    """
    if type(amount) is not int:
        raise TypeError(f"amounts are integers of base units, not {type(amount).__name__}")
    known = ASSETS.get(asset)
    if known is None:
        return f"{amount:,} {asset}"
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**known.decimals)
    text = f"{sign}{whole}"
    if known.decimals:
        text += "." + f"{frac:0{known.decimals}d}"
    if not base_units:
        return f"{text} {asset}"
    return f"{text} {asset} ({amount:,} {known.base_unit})"


"""Registered wallets: which keys are ours, for which client, and how their scripts derive.

A wallet registry is a TOML file (format in docs/wallets.md) changed only with an admin
quorum. Each client's wallets are separate: a request may touch exactly one wallet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from coldvault import tomlsafe
from coldvault.crypto.paths import InvalidPath, parse_path
from coldvault.errors import ConfigError
from coldvault.requests.base import Chain

MAX_WALLETS = 1000


@dataclass(frozen=True)
class Wallet:
    name: str
    client: str
    chain: Chain
    network: str  # bitcoin: "main"|"test"|"regtest"; ethereum: chain id as str; solana cluster
    #: "bip84" | "bip48-wsh-sortedmulti" | "bip44-eth" | "sol" (also "bip44", "bip49",
    #: "bip48-sh-wsh-sortedmulti"); for Bitcoin the descriptor decides behaviour
    template: str
    #: hex master fingerprint of *our* seed for this wallet
    master_fingerprint: str
    #: our account path, e.g. "m/84h/0h/0h"
    account_path: str
    #: Bitcoin: output descriptor with key origins and a ``<0;1>/*`` multipath (or None).
    descriptor: str | None = None
    #: highest address/change index the appliance will search (the key-pool size - 1)
    max_index: int = 99
    #: segwit v0 inputs must carry the full previous transaction (the 2020 fee attack);
    #: only a coordinator that cannot provide it justifies turning this off
    require_non_witness_utxo: bool = True
    #: ``account_path`` parsed once, when the wallet is made (raises ``InvalidPath``)
    account: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "account", parse_path(self.account_path))


def _bool(entry: dict[str, object], key: str, default: bool) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false")
    return value


def load_wallets(path: Path) -> dict[str, Wallet]:
    """Load a wallet registry TOML file; raise ConfigError naming the problem."""
    try:
        content = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"wallet registry {path} does not exist") from exc
    return parse_wallets(content, where=str(path))


def parse_wallets(content: bytes, *, where: str = "wallet registry") -> dict[str, Wallet]:
    """Parse wallet registry TOML bytes (e.g. a signed document's content)."""
    path = where
    try:
        data = tomlsafe.loads(content)
    except tomlsafe.TomlRejected as exc:
        raise ConfigError(f"wallet registry {path} {exc}") from None
    entries = data.get("wallet", [])
    if not isinstance(entries, list) or len(entries) > MAX_WALLETS:
        raise ConfigError(f"wallet registry {path}: expected [[wallet]] tables")
    wallets: dict[str, Wallet] = {}
    for i, entry in enumerate(entries):
        try:
            wallet = Wallet(
                name=str(entry["name"]),
                client=str(entry["client"]),
                chain=Chain(entry["chain"]),
                network=str(entry["network"]),
                template=str(entry["template"]),
                master_fingerprint=str(entry["master_fingerprint"]).lower(),
                account_path=str(entry["account_path"]),
                descriptor=entry.get("descriptor"),
                max_index=int(entry.get("max_index", 99)),
                require_non_witness_utxo=_bool(entry, "require_non_witness_utxo", True),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"wallet registry {path}: wallet #{i + 1} is invalid: {exc!r}"
            ) from exc
        except InvalidPath as exc:
            raise ConfigError(
                f"wallet registry {path}: wallet #{i + 1} has an invalid account_path: "
                f"{exc.message}"
            ) from exc
        if wallet.name in wallets:
            raise ConfigError(f"wallet registry {path}: wallet name {wallet.name!r} appears twice")
        wallets[wallet.name] = wallet
    return wallets

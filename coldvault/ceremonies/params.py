"""Ceremony parameters: frozen values checked when they are made.

Every ceremony takes one parameter object derived from :class:`CeremonyParams`.  A value
of the wrong *type* is a programming mistake (``ValueError``); a value of the right type
that an operator may not choose (a threshold above the share count, an unknown network)
is :class:`ParameterError`, raised before any transcript is opened or hardware touched.
Operator-facing sentences name the command-line options (docs/ceremonies.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault.errors import InputError
from coldvault.keys.pool import MAX_CHAIN_ID, MAX_POOL_SIZE, AccountSpec, Template

#: Solana clusters the ``sol`` template accepts.
SOL_CLUSTERS = ("mainnet-beta", "devnet", "testnet")
#: Bitcoin networks the pool templates accept.
NETWORKS = ("main", "test", "regtest")
MAX_ACCOUNT = 0x7FFF_FFFF
MAX_WITNESSES = 16


class ParameterError(InputError):
    """An operator chose a ceremony parameter that is not allowed (nothing was started)."""

    code = "ceremony-parameter"

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def check_type(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    """``ValueError`` unless ``value`` is a ``kind`` (booleans are not integers here)."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"ceremony parameter {name} has the wrong type {type(value).__name__}")


def check_int(name: str, value: object, low: int, high: int) -> int:
    """An integer chosen by the operator: wrong type ValueError, out of range ParameterError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"ceremony parameter {name} has the wrong type {type(value).__name__}")
    if not low <= value <= high:
        raise ParameterError(name, f"--{name} must be between {low} and {high}, not {value}.")
    return value


@dataclass(frozen=True, kw_only=True)
class CeremonyParams:
    """What every ceremony takes: who runs it and where its transcript goes.

    ``transcript`` is the file to create (refused if it exists); by default a new file
    ``<ceremony>-<UTC time>-<ceremony id>.jsonl`` in ``transcript_dir``."""

    actor: str
    transcript: Path | None = None
    transcript_dir: Path = Path("transcripts")

    def __post_init__(self) -> None:
        check_type("actor", self.actor, str)
        if not self.actor.strip():
            raise ParameterError("operator", "--operator must name the person running it.")
        if self.transcript is not None:
            check_type("transcript", self.transcript, Path)
        check_type("transcript_dir", self.transcript_dir, Path)


@dataclass(frozen=True, kw_only=True)
class PoolParams:
    """Which key pool to derive and import, and where its public exports go.

    ``templates`` empty means all four; ``network`` applies to the Bitcoin templates,
    ``eth_chain_id`` to ``bip44-eth`` (Sepolia: 11155111) and ``sol_cluster`` to ``sol``."""

    templates: tuple[Template, ...] = ()
    account: int = 0
    network: str = "main"
    eth_chain_id: int = 1
    sol_cluster: str = "mainnet-beta"
    client: str = "house"
    pool_size: int = 20
    export_dir: Path = Path("exports")
    _specs: tuple[AccountSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_type("templates", self.templates, tuple)
        for template in self.templates:
            check_type("templates", template, Template)
        check_int("account", self.account, 0, MAX_ACCOUNT)
        check_int("pool-size", self.pool_size, 1, MAX_POOL_SIZE)
        check_type("network", self.network, str)
        check_type("client", self.client, str)
        check_type("export_dir", self.export_dir, Path)
        if self.network not in NETWORKS:
            raise ParameterError(
                "network", f"--network must be one of {', '.join(NETWORKS)}, not {self.network}."
            )
        check_int("eth-chain-id", self.eth_chain_id, 1, MAX_CHAIN_ID)
        check_type("sol_cluster", self.sol_cluster, str)
        if self.sol_cluster not in SOL_CLUSTERS:
            raise ParameterError(
                "sol-cluster",
                f"--sol-cluster must be one of {', '.join(SOL_CLUSTERS)}, not {self.sol_cluster}.",
            )
        if not self.client.strip():
            raise ParameterError("client", "--client must not be empty.")
        chosen = self.templates or tuple(Template)
        specs = tuple(
            AccountSpec(
                t,
                account=self.account,
                network=self._network(t),
                client=self.client,
            )
            for t in chosen
        )
        object.__setattr__(self, "_specs", specs)

    def _network(self, template: Template) -> str:
        return {"bitcoin": self.network, "ethereum": str(self.eth_chain_id)}.get(
            template.chain, self.sol_cluster
        )

    @property
    def specs(self) -> tuple[AccountSpec, ...]:
        """One :class:`AccountSpec` per chosen template."""
        return self._specs

    @property
    def key_count(self) -> int:
        return sum(len(s.key_paths(self.pool_size)) for s in self._specs)

    def to_dict(self) -> dict[str, Any]:
        """The transcript's record of these parameters (all public)."""
        return {
            "templates": [str(s.template) for s in self._specs],
            "network": self.network,
            "eth_chain_id": self.eth_chain_id,
            "sol_cluster": self.sol_cluster,
            "account": self.account,
            "pool_size": self.pool_size,
        }


__all__ = [
    "MAX_WITNESSES",
    "NETWORKS",
    "SOL_CLUSTERS",
    "CeremonyParams",
    "ParameterError",
    "PoolParams",
    "check_int",
    "check_type",
]

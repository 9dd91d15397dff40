"""Click options shared by the ceremony commands, and their conversion to library values."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ceremony_scripts import quorum_cards
from ceremony_scripts.ui import ASK_BAGS
from coldvault.ceremonies.params import PoolParams
from coldvault.ceremonies.proposals import load_chain
from coldvault.config import ApplianceConfig, load_config
from coldvault.keys.pool import Template
from coldvault.quorum.roster import Roster

F = TypeVar("F", bound=Callable[..., Any])

TEMPLATES = [t.value for t in Template]


def stack(func: F, options: list[Callable[[F], F]]) -> F:
    """Apply ``options`` to ``func`` in the order listed (first = first in --help)."""
    for option in reversed(options):
        func = option(func)
    return func


def _ask_bags(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[ASK_BAGS] = True


def common_options(func: F) -> F:
    """``--operator``, ``--transcript``, ``--yes``, ``--tamper-bags``."""
    return stack(func, [
        click.option("--operator", "operator_name", required=True, help="Operator's name."),
        click.option("--transcript", "transcript_path",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="Transcript file (default: ./transcripts/<ceremony>-<time>-<id>.jsonl)."),
        click.option("--yes", "assume_yes", is_flag=True, help="Skip yes/no confirmations."),
        click.option("--tamper-bags", is_flag=True, expose_value=False, callback=_ask_bags,
                     help="At the close, ask for the numbers of the tamper-evident bags sealed "
                     "in this ceremony and record them in the transcript."),
    ])  # fmt: skip


def hsm_options(func: F) -> F:
    """``--module``, ``--token``, ``--allow-emulated``."""
    return stack(func, [
        click.option("--module", envvar="COLDVAULT_PKCS11_MODULE", required=True,
                     help="Path of the PKCS#11 module (env COLDVAULT_PKCS11_MODULE)."),
        click.option("--token", "token_label", default="coldvault-appliance", show_default=True,
                     help="PKCS#11 token label of the appliance HSM."),
        click.option("--allow-emulated", is_flag=True,
                     help="Accept an emulated HSM (SoftHSM) and virtual cards. Lab and CI "
                     "only; refused otherwise."),
    ])  # fmt: skip


def pool_options(func: F) -> F:
    """The key pool: ``--template`` ... ``--export-dir``."""
    return stack(func, [
        click.option("--template", "templates", multiple=True, type=click.Choice(TEMPLATES),
                     help="Wallet template (repeatable; default: all four)."),
        click.option("--account", default=0, show_default=True, type=click.IntRange(0)),
        click.option("--network", default="main", show_default=True,
                     type=click.Choice(["main", "test", "regtest"]),
                     help="Bitcoin network of the bitcoin templates."),
        click.option("--eth-chain-id", default=1, show_default=True,
                     type=click.IntRange(1, 2**63 - 1),
                     help="EVM chain id of the bip44-eth template (Sepolia: 11155111)."),
        click.option("--sol-cluster", default="mainnet-beta", show_default=True,
                     type=click.Choice(["mainnet-beta", "devnet", "testnet"]),
                     help="Solana cluster of the sol template."),
        click.option("--client", default="house", show_default=True),
        click.option("--pool-size", default=20, show_default=True,
                     type=click.IntRange(1, 10_000),
                     help="Keys per branch (receive/change) per account."),
        click.option("--export-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=Path("exports"), show_default=True),
    ])  # fmt: skip


def pool_params(
    templates: tuple[str, ...], account: int, network: str, client: str, pool_size: int,
    export_dir: Path, eth_chain_id: int = 1, sol_cluster: str = "mainnet-beta",
) -> PoolParams:  # fmt: skip
    return PoolParams(
        templates=tuple(Template(t) for t in templates), account=account, network=network,
        client=client, pool_size=pool_size, export_dir=export_dir,
        eth_chain_id=eth_chain_id, sol_cluster=sol_cluster,
    )  # fmt: skip


def roster_chain_options(func: F) -> F:
    """``--roster`` (repeatable: the chain, genesis first) and ``--genesis-sha256``."""
    return stack(func, [
        click.option("--roster", "roster_paths", multiple=True, required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Signed roster file, repeatable: the chain, genesis first. The "
                     "newest roster's admins approve."),
        click.option("--genesis-sha256", default="",
                     help="Pinned genesis roster SHA-256 (hex), as in the appliance "
                     "configuration. Without it the first --roster is trusted and its hash "
                     "shown to check."),
    ])  # fmt: skip


def config_option(func: F) -> F:
    """``--config``: the appliance configuration, for what it names (see :func:`from_config`)."""
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
        help="The appliance configuration (appliance.toml): its audit trail (state_dir), its "
        "roster chain checked from its pinned genesis, and its policy.",
    )(func)


def from_config(path: Path | None, **given: object) -> ApplianceConfig | None:
    """The configuration at ``path`` (a ConfigError names a bad file), refusing any option
    in ``given`` (``{option name: value}``) that was given too: the configuration names it."""
    if path is None:
        return None
    clash = [name for name, value in given.items() if value]
    if clash:
        raise click.UsageError(
            f"--config names the appliance's own {', '.join(clash)}; leave out "
            f"{', '.join('--' + n for n in clash)}."
        )
    return load_config(path)


def config_roster(cfg: ApplianceConfig) -> Roster:
    """The newest roster of the configuration's chain, verified from its pinned genesis."""
    roster, _docs = load_chain(cfg.roster_files, cfg.genesis_roster_sha256)
    return roster


def unsigned_option(func: F) -> F:
    """``--unsigned``: the explicit choice of a record no admin quorum signs."""
    return click.option(
        "--unsigned", is_flag=True,
        help="Write the record without the admin quorum's signatures (a rehearsal): no check "
        "of it will pass. Without --roster (or --config) this flag is required.",
    )(func)


def require_signers(what: str, *, given: bool, unsigned: bool, how: str = "--roster") -> None:
    """Refuse, before anything happens, a ceremony whose record would go unsigned by
    mistake: the signed-record checks refuse it, so the ceremony would have to be held
    again."""
    if given and unsigned:
        raise click.UsageError(f"--unsigned contradicts {how}: choose one.")
    if not given and not unsigned:
        raise click.UsageError(
            f"Without {how} the {what} is not signed by the admin quorum, and every check "
            f"of it refuses it. Give {how} (the signed roster), or --unsigned for a "
            "rehearsal whose record nobody can verify."
        )


def load_roster(path: Path | None) -> Roster | None:
    """A ``--roster`` file with its approvals, checked against its own admins."""
    return quorum_cards.load_roster(path) if path is not None else None


__all__ = [
    "common_options",
    "config_option",
    "config_roster",
    "from_config",
    "hsm_options",
    "load_roster",
    "pool_options",
    "require_signers",
    "unsigned_option",
    "pool_params",
    "roster_chain_options",
    "stack",
]

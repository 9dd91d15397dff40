"""Provisioning parameters for test networks: EVM chain ids and Solana clusters."""

from __future__ import annotations

import pytest

from coldvault.ceremonies.params import ParameterError, PoolParams
from coldvault.keys.pool import AccountSpec, Template


def test_chain_id_and_cluster_reach_the_accounts() -> None:
    params = PoolParams(eth_chain_id=11155111, sol_cluster="devnet", network="test")
    networks = {s.template: s.network for s in params.specs}
    assert networks == {Template.BIP84: "test", Template.BIP48_WSH: "test",
                        Template.ETH: "11155111", Template.SOL: "devnet"}
    assert params.to_dict()["eth_chain_id"] == 11155111
    assert params.to_dict()["sol_cluster"] == "devnet"


def test_defaults_stay_mainnet() -> None:
    networks = {s.template: s.network for s in PoolParams().specs}
    assert networks[Template.ETH] == "1" and networks[Template.SOL] == "mainnet-beta"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"sol_cluster": "localnet"}, "sol-cluster"),
    ({"eth_chain_id": 0}, "eth-chain-id"),
])
def test_bad_choice_is_named(kwargs: dict, field: str) -> None:
    with pytest.raises(ParameterError) as err:
        PoolParams(**kwargs)
    assert err.value.to_dict().get("parameter", field) == field
    assert f"--{field}" in err.value.message


@pytest.mark.parametrize("network", ["sepolia", "011155111", "-1", ""])
def test_account_spec_refuses_a_non_chain_id(network: str) -> None:
    if network == "":  # the default applies
        assert AccountSpec(Template.ETH, network=network).network == "1"
        return
    with pytest.raises(ValueError, match="chain id"):
        AccountSpec(Template.ETH, network=network)


def test_account_spec_refuses_an_unknown_cluster() -> None:
    with pytest.raises(ValueError, match="Solana network"):
        AccountSpec(Template.SOL, network="localnet")

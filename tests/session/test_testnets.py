"""Test networks on the lab: an Ethereum account provisioned for Sepolia (chain id 11155111)
and a Solana account for devnet, each signing through the real appliance and card loop
(tests/session/console_lab.py); the signatures are checked with eth-account and solders.
The exports carry every address's derivation path and a Keystone multi-account QR."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import cbor2
import pytest
from solders.pubkey import Pubkey

from coldvault.keys.pool import AccountSpec, ProvisioningRecord, Template, ur_multi_accounts
from coldvault.policy import policy_toml
from coldvault.transport.ur import decode_single
from hardware_emulators.demo import chains, parties
from hardware_emulators.demo import flow as demo
from tests.session.console_lab import ConsoleLab, console_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SEPOLIA, DEVNET = "11155111", "devnet"
APPROVERS = ["C0DE0001", "C0DE0002"]
SPECS = (
    AccountSpec(Template.BIP84, client="acme", name="acme-btc"),
    AccountSpec(Template.ETH, client="globex", name="globex-sepolia", network=SEPOLIA),
    AccountSpec(Template.SOL, client="initech", name="initech-devnet", network=DEVNET),
)
ETH_DEST = parties.ethereum_counterparty("globex-exchange")
SOL_DEST = parties.solana_counterparty("initech-payroll")


def sepolia_devnet_policy(record: ProvisioningRecord) -> str:
    policy = demo.demo_policy(record, parties.bitcoin_counterparty("acme-treasury"),
                              ETH_DEST, SOL_DEST)
    networks = {"globex-sepolia": SEPOLIA, "initech-devnet": DEVNET}
    wallets = {name: dataclasses.replace(w, network=networks.get(name, w.network))
               for name, w in policy.wallets.items()}
    return policy_toml(dataclasses.replace(policy, wallets=wallets))


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
            ) -> Iterator[ConsoleLab]:
    with console_lab(tmp_path_factory.mktemp("testnets"), lab_config, softhsm_lab, pcsc_lab,
                     specs=SPECS, policy_text=sepolia_devnet_policy) as c:
        yield c


def test_registry_names_the_test_networks(console: ConsoleLab) -> None:
    accounts = {a.spec.name: a.to_dict() for a in console.trust.record.accounts}
    assert accounts["globex-sepolia"]["network"] == SEPOLIA
    assert accounts["initech-devnet"]["network"] == DEVNET
    registry = console.trust.record.wallet_registry_toml()
    assert f'network = "{SEPOLIA}"' in registry and f'network = "{DEVNET}"' in registry
    eth_paths = [a["path"] for a in accounts["globex-sepolia"]["addresses"]]
    assert eth_paths == ["m/44h/60h/0h/0/0", "m/44h/60h/0h/0/1", "m/44h/60h/0h/0/2"]
    sol = accounts["initech-devnet"]["addresses"]
    assert [a["path"] for a in sol] == ["m/44h/501h/0h/0h", "m/44h/501h/1h/0h",
                                        "m/44h/501h/2h/0h"]


def test_multi_account_export_lists_every_key_with_its_path(console: ConsoleLab) -> None:
    record = console.trust.record
    text = ur_multi_accounts(record.accounts)
    assert text is not None and text.startswith("ur:crypto-multi-accounts/")
    ur = decode_single(text)
    value = cbor2.loads(ur.cbor)
    assert value[1] == int.from_bytes(record.master_fingerprint, "big")
    keys = [k.value for k in value[2]]
    assert all(tag.tag == 303 for tag in value[2])
    eth = next(a for a in record.accounts if a.spec.name == "globex-sepolia")
    sol = next(a for a in record.accounts if a.spec.name == "initech-devnet")
    assert list(keys[0][6].value[1]) == [44, True, 60, True, 0, True]
    assert keys[0][10] == "account.standard" and len(keys[0][4]) == 32
    solana = keys[1:]
    assert [str(Pubkey.from_bytes(k[3])) for k in solana] == list(sol.first_addresses)
    assert [list(k[6].value[1]) for k in solana] == [[44, True, 501, True, i, True, 0, True]
                                                      for i in range(3)]
    assert eth.first_addresses


def _signed(console: ConsoleLab, payload: bytes, ur_type: str) -> Any:
    out = console.run(payload, ur_type, APPROVERS)
    assert out.error is None, out.error
    review, decision = out.operator.reviews[0]
    return out.result, review


def test_sepolia_account_signs(console: ConsoleLab) -> None:
    account = console.trust.account("globex-sepolia")
    payload, fields = chains.eth_request(account, to=ETH_DEST.address, value=10**16,
                                         chain_id=int(SEPOLIA))
    result, review = _signed(console, payload, "eth-sign-request")
    assert review.network == SEPOLIA
    sender = chains.eth_verify(fields, result.response)  # eth-account recovers the sender
    assert sender.lower() == str(account["first_addresses"][0]).lower()  # type: ignore[index]


def test_mainnet_chain_id_is_refused_for_the_sepolia_account(console: ConsoleLab) -> None:
    account = console.trust.account("globex-sepolia")
    payload, _ = chains.eth_request(account, to=ETH_DEST.address, value=10**16, chain_id=1)
    out = console.run(payload, "eth-sign-request", APPROVERS)
    assert out.error is not None and out.result is None
    assert out.error.code == "no-wallet"
    assert "is for network 11155111, but the request is for network 1;" in out.error.message
    assert not out.operator.reviews and not out.operator.questions


def test_devnet_account_signs(console: ConsoleLab) -> None:
    account = console.trust.account("initech-devnet")
    payload, message, signer = chains.sol_request(account, to=SOL_DEST.address,
                                                  lamports=1_000_000)
    result, review = _signed(console, payload, "sol-sign-request")
    assert review.network == DEVNET
    chains.sol_verify(message, signer, result.response)  # solders verifies the signature

"""The address book end to end on the lab: real SoftHSM, pcscd + vpcd + virtual cards, QR
frames through the virtual camera, the real ``coldvault`` console driven by pexpect with two
card approvals.

Each request is built by an independent library (embit, eth-account, solders) and each
signature is checked by it. The destinations: a P2TR address proven by a BIP-322 Schnorr
signature, a P2WSH 2-of-2 payee proven by a BIP-322 multisig signature (both made with
embit), an exchange deposit address entered as attested (test transaction and travel-rule
data), an Ethereum address entered as attested, a Solana address proven by Ed25519. The same
kinds of requests to addresses without an entry are refused, signing nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coldvault.keys.pool import ProvisioningRecord
from coldvault.policy import AssetLimits, Evidence, policy_toml
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import LabTrust
from tests.appliance.lab_world import appliance_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TAPROOT = parties.taproot_counterparty("acme-cold-taproot")
MULTISIG = parties.multisig_counterparty("acme-partner-multisig")
SOLANA = parties.solana_counterparty("initech-payroll")
EXCHANGE_BTC = parties.attested_destination("bitcoin", "Bitstamp deposit (acme)", Evidence(
    test_txid="5d" * 32, beneficiary="Acme Treasury Ltd", vasp="Bitstamp Ltd",
    reference="BS-ACME-0042"))  # fmt: skip
EXCHANGE_ETH = parties.attested_destination("ethereum", "Kraken deposit (globex)", Evidence(
    test_txid="0x" + "7e" * 32, beneficiary="Globex Corp", vasp="Payward Ltd (Kraken)",
    reference="KR-GLOBEX-17"))  # fmt: skip


def address_book_policy(record: ProvisioningRecord) -> str:
    """The demo policy, with each wallet's address book replaced by this module's entries;
    the Bitcoin and Ethereum wallets allow attested destinations, Bitcoin with a lower cap."""
    base = demo.demo_policy(
        record,
        parties.bitcoin_counterparty("acme-treasury"),
        parties.ethereum_counterparty("globex-exchange"),
        SOLANA,
    )
    wallets = {}
    for name, w in base.wallets.items():
        if w.chain == "bitcoin":
            btc = w.limits["BTC"]
            w = dataclasses.replace(
                w, allow_attested=True,
                destinations=(TAPROOT.destination(), MULTISIG.destination(), EXCHANGE_BTC),
                limits={"BTC": AssetLimits(btc.per_transaction, btc.per_day, 2_000_000)},
            )  # fmt: skip
        elif w.chain == "ethereum":
            w = dataclasses.replace(w, allow_attested=True, destinations=(EXCHANGE_ETH,))
        wallets[name] = w
    return policy_toml(dataclasses.replace(base, wallets=wallets))


@dataclasses.dataclass
class World:
    out: Path
    lab: Lab
    trust: LabTrust

    def decisions(self) -> list[dict[str, Any]]:
        trail = self.out / "state" / "audit.jsonl"
        events = [json.loads(line) for line in trail.read_text().splitlines()]
        return [e["fields"] for e in events if e["event"] == "decision"]

    def destination_rule(self) -> dict[str, Any]:
        rules = self.decisions()[-1]["rules"]
        return next(r for r in rules if r["rule"] == "destination-whitelisted")


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, softhsm_lab, pcsc_lab, lab_config
) -> Iterator[World]:
    out = tmp_path_factory.mktemp("address-book")
    with appliance_lab(out, lab_config, softhsm_lab, pcsc_lab, address_book_policy) as (
        lab, trust,
    ):  # fmt: skip
        yield World(out, lab, trust)


def test_psbt_to_a_bip322_proven_taproot_address(world: World) -> None:
    line = demo.bitcoin_flow(world.out, world.lab, world.trust, TAPROOT, name="p2tr")
    assert "finalized by embit" in line
    rule = world.destination_rule()
    assert rule["passed"] and rule["values"]["destination"] == TAPROOT.address
    assert rule["values"]["destination_kind"] == "proven"
    assert TAPROOT.address.startswith("bc1p")


def test_psbt_to_a_p2wsh_multisig_payee(world: World) -> None:
    line = demo.bitcoin_flow(world.out, world.lab, world.trust, MULTISIG, name="p2wsh")
    assert "finalized by embit" in line
    rule = world.destination_rule()
    assert rule["passed"] and rule["values"]["destination"] == MULTISIG.address
    assert len(MULTISIG.address) == 62  # bech32 v0 with a 32-byte program


def test_psbt_to_an_attested_exchange_deposit_address(world: World) -> None:
    line = demo.bitcoin_flow(world.out, world.lab, world.trust, EXCHANGE_BTC, name="deposit")
    assert "finalized by embit" in line
    rule = world.destination_rule()
    assert rule["passed"] and rule["values"]["destination_kind"] == "attested"
    assert rule["message"] == (
        f"Destination {EXCHANGE_BTC.address} is whitelisted as 'Bitstamp deposit (acme)', "
        f"attested: test transaction {'5d' * 32}, beneficiary Acme Treasury Ltd, VASP "
        "Bitstamp Ltd, reference BS-ACME-0042."
    )
    console = (world.out / "deposit" / "console.log").read_text()
    assert "attested-allowed" in console and "attested-cap" in console


def test_eip1559_transfer_to_an_attested_address(world: World) -> None:
    line = demo.ethereum_flow(world.out, world.lab, world.trust, EXCHANGE_ETH, name="eth-deposit")
    assert "recovers sender" in line
    rule = world.destination_rule()
    assert rule["passed"] and rule["values"]["destination_kind"] == "attested"


def test_solana_transfer_to_a_proven_address(world: World) -> None:
    line = demo.solana_flow(world.out, world.lab, world.trust, SOLANA, name="sol-proven")
    assert "solders verifies" in line
    assert world.destination_rule()["values"]["destination_kind"] == "proven"


@pytest.mark.parametrize(
    ("flow", "payee"),
    [
        (demo.bitcoin_flow, parties.taproot_counterparty("unknown-taproot")),
        (demo.bitcoin_flow, parties.multisig_counterparty("unknown-multisig")),
        (demo.bitcoin_flow, parties.bitcoin_counterparty("unknown-deposit")),
        (demo.ethereum_flow, parties.ethereum_counterparty("unknown-deposit")),
        (demo.solana_flow, parties.solana_counterparty("unknown-payee")),
    ],
    ids=["p2tr", "p2wsh", "deposit", "eth", "sol"],
)
def test_the_same_requests_without_an_entry_are_refused(world: World, flow, payee) -> None:
    name = f"refused-{payee.address[:12]}"
    line = flow(
        world.out, world.lab, world.trust, payee, name=name, expect_rule="destination-whitelisted"
    )
    assert f"Destination {payee.address}" in line and "whitelist" in line
    assert not (world.out / name / "response").exists() or not any(
        (world.out / name / "response").iterdir()
    )

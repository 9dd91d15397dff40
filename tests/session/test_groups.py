"""Approver groups on the lab: the real appliance in process and its own card loop through
pcscd (tests/session/console_lab.py).

Roster: Alice and Bob are in ``treasury``, Carol in ``compliance``.  The Bitcoin wallet
needs 1 of compliance AND 1 of treasury up to 0.5 BTC, and 1 of compliance AND 2 of treasury
above.  The signed PSBT is finalised and its signature checked by embit / libsecp256k1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from coldvault.errors import ColdvaultError
from coldvault.keys.pool import ProvisioningRecord, Template
from coldvault.policy import Tier, policy_toml
from coldvault.quorum import GroupRequirement
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.trust_setup import LabTrust
from tests.session.console_lab import ConsoleLab, Operator, console_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ALICE, BOB, CAROL = "C0DE0001", "C0DE0002", "C0DE0003"
GROUPS = {ALICE: ("treasury",), BOB: ("treasury",), CAROL: ("compliance",)}
SMALL, LARGE = 200_000, 60_000_000


def grouped_policy(btc: parties.Proof, eth: parties.Proof, sol: parties.Proof) -> Any:
    def text(record: ProvisioningRecord) -> str:
        policy = demo.demo_policy(record, btc, eth, sol)
        name = next(a.spec.name for a in record.accounts if a.spec.template is Template.BIP84)
        small = GroupRequirement.of({"compliance": 1, "treasury": 1})
        large = GroupRequirement.of({"compliance": 1, "treasury": 2})
        tiers = (Tier("BTC", 50_000_000, 2, groups=small), Tier("BTC", None, 3, groups=large))
        wallets = dict(policy.wallets)
        wallets[name] = dataclasses.replace(wallets[name], tiers=tiers)
        return policy_toml(dataclasses.replace(policy, wallets=wallets))

    return text


@dataclasses.dataclass
class GroupWorld:
    console: ConsoleLab
    destination: parties.Proof

    @property
    def trust(self) -> LabTrust:
        return self.console.trust

    def run(self, amount: int, cards: Sequence[str], *, max_attempts: int = 5
            ) -> tuple[Operator, Any, ColdvaultError | None]:
        account = self.trust.account("acme-btc")
        psbt = parties.bitcoin_psbt(str(account["descriptor"]), pay_to=self.destination.address,
                                    amount=amount, fee=1_500, funding=amount + 2_000_000,
                                    seed=500 + self.console.runs)
        out = self.console.run(psbt, "crypto-psbt", cards, max_attempts=max_attempts)
        return out.operator, out.result, out.error


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
          ) -> Iterator[GroupWorld]:
    btc = parties.bitcoin_counterparty("acme-treasury")
    policy = grouped_policy(btc, parties.ethereum_counterparty("globex-exchange"),
                            parties.solana_counterparty("initech-payroll"))
    with console_lab(tmp_path_factory.mktemp("groups"), lab_config, softhsm_lab, pcsc_lab,
                     groups=GROUPS, policy_text=policy) as console:
        yield GroupWorld(console, btc)


def test_roster_carries_groups(world: GroupWorld) -> None:
    groups = {h.holder: h.groups for h in world.trust.roster.holders}
    assert groups["Alice Approver"] == ("treasury",)
    assert groups["Carol Approver"] == ("compliance",)
    assert groups["Dave Admin"] == ()


def test_card_from_a_group_not_needed_is_refused_naming_it(world: GroupWorld) -> None:
    operator, result, error = world.run(SMALL, [ALICE, BOB, CAROL])
    assert error is None, error
    review, decision = operator.reviews[0]
    assert decision.required_groups.as_dict() == {"compliance": 1, "treasury": 1}
    assert "(1 from compliance and 1 from treasury)" in operator.questions[0]
    prompts = [m for m in operator.messages if "insert an approver card" in m]
    assert "still needed from groups: 1 from compliance and 1 from treasury" in prompts[0]
    assert "still needed from groups: 1 from compliance)" in prompts[1]
    refusals = [m for m in operator.messages if "does not count" in m]
    assert len(refusals) == 1
    assert f"Card {world.trust.card_ids[BOB]} of Bob Approver (group treasury)" in refusals[0]
    assert "still needed: 1 from compliance" in refusals[0]
    # Bob was refused before any PIN: PIN prompts for Alice and Carol only
    assert [m for m in operator.messages if m.startswith("User PIN for card")] == [
        f"User PIN for card {world.trust.card_ids[s]} ({h})"
        for s, h in ((ALICE, "Alice Approver"), (CAROL, "Carol Approver"))
    ]
    assert set(result.approvals) == {world.trust.card_ids[ALICE], world.trust.card_ids[CAROL]}
    raw_tx, inputs = parties.finalize_psbt(result.response)  # embit + libsecp256k1
    assert inputs == 1 and raw_tx


def test_missing_group_is_named_in_the_refusal(world: GroupWorld) -> None:
    operator, result, error = world.run(SMALL, [ALICE, BOB], max_attempts=2)
    assert result is None and error is not None
    assert error.code == "card-attempts"
    assert "Still needed: 1 from compliance." in error.message
    assert not any(m.startswith(f"User PIN for card {world.trust.card_ids[BOB]}")
                   for m in operator.messages)


def test_larger_tier_needs_two_of_treasury_and_one_of_compliance(world: GroupWorld) -> None:
    operator, result, error = world.run(LARGE, [CAROL, ALICE, BOB])
    assert error is None, error
    _, decision = operator.reviews[0]
    assert decision.required_approvals == 3
    assert decision.required_groups.as_dict() == {"compliance": 1, "treasury": 2}
    assert len(result.approvals) == 3
    parties.finalize_psbt(result.response)

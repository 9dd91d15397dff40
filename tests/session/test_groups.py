"""Approver groups on the lab: the real appliance in process (SoftHSM keys, sealed audit
trail, ledger), the request's QR frames through the virtual camera, and the appliance's own
card loop (appliance.approvals.CardApprovalCollector) talking to the lab's virtual OpenPGP
cards through pcscd.  The operator inserts the cards in the scripted order when the console
asks for one and types the PIN when asked.

Roster: Alice and Bob are in ``treasury``, Carol in ``compliance``.  The Bitcoin wallet
needs 1 of compliance AND 1 of treasury up to 0.5 BTC, and 1 of compliance AND 2 of treasury
above.  The signed PSBT is finalised and its signature checked by embit / libsecp256k1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from appliance.approvals import CardApprovalCollector
from appliance.config import load_config
from appliance.daemon import Appliance
from coldvault.backends.qr_decode import default_decoder
from coldvault.errors import ColdvaultError
from coldvault.keys.pool import ProvisioningRecord, Template
from coldvault.policy import Tier, policy_toml
from coldvault.quorum import GroupRequirement
from coldvault.transport import render as qr_render
from coldvault.transport.formats import TransportFormat
from coldvault.transport.frames import frame_texts
from coldvault.transport.reply import encode_reply
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import LabTrust, appliance_config, setup_trust
from hardware_emulators.virtual_camera import VirtualCamera

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ALICE, BOB, CAROL = "C0DE0001", "C0DE0002", "C0DE0003"
GROUPS = {ALICE: ("treasury",), BOB: ("treasury",), CAROL: ("compliance",)}
SMALL, LARGE = 200_000, 60_000_000


def grouped_policy(btc: parties.Proof, eth: parties.Proof, sol: parties.Proof) -> Any:
    def text(record: ProvisioningRecord) -> str:
        policy = demo.demo_policy(record, btc, eth, sol)
        name = next(a.spec.name for a in record.accounts if a.spec.template is Template.BIP84)
        tiers = (
            Tier("BTC", 50_000_000, 2, GroupRequirement.of({"compliance": 1, "treasury": 1})),
            Tier("BTC", None, 3, GroupRequirement.of({"compliance": 1, "treasury": 2})),
        )
        wallets = dict(policy.wallets)
        wallets[name] = dataclasses.replace(wallets[name], tiers=tiers)
        return policy_toml(dataclasses.replace(policy, wallets=wallets))

    return text


class Operator:
    """The console's operator and the card holders walking up in ``cards`` order."""

    def __init__(self, lab: Lab, cards: Sequence[str]) -> None:
        self.lab, self.cards = lab, list(cards)
        self.messages: list[str] = []
        self.questions: list[str] = []
        self.reviews: list[Any] = []
        self.inserted = False

    def show_review(self, review: Any, decision: Any) -> None:
        self.reviews.append((review, decision))

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return True

    def info(self, text: str) -> None:
        self.messages.append(text)
        if "insert an approver card" in text:
            if not self.cards:
                raise KeyboardInterrupt  # nobody else walks up: the operator cancels
            self.lab.insert(self.cards.pop(0), 0)
            self.inserted = True
        elif text == "Remove the card." and self.inserted:
            self.lab.remove(0)
            self.inserted = False

    warn = error = info

    def secret(self, prompt: str) -> str:
        self.messages.append(prompt)
        return self.lab.config.cards[0].pin  # every lab card has the same test PIN


@dataclasses.dataclass
class GroupWorld:
    root: Path
    lab: Lab
    trust: LabTrust
    destination: parties.Proof
    runs: int = 0

    def run(self, amount: int, cards: Sequence[str], *, max_attempts: int = 5
            ) -> tuple[Operator, Any, ColdvaultError | None]:
        self.runs += 1
        work = self.root / f"run-{self.runs}"
        frames, out = work / "request", work / "response"
        frames.mkdir(parents=True)
        account = self.trust.account("acme-btc")
        psbt = parties.bitcoin_psbt(str(account["descriptor"]), pay_to=self.destination.address,
                                    amount=amount, fee=1_500, funding=amount + 2_000_000,
                                    seed=500 + self.runs)
        stream = encode_reply(TransportFormat.UR, "crypto-psbt", psbt, max_fragment_len=300)
        for i, text in enumerate(stream.frames(2 * stream.parts_needed)):
            (frames / f"frame-{i:04d}.png").write_bytes(qr_render.render_png(text))
        config_path = work / "appliance.toml"
        config_path.write_text(appliance_config(self.trust, self.lab, state_dir=self.root / "state",
                                                frames=frames, out=out))
        config = load_config(config_path)
        operator = Operator(self.lab, cards)
        collector = CardApprovalCollector(operator, reader=self.lab.pcsc.reader_names()[0],
                                          insert_timeout=30, max_attempts=max_attempts,
                                          allow_emulated=True)
        app = Appliance(config, ui=operator, collector=collector,
                        hsm_pin=self.lab.config.appliance_token().user_pin,
                        allow_emulated=True, dev_allow_network=True)
        try:
            with app:
                app.start()
                camera = VirtualCamera(sorted(frames.glob("*.png")), loop=True, realtime=False)
                try:
                    result = app.handle(app.receive(frame_texts(camera.frames(),
                                                                default_decoder())))
                except ColdvaultError as err:
                    return operator, None, err
                return operator, result, None
        finally:
            if operator.inserted:
                self.lab.remove(0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
          ) -> Iterator[GroupWorld]:
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    root = tmp_path_factory.mktemp("groups")
    lab = Lab(lab_config, root / "lab", softhsm=softhsm_lab, pcsc=pcsc_lab)
    token = lab_config.appliance_token()

    def keystore() -> Pkcs11Keystore:
        return Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                                   allow_emulated=True)

    with keystore() as ks:
        before = {k.key_id for k in ks.list_keys()}
    try:
        btc = parties.bitcoin_counterparty("acme-treasury")
        trust = setup_trust(
            lab, root / "trust", groups=GROUPS,
            policy_text=grouped_policy(btc, parties.ethereum_counterparty("globex-exchange"),
                                       parties.solana_counterparty("initech-payroll")),
        )
        yield GroupWorld(root, lab, trust, btc)
    finally:
        lab.down()
        with keystore() as ks:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)


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
    assert [m for m in operator.messages if m.startswith("PIN for card")] == [
        f"PIN for card {world.trust.card_ids[s]} ({h})"
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
    assert not any(m.startswith(f"PIN for card {world.trust.card_ids[BOB]}")
                   for m in operator.messages)


def test_larger_tier_needs_two_of_treasury_and_one_of_compliance(world: GroupWorld) -> None:
    operator, result, error = world.run(LARGE, [CAROL, ALICE, BOB])
    assert error is None, error
    _, decision = operator.reviews[0]
    assert decision.required_approvals == 3
    assert decision.required_groups.as_dict() == {"compliance": 1, "treasury": 2}
    assert len(result.approvals) == 3
    parties.finalize_psbt(result.response)

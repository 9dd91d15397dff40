"""``ceremony backup`` with the front end's devices (``ConsoleShareDevices``): backup tokens
by label through PKCS#11, and the custodians' cards put into a real lab reader when the
ceremony asks for them (pyscard, pcscd, vpcd, the virtual card) -- then the drill through
the same devices."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ceremony_scripts.sharding import ConsoleShareDevices
from coldvault.backup.drill import DrillScenario
from coldvault.backup.plan import parse_plan
from coldvault.ceremonies.drill import RestoreDrill, restore_drill
from coldvault.ceremonies.sharding import ShardBackup, shard_backup
from coldvault.crypto import mnemonics
from hardware_emulators.lab import LabConfig
from tests.backup.lab_devices import RuleOperator
from tests.backup.plans import lab_plan
from tests.backup.test_backup_ceremony import FINGERPRINT, SEED, assert_no_secret
from tests.ceremony.support import CardSlot

pytestmark = pytest.mark.lab
CARDS = ("C0DE0001", "C0DE0002", "C0DE0003")


@pytest.fixture
def blank_cards(pcsc_lab: Any, lab_config: LabConfig, tmp_path: Path):
    from hardware_emulators.openpgp_card.controller import VirtualCard

    cards = {}
    for serial in CARDS:
        spec = lab_config.card(serial)
        cards[serial] = VirtualCard(
            state_file=tmp_path / "cards" / f"{serial}.json",
            serial=int(serial, 16),
            pw1=spec.pin,
            pw3=spec.admin_pin,
        )
    try:
        yield cards
    finally:
        for card in cards.values():
            card.remove()


def test_backup_and_drill_with_cards_in_the_reader(
    backup_tokens, blank_cards, pcsc_lab, lab_config, softhsm_lab, tmp_path
) -> None:
    text = lab_plan(backup_tokens.serials)
    plan = parse_plan(text.replace('id = "lab-2of3"', f'id = "rdr-{uuid.uuid4().hex[:8]}"'))
    slot = CardSlot(pcsc_lab.reader_ports[0])
    sites = dict(zip(CARDS, ("a-card at site-a", "b-card at site-b", "c-card at site-c"),
                     strict=True))  # fmt: skip
    for purpose in ("enrolment", "the read-back"):
        for serial in CARDS:
            prompt = f"Insert the custodian's card for {purpose}: FFFF{serial} ({sites[serial]})."
            slot.expect(prompt, blank_cards[serial])
    typed = mnemonics.split_secret(SEED, 2, 3)[:2]
    token_pins = [(f"^User PIN of backup token {backup_tokens.label(s)} ", backup_tokens.pin(s))
                  for s in ("site-a", "site-b", "site-c")]  # fmt: skip
    card_pins = [(f"^Card FFFF{s}: admin PIN$", lab_config.card(s).admin_pin) for s in CARDS]
    card_pins += [(f"^Card FFFF{s}: user PIN$", lab_config.card(s).pin) for s in CARDS]
    op = RuleOperator((r"^Is this the approved plan", True), (r"^SLIP-39 share \d+$", typed),
                      *token_pins, *card_pins)  # fmt: skip
    op.on_info = slot
    devices = ConsoleShareDevices(op, softhsm_lab.module_path, allow_emulated=True)
    out = tmp_path / "backup"
    result = shard_backup(op, ShardBackup(actor="lead", transcript=tmp_path / "b.jsonl",
                                          plan=plan, out=out), devices)  # fmt: skip
    assert result.record.master_fingerprint == FINGERPRINT
    assert slot.done(), slot.plan

    # the drill "site-b lost": the custodians of sites A and C bring their cards
    for serial in ("C0DE0001", "C0DE0003"):
        slot.expect(f"Insert the custodian's card for the drill: FFFF{serial} ({sites[serial]}).",
                    blank_cards[serial])  # fmt: skip
    op.rules.insert(0, (r"^Run the drill", True))
    params = RestoreDrill(actor="lead", plan=plan, backup_dir=out,
                          scenario=DrillScenario.site_lost("site-b"),
                          reports_dir=tmp_path / "drills")  # fmt: skip
    drill = restore_drill(op, params, devices)
    assert drill.report.passed, drill.report.reasons
    assert {s.target for s in drill.report.shares if s.status == "used"} == {
        "a-hsm", "a-card", "c-hsm", "c-card"}  # fmt: skip
    assert slot.done(), slot.plan
    pins = [lab_config.card(s).pin for s in CARDS] + [lab_config.card(s).admin_pin for s in CARDS]
    assert_no_secret([tmp_path], typed, pins)

"""The scenario table (tests/session/scenarios.py) run through the command line:
``coldvault appliance run --once --json`` as a subprocess on the lab, driven through its real
console prompts by pexpect (HSM PIN, APPROVE, card insertions into the lab's pcscd reader,
card PINs), reading the request through the virtual camera.  The exit status and the JSON
result come from the process; audit trail, ledger and response frames from its state dir.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.session.scenarios import SCENARIOS, Card, Scenario
from tests.session.world import LAB_CARDS, Outcome, SessionWorld, assert_outcome, response_psbt
from tests.session.world import session_world as make_world

pytestmark = [pytest.mark.lab, pytest.mark.slow]
WAY = "cli"
COLDVAULT = str(Path(sys.executable).parent / "coldvault")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
          ) -> Iterator[SessionWorld]:
    with make_world(tmp_path_factory.mktemp("session-cli"), lab_config, softhsm_lab,
                    pcsc_lab) as w:
        yield w


def _present(world: SessionWorld, child: pexpect.spawn, card: Card) -> None:
    child.expect("insert an approver card")
    if card is Card.OUTSIDER:
        world.outsider.insert(world.lab.pcsc.reader_ports[0])
    else:
        world.lab.insert(LAB_CARDS[card], 0)
        child.expect(r"PIN for card \S+ \(")
        child.sendline(world.lab.config.card(LAB_CARDS[card]).pin)
    child.expect("Remove the card")
    if card is Card.OUTSIDER:
        world.outsider.remove()
    else:
        world.lab.remove(0)


def _result(transcript: Path) -> dict[str, Any]:
    """The JSON result: the last output line that is a JSON object with ``ok``."""
    for line in reversed(transcript.read_text().splitlines()):
        try:
            data = json.loads(line.strip())
        except ValueError:
            continue
        if isinstance(data, dict) and "ok" in data:
            return data
    raise AssertionError(f"the appliance printed no JSON result; see {transcript}")


def run(world: SessionWorld, scenario: Scenario) -> Outcome:
    config = world.config(WAY, scenario)
    world.write_request(scenario, WAY)
    work = world.work(WAY, scenario)
    transcript = work / "console.log"
    args = ["appliance", "run", "--config", str(config), "--allow-emulated",
            "--dev-allow-network", "--once", "--json"]
    env = dict(os.environ, COLUMNS="110")
    asked = False
    with open(transcript, "w") as log:
        child = pexpect.spawn(COLDVAULT, args, env=env, encoding="utf-8", timeout=90)
        child.logfile_read = log
        try:
            child.expect("HSM user PIN")
            child.sendline(world.lab.config.appliance_token().user_pin)
            if child.expect(["Type APPROVE", pexpect.EOF]) == 0:
                asked = True
                child.sendline("APPROVE" if scenario.approve else "no")
                for card in scenario.cards if scenario.approve else ():
                    _present(world, child, card)
                child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
            world.outsider.remove()
            for reader in range(world.lab.config.readers):
                world.lab.remove(reader)
    result = _result(transcript)
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    response = response_psbt(work / "response") if result.get("ok") else None
    return Outcome(None if result.get("ok") else str(result.get("error")), child.exitstatus,
                   result, response=response, asked_to_approve=asked)


_OUTCOMES: dict[str, Outcome] = {}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(world: SessionWorld, scenario: Scenario) -> None:
    before = len(world.audit_events(WAY))
    outcome = _OUTCOMES[scenario.name] = run(world, scenario)
    assert outcome.result["ok"] is (scenario.error is None)
    if scenario.error is None:
        assert outcome.result["response_type"] == "crypto-psbt"
        assert len(outcome.result["approvals"]) == 2
    else:
        assert outcome.result.get("rule") == scenario.rule
    assert_outcome(world, WAY, scenario, outcome, before)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_exit_status(scenario: Scenario) -> None:
    if scenario.name not in _OUTCOMES:
        pytest.fail(f"test_scenario[{scenario}] did not run first in this process")
    assert _OUTCOMES[scenario.name].exit == scenario.exit

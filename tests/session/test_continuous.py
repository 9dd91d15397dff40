"""The running appliance (``coldvault appliance run`` without ``--once``) on the lab, as a
subprocess driven through its console by pexpect, with the virtual camera pointed at a
coordinator's screen (a directory whose content the test changes while the appliance runs).

A request the appliance has just handled -- refused, or signed -- that stays on the screen is
not handled again (one ``request-received`` in the audit trail, no ``reshown``); taken away
and shown again it is presented again; when the coordinator moves on to another request,
that one is taken at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.session.scenarios import SCENARIOS, Card
from tests.session.world import LAB_CARDS, SessionWorld, response_psbt
from tests.session.world import session_world as make_world

pytestmark = [pytest.mark.lab, pytest.mark.slow]
WAY = "continuous"
COLDVAULT = str(Path(sys.executable).parent / "coldvault")
SCENARIO = {s.name: s for s in SCENARIOS}
HELD = "was just handled and is still in view"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
          ) -> Iterator[SessionWorld]:
    with make_world(tmp_path_factory.mktemp("session-continuous"), lab_config, softhsm_lab,
                    pcsc_lab) as w:
        yield w


def _show(screen: Path, frames: Path | None) -> None:
    """Put ``frames`` on the coordinator's screen (None: a blank screen), file by file
    renamed into place so the camera never reads half a file."""
    for old in screen.glob("*.png"):
        old.unlink()
    for frame in sorted(frames.glob("*.png")) if frames else ():
        part = screen / f".{frame.name}.part"
        shutil.copyfile(frame, part)
        os.replace(part, screen / frame.name)


def _events(world: SessionWorld) -> list[str]:
    return [e["event"] for e in world.audit_events(WAY)]


def test_a_request_left_on_the_screen_is_handled_once(world: SessionWorld) -> None:
    policy, sign = SCENARIO["policy"], SCENARIO["sign"]
    config = world.config(WAY, policy)
    screen = world.work(WAY, policy) / "request"  # the directory the camera looks at
    response = world.work(WAY, policy) / "response"
    refused = world.write_request(policy, WAY).rename(world.work(WAY, policy) / "refused")
    signed = world.write_request(sign, WAY)  # pays the whitelisted counterparty
    screen.mkdir()
    _show(screen, refused)
    log = world.work(WAY, policy) / "console.log"
    args = ["appliance", "run", "--config", str(config), "--allow-emulated",
            "--dev-allow-network"]  # fmt: skip
    with open(log, "w") as transcript:
        child = pexpect.spawn(COLDVAULT, args, env=dict(os.environ, COLUMNS="110"),
                              encoding="utf-8", timeout=90)  # fmt: skip
        child.logfile_read = transcript
        try:
            child.expect("HSM user PIN")
            child.sendline(world.lab.config.appliance_token().user_pin)

            # 1. refused, and left on the screen: not handled again
            child.expect("is not on the wallet's whitelist|not whitelisted|whitelist")
            child.expect(HELD)
            time.sleep(2)  # the camera keeps seeing it all this time
            assert _events(world).count("request-received") == 1
            assert _events(world).count("refusal") == 1

            # 2. taken away, then shown again: presented again (and refused again)
            _show(screen, None)
            time.sleep(2)  # a blank screen for more than a second: the view was empty
            _show(screen, refused)
            child.expect("whitelist")
            child.expect(HELD)
            assert _events(world).count("request-received") == 2

            # 3. the coordinator moves on to the next request: taken at once, and signed
            _show(screen, signed)
            child.expect("Type APPROVE")
            child.sendline("APPROVE")
            for card in (Card.ALICE, Card.BOB):
                child.expect("insert an approver card")
                world.lab.insert(LAB_CARDS[card], 0)
                child.expect(r"PIN for card \S+ \(")
                child.sendline(world.lab.config.card(LAB_CARDS[card]).pin)
                child.expect("Remove the card")
                world.lab.remove(0)
            child.expect("Response for request .* written")
            # still on the screen after signing: not re-shown, not handled again
            child.expect(HELD)
            time.sleep(2)
            events = _events(world)
            assert events.count("request-received") == 3
            assert events.count("signature") == 1 and "reshown" not in events

            # 4. the operator stops the appliance
            child.kill(signal.SIGINT)
            child.expect(pexpect.EOF)
        finally:
            child.close(force=True)
            for reader in range(world.lab.config.readers):
                world.lab.remove(reader)
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    assert response_psbt(response)  # the signed response was written for the coordinator
    world.verify_audit(WAY)  # the trail the running appliance kept verifies

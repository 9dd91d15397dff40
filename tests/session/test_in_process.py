"""The scenario table (tests/session/scenarios.py) run in process: the real
:class:`appliance.daemon.Appliance` -- start-up checks, SigningSession, a real hash-chained
audit trail sealed by the SoftHSM audit key, a real SQLite ledger, signing keys in SoftHSM --
fed the request's QR frames through the virtual camera, with a scripted operator and a
scripted approval collector whose approvals are signed by the lab's virtual cards through
pcscd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from appliance.daemon import Appliance
from coldvault.backends.qr_decode import default_decoder
from coldvault.cards.errors import CardTimeout
from coldvault.config import load_config
from coldvault.errors import EXIT_DONE, AuthError, ColdvaultError, HardwareError, QuorumError
from coldvault.errors import exit_status as documented_exit_status
from coldvault.quorum.approvals import ApprovalSession
from coldvault.quorum.errors import CardAttemptsExhausted
from coldvault.transport.frames import frame_texts
from hardware_emulators.trust_setup import card_sign
from hardware_emulators.virtual_camera import VirtualCamera
from tests.session.scenarios import MAX_ATTEMPTS, SCENARIOS, Card, Scenario
from tests.session.world import (
    CARD_INSERT_TIMEOUT,
    LAB_CARDS,
    Outcome,
    SessionWorld,
    assert_outcome,
    session_world,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]
WAY = "in-process"


class ScriptedUi:
    """The operator: records what was shown, answers the one confirmation as scripted."""

    def __init__(self, approve: bool | None) -> None:
        self.approve = approve
        self.reviews: list[Any] = []
        self.questions: list[str] = []
        self.messages: list[str] = []

    def show_review(self, review: Any, decision: Any) -> None:
        self.reviews.append((review, decision))

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return bool(self.approve)

    def info(self, text: str) -> None:
        self.messages.append(text)

    def warn(self, text: str) -> None:
        self.messages.append(text)

    def error(self, text: str) -> None:
        self.messages.append(text)


class ScriptedCollector:
    """Card holders walking up in the scripted order, as the appliance's card loop sees them:
    a roster card signs the approval token on the lab's virtual card (PIN verified on the
    card); a card that is not on the roster signs nothing.  Refusals are reported and the
    loop goes on; after ``MAX_ATTEMPTS`` presentations it gives up (as the one loop does); when
    the script ends, nobody inserts a card and the wait times out."""

    def __init__(self, world: SessionWorld, cards: Sequence[Card]) -> None:
        self.world, self.cards = world, list(cards)
        self.presented: list[str] = []

    def collect(
        self,
        approvals: ApprovalSession,
        *,
        on_approved: Callable[[str, str], None],
        on_refused: Callable[[str, ColdvaultError], None],
    ) -> None:
        token = approvals.token_bytes
        script = iter(self.cards)
        while not approvals.satisfied:
            if len(self.presented) >= MAX_ATTEMPTS:
                raise CardAttemptsExhausted(
                    f"the approvals for request {approvals.token.request_fingerprint}",
                    have=len(approvals.approvals), need=approvals.threshold)
            card = next(script, None)
            if card is None:
                raise CardTimeout("a card", CARD_INSERT_TIMEOUT)
            serial = self.world.card_id(card)
            self.presented.append(serial)
            try:
                if card is Card.OUTSIDER:
                    signature = bytes(64)  # never asked for a PIN: refused by the roster
                else:
                    card_id, signature = card_sign(self.world.lab, LAB_CARDS[card], token)
                    assert card_id == serial
                approval = approvals.add(serial, signature, signed_token=token)
            except (QuorumError, AuthError, HardwareError) as err:
                on_refused(serial, err)
                continue
            on_approved(serial, approval.holder)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, lab_config, softhsm_lab, pcsc_lab
          ) -> Iterator[SessionWorld]:
    with session_world(tmp_path_factory.mktemp("session-in-process"), lab_config,
                       softhsm_lab, pcsc_lab) as w:
        yield w


def run(world: SessionWorld, scenario: Scenario) -> Outcome:
    config = load_config(world.config(WAY, scenario))
    frames = world.write_request(scenario, WAY)
    ui = ScriptedUi(scenario.approve)
    collector = ScriptedCollector(world, scenario.cards)
    app = Appliance(config, ui=ui, collector=collector,
                    hsm_pin=world.lab.config.appliance_token().user_pin,
                    allow_emulated=True, dev_allow_network=True)
    with app:
        app.start()
        camera = VirtualCamera(sorted(frames.glob("*.png")), loop=True, realtime=False,
                               drop_rate=config.input_drop_rate,
                               blur_rate=config.input_blur_rate, seed=config.input_seed)
        try:
            result = app.handle(app.receive(frame_texts(camera.frames(), default_decoder())))
        except ColdvaultError as err:
            return Outcome(err.code, documented_exit_status(err), err.to_dict(),
                           reviewed=bool(ui.reviews), asked_to_approve=bool(ui.questions))
        written = app.show(result.frames)
    assert written and all(Path(p).exists() for p in written)
    return Outcome(None, EXIT_DONE, {"ok": True, "approvals": list(result.approvals)},
                   response=result.response, reviewed=True, asked_to_approve=bool(ui.questions))


_OUTCOMES: dict[str, Outcome] = {}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario(world: SessionWorld, scenario: Scenario) -> None:
    before = len(world.audit_events(WAY))
    outcome = _OUTCOMES[scenario.name] = run(world, scenario)
    assert_outcome(world, WAY, scenario, outcome, before)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_exit_status(scenario: Scenario) -> None:
    if scenario.name not in _OUTCOMES:
        pytest.fail(f"test_scenario[{scenario}] did not run first in this process")
    assert _OUTCOMES[scenario.name].exit == scenario.exit

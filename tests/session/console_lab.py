"""The real appliance in process on the lab, approved through its own card loop.

SoftHSM keys, a sealed audit trail and a ledger; the request's QR frames through the virtual
camera; :class:`appliance.approvals.CardApprovalCollector` talking to the lab's virtual
OpenPGP cards through pcscd.  The :class:`Operator` inserts the cards in the scripted order
when the console asks for one and types the PIN when asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appliance.approvals import CardApprovalCollector
from appliance.daemon import Appliance
from coldvault.backends.qr_decode import default_decoder
from coldvault.config import load_config
from coldvault.errors import ColdvaultError
from coldvault.transport import render as qr_render
from coldvault.transport.formats import TransportFormat
from coldvault.transport.frames import frame_texts
from coldvault.transport.reply import encode_reply
from hardware_emulators.lab import Lab, LabConfig
from hardware_emulators.trust_setup import LabTrust, appliance_config, setup_trust
from hardware_emulators.virtual_camera import VirtualCamera


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
class Outcome:
    operator: Operator
    result: Any  # appliance.session.SessionResult, or None when refused
    error: ColdvaultError | None


@dataclasses.dataclass
class ConsoleLab:
    root: Path
    lab: Lab
    trust: LabTrust
    runs: int = 0

    def run(self, payload: bytes, ur_type: str, cards: Sequence[str], *,
            max_attempts: int = 5) -> Outcome:
        """Show ``payload`` as animated ``ur_type`` QR frames to the appliance and approve
        it with ``cards``."""
        self.runs += 1
        work = self.root / f"run-{self.runs}"
        frames, out = work / "request", work / "response"
        frames.mkdir(parents=True)
        stream = encode_reply(TransportFormat.UR, ur_type, payload, max_fragment_len=300)
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
                    return Outcome(operator, None, err)
                return Outcome(operator, result, None)
        finally:
            if operator.inserted:
                self.lab.remove(0)


@contextmanager
def console_lab(root: Path, lab_config: LabConfig, softhsm_lab: Any, pcsc_lab: Any,
                **trust: Any) -> Iterator[ConsoleLab]:
    """Trust material (``setup_trust(**trust)``) on the session's SoftHSM and pcscd; keys it
    adds to the appliance token are deleted and its cards removed afterwards."""
    from coldvault.backends.pkcs11.anchor import TokenAnchorStore
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    lab = Lab(lab_config, root / "lab", softhsm=softhsm_lab, pcsc=pcsc_lab)
    token = lab_config.appliance_token()

    def keystore() -> Pkcs11Keystore:
        return Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                                   allow_emulated=True)

    with keystore() as ks:
        before = {k.key_id for k in ks.list_keys()}
        TokenAnchorStore(ks).destroy()  # this world's appliance state starts empty
    try:
        yield ConsoleLab(root, lab, setup_trust(lab, root / "trust", **trust))
    finally:
        lab.down()
        with keystore() as ks:
            TokenAnchorStore(ks).destroy()  # leave no appliance state to the next world
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)

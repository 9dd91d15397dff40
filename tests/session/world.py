"""The world both ways of running the scenario table share: the appliance's trust material
made on this test process's lab (real SoftHSM token, virtual cards enrolled through pcscd,
roster/wallets/policy signed by the admin cards), the requests of the table as animated QR
frames, and readers for what a run leaves behind (audit trail, ledger, response frames).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
from embit.psbt import PSBT

from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.records.audit import verify
from coldvault.transport import render as qr_render
from coldvault.transport.assemble import Assembler
from coldvault.transport.formats import TransportFormat
from coldvault.transport.reply import encode_reply
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.lab import Lab, LabConfig
from hardware_emulators.openpgp_card.controller import VirtualCard
from hardware_emulators.trust_setup import LabTrust, appliance_config, setup_trust
from tests.session.scenarios import Card, Request, Scenario

LAB_CARDS = {Card.ALICE: "C0DE0001", Card.BOB: "C0DE0002"}
OUTSIDER_SERIAL = 0x0BAD0BAD
#: how long the appliance waits for a card in the approval-timeout scenario (seconds)
CARD_INSERT_TIMEOUT = 4


@dataclass
class Outcome:
    """What one run of a scenario produced, whichever way it ran."""

    error: str | None
    exit: int
    #: the JSON result (CLI) or the error's ``to_dict()`` / the signed summary (in process)
    result: dict[str, Any]
    response: bytes | None = None
    reviewed: bool = False
    asked_to_approve: bool = False


@dataclass
class SessionWorld:
    root: Path
    lab: Lab
    trust: LabTrust
    destination: parties.Proof
    stranger: parties.Proof
    outsider: VirtualCard
    _seeds: dict[str, int] = field(default_factory=dict)

    # -- configuration -----------------------------------------------------------------
    def config(self, way: str, scenario: Scenario) -> Path:
        """This way's appliance configuration (its own state dir: audit trail + ledger),
        reading ``scenario``'s request frames through the virtual camera."""
        work = self.work(way, scenario)
        text = appliance_config(
            self.trust, self.lab, state_dir=self.state_dir(way), frames=work / "request",
            out=work / "response", drop_rate=0.1, blur_rate=0.1,
        )
        if scenario.error == "card-timeout":  # short, so the wait for a card times out soon
            assert "card_insert = 60" in text
            text = text.replace("card_insert = 60", f"card_insert = {CARD_INSERT_TIMEOUT}")
        path = work / "appliance.toml"
        path.write_text(text)
        return path

    def state_dir(self, way: str) -> Path:
        return self.root / way / "state"

    def work(self, way: str, scenario: Scenario) -> Path:
        path = self.root / way / scenario.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def card_id(self, card: Card) -> str:
        if card is Card.OUTSIDER:
            return f"FFFF{OUTSIDER_SERIAL:08X}"
        return self.trust.card_ids[LAB_CARDS[card]]

    # -- requests ------------------------------------------------------------------------
    def request_bytes(self, scenario: Scenario, way: str) -> bytes:
        """The PSBT the coordinator sends (distinct per scenario and way: no replays)."""
        seed = self._seeds.setdefault(f"{way}/{scenario.name}", 100 + len(self._seeds))
        if scenario.request is Request.GARBAGE:
            return b"psbt\xff\x01\x02" + hashlib.sha256(str(seed).encode()).digest()
        account = self.trust.account("acme-btc")
        pay_to = self.stranger if scenario.request is Request.STRANGER else self.destination
        psbt = parties.bitcoin_psbt(str(account["descriptor"]), pay_to=pay_to.address,
                                    amount=200_000 + seed, fee=1_500, seed=seed)
        if scenario.request is Request.TAPROOT:
            tx = PSBT.parse(psbt)
            tx.inputs[0].unknown[b"\x17"] = bytes(32)  # PSBT_IN_TAP_INTERNAL_KEY (BIP-371)
            psbt = tx.serialize()
        return psbt

    def write_request(self, scenario: Scenario, way: str) -> Path:
        """The request as animated QR frames (UR crypto-psbt PNGs), as a screen shows them."""
        frames = self.work(way, scenario) / "request"
        frames.mkdir(exist_ok=True)
        stream = encode_reply(TransportFormat.UR, "crypto-psbt",
                              self.request_bytes(scenario, way), max_fragment_len=300)
        texts = stream.frames(2 * stream.parts_needed)
        for i, text in enumerate(texts):
            (frames / f"frame-{i:04d}.png").write_bytes(qr_render.render_png(text))
        return frames

    # -- what a run leaves behind --------------------------------------------------------
    def audit_path(self, way: str) -> Path:
        return self.state_dir(way) / "audit.jsonl"

    def audit_events(self, way: str) -> list[dict[str, Any]]:
        path = self.audit_path(way)
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def verify_audit(self, way: str) -> Any:
        return verify(self.audit_path(way), self.trust.audit_public_key)

    def ledger_row(self, way: str, digest_hex: str) -> tuple[str | None, list[str]]:
        """(status, approving card serials) straight from the ledger's SQLite file."""
        db = self.state_dir(way) / "ledger.sqlite3"
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT status FROM requests WHERE digest = ?",
                               (digest_hex,)).fetchone()
            cards = [r[0] for r in conn.execute(
                "SELECT card_serial FROM approvers WHERE request_digest = ? ORDER BY card_serial",
                (digest_hex,))]
        return (row[0] if row else None), cards


def response_psbt(frames_dir: Path) -> bytes:
    """Reassemble the appliance's response from the frame texts it wrote."""
    assembler = Assembler()
    for text in (frames_dir / "frames.txt").read_text().split():
        if assembler.feed(text).complete:
            break
    return assembler.result().content


@contextmanager
def session_world(root: Path, lab_config: LabConfig, softhsm_lab: Any, pcsc_lab: Any
                  ) -> Iterator[SessionWorld]:
    """Trust material on the session's SoftHSM and pcscd, with this world's own card states;
    keys it adds to the appliance token are deleted and its cards removed afterwards."""
    lab = Lab(lab_config, root / "lab", softhsm=softhsm_lab, pcsc=pcsc_lab)
    token = lab_config.appliance_token()

    def keystore() -> Pkcs11Keystore:
        return Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                                   allow_emulated=True)

    with keystore() as ks:
        before = {k.key_id for k in ks.list_keys()}
        TokenAnchorStore(ks).destroy()  # this world's appliance state starts empty
    outsider = VirtualCard(state_file=root / "outsider.json", serial=OUTSIDER_SERIAL)
    try:
        dests = {
            "btc": parties.bitcoin_counterparty("acme-treasury"),
            "eth": parties.ethereum_counterparty("globex-exchange"),
            "sol": parties.solana_counterparty("initech-payroll"),
        }
        trust = setup_trust(lab, root / "trust",
                            policy_text=demo.policy_for(dests["btc"], dests["eth"], dests["sol"]))
        yield SessionWorld(root, lab, trust, dests["btc"],
                           parties.bitcoin_counterparty("unknown-party"), outsider)
    finally:
        outsider.remove()
        lab.down()
        with keystore() as ks:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)
            TokenAnchorStore(ks).destroy()  # nor does the next one inherit this one's


# --------------------------------------------------------------------------- expectations
NOT_PER_REQUEST = {"seal", "startup", "shutdown"}


def assert_outcome(world: SessionWorld, way: str, scenario: Scenario, outcome: Outcome,
                   audit_before: int) -> None:
    """Everything the table says about ``scenario``, read from what the run left behind."""
    assert outcome.error == scenario.error, outcome.result
    assert outcome.asked_to_approve is (scenario.approve is not None)
    entries = world.audit_events(way)[audit_before:]
    names = [e["event"] for e in entries if e["event"] not in NOT_PER_REQUEST]
    expected = [*scenario.events, *(["response"] if scenario.error is None else [])]
    assert names == expected
    by_event: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_event.setdefault(entry["event"], []).append(entry["fields"])
    received = by_event["request-received"][0]
    # the audit names the exact bytes the coordinator sent (the UR's CBOR byte string)
    payload = cbor2.dumps(world.request_bytes(scenario, way))
    assert (received["sha256"], received["bytes"]) == (
        hashlib.sha256(payload).hexdigest(), len(payload)
    )
    digest = received["sha256"]

    # approvals: exactly the roster cards presented, in order; every outsider refused
    presented = [world.card_id(c) for c in scenario.cards]
    approved = [a["card"] for a in by_event.get("approval", [])]
    refused = by_event.get("approval-refused", [])
    assert approved == [c for c in presented if c != world.card_id(Card.OUTSIDER)][:2]
    assert [(r["card"], r["error"]) for r in refused] == [
        (world.card_id(Card.OUTSIDER), "unknown-card")
    ] * presented.count(world.card_id(Card.OUTSIDER))

    status, approvers = (None, []) if scenario.ledger is None else world.ledger_row(way, digest)
    assert status == scenario.ledger
    if scenario.error is None:
        assert sorted(approvers) == sorted(approved)
        signature = by_event["signature"][0]
        assert outcome.response is not None
        assert signature["response_sha256"] == hashlib.sha256(outcome.response).hexdigest()
        assert signature["response_type"] == "crypto-psbt"
        # embit recomputes every BIP-143 sighash, libsecp256k1 checks each partial signature,
        # and embit's finalizer turns the PSBT into a complete transaction
        raw_tx, inputs = parties.finalize_psbt(outcome.response)
        assert inputs == 1 and len(raw_tx) > 100
        signed = PSBT.parse(outcome.response).inputs[0]
        assert set(signed.partial_sigs) == set(signed.bip32_derivations)
    else:
        refusal = by_event["refusal"][-1]
        assert (refusal["error"], refusal.get("rule")) == (scenario.error, scenario.rule)
        assert refusal["sha256"] == digest
        assert "signing" not in by_event and "signature" not in by_event
        assert outcome.response is None
        response_dir = world.work(way, scenario) / "response"
        assert not response_dir.exists() or not any(response_dir.iterdir())
        if scenario.ledger is not None:
            assert approvers == []  # approvals are recorded only once the quorum is met
    report = world.verify_audit(way)
    assert report.entries == len(world.audit_events(way))

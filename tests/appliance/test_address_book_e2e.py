"""The address book end to end on the lab: real SoftHSM, pcscd + vpcd + virtual cards, QR
frames through the virtual camera, the real ``coldvault`` console driven by pexpect with two
card approvals.

Each request is built by an independent library (embit, eth-account, solders) and each
signature is checked by it. The destinations: a P2TR address proven by a BIP-322 Schnorr
signature, a P2WSH 2-of-2 payee proven by a BIP-322 multisig signature (both made with
embit), an exchange deposit address entered as attested (test transaction and travel-rule
data), an Ethereum address entered as attested, a Solana address proven by Ed25519.

Then the admin cards approve a policy without those five entries (``approve-document``, which
shows each entry as removed), and the five signed requests -- the identical bytes, the same
QR frames -- are shown to an appliance with that policy: each is refused by
``destination-whitelisted``; nothing is signed, the ledger holds no movement, the audit trail
holds the five refusals.  An attested entry written into the policy file without the admins'
approval stops that appliance at start-up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.approvals import CardApprovalCollector
from appliance.daemon import Appliance
from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.qr_decode import default_decoder
from coldvault.ceremonies.proposals import DocumentKind
from coldvault.config import load_config
from coldvault.errors import ColdvaultError
from coldvault.keys.pool import ProvisioningRecord
from coldvault.policy import AssetLimits, Evidence, policy_toml
from coldvault.policy.errors import DestinationNotWhitelisted
from coldvault.records.ledger import Ledger
from coldvault.transport.frames import frame_texts
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import LabTrust, appliance_config, open_appliance_keystore
from hardware_emulators.virtual_camera import VirtualCamera
from tests.appliance.lab_world import appliance_lab
from tests.ceremony.support import approve_with_admin_cards
from tests.session.console_lab import Operator

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


def address_book_policy(record: ProvisioningRecord, *, version: int = 1,
                        book: bool = True, extra: tuple[Any, ...] = ()) -> str:  # fmt: skip
    """The demo policy, with each wallet's address book replaced by this module's entries;
    the Bitcoin and Ethereum wallets allow attested destinations, Bitcoin with a lower cap.
    Without ``book`` the five entries are gone (each wallet keeps one other counterparty);
    ``extra`` entries are added to the Bitcoin wallet."""
    base = demo.demo_policy(
        record,
        parties.bitcoin_counterparty("acme-treasury"),
        parties.ethereum_counterparty("globex-exchange"),
        SOLANA if book else parties.solana_counterparty("hooli-payroll"),
    )
    wallets = {}
    for name, w in base.wallets.items():
        if w.chain == "bitcoin":
            btc = w.limits["BTC"]
            w = dataclasses.replace(
                w, allow_attested=True,
                destinations=(*((TAPROOT.destination(), MULTISIG.destination(), EXCHANGE_BTC)
                                if book else w.destinations), *extra),
                limits={"BTC": AssetLimits(btc.per_transaction, btc.per_day, 2_000_000)},
            )  # fmt: skip
        elif w.chain == "ethereum":
            w = dataclasses.replace(w, allow_attested=True,
                                    destinations=(EXCHANGE_ETH,) if book else w.destinations)
        wallets[name] = w
    return policy_toml(dataclasses.replace(base, version=version, wallets=wallets))


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


# --------------------------------------------------------------------------- without entries
#: the five signed runs above: work directory -> (flow, payee)
SIGNED = {
    "p2tr": (demo.bitcoin_flow, TAPROOT),
    "p2wsh": (demo.bitcoin_flow, MULTISIG),
    "deposit": (demo.bitcoin_flow, EXCHANGE_BTC),
    "eth-deposit": (demo.ethereum_flow, EXCHANGE_ETH),
    "sol-proven": (demo.solana_flow, SOLANA),
}


@dataclasses.dataclass(frozen=True)
class Signed:
    name: str
    address: str
    frames: Path  # the QR frames the appliance signed from
    payload: bytes  # the request they carry


@pytest.fixture(scope="module")
def signed(world: World) -> list[Signed]:
    """The five requests the tests above had signed (signed here if they did not run)."""
    requests = []
    for name, (flow, payee) in SIGNED.items():
        work = world.out / name
        if not work.exists():
            flow(world.out, world.lab, world.trust, payee, name=name)
        assert any((work / "response").iterdir()), f"{name} was not signed"
        (request,) = (p for p in work.iterdir() if p.is_file() and p.stem == "request")
        requests.append(Signed(name, payee.address, work / "request", request.read_bytes()))
    return requests


@dataclasses.dataclass
class Twin:
    """A second appliance with the same HSM keys and roster (as a site restored from backup
    would be) and its own state directory and policy."""

    world: World
    root: Path
    policy: Path

    def appliance(self, policy: Path | None = None) -> Appliance:
        trust = dataclasses.replace(self.world.trust, policy_path=policy or self.policy)
        config = self.root / "appliance.toml"
        config.write_text(appliance_config(trust, self.world.lab, state_dir=self.root / "state",
                                           frames=self.root / "no-frames",
                                           out=self.root / "response"))  # fmt: skip
        lab = self.world.lab
        operator = Operator(lab, [])  # no approver walks up: nothing may get that far
        collector = CardApprovalCollector(operator, reader=lab.pcsc.reader_names()[0],
                                          insert_timeout=5, max_attempts=1,
                                          allow_emulated=True)  # fmt: skip
        return Appliance(load_config(config), ui=operator, collector=collector,
                         hsm_pin=lab.config.appliance_token().user_pin, allow_emulated=True,
                         dev_allow_network=True)  # fmt: skip

    def clients(self) -> set[str]:
        return {a.spec.client for a in self.world.trust.record.accounts}

    def trail(self) -> list[dict[str, Any]]:
        lines = (self.root / "state" / "audit.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def twin(world: World, signed: list[Signed]) -> Iterator[Twin]:
    """The admin quorum removes the five entries (policy version 2, approved with the admin
    cards), and a second appliance runs with that policy.  The token keeps one state anchor:
    the world's is set aside while the second appliance has the token, and put back after."""
    root = world.out / "without-entries"
    root.mkdir()
    policy = root / "policy.toml"
    policy.write_text(address_book_policy(world.trust.record, version=2, book=False))
    approver = approve_with_admin_cards(world.lab, world.trust, DocumentKind.POLICY, policy,
                                        version=2, transcripts=world.out / "transcripts",
                                        current=world.trust.policy_path)  # fmt: skip
    removed = " ".join(v for _, rows in approver.tables for _, v in rows if "REMOVED" in v)
    assert all(f"REMOVED: {s.address}" in removed for s in signed), removed
    with open_appliance_keystore(world.lab) as ks:
        saved = TokenAnchorStore(ks).load()
        TokenAnchorStore(ks).destroy()
    try:
        yield Twin(world, root, policy)
    finally:
        with open_appliance_keystore(world.lab) as ks:
            TokenAnchorStore(ks).destroy()
            if saved is not None:
                TokenAnchorStore(ks).save(saved)


def test_the_identical_requests_without_entries_are_refused(
    twin: Twin, signed: list[Signed]
) -> None:
    """One run of the second appliance, shown the five signed requests' own QR frames."""
    app, digests = twin.appliance(), []
    with app:
        app.start()
        for request in signed:
            camera = VirtualCamera(sorted(request.frames.glob("*.png")), loop=True,
                                   realtime=False)  # fmt: skip
            received = app.receive(frame_texts(camera.frames(), default_decoder()))
            assert received.content == request.payload  # the identical request
            digests.append(hashlib.sha256(received.payload).hexdigest())
            with pytest.raises(DestinationNotWhitelisted) as refused:
                app.handle(received)
            assert f"Destination {request.address}" in refused.value.message, request.name
    trail = twin.trail()
    received_sha = [e["fields"]["sha256"] for e in trail if e["event"] == "request-received"]
    assert received_sha == digests
    first = [json.loads(line) for line in
             (twin.world.out / "state" / "audit.jsonl").read_text().splitlines()]  # fmt: skip
    first_received = {e["fields"]["sha256"] for e in first if e["event"] == "request-received"}
    assert set(digests) <= first_received  # the very requests the first appliance signed
    refusals = [e["fields"] for e in trail if e["event"] == "refusal"]
    assert [r["sha256"] for r in refusals] == received_sha
    assert all(r.get("rule") == "destination-whitelisted" for r in refusals), refusals
    assert not [e for e in trail if e["event"] in ("signature", "response")]
    with Ledger(load_config(twin.root / "appliance.toml").ledger_db) as ledger:
        assert ledger.all_totals() == {}
        assert not [m for c in twin.clients() for m in ledger.movements(c)]
        for digest in digests:
            assert ledger.status(bytes.fromhex(digest)) == "refused"
    assert not (twin.root / "response").exists() or not any((twin.root / "response").iterdir())


def test_an_attested_entry_without_the_admins_approval_never_pays(
    twin: Twin, signed: list[Signed]
) -> None:
    """The exchange deposit entry written into the approved policy file (its approvals file
    no longer covers it), or into a version 3 without an approvals file: the appliance
    does not start, so the deposit request is never received, let alone signed."""
    deposit = next(s for s in signed if s.name == "deposit")
    record = twin.world.trust.record
    edited = twin.root / "policy-edited.toml"
    edited.write_text(address_book_policy(record, version=2, book=False, extra=(EXCHANGE_BTC,)))
    (twin.root / "policy-edited.toml.approvals.json").write_bytes(
        (twin.root / "policy.toml.approvals.json").read_bytes())
    unapproved = twin.root / "policy-3.toml"
    unapproved.write_text(address_book_policy(record, version=3, book=False,
                                              extra=(EXCHANGE_BTC,)))  # fmt: skip
    assert EXCHANGE_BTC.address in edited.read_text() + unapproved.read_text()
    before = len(twin.trail()) if (twin.root / "state" / "audit.jsonl").exists() else 0
    codes, messages = [], []
    for policy in (edited, unapproved):
        app = twin.appliance(policy)
        with app, pytest.raises(ColdvaultError) as refused:
            app.start()
            app.handle(app.receive(frame_texts(VirtualCamera(
                sorted(deposit.frames.glob("*.png")), loop=True, realtime=False).frames(),
                default_decoder())))  # fmt: skip
        codes.append(refused.value.code)
        messages.append(refused.value.message)
    assert codes == ["document-hash-mismatch", "signed-document-invalid"], codes
    assert "policy-3.toml.approvals.json does not exist" in messages[1]
    trail = twin.trail()[before:]
    assert not [e for e in trail if e["event"] in ("request-received", "signature")]
    started = [e["fields"] for e in trail if e["event"] == "refusal"]
    assert [(f["state"], f["error"]) for f in started] == [("startup", c) for c in codes]
    with Ledger(load_config(twin.root / "appliance.toml").ledger_db) as ledger:
        assert ledger.all_totals() == {}
        assert not [m for c in twin.clients() for m in ledger.movements(c)]

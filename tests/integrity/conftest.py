"""An appliance world for the state-integrity tests: the real SoftHSM appliance token (audit
key, key pool, the state anchor), admin-signed roster v1 and v2, policy and wallet registry,
and approvers' cards as software stand-ins (tests/domain/cards.py) signing the real approval
tokens. The appliance runs in process through :class:`appliance.daemon.Appliance`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.daemon import Appliance
from appliance.session import SessionResult
from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.config import load_config
from coldvault.crypto import wipe
from coldvault.errors import ColdvaultError
from coldvault.keys.entropy import mix_entropy
from coldvault.keys.keystore import AUDIT_KEY_ID, IDENTITY_KEY_ID, KeyAlgorithm
from coldvault.keys.pool import AccountSpec, Template, provision
from coldvault.policy import AssetLimits, Policy, WalletPolicy, policy_toml
from coldvault.quorum.approvals import ApprovalSession
from coldvault.quorum.documents import SignedDocument, write_signed_document
from coldvault.quorum.roster import CardStatus, Role, Roster
from coldvault.requests.base import Chain
from coldvault.transport.assemble import Assembler
from coldvault.transport.formats import Received
from coldvault.transport.registry import encode_psbt
from coldvault.transport.ur import encode_single
from hardware_emulators.demo import parties
from hardware_emulators.trust_setup import ensure_key, lab_dice
from tests.domain.cards import SoftCard

APPLIANCE_ID = "cv-integrity-01"
WALLET = "acme-btc"
PER_TX, PER_DAY = 1_000_000, 1_500_000


class Ui:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def show_review(self, review: object, decision: object) -> None:
        self.lines.append("review")

    def confirm(self, question: str) -> bool:
        return True

    def info(self, text: str) -> None:
        self.lines.append(text)

    def warn(self, text: str) -> None:
        self.lines.append(text)


class SoftCollector:
    """Approvers present their (software) cards in turn until the quorum is met."""

    def __init__(self, cards: list[SoftCard]) -> None:
        self.cards = cards

    def collect(self, approvals: ApprovalSession, *, on_approved: Callable[[str, str], None],
                on_refused: Callable[[str, ColdvaultError], None]) -> None:
        for card in self.cards:
            if approvals.satisfied:
                return
            try:
                holder = approvals.precheck(card.serial)
                approvals.add(card.serial, card.sign(approvals.data))
            except ColdvaultError as err:
                on_refused(card.serial, err)
                continue
            on_approved(card.serial, holder.holder)


@dataclass
class World:
    root: Path
    module_path: str
    token_label: str
    user_pin: str
    descriptor: str
    pay_to: str
    admins: list[SoftCard]
    approvers: list[SoftCard]
    audit_public_key: bytes = b""

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def trail(self) -> Path:
        return self.state / "audit.jsonl"

    @property
    def ledger(self) -> Path:
        return self.state / "ledger.sqlite3"

    def config(self, rosters: tuple[int, ...] = (1, 2)) -> Path:
        files = ", ".join(f'"{self.root / f"roster-{v}.json"}"' for v in rosters)
        genesis = hashlib.sha256((self.root / "roster-1.json").read_bytes()).hexdigest()
        path = self.root / f"appliance-{'-'.join(map(str, rosters))}.toml"
        path.write_text(f"""[appliance]
id = "{APPLIANCE_ID}"
state_dir = "{self.state}"
allow_emulated_hardware = true

[hsm]
module = "{self.module_path}"
token_label = "{self.token_label}"

[trust]
rosters = [{files}]
genesis_roster_sha256 = "{genesis}"
policy = "{self.root / 'policy.toml'}"
wallets = "{self.root / 'wallets.toml'}"

[input]
source = "files"

[output]
sink = "png-dir"
path = "{self.root / 'response'}"
""")
        return path

    def appliance(self, rosters: tuple[int, ...] = (1, 2),
                  approvers: list[SoftCard] | None = None) -> Appliance:
        return Appliance(load_config(self.config(rosters)), ui=Ui(),
                         collector=SoftCollector(approvers or self.approvers),
                         hsm_pin=self.user_pin, allow_emulated=True, dev_allow_network=True,
                         seal_every=5)

    def request(self, amount: int, seed: int) -> Received:
        psbt = parties.bitcoin_psbt(self.descriptor, pay_to=self.pay_to, amount=amount,
                                    fee=1_500, funding=5_000_000, seed=seed)
        assembler = Assembler()
        assembler.feed(encode_single(encode_psbt(psbt)))
        return assembler.result()

    def sign(self, amount: int, seed: int, **kw: object) -> SessionResult:
        with self.appliance(**kw) as app:  # type: ignore[arg-type]
            app.start()
            return app.handle(self.request(amount, seed))


def _sign_doc(kind: str, version: int, content: bytes, admins: list[SoftCard]) -> SignedDocument:
    doc = SignedDocument(kind, version, APPLIANCE_ID, content)
    for card in admins[:2]:
        doc = doc.with_approval(card.serial, card.sign(doc.token))
    return doc


@pytest.fixture
def world(tmp_path: Path, softhsm_lab, lab_config) -> Iterator[World]:  # type: ignore[no-untyped-def]
    token = lab_config.appliance_token()

    def open_keystore() -> Pkcs11Keystore:
        return Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                                   allow_emulated=True)

    admins = [SoftCard(f"ADM-{i}", "ed25519", b"admin") for i in range(3)]
    approvers = [SoftCard(f"APR-{i}", "ed25519", b"approver") for i in range(3)]
    with open_keystore() as ks:
        before = {k.key_id for k in ks.list_keys()}
        saved_anchor = TokenAnchorStore(ks).load()
        TokenAnchorStore(ks).destroy()
        audit_key = ensure_key(ks, KeyAlgorithm.SECP256K1, AUDIT_KEY_ID, "audit")
        ensure_key(ks, KeyAlgorithm.ED25519, IDENTITY_KEY_ID, "identity")
        seed, _ = mix_entropy(hsm_random=ks.random, dice=lab_dice(seed=9))
        try:
            record = provision(ks, seed, (AccountSpec(Template.BIP84, client="acme",
                                                      name=WALLET),), 3)
        finally:
            wipe(seed)
    try:
        holders = [c.holder(f"Admin {i}", Role.ADMIN) for i, c in enumerate(admins)]
        holders += [c.holder(f"Approver {i}", Role.APPROVER) for i, c in enumerate(approvers)]
        v1 = Roster(1, APPLIANCE_ID, tuple(holders), 2)
        # roster v2 revokes approver 2's card
        v2 = Roster(2, APPLIANCE_ID, tuple(
            approvers[2].holder("Approver 2", Role.APPROVER, status=CardStatus.REVOKED)
            if h.serial == approvers[2].serial else h for h in holders), 2)
        for roster in (v1, v2):
            write_signed_document(tmp_path / f"roster-{roster.version}.json",
                                  _sign_doc("roster", roster.version, roster.to_bytes(), admins))
        write_signed_document(tmp_path / "wallets.toml", _sign_doc(
            "wallets", 1, record.wallet_registry_toml().encode(), admins))
        btc = parties.bitcoin_counterparty("acme-treasury")
        policy = Policy(1, APPLIANCE_ID, frozenset({Chain.BITCOIN}), {WALLET: WalletPolicy(
            name=WALLET, client="acme", chain=Chain.BITCOIN, network="main",
            kinds=frozenset({"psbt"}), min_approvals=2, max_fee=100_000, max_fee_rate=200.0,
            limits={"BTC": AssetLimits(per_transaction=PER_TX, per_day=PER_DAY)},
            destinations=(btc.destination(),))})
        write_signed_document(tmp_path / "policy.toml", _sign_doc(
            "policy", 1, policy_toml(policy).encode(), admins))
        descriptor = str(record.accounts[0].to_dict()["descriptor"])
        yield World(tmp_path, softhsm_lab.module_path, token.label, token.user_pin, descriptor,
                    btc.address, admins, approvers, audit_key.public_key)
    finally:
        with open_keystore() as ks:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)
            anchors = TokenAnchorStore(ks)
            anchors.destroy()
            if saved_anchor is not None:
                anchors.save(saved_anchor)

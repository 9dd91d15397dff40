"""A genesis roster on real virtual cards, made with library calls (not a ceremony).

Keys are generated on the cards (factory PINs kept), the roster is signed by the first
two admins, and optionally a policy is signed by them too.  ``approve-document`` and
``revoke-card``/``replace-card`` start from here; ``enrol-cards`` itself is tested in
test_cards.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldvault.cards import CardAlgorithm, OpenPgpSession, Pw, card_input
from coldvault.policy import AssetLimits, Policy, WalletPolicy, policy_toml
from coldvault.quorum.documents import SignedDocument, write_signed_document
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.requests.base import Chain
from hardware_emulators.demo import parties

from .support import on_card, on_cards

ADMIN_PIN = "12345678"  # TEST ONLY: OpenPGP factory defaults of the virtual cards
USER_PIN = "123456"  # TEST ONLY

#: (lab serial, holder, role, site, algorithm); one admin signs Ed25519, one NIST P-256
CARDS = [
    ("C0DE0004", "Dave Admin", Role.ADMIN, "site-a", CardAlgorithm.ED25519),
    ("C0DE0005", "Erin Admin", Role.ADMIN, "site-b", CardAlgorithm.NIST_P256),
    ("C0DE0003", "Carol Admin", Role.ADMIN, "site-c", CardAlgorithm.ED25519),
    ("C0DE0001", "Alice Approver", Role.APPROVER, "site-a", CardAlgorithm.ED25519),
    ("C0DE0002", "Bob Approver", Role.APPROVER, "site-b", CardAlgorithm.NIST_P256),
]


def policy_text(appliance: str, dest: parties.Proof, *, min_approvals: int = 1) -> str:
    """Policy version 3: one Bitcoin wallet, ``dest`` whitelisted (``policy_toml``)."""
    wallet = WalletPolicy(
        name="acme-btc",
        client="acme",
        chain=Chain.BITCOIN,
        network="main",
        kinds=frozenset({"psbt"}),
        min_approvals=min_approvals,
        max_fee=100000,
        limits={"BTC": AssetLimits(per_transaction=100000000, per_day=300000000)},
        destinations=(dest.destination(),),
    )
    return policy_toml(Policy(3, appliance, frozenset({Chain.BITCOIN}), {wallet.name: wallet}))


@dataclass
class Genesis:
    """The cards (by lab serial), their roster ids and the signed genesis roster."""

    directory: Path
    appliance: str
    cards: dict[str, Any]
    port: int
    reader: str
    lab: Any  # the PC/SC lab (its readers)
    ids: dict[str, str] = field(default_factory=dict)
    roster: Roster | None = None

    @property
    def genesis(self) -> Roster:
        assert self.roster is not None
        return self.roster

    @property
    def path(self) -> Path:
        return self.directory / "roster-1.json"

    def card_id(self, serial: str) -> str:
        return self.ids[serial]

    def _signer(self, serial: str, data: bytes, pin: str) -> Callable[[OpenPgpSession], bytes]:
        algorithm = self.genesis.holder(self.ids[serial]).algorithm  # type: ignore[union-attr]

        def sign(session: OpenPgpSession) -> bytes:
            session.verify_pin(pin, Pw.SIGN)
            return session.sign(card_input(algorithm, data))

        return sign

    def sign(self, serial: str, data: bytes, pin: str = USER_PIN) -> bytes:
        return on_card(self.cards[serial], self.port, self.reader, self._signer(serial, data, pin))

    def approve(self, doc: SignedDocument, signers: tuple[str, ...]) -> SignedDocument:
        """``doc`` with the approvals of ``signers``, their cards in the readers together."""
        signatures = on_cards(
            [(self.cards[s], self._signer(s, doc.token, USER_PIN)) for s in signers], self.lab
        )
        for serial, signature in zip(signers, signatures, strict=True):
            doc = doc.with_approval(self.ids[serial], signature)
        return doc

    def signed_policy(self, path: Path, text: str, signers: tuple[str, ...]) -> None:
        doc = SignedDocument("policy", 3, self.appliance, text.encode())
        write_signed_document(path, self.approve(doc, signers))


def make_genesis(
    directory: Path,
    appliance: str,
    lab_cards: dict[str, Any],
    pcsc_lab: Any,
    cards: list[tuple[str, str, Role, str, CardAlgorithm]],
    signers: tuple[str, ...] = ("C0DE0004", "C0DE0005"),
) -> Genesis:
    """Keys generated on ``cards``; roster v1 (admin threshold 2) signed by ``signers``."""
    lab = Genesis(directory, appliance, lab_cards, pcsc_lab.reader_ports[0],
                  pcsc_lab.reader_names()[0], pcsc_lab)  # fmt: skip

    def enrol(algorithm: CardAlgorithm) -> Callable[[OpenPgpSession], tuple[str, bytes]]:
        def generate(session: OpenPgpSession) -> tuple[str, bytes]:
            session.verify_pin(ADMIN_PIN, Pw.ADMIN)
            session.set_algorithm(algorithm)
            return session.card_id, session.generate_key(algorithm)

        return generate

    enrolled = on_cards([(lab_cards[serial], enrol(algorithm))
                         for serial, _, _, _, algorithm in cards], pcsc_lab)  # fmt: skip
    holders = []
    for (serial, holder, role, site, algorithm), (card_id, public_key) in zip(
        cards, enrolled, strict=True
    ):
        lab.ids[serial] = card_id
        holders.append(CardHolder(card_id, holder, role, site, algorithm.value, public_key))
    lab.roster = Roster(1, appliance, tuple(holders), admin_threshold=2)
    doc = SignedDocument("roster", 1, appliance, lab.roster.to_bytes())
    write_signed_document(lab.path, lab.approve(doc, signers))
    return lab

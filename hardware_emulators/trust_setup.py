"""Lab-only fast path: an appliance's trust material made on the emulated hardware.

It performs, without the console, the same library calls the ceremonies make (see
docs/ceremonies.md): HSM audit and identity keys, card enrolment (keys generated ON the
virtual cards through pcscd), a roster signed by the admin cards, a seed from HSM + OS +
simulated dice entropy, the key pool imported into SoftHSM, and a wallet registry and policy
signed by the admin cards. The integration tests use it so each test does not
replay a full ceremony; the ceremonies themselves are tested through their real prompts.

Never used outside the lab: every PIN comes from the lab file (test-only values).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from coldvault.backends.pcsc import PcscConnection
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.cards.openpgp import CardAlgorithm, OpenPgpSession, Pw
from coldvault.crypto import wipe
from coldvault.errors import ColdvaultError
from coldvault.keys.entropy import mix_entropy
from coldvault.keys.keystore import AUDIT_KEY_ID, IDENTITY_KEY_ID, KeyAlgorithm, KeyInfo
from coldvault.keys.pool import AccountSpec, ProvisioningRecord, Template, provision
from coldvault.quorum.documents import SignedDocument, write_signed_document
from coldvault.quorum.roster import CardHolder, Role, Roster
from hardware_emulators.lab import CardSpec, Lab

APPLIANCE_ID = "cv-lab-01"
DEFAULT_SPECS = (
    AccountSpec(Template.BIP84, client="acme", name="acme-btc"),
    AccountSpec(Template.ETH, client="globex", name="globex-eth"),
    AccountSpec(Template.SOL, client="initech", name="initech-sol"),
)
T = TypeVar("T")


@dataclass
class LabTrust:
    """Paths and public facts of the trust material written to ``directory``."""

    directory: Path
    appliance_id: str
    roster: Roster
    roster_path: Path
    wallets_path: Path
    policy_path: Path
    record: ProvisioningRecord
    audit_public_key: bytes
    card_ids: dict[str, str] = field(default_factory=dict)  # lab serial -> roster card id

    def account(self, name: str) -> dict[str, object]:
        for a in self.record.accounts:
            if a.spec.name == name:
                return a.to_dict()
        raise KeyError(name)


def open_appliance_keystore(lab: Lab) -> Pkcs11Keystore:
    token = lab.config.appliance_token()
    return Pkcs11Keystore.open(
        lab.softhsm.module_path, token.label, token.user_pin, allow_emulated=True
    )


def ensure_key(keystore: Pkcs11Keystore, algorithm: KeyAlgorithm, key_id: bytes,
               label: str) -> KeyInfo:
    try:
        return keystore.find_key(key_id)
    except ColdvaultError:
        return keystore.generate_key(algorithm, key_id, label)


def on_card(lab: Lab, reader: int, action: Callable[[OpenPgpSession], T]) -> T:
    """Run ``action`` on a selected session with the card already in ``reader``."""
    return on_reader(lab.pcsc.reader_names()[reader], action)


def on_reader(reader: str, action: Callable[[OpenPgpSession], T]) -> T:
    """Run ``action`` on a selected OpenPGP session of the card in PC/SC reader ``reader``."""
    connection = PcscConnection(reader)
    try:
        session = OpenPgpSession(connection)
        session.select()
        return action(session)
    finally:
        connection.close()


@contextmanager
def cards_in_readers(lab: Lab, serials: Sequence[str]) -> Iterator[list[int]]:
    """Insert lab cards ``serials`` into readers 0, 1, ... together (pcscd notices them in
    the same poll instead of one poll each), yield those readers, pull every card after."""
    readers = list(range(len(serials)))
    if len(readers) > len(lab.pcsc.reader_names()):
        raise ValueError(f"{len(readers)} cards at once, but the lab has fewer readers")
    try:
        lab.insert_many(list(zip(serials, readers, strict=True)))
        yield readers
    finally:
        for reader in readers:
            lab.remove(reader)


def with_card(lab: Lab, serial: str, action: Callable[[OpenPgpSession], T],
              reader: int = 0) -> T:
    """Insert lab card ``serial``, run ``action`` on a selected session, pull the card."""
    lab.insert(serial, reader)
    try:
        return on_card(lab, reader, action)
    finally:
        lab.remove(reader)


def _generate(spec: CardSpec, groups: Mapping[str, Sequence[str]]
              ) -> Callable[[OpenPgpSession], CardHolder]:
    def generate(session: OpenPgpSession) -> CardHolder:
        session.verify_pin(spec.admin_pin, Pw.ADMIN)
        public = session.generate_key(CardAlgorithm.ED25519)
        session.set_cardholder_name(spec.holder[:39])
        return CardHolder(
            serial=session.card_id, holder=spec.holder, role=Role(spec.role),
            site=spec.site or "lab", algorithm="ed25519", public_key=public,
            groups=tuple(sorted(groups.get(spec.serial, ()))),
        )

    return generate


def _enrol_inserted(lab: Lab, serials: Sequence[str], readers: Sequence[int],
                    groups: Mapping[str, Sequence[str]]) -> dict[str, CardHolder]:
    return {
        serial: on_card(lab, reader, _generate(lab.config.card(serial), groups))
        for serial, reader in zip(serials, readers, strict=True)
    }


def enrol(lab: Lab, serials: Sequence[str] | None = None,
          groups: Mapping[str, Sequence[str]] | None = None) -> list[CardHolder]:
    """Generate an Ed25519 signature key on each card; return the roster entries in lab
    order (``groups``: lab serial -> the approver groups of that card's holder)."""
    wanted = [c.serial for c in lab.config.cards if serials is None or c.serial in serials]
    holders: dict[str, CardHolder] = {}
    width = len(lab.pcsc.reader_names())
    for start in range(0, len(wanted), width):
        batch = wanted[start:start + width]
        with cards_in_readers(lab, batch) as readers:
            holders.update(_enrol_inserted(lab, batch, readers, groups or {}))
    return [holders[serial] for serial in wanted]


def _sign(spec: CardSpec, message: bytes) -> Callable[[OpenPgpSession], tuple[str, bytes]]:
    def sign(session: OpenPgpSession) -> tuple[str, bytes]:
        session.verify_pin(spec.pin, Pw.SIGN)
        return session.card_id, session.sign(message)

    return sign


def card_sign(lab: Lab, serial: str, message: bytes) -> tuple[str, bytes]:
    """Have lab card ``serial`` sign ``message`` (Ed25519) with its user PIN."""
    return with_card(lab, serial, _sign(lab.config.card(serial), message))


def admin_sign(lab: Lab, doc: SignedDocument, admins: Mapping[str, int]) -> SignedDocument:
    """``doc`` signed by each admin card (lab serial -> the reader it is already in)."""
    for serial, reader in admins.items():
        card_id, signature = on_card(lab, reader, _sign(lab.config.card(serial), doc.token))
        doc = doc.with_approval(card_id, signature)
    return doc


def lab_dice(seed: int = 1, rolls: int = 120) -> str:
    """Simulated operator dice for the lab (a real ceremony types real rolls)."""
    rng = random.Random(seed)  # noqa: S311 - lab simulation of physical dice
    return "".join(str(rng.randint(1, 6)) for _ in range(rolls))


def setup_trust(
    lab: Lab,
    directory: Path,
    *,
    policy_text: Callable[[ProvisioningRecord], str],
    specs: Sequence[AccountSpec] = DEFAULT_SPECS,
    pool_size: int = 5,
    appliance_id: str = APPLIANCE_ID,
    admin_threshold: int = 2,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> LabTrust:
    """Make the whole trust material for an appliance on ``lab`` into ``directory``
    (``groups``: lab card serial -> its holder's approver groups)."""
    directory.mkdir(parents=True, exist_ok=True)
    admins = [c.serial for c in lab.config.cards if c.role == "admin"][:admin_threshold]
    others = [c.serial for c in lab.config.cards if c.serial not in admins]
    # every card goes into a reader once: the others are enrolled first, then the admin
    # cards are enrolled and stay in their readers to sign the roster, wallets and policy
    holders = dict(zip(others, enrol(lab, others, groups), strict=True))
    with cards_in_readers(lab, admins) as readers:
        held = dict(zip(admins, readers, strict=True))
        holders.update(_enrol_inserted(lab, admins, readers, groups or {}))
        ordered = [holders[c.serial] for c in lab.config.cards]
        card_ids = {c.serial: h.serial for c, h in zip(lab.config.cards, ordered, strict=True)}
        roster = Roster(version=1, appliance_id=appliance_id, holders=tuple(ordered),
                        admin_threshold=admin_threshold)
        roster_doc = admin_sign(
            lab, SignedDocument("roster", 1, appliance_id, roster.to_bytes()), held
        )
        roster_path = directory / "roster-1.json"
        write_signed_document(roster_path, roster_doc)

        keystore = open_appliance_keystore(lab)
        try:
            audit_key = ensure_key(keystore, KeyAlgorithm.SECP256K1, AUDIT_KEY_ID, "audit")
            ensure_key(keystore, KeyAlgorithm.ED25519, IDENTITY_KEY_ID, "identity")
            seed, _ = mix_entropy(hsm_random=keystore.random, dice=lab_dice())
            try:
                record = provision(keystore, seed, specs, pool_size)
            finally:
                wipe(seed)
        finally:
            keystore.close()

        wallets_path = directory / "wallets.toml"
        wallets_doc = admin_sign(
            lab, SignedDocument("wallets", 1, appliance_id,
                                record.wallet_registry_toml().encode()), held,
        )
        write_signed_document(wallets_path, wallets_doc)
        policy_path = directory / "policy.toml"
        text = policy_text(record)
        policy_doc = admin_sign(
            lab, SignedDocument("policy", _policy_version(text), appliance_id, text.encode()),
            held,
        )
        write_signed_document(policy_path, policy_doc)
    return LabTrust(
        directory=directory, appliance_id=appliance_id, roster=roster, roster_path=roster_path,
        wallets_path=wallets_path, policy_path=policy_path, record=record,
        audit_public_key=audit_key.public_key, card_ids=card_ids,
    )


def _policy_version(text: str) -> int:
    import tomllib

    return int(tomllib.loads(text)["version"])


def appliance_config(trust: LabTrust, lab: Lab, *, state_dir: Path, frames: Path,
                     out: Path, drop_rate: float = 0.0, blur_rate: float = 0.0,
                     fragment_len: int = 200) -> str:
    """An appliance TOML configuration for the lab (emulated hardware allowed)."""
    token = lab.config.appliance_token()
    reader = lab.pcsc.reader_names()[0]
    return f"""# lab appliance configuration (emulated hardware allowed)
[appliance]
id = "{trust.appliance_id}"
state_dir = "{state_dir}"
allow_emulated_hardware = true

[hsm]
module = "{lab.softhsm.module_path}"
token_label = "{token.label}"

[trust]
rosters = ["{trust.roster_path}"]
genesis_roster_sha256 = "{trust.roster.sha256.hex()}"
policy = "{trust.policy_path}"
wallets = "{trust.wallets_path}"

[input]
source = "virtual-camera"
path = "{frames}"
fps = 5
drop_rate = {drop_rate}
blur_rate = {blur_rate}
seed = 11

[output]
sink = "png-dir"
path = "{out}"
fragment_len = {fragment_len}

[cards]
reader = "{reader}"

[timeouts]
card_insert = 60
"""

"""``make demo`` step 2: the appliance's trust material made by the REAL ceremonies.

Each ceremony runs as ``coldvault ceremony ...`` under pexpect and is answered through its
real console prompts -- PINs and dice typed at hidden prompts, cards inserted into the lab's
reader when the ceremony asks for them and pulled when it says so, backup words read off
the screen -- exactly as an operator would:

1. ``init-appliance``   new SO and user PIN of the appliance token (the current ones come
                        from lab.toml); identity and audit keys generated in SoftHSM.
2. ``enrol-cards``      the lab's five blank cards (3 approvers, 2 admins): new PINs, keys
                        generated on the cards; the roster signed by both admins.
3. ``generate-seed``    dice typed; SLIP-39 2-of-3 paper backup shown and read off the
                        screen; the Bitcoin (BIP-84) pool of client acme imported; a card
                        witnesses the transcript.
4. ``provision`` x 2    the seed rebuilt from two typed shares, the Ethereum pool of client
                        globex and the Solana pool of client initech imported.
5. ``approve-document`` the admins approve the wallet registry (the three proposed
                        registries joined) and the policy.

Demo secrets -- the new token and card PINs, the dice, the backup words -- are made at run
time, live only in this process and are never written anywhere: the console logs record
only what the ceremonies print (never what is typed), and nothing while backup words are
on the screen. :func:`assert_not_on_disk` checks that afterwards.

Wallet names come from ``provision`` (``<client>-<template>-<network>-<account>``, e.g.
``acme-bip84-main-0``); the demo's policy and flows find wallets by template, not by name.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pexpect

from coldvault.crypto.descriptors import parse_key_origin
from coldvault.keys.pool import AccountExport, AccountSpec, ProvisioningRecord, Template
from coldvault.quorum.documents import load_signed_document, verify_roster_chain
from coldvault.quorum.roster import Roster
from coldvault.requests.wallets import parse_wallets
from hardware_emulators.ceremony_driver import (
    answer,
    finish_ok,
    json_document,
    pin_prompt,
    random_dice,
    read_and_confirm_words,
    spawn,
    unlogged,
    use_card,
)
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import APPLIANCE_ID, LabTrust

OPERATOR = "Olga Operator"
READER = 0
#: (template, client) of each wallet; the first is provisioned by generate-seed itself
WALLETS = (("bip84", "acme"), ("bip44-eth", "globex"), ("sol", "initech"))
POOL_SIZE = 5


# --------------------------------------------------------------------------- secrets
@dataclass(frozen=True)
class Pins:
    """The PINs an appliance run types: the token user PIN and each lab card's user PIN."""

    token_user: str = field(repr=False)
    cards: Mapping[str, str] = field(repr=False)  # lab serial -> user PIN

    @classmethod
    def from_lab(cls, lab: Lab) -> Pins:
        """The lab file's PINs (the fast path, trust_setup, leaves them unchanged)."""
        return cls(
            lab.config.appliance_token().user_pin, {c.serial: c.pin for c in lab.config.cards}
        )

    def card(self, serial: str) -> str:
        return self.cards[serial.upper()]


@dataclass(frozen=True)
class _NewPins:
    token_so: str = field(repr=False)
    token_user: str = field(repr=False)
    card_admin: Mapping[str, str] = field(repr=False)
    card_user: Mapping[str, str] = field(repr=False)

    @classmethod
    def make(cls, serials: Iterable[str]) -> _NewPins:
        serials = list(serials)
        return cls(
            token_so=secrets.token_hex(6),
            token_user=secrets.token_hex(5),
            card_admin={s: secrets.token_hex(6) for s in serials},
            card_user={s: secrets.token_hex(5) for s in serials},
        )

    def all(self) -> list[str]:
        return [self.token_so, self.token_user, *self.card_admin.values(), *self.card_user.values()]


# --------------------------------------------------------------------------- ceremonies
@dataclass
class _Run:
    """One demo's ceremonies: where things go and the secrets made for them."""

    lab: Lab
    directory: Path
    pins: _NewPins
    card_ids: dict[str, str] = field(default_factory=dict)  # lab serial -> roster card id

    def start(
        self, name: str, ceremony: str, *extra: str, stdout: Path | None = None
    ) -> pexpect.spawn:
        """Spawn ``ceremony``; its transcript and console log are both called ``name``
        (``stdout``: where its machine output goes, alone)."""
        transcript = self.directory / "transcripts" / f"{name}.jsonl"
        args = [
            ceremony,
            "--operator",
            OPERATOR,
            "--allow-emulated",
            "--transcript",
            str(transcript),
            *extra,
        ]
        return spawn(
            args, self.lab.env, self.directory / "console" / f"{name}.log", stdout=stdout
        )

    @property
    def token(self) -> str:
        return self.lab.config.appliance_token().label

    def admins(self) -> list[str]:
        return [c.serial for c in self.lab.config.cards if c.role == "admin"]


def init_appliance(run: _Run) -> bytes:
    """New token PINs; identity and audit keys in the HSM. Returns the audit public key."""
    lab_token = run.lab.config.appliance_token()
    exports = run.directory / "exports" / "appliance"
    child = run.start(
        "1-init-appliance", "init-appliance", "--token", run.token, "--export-dir", str(exports)
    )
    answer(
        child,
        [
            (f"Current HSM user PIN for token {run.token}: ", lab_token.user_pin),
            (f"Current security-officer PIN for token {run.token}: ", lab_token.so_pin),
            ("New security-officer PIN: ", run.pins.token_so),
            ("Repeat new security-officer PIN: ", run.pins.token_so),
            ("New user PIN: ", run.pins.token_user),
            ("Repeat new user PIN: ", run.pins.token_user),
        ],
    )
    finish_ok(child)
    keys = json.loads((exports / "appliance-keys.json").read_text())
    return bytes.fromhex(keys["audit_secp256k1"])


def enrol_cards(run: _Run, roster_path: Path) -> Roster:
    """Enrol every lab card (keys generated on the cards); both admins sign the roster."""
    cards = run.lab.config.cards
    child = run.start(
        "2-enrol-cards",
        "enrol-cards",
        "--cards",
        str(len(cards)),
        "--appliance-id",
        APPLIANCE_ID,
        "--admin-threshold",
        "2",
        "--out",
        str(roster_path),
    )
    for number, spec in enumerate(cards, start=1):
        child.expect(re.escape(f"Card {number}: insert the blank card."))
        run.lab.insert(spec.serial, READER)
        try:
            child.expect(r"Card serial (\S+) \(check it")
            cid = run.card_ids[spec.serial] = child.match.group(1)
            admin, user = run.pins.card_admin[spec.serial], run.pins.card_user[spec.serial]
            answer(
                child,
                [
                    (f"Card {cid} holder name: ", spec.holder),
                    (
                        re.escape(f"Card {cid} role (approver/admin/backup-custodian)") + ".*: ",
                        spec.role,
                    ),
                    (f"Card {cid} site: ", spec.site or "lab"),
                    (f"Card {cid} current admin PIN: ", spec.admin_pin),
                    (f"New admin PIN for card {cid}: ", admin),
                    (f"Repeat new admin PIN for card {cid}: ", admin),
                    (f"Card {cid} current user PIN: ", spec.pin),
                    (f"New user PIN for card {cid}: ", user),
                    (f"Repeat new user PIN for card {cid}: ", user),
                    ("Remove the card.", None),
                ],
            )
        finally:
            run.lab.remove(READER)
    answer(child, [(r"Is the roster correct\? Type yes to continue: ", "yes")])
    admins = run.admins()[:2]  # the roster's admin threshold (--admin-threshold 2)
    for number, serial in enumerate(admins, start=1):
        holder = run.lab.config.card(serial).holder
        use_card(
            child,
            run.lab,
            serial,
            f"Admin approval {number} of {len(admins)}: insert an admin card.",
            [(pin_prompt(holder), run.pins.card_user[serial])],
        )
    finish_ok(child)
    doc = load_signed_document(roster_path, "roster")
    return verify_roster_chain([doc], doc.sha256)  # the genesis: pinned from here on


def generate_seed(run: _Run, roster_path: Path, dice: str) -> tuple[list[str], str]:
    """The seed from HSM + OS + typed dice; SLIP-39 2-of-3 shares read off the screen;
    the first wallet's pool imported; an approver card witnesses the transcript."""
    template, client = WALLETS[0]
    witness = next(c for c in run.lab.config.cards if c.role == "approver")
    child = run.start(
        "3-generate-seed",
        "generate-seed",
        "--token",
        run.token,
        "--format",
        "slip39",
        "--threshold",
        "2",
        "--shares",
        "3",
        "--paper-backup",
        "--template",
        template,
        "--client",
        client,
        "--network",
        "main",
        "--pool-size",
        str(POOL_SIZE),
        "--export-dir",
        str(run.directory / "exports" / client),
        "--witnesses",
        "1",
        "--roster",
        str(roster_path),
    )
    answer(
        child,
        [
            (r"Is the room prepared as listed\? Type yes to continue: ", "yes"),
            (f"HSM user PIN for token {run.token} .*: ", run.pins.token_user),
            (r"Dice rolls \(digits 1-6, at least 99\): ", dice),
        ],
    )
    with unlogged(child):  # the words go to the screen (and this process) only
        shares = [
            read_and_confirm_words(child, f"share {i} of 3", f"share {i}") for i in (1, 2, 3)
        ]
        child.expect(r"share 3 confirmed")
    child.expect(r"master fingerprint\s+│\s+([0-9a-f]{8})")
    fingerprint = str(child.match.group(1))
    use_card(
        child,
        run.lab,
        witness.serial,
        "Witness 1: insert your card.",
        [(pin_prompt(witness.holder), run.pins.card_user[witness.serial])],
    )
    finish_ok(child)
    return shares, fingerprint


def provision(run: _Run, template: str, client: str, shares: Sequence[str], fp: str) -> None:
    """Rebuild the seed from two typed shares and import ``client``'s ``template`` pool."""
    child = run.start(
        f"4-provision-{client}",
        "provision",
        "--token",
        run.token,
        "--from",
        "slip39",
        "--template",
        template,
        "--client",
        client,
        "--pool-size",
        str(POOL_SIZE),
        "--expect-fingerprint",
        fp,
        "--export-dir",
        str(run.directory / "exports" / client),
    )
    answer(
        child,
        [
            (f"HSM user PIN for token {run.token} .*: ", run.pins.token_user),
            ("SLIP-39 share 1: ", shares[0]),
            ("SLIP-39 share 2: ", shares[2]),
            (
                f"Is {fp} the fingerprint recorded at seed generation\\? Type yes to continue: ",
                "yes",
            ),
        ],
    )
    finish_ok(child)


def approve_document(
    run: _Run, kind: str, path: Path, roster: Roster, roster_path: Path, *extra: str
) -> dict[str, Any]:
    """Both admins approve ``path`` at the console; returns the ceremony's JSON result."""
    result_file = run.directory / "console" / f"5-approve-{kind}.json"
    child = run.start(
        f"5-approve-{kind}",
        "approve-document",
        "--kind",
        kind,
        "--roster",
        str(roster_path),
        "--genesis-sha256",
        roster.sha256.hex(),
        "--json",
        *extra,
        str(path),
        stdout=result_file,
    )
    answer(
        child,
        [
            (
                f"Is this the {kind} document the admins are to approve\\? Type yes to continue: ",
                "yes",
            ),
        ],
    )
    for number, serial in enumerate(run.admins()[: roster.admin_threshold], start=1):
        holder = run.lab.config.card(serial).holder
        use_card(
            child,
            run.lab,
            serial,
            f"Admin approval {number} of {roster.admin_threshold}: insert an admin card.",
            [(pin_prompt(holder), run.pins.card_user[serial])],
        )
    finish_ok(child)
    return json_document(result_file.read_text(), "ceremony approve-document")


# --------------------------------------------------------------------------- outputs
def _account(data: Mapping[str, Any]) -> AccountExport:
    """An account export as ``provision`` wrote it (``provisioning.json``)."""
    spec = AccountSpec(
        Template(str(data["template"])),
        account=int(str(data["account"])),
        network=str(data["network"]),
        client=str(data["client"]),
        name=str(data["name"]),
    )
    origin = parse_key_origin(str(data["key_origin"])) if data.get("key_origin") else None
    return AccountExport(
        spec,
        bytes.fromhex(str(data["master_fingerprint"])),
        int(str(data["pool_size"])),
        origin,
        str(data["descriptor"]) if data.get("descriptor") else None,
        tuple(str(a) for a in data["first_addresses"]),
        tuple(str(a["path"]) for a in data.get("addresses", [])),
    )


def provisioned(exports: Path) -> tuple[ProvisioningRecord, str]:
    """Every provisioning run's accounts as one record, and the joined proposed registry."""
    accounts: list[AccountExport] = []
    registry: list[str] = []
    fingerprint = b""
    for _template, client in WALLETS:
        folder = exports / client
        record = json.loads((folder / "provisioning.json").read_text())
        fingerprint = bytes.fromhex(record["master_fingerprint"])
        accounts += [_account(a) for a in record["accounts"]]
        registry.append((folder / "wallets.proposed.toml").read_text())
    text = "\n".join(registry)
    parse_wallets(text.encode())  # one registry: names unique, every entry valid
    return ProvisioningRecord(fingerprint, POOL_SIZE, tuple(accounts), ()), text


def assert_not_on_disk(root: Path, secret_texts: Iterable[str]) -> int:
    """Fail if a demo secret (PIN, dice, run of backup words) is in any file under ``root``."""
    needles: set[bytes] = set()
    for text in secret_texts:
        words = text.split()
        if len(words) < 4:
            needles.add(text.encode())
            continue
        for i in range(len(words) - 3):  # any four words in a row, as typed
            needles.add(" ".join(words[i : i + 4]).encode())
        for i in range(len(words) - 1):  # any two numbered cells, as shown on screen
            cells = [f"{j + 1:2d}. {w:<10}" for j, w in enumerate(words[i : i + 2], start=i)]
            needles.add("  ".join(cells).strip().encode())
    checked = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            checked += 1
            if any(n in data for n in needles):
                raise RuntimeError(f"a demo secret was written to {path}")
    return checked


def ceremony_trust(
    lab: Lab,
    directory: Path,
    *,
    policy_text: Callable[[ProvisioningRecord], str],
    say: Callable[[str], None] = print,
) -> tuple[LabTrust, Pins, list[str]]:
    """Run the ceremonies on ``lab`` into ``directory``. Returns the trust material (as the
    fast path's :class:`LabTrust`), the PINs the appliance must now be given, and the
    demo's secrets (only so the caller can check none reached the disk; keep in memory)."""
    directory.mkdir(parents=True, exist_ok=True)
    pins = _NewPins.make(c.serial for c in lab.config.cards)
    run = _Run(lab, directory, pins)
    roster_path = directory / "roster-1.json"

    say("init-appliance: token PINs changed, identity + audit keys generated in the HSM")
    audit_key = init_appliance(run)
    say(f"enrol-cards: {len(lab.config.cards)} cards enrolled, roster signed by the admins")
    roster = enrol_cards(run, roster_path)
    dice = random_dice()
    say("generate-seed: dice typed, SLIP-39 2-of-3 shares read off the screen, pool imported")
    shares, fingerprint = generate_seed(run, roster_path, dice)
    for template, client in WALLETS[1:]:
        say(f"provision: {template} pool for client {client} from two typed shares")
        provision(run, template, client, shares, fingerprint)
    record, registry = provisioned(directory / "exports")
    wallets_path, policy_path = directory / "wallets.toml", directory / "policy.toml"
    wallets_path.write_text(registry)
    policy_path.write_text(policy_text(record))
    for kind, path, extra in (
        ("wallets", wallets_path, ("--version", "1")),
        ("policy", policy_path, ()),
    ):
        result = approve_document(run, kind, path, roster, roster_path, *extra)
        holders = [a["holder"] for a in result["approvals"]]
        say(
            f"approve-document: {kind} v{result['version']} (sha256 "
            f"{str(result['sha256'])[:16]}...) approved by {', '.join(holders)}"
        )
    trust = LabTrust(
        directory=directory,
        appliance_id=APPLIANCE_ID,
        roster=roster,
        roster_path=roster_path,
        wallets_path=wallets_path,
        policy_path=policy_path,
        record=record,
        audit_public_key=audit_key,
        card_ids=dict(run.card_ids),
    )
    appliance_pins = Pins(pins.token_user, dict(pins.card_user))
    return trust, appliance_pins, [*pins.all(), dice, *shares]


__all__ = ["Pins", "assert_not_on_disk", "ceremony_trust"]

"""The world ``bench_appliance`` measures in, built from real coldvault parts.

* a private SoftHSM2 lab (temp dir) with one token holding the test wallet's receive keys
  ``m/84h/1h/0h/0/0..n-1`` (imported under the ``derived_key_id`` scheme) and a generated
  secp256k1 audit key;
* the wallet: ``tests/requests/psbt_fixtures.make_wallet("wpkh", max_index=...)`` (seeded;
  999, or one less than the largest request's input count if that is more);
* a roster of two approver "cards" and one admin, whose Ed25519 keys are software keys
  standing in for OpenPGP cards (card time is human-bound and not measured);
* a policy for the wallet: 2 approvals, generous limits, and one whitelisted destination
  with a real BIP-137 ownership proof (verified at load, as in production);
* requests: n-input PSBTs paying that destination plus change, each with a distinct seed,
  assembled from UR frames by :class:`coldvault.transport.assemble.Assembler` so the appliance
  sees exactly what a camera would deliver.

Nothing here is timed; :mod:`benchmarks.bench_appliance` does the timing.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nacl.signing
from embit.script import address_to_scriptpubkey

from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.crypto import HARDENED, wipe
from coldvault.keys.keystore import (
    AUDIT_KEY_ID,
    KeyAlgorithm,
    derived_key_id,
    derived_key_label,
)
from coldvault.policy import AssetLimits, Policy, WalletPolicy, parse_policy, policy_toml
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.requests.base import Chain
from coldvault.transport import assemble as t
from coldvault.transport.formats import Received, TransportFormat
from coldvault.transport.reply import encode_reply
from hardware_emulators.demo.parties import bitcoin_counterparty
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec
from tests.requests.psbt_fixtures import WalletFixture, build_psbt, make_wallet

APPLIANCE_ID = "cv-bench-01"
#: lab-only PINs of a throw-away token in a temp dir
TOKEN = TokenSpec("cv-bench", so_pin="bench-so-pin", user_pin="bench-user-pin")  # noqa: S106
#: message bytes per UR fragment of the *request* (coldvault's setting in bench_qr)
REQUEST_FRAGMENT = 800
#: the appliance's default reply density (coldvault/config.py ``[output] fragment_len``)
REPLY_FRAGMENT = 200
CARD_SERIALS = ("BENCH-APR-1", "BENCH-APR-2")


@dataclass
class World:
    state_dir: Path
    lab: SoftHsmLab
    wallet: WalletFixture
    roster: Roster
    policy: Policy
    #: (card serial, software Ed25519 key standing in for the card's signature key)
    cards: list[tuple[str, nacl.signing.SigningKey]]
    destination: bytes  # scriptPubKey of the whitelisted destination
    #: receive key ids in index order, and their scalars (for the coincurve comparison)
    key_ids: list[bytes] = field(default_factory=list)
    scalars: dict[bytes, bytes] = field(default_factory=dict, repr=False)

    keystore: Pkcs11Keystore | None = None
    #: seconds from the start of the import to the end of each key's import
    import_times: list[float] = field(default_factory=list)

    def open_keystore(self) -> Pkcs11Keystore:
        return Pkcs11Keystore.open(
            self.lab.module_path, TOKEN.label, TOKEN.user_pin, allow_emulated=True
        )


def _card_key(label: str) -> nacl.signing.SigningKey:
    return nacl.signing.SigningKey(
        hashlib.sha256(b"coldvault-bench-card/" + label.encode()).digest()
    )


def _roster(cards: list[tuple[str, nacl.signing.SigningKey]]) -> Roster:
    holders = [
        CardHolder(serial, f"Approver {i + 1}", Role.APPROVER, f"site-{i + 1}", "ed25519",
                   bytes(key.verify_key))
        for i, (serial, key) in enumerate(cards)
    ]
    admin = _card_key("admin")
    holders.append(CardHolder("BENCH-ADM-1", "Admin 1", Role.ADMIN, "site-1", "ed25519",
                              bytes(admin.verify_key)))
    return Roster(1, APPLIANCE_ID, tuple(holders), admin_threshold=1)


def _policy(wf: WalletFixture) -> tuple[Policy, bytes]:
    proof = bitcoin_counterparty("bench-treasury", network="test")
    w = wf.wallet
    wallet = WalletPolicy(
        name=w.name, client=w.client, chain=Chain.BITCOIN, network=w.network,
        kinds=frozenset({"psbt"}), min_approvals=2, max_fee=10_000_000, max_fee_rate=1000.0,
        limits={"BTC": AssetLimits(per_transaction=21 * 10**14, per_day=21 * 10**14)},
        destinations=(proof.destination(),),
    )  # fmt: skip
    text = policy_toml(Policy(1, APPLIANCE_ID, frozenset({Chain.BITCOIN}), {w.name: wallet}))
    policy = parse_policy(text)  # verifies the ownership proof (coldvault.policy.ownership)
    return policy, address_to_scriptpubkey(proof.address).data


def _receive_path(wf: WalletFixture, index: int) -> list[int]:
    account = [int(p[:-1]) | HARDENED if p.endswith("h") else int(p)
               for p in wf.wallet.account_path.split("/")[1:]]
    return [*account, 0, index]


def import_keys(world: World, keystore: Pkcs11Keystore, count: int) -> None:
    """Import receive keys 0..count-1 (sensitive, non-extractable) and generate the audit key."""
    wf = world.wallet
    fingerprint = wf.root.my_fingerprint
    keystore.generate_key(KeyAlgorithm.SECP256K1, AUDIT_KEY_ID, "audit")
    start = time.perf_counter()
    for index in range(count):
        path = _receive_path(wf, index)
        key_id = derived_key_id(fingerprint, path)
        scalar = bytearray(wf.root.derive(path).key.secret)
        try:
            keystore.import_private_key(
                KeyAlgorithm.SECP256K1, scalar, key_id, derived_key_label(fingerprint, path)
            )
            world.scalars[key_id] = bytes(scalar)  # kept for the coincurve comparison only
        finally:
            wipe(scalar)
        world.key_ids.append(key_id)
        world.import_times.append(time.perf_counter() - start)


def psbt_request(world: World, n: int, seed: int) -> bytes:
    """An n-input PSBT (receive indexes 0..n-1) paying the whitelisted destination + change."""
    rng = random.Random(seed)  # noqa: S311 - deterministic test data
    inputs = [(0, i, 50_000 + rng.randrange(1000)) for i in range(n)]
    total = sum(a for _, _, a in inputs)
    fee = 150 * n + 500
    send = (total - fee) // 2
    return build_psbt(
        world.wallet,
        inputs=inputs,
        external=[(world.destination, send)],
        change=[(1, 0, total - fee - send)],
        seed=seed,
    )


def received(psbt: bytes) -> Received:
    """The PSBT as the camera would deliver it: UR ``crypto-psbt`` frames through Assembler."""
    stream = encode_reply(TransportFormat.UR, "crypto-psbt", psbt,
                            max_fragment_len=REQUEST_FRAGMENT)
    assembler = t.Assembler()
    for text in stream.cycle():
        if assembler.feed(text).complete:
            break
    result = assembler.result()
    if result.content != psbt:
        raise RuntimeError("the assembled request differs from the PSBT")
    return result


@contextmanager
def world(max_inputs: int) -> Iterator[World]:
    """Everything in one temp dir (``COLDVAULT_BENCH_DIR`` chooses its parent, e.g. the
    appliance's real disk for representative fsync times); removed afterwards."""
    parent = os.environ.get("COLDVAULT_BENCH_DIR") or None
    state_dir = Path(tempfile.mkdtemp(prefix="coldvault-bench-", dir=parent))
    saved_conf = os.environ.get("SOFTHSM2_CONF")
    lab = SoftHsmLab(state_dir=state_dir / "softhsm", tokens=[TOKEN])
    try:
        lab.setup()
        os.environ["SOFTHSM2_CONF"] = str(lab.conf_path)
        wf = make_wallet("wpkh", max_index=max(999, max_inputs - 1))
        cards = [(serial, _card_key(serial)) for serial in CARD_SERIALS]
        policy, destination = _policy(wf)
        w = World(state_dir, lab, wf, _roster(cards), policy, cards, destination)
        keystore = w.open_keystore()
        try:
            import_keys(w, keystore, max_inputs)
            # stays open: the keystore caches the keys it looked up at import, as a running
            # appliance does after its first request (a reopened one would start cold)
            w.keystore = keystore
            yield w
        finally:
            keystore.close()
    finally:
        if saved_conf is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = saved_conf
        lab.destroy()
        shutil.rmtree(state_dir, ignore_errors=True)

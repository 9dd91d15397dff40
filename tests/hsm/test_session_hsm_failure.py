"""The signing session on the real SoftHSM token when the HSM fails in the middle of a request.

A key look-up that fails for any reason other than "the token does not hold this key" must
reach the operator as the HSM failure it is: refused, audited with the HSM's error code,
never reported as "the HSM holds no key" (which would send the operator hunting for a
wallet or key-pool problem that does not exist).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import nacl.signing
import pytest
from pkcs11 import Attribute, ObjectClass

from appliance.session import SigningSession
from coldvault.backends.pkcs11.errors import Pkcs11Error, PrivateKeyHidden
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.errors import ColdvaultError, HardwareError, PolicyViolation
from coldvault.keys.keystore import (
    KeyAlgorithm,
    KeyNotFound,
    derived_key_id,
    derived_key_label,
    held_key,
)
from coldvault.policy import Decision, Policy, parse_policy
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.records.ledger import Ledger
from coldvault.requests.base import Review
from coldvault.requests.bitcoin.errors import KeyNotHeld
from coldvault.transport.assemble import Assembler
from coldvault.transport.formats import Received
from coldvault.transport.registry import encode_psbt
from coldvault.transport.ur import encode_single
from tests.requests.psbt_fixtures import WalletFixture, build_psbt, external_script, make_wallet

pytestmark = pytest.mark.lab
#: python-pkcs11 finalises an interrupted object search in ``__del__``; on a dead session that
#: C_FindObjectsFinal fails too and can only be reported as "exception ignored".
DEAD_SESSION_NOISE = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnraisableExceptionWarning"
)

APPLIANCE = "cv-test"


class Trail:
    """An audit sink that keeps the events in memory (the session's AuditSink protocol)."""

    def __init__(self, on_append: Callable[[str], None] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.on_append = on_append

    def append(self, event: str, fields: Mapping[str, object]) -> object:
        self.events.append((event, dict(fields)))
        if self.on_append is not None:
            self.on_append(event)
        return None

    def last(self, event: str) -> dict[str, Any]:
        return [fields for name, fields in self.events if name == event][-1]


class ScriptedUi:
    """The operator: looks at the review and declines it."""

    def __init__(self) -> None:
        self.reviews: list[Review] = []
        self.lines: list[str] = []

    def show_review(self, review: Review, decision: Decision) -> None:
        self.reviews.append(review)

    def confirm(self, question: str) -> bool:
        return False

    def info(self, text: str) -> None:
        self.lines.append(text)

    def warn(self, text: str) -> None:
        self.lines.append(text)


class NoCards:
    def collect(self, approvals: object, **kw: object) -> None:
        raise AssertionError("no approvals are collected in these scenarios")


def _roster() -> Roster:
    admin = bytes(nacl.signing.SigningKey(b"\x01" * 32).verify_key)
    holder = CardHolder("ADM-0", "Admin Zero", Role.ADMIN, "hk", "ed25519", admin)
    return Roster(1, APPLIANCE, (holder,), 1)


def _policy(wallet: str) -> Policy:
    return parse_policy(
        f'format = "coldvault-policy/1"\nversion = 1\nappliance_id = "{APPLIANCE}"\n'
        f'chains = ["bitcoin"]\n\n[[wallet]]\nname = "{wallet}"\nclient = "client-a"\n'
        'chain = "bitcoin"\nnetwork = "test"\nkinds = ["psbt"]\nmin_approvals = 1\n\n'
        "[wallet.limits.BTC]\nper_transaction = 100_000_000\nper_day = 100_000_000\n"
    )


def _received(wf: WalletFixture) -> Received:
    """A one-input PSBT of ``wf`` as the appliance receives it: UR text through the assembler."""
    pay_to = external_script(random.Random(1))  # noqa: S311 - deterministic test data
    raw = build_psbt(wf, inputs=((0, 0, 100_000),), external=((pay_to, 90_000),), seed=7)
    assembler = Assembler()
    assembler.feed(encode_single(encode_psbt(raw)))
    assert assembler.is_complete
    return assembler.result()


@pytest.fixture
def keystore(softhsm_lab, lab_config) -> Iterator[Pkcs11Keystore]:  # type: ignore[no-untyped-def]
    """The appliance token, opened by this module: its tests break the PKCS#11 session, so
    teardown closes what is left and cleans up through a fresh login."""
    token = lab_config.appliance_token()

    def open_keystore() -> Pkcs11Keystore:
        return Pkcs11Keystore.open(
            softhsm_lab.module_path, token.label, token.user_pin, allow_emulated=True
        )

    def key_objects(ks: Pkcs11Keystore) -> dict[tuple[int, bytes], Any]:
        session = ks._live()  # raw objects: a test may leave half a key behind
        return {
            (int(cls), bytes(obj[Attribute.ID])): obj
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY)
            for obj in session.get_objects({Attribute.CLASS: cls})
        }

    ks = open_keystore()
    before = set(key_objects(ks))
    try:
        yield ks
    finally:
        ks.close()  # tolerates a session that is already gone
        with open_keystore() as clean:
            for ident, obj in key_objects(clean).items():
                if ident not in before:
                    obj.destroy()


@pytest.fixture
def world(keystore: Pkcs11Keystore, tmp_path: Path):  # type: ignore[no-untyped-def]
    wf = make_wallet("wpkh")
    path = (*wf.wallet.account, 0, 0)
    key_id = derived_key_id(wf.root.my_fingerprint, path)
    scalar = bytearray(wf.root.derive(list(path)).key.secret)
    keystore.import_private_key(
        KeyAlgorithm.SECP256K1, scalar, key_id, derived_key_label(wf.root.my_fingerprint, path)
    )
    keystore.forget_keys()  # as a freshly started appliance: nothing looked up yet
    ledger = Ledger(tmp_path / "ledger.db")
    yield wf, key_id, ledger
    ledger.close()


def _session(keystore: Pkcs11Keystore, wf: WalletFixture, ledger: Ledger, trail: Trail,
             ui: ScriptedUi) -> SigningSession:  # fmt: skip
    return SigningSession(
        keystore=keystore, wallets={wf.wallet.name: wf.wallet}, policy=_policy(wf.wallet.name),
        roster=_roster(), audit=trail, ledger=ledger, replay_guard=ledger, collector=NoCards(),
        ui=ui,
    )  # fmt: skip


def test_a_healthy_hsm_finds_the_key_and_the_operator_reviews(keystore, world) -> None:
    wf, key_id, ledger = world
    trail, ui = Trail(), ScriptedUi()
    with pytest.raises(PolicyViolation) as err:  # the request's destination is not whitelisted
        _session(keystore, wf, ledger, trail, ui).process(_received(wf))
    assert len(ui.reviews) == 1 and ui.reviews[0].wallet == wf.wallet.name
    assert trail.last("refusal")["error"] == err.value.code
    assert [name for name, _ in trail.events][:3] == ["request-received", "review", "decision"]


@DEAD_SESSION_NOISE
def test_hsm_session_lost_mid_request_is_reported_as_the_hsm_failure(keystore, world) -> None:
    """The HSM session dies after the request arrived: the look-up fails with the PKCS#11
    error, and that -- not "the HSM holds no key" -- is what the operator and the trail get."""
    wf, key_id, ledger = world

    def lose_session(event: str) -> None:
        if event == "request-received":  # the request is in; now the HSM session goes away
            keystore._live().close()  # C_Logout + C_CloseSession on the real token

    trail, ui = Trail(on_append=lose_session), ScriptedUi()
    session = _session(keystore, wf, ledger, trail, ui)
    with pytest.raises(ColdvaultError) as err:
        session.process(_received(wf))
    assert not isinstance(err.value, KeyNotHeld | KeyNotFound)
    assert isinstance(err.value, Pkcs11Error) and isinstance(err.value, HardwareError)
    assert err.value.ckr == "SessionHandleInvalid"
    # what the front end shows the operator (appliance run prints err.message)
    assert err.value.message == (
        f"HSM token 'coldvault-appliance' failed to look up key {key_id.hex()} "
        "(SessionHandleInvalid)."
    )
    assert "holds no key" not in err.value.message
    refusal = trail.last("refusal")
    assert refusal["error"] == "hsm-error" and refusal["reason"] == err.value.message
    assert ui.reviews == []  # nothing was reviewed, nothing signed
    assert [name for name, _ in trail.events] == ["request-received", "refusal"]


def test_a_key_the_token_does_not_hold_is_still_refused_as_not_held(keystore, world) -> None:
    wf, key_id, ledger = world
    keystore.delete_key(key_id)
    trail, ui = Trail(), ScriptedUi()
    with pytest.raises(KeyNotHeld, match="the HSM holds no key") as err:
        _session(keystore, wf, ledger, trail, ui).process(_received(wf))
    assert trail.last("refusal")["error"] == err.value.code


@DEAD_SESSION_NOISE
def test_held_key_is_none_only_for_not_found(keystore, world) -> None:
    _, key_id, _ = world
    assert held_key(keystore, key_id) == keystore.find_key(key_id)
    assert held_key(keystore, b"no-such-key") is None
    keystore.forget_keys()
    keystore._live().close()
    with pytest.raises(Pkcs11Error):
        held_key(keystore, key_id)


def test_a_public_key_without_its_private_key_is_not_reported_missing(keystore, world) -> None:
    """The private object of a key vanishes while its public object stays (what a logged-out
    session shows): the look-up says so instead of "no such key"."""
    _, key_id, _ = world
    session = keystore._live()  # fault injection on the real token, as in test_keystore.py
    private = {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.ID: key_id}
    for obj in session.get_objects(private):
        obj.destroy()
    keystore.forget_keys()
    with pytest.raises(PrivateKeyHidden) as err:
        held_key(keystore, key_id)
    assert err.value.key_id == key_id.hex() and "logged out" in err.value.message
    for obj in session.get_objects({**private, Attribute.CLASS: ObjectClass.PUBLIC_KEY}):
        obj.destroy()
    assert held_key(keystore, key_id) is None


def test_signatures_are_typed_values(keystore, world) -> None:
    _, key_id, _ = world
    sig = keystore.sign_ecdsa(key_id, b"\x01" * 32)
    assert isinstance(sig, EcdsaSignature) and sig.is_low_s


@DEAD_SESSION_NOISE
def test_an_hsm_failing_in_the_middle_of_a_batch_returns_no_signature(keystore, world) -> None:
    """The token's session dies after 20 of 40 signatures (a real C_Sign failure on the
    SoftHSM token, not a stand-in): sign_all raises the HSM's error, returns nothing, and
    leaves no checking thread behind."""
    import threading

    from coldvault.requests.base import SignJob

    _, key_id, _ = world
    jobs = [SignJob(key_id, KeyAlgorithm.SECP256K1, bytes([i]) * 32, f"input {i}")
            for i in range(40)]  # fmt: skip
    made = 0
    sign_with = keystore._sign_with

    def dies_after_twenty(key: object, job: SignJob) -> bytes:
        nonlocal made
        if made == 20:
            keystore._live().close()  # C_Logout + C_CloseSession on the real token
        made += 1
        return sign_with(key, job)

    keystore._sign_with = dies_after_twenty  # fault injection, as the tests above do
    with pytest.raises(Pkcs11Error) as err:
        keystore.sign_all(jobs)
    assert isinstance(err.value, HardwareError)
    assert err.value.ckr == "SessionHandleInvalid" and made == 21
    assert "sign with ECDSA" in err.value.message
    assert not [t for t in threading.enumerate() if t.name == "coldvault-signature-check"]

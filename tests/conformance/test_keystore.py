"""The keystore contract (:class:`coldvault.keys.keystore.Keystore` as
:class:`Pkcs11Keystore` implements it), asserted identically on every token backend.

Signatures are checked with libraries the keystore does not use for that check
(``cryptography`` for ECDSA, PyNaCl for Ed25519).  SoftHSM-only facts (emulation flags,
OpenSC cross-checks, SoftHSM quirks) stay in tests/hsm/.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

import coincurve
import nacl.signing
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

from coldvault.backends.pkcs11.errors import (
    DuplicateKey,
    KeyAlgorithmMismatch,
    KeyNotFound,
    SignatureCheckFailed,
    WrongPin,
)
from coldvault.backends.pkcs11.keystore import ED25519_OID_PARAMS, SECP256K1_PARAMS
from coldvault.crypto.paths import HARDENED
from coldvault.crypto.secp256k1 import SECP256K1_N as N
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.errors import AuthError, HardwareError
from coldvault.keys.keystore import (
    KeyAlgorithm,
    KeyInfo,
    derived_key_id,
    derived_key_label,
)

requires = pytest.mark.requires
SECP256K1 = (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA)
ED25519 = (Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA)
FP = bytes.fromhex("d34db33f")
PATH = [84 | HARDENED, 0 | HARDENED, 0 | HARDENED, 0, 5]


def kid(name: str) -> bytes:
    """Key ids the suite creates (and its fixture deletes)."""
    return b"cvconf-" + name.encode()


def ecdsa_ok(public_key: bytes, signature: EcdsaSignature, digest: bytes) -> bool:
    """Host verification by ``cryptography`` (OpenSSL), independent of the keystore."""
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public_key)
    try:
        point.verify(signature.der, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        return False
    return True


def ed25519_ok(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


# --------------------------------------------------------------------------- keys
@requires(*SECP256K1)
def test_generated_secp256k1_key_is_found_and_listed(hsm) -> None:
    info = hsm.generate_key(KeyAlgorithm.SECP256K1, kid("gen-k1"), "gen-k1")
    assert (info.key_id, info.label, info.algorithm) == (
        kid("gen-k1"), "gen-k1", KeyAlgorithm.SECP256K1
    )
    assert len(info.public_key) == 33 and info.public_key[0] in (2, 3)
    assert (info.sensitive, info.extractable) == (True, False)
    assert hsm.find_key(kid("gen-k1")) == info
    assert {k.key_id: k for k in hsm.list_keys()}[kid("gen-k1")] == info


@requires(*ED25519)
def test_generated_ed25519_key_is_found_and_listed(hsm) -> None:
    info = hsm.generate_key(KeyAlgorithm.ED25519, kid("gen-ed"), "gen-ed")
    assert info.algorithm is KeyAlgorithm.ED25519 and len(info.public_key) == 32
    assert (info.sensitive, info.extractable) == (True, False)
    assert hsm.find_key(kid("gen-ed")) == info
    assert {k.key_id: k for k in hsm.list_keys()}[kid("gen-ed")] == info


@requires(*SECP256K1)
def test_imported_secp256k1_key_has_the_host_public_key(hsm) -> None:
    secret = bytearray(hashlib.sha256(b"coldvault conformance scalar").digest())
    host_public = coincurve.PrivateKey(bytes(secret)).public_key.format(compressed=True)
    key_id = derived_key_id(FP, PATH)
    info = hsm.import_private_key(
        KeyAlgorithm.SECP256K1, secret, key_id, derived_key_label(FP, PATH)
    )
    assert info == KeyInfo(key_id, "d34db33f/84h/0h/0h/0/5", KeyAlgorithm.SECP256K1, host_public)
    assert hsm.find_key(key_id) == info


@requires(*ED25519)
def test_imported_ed25519_key_signs_exactly_like_the_host(hsm) -> None:
    seed = hashlib.sha256(b"coldvault conformance ed25519 seed").digest()
    host = nacl.signing.SigningKey(seed)
    info = hsm.import_private_key(KeyAlgorithm.ED25519, seed, kid("imp-ed"), "imp-ed")
    assert info.public_key == bytes(host.verify_key)
    # Ed25519 is deterministic (RFC 8032): the token must produce the host's exact bytes
    for message in (b"", b"solana message", bytes(range(256)) * 4):
        assert hsm.sign_ed25519(kid("imp-ed"), message).raw == host.sign(message).signature


@requires(*SECP256K1)
def test_a_key_id_is_never_shadowed(hsm) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, kid("dup"), "dup")
    with pytest.raises(DuplicateKey) as err:
        hsm.generate_key(KeyAlgorithm.SECP256K1, kid("dup"), "dup")
    assert err.value.key_id == kid("dup").hex()
    with pytest.raises(DuplicateKey):
        hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x02" * 32, kid("dup"), "dup")


@requires(*SECP256K1, *ED25519)
def test_private_keys_are_sensitive_and_never_leave_the_token(hsm) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, kid("att-k1"), "att-k1")
    hsm.generate_key(KeyAlgorithm.ED25519, kid("att-ed"), "att-ed")
    hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x01" * 32, kid("att-imp"), "att-imp")
    for key_id in (kid("att-k1"), kid("att-ed"), kid("att-imp")):
        attrs = hsm.key_attributes(key_id)
        assert (attrs.sensitive, attrs.extractable) == (True, False)
        assert (attrs.token, attrs.private, attrs.sign, attrs.derive) == (True, True, True, False)
        assert (hsm.find_key(key_id).sensitive, hsm.find_key(key_id).extractable) == (True, False)
    for key_id in (kid("att-k1"), kid("att-ed")):
        attrs = hsm.key_attributes(key_id)
        assert (attrs.always_sensitive, attrs.never_extractable, attrs.local) == (True, True, True)
    # PKCS#11: a key that once existed outside the token is none of these
    attrs = hsm.key_attributes(kid("att-imp"))
    assert (attrs.always_sensitive, attrs.never_extractable, attrs.local) == (False, False, False)


# --------------------------------------------------------------------------- signatures
@requires(*SECP256K1)
def test_ecdsa_signatures_are_low_s_and_verify_on_the_host(hsm) -> None:
    info = hsm.generate_key(KeyAlgorithm.SECP256K1, kid("ecdsa"), "ecdsa")
    high_s_seen_by_host = 0
    for i in range(64):
        digest = hashlib.sha256(i.to_bytes(4, "big")).digest()
        sig = hsm.sign_ecdsa(kid("ecdsa"), digest)
        assert 0 < sig.r < N and 0 < sig.s <= N // 2, "signatures must be low-S (BIP-62)"
        assert ecdsa_ok(info.public_key, sig, digest)
        assert sig.compact == sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big")
        # the high-S twin verifies too: low-S is a normalisation, not a different signature
        twin = EcdsaSignature(sig.r, N - sig.s)
        high_s_seen_by_host += ecdsa_ok(info.public_key, twin, digest)
        assert not ecdsa_ok(info.public_key, sig, hashlib.sha256(digest).digest())
    assert high_s_seen_by_host == 64


@requires(*ED25519)
def test_ed25519_signatures_verify_on_the_host(hsm) -> None:
    info = hsm.generate_key(KeyAlgorithm.ED25519, kid("eddsa"), "eddsa")
    for message in (b"", b"x", hashlib.sha512(b"long").digest() * 20):
        sig = hsm.sign_ed25519(kid("eddsa"), message).raw
        assert len(sig) == 64
        assert ed25519_ok(info.public_key, sig, message)
        assert not ed25519_ok(info.public_key, sig, message + b"!")


@requires(*SECP256K1, *ED25519)
def test_a_key_signs_only_with_its_own_algorithm(hsm) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, kid("k1-only"), "k1-only")
    hsm.generate_key(KeyAlgorithm.ED25519, kid("ed-only"), "ed-only")
    with pytest.raises(KeyAlgorithmMismatch) as err:
        hsm.sign_ed25519(kid("k1-only"), b"m")
    assert (err.value.expected, err.value.actual) == ("ed25519", "secp256k1")
    with pytest.raises(KeyAlgorithmMismatch):
        hsm.sign_ecdsa(kid("ed-only"), b"\x00" * 32)


@requires(*SECP256K1)
def test_threads_share_one_keystore_safely(hsm) -> None:
    info = hsm.generate_key(KeyAlgorithm.SECP256K1, kid("threads"), "threads")
    digest = hashlib.sha256(b"threads").digest()
    results: list[bool] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                results.append(ecdsa_ok(info.public_key, hsm.sign_ecdsa(kid("threads"), digest),
                                        digest))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [True] * 80


def _make_the_token_lie(hsm, key_id: bytes, algorithm: KeyAlgorithm, point_der: bytes) -> None:
    """Replace a key's public object with another key's point: a faulty or tampered token,
    built from real PKCS#11 objects on the token under test."""
    session = hsm._live()
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id}):
        obj.destroy()
    is_k1 = algorithm is KeyAlgorithm.SECP256K1
    session.create_object({
        Attribute.CLASS: ObjectClass.PUBLIC_KEY,
        Attribute.KEY_TYPE: KeyType.EC if is_k1 else KeyType.EC_EDWARDS,
        Attribute.EC_PARAMS: SECP256K1_PARAMS if is_k1 else ED25519_OID_PARAMS,
        Attribute.EC_POINT: point_der,
        Attribute.TOKEN: True,
        Attribute.VERIFY: True,
        Attribute.ID: key_id,
        Attribute.LABEL: "swapped",
    })
    hsm.forget_keys()


@requires(*SECP256K1, *ED25519)
def test_a_signature_failing_host_verification_is_never_returned(hsm) -> None:
    hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x05" * 32, kid("liar-k1"), "liar-k1")
    other = coincurve.PrivateKey(b"\x06" * 32).public_key.format(compressed=False)
    _make_the_token_lie(hsm, kid("liar-k1"), KeyAlgorithm.SECP256K1, b"\x04\x41" + other)
    with pytest.raises(SignatureCheckFailed) as err:
        hsm.sign_ecdsa(kid("liar-k1"), b"\x11" * 32)
    assert isinstance(err.value, HardwareError)
    assert (err.value.algorithm, err.value.key_id) == ("secp256k1 ECDSA", kid("liar-k1").hex())

    hsm.import_private_key(KeyAlgorithm.ED25519, b"\x05" * 32, kid("liar-ed"), "liar-ed")
    other_ed = bytes(nacl.signing.SigningKey(b"\x06" * 32).verify_key)
    _make_the_token_lie(hsm, kid("liar-ed"), KeyAlgorithm.ED25519, b"\x04\x20" + other_ed)
    with pytest.raises(SignatureCheckFailed) as err:
        hsm.sign_ed25519(kid("liar-ed"), b"message")
    assert err.value.algorithm == "Ed25519"


@dataclass(frozen=True)
class Job:
    key_id: bytes
    algorithm: KeyAlgorithm
    payload: bytes


@requires(*SECP256K1, *ED25519)
def test_sign_all_signs_every_job_in_order_as_the_single_calls_do(hsm) -> None:
    """A request's batch: several keys of both kinds, more jobs than one checking group."""
    k1 = [hsm.generate_key(KeyAlgorithm.SECP256K1, kid(f"all-k1-{i}"), f"all-k1-{i}")
          for i in range(3)]
    ed = hsm.generate_key(KeyAlgorithm.ED25519, kid("all-ed"), "all-ed")
    jobs, keys = [], []
    for i in range(37):
        if i % 9 == 4:
            jobs.append(Job(ed.key_id, KeyAlgorithm.ED25519, b"message %d" % i))
            keys.append(ed)
        else:
            info = k1[i % 3]
            jobs.append(Job(info.key_id, KeyAlgorithm.SECP256K1,
                            hashlib.sha256(b"digest %d" % i).digest()))
            keys.append(info)
    signatures = hsm.sign_all(jobs)
    assert len(signatures) == len(jobs)
    for job, info, sig in zip(jobs, keys, signatures, strict=True):
        if job.algorithm is KeyAlgorithm.SECP256K1:
            assert isinstance(sig, EcdsaSignature) and sig.s <= N // 2
            assert ecdsa_ok(info.public_key, sig, job.payload)
        else:
            assert ed25519_ok(info.public_key, sig.raw, job.payload)
    # in job order: each signature is its own job's, not a neighbour's
    assert not ecdsa_ok(keys[1].public_key, signatures[0], jobs[0].payload)
    assert hsm.sign_all([]) == []


@requires(*SECP256K1, *ED25519)
def test_sign_all_refuses_a_bad_batch_before_the_first_signature(hsm, monkeypatch) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, kid("pre-k1"), "pre-k1")
    hsm.generate_key(KeyAlgorithm.ED25519, kid("pre-ed"), "pre-ed")
    good = [Job(kid("pre-k1"), KeyAlgorithm.SECP256K1, bytes([i]) * 32) for i in range(20)]
    made: list[bytes] = []
    sign_with = hsm._sign_with
    monkeypatch.setattr(hsm, "_sign_with", lambda key, job: made.append(job.key_id)
                        or sign_with(key, job))
    with pytest.raises(KeyNotFound):
        hsm.sign_all([*good, Job(kid("absent"), KeyAlgorithm.SECP256K1, b"\x00" * 32)])
    with pytest.raises(KeyAlgorithmMismatch):
        hsm.sign_all([*good, Job(kid("pre-ed"), KeyAlgorithm.SECP256K1, b"\x00" * 32)])
    with pytest.raises(ValueError, match="32 bytes"):
        hsm.sign_all([*good, Job(kid("pre-k1"), KeyAlgorithm.SECP256K1, b"\x00" * 31)])
    assert made == []
    assert len(hsm.sign_all(good)) == 20 and len(made) == 20


@requires(*SECP256K1)
def test_sign_all_returns_nothing_when_one_signature_fails_the_host_check(hsm) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, kid("all-ok"), "all-ok")
    hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x05" * 32, kid("all-liar"), "all-liar")
    other = coincurve.PrivateKey(b"\x06" * 32).public_key.format(compressed=False)
    _make_the_token_lie(hsm, kid("all-liar"), KeyAlgorithm.SECP256K1, b"\x04\x41" + other)
    jobs = [Job(kid("all-liar" if i == 35 else "all-ok"), KeyAlgorithm.SECP256K1,
                hashlib.sha256(bytes([i])).digest()) for i in range(40)]
    with pytest.raises(SignatureCheckFailed) as err:
        hsm.sign_all(jobs)
    assert err.value.key_id == kid("all-liar").hex()
    # the keystore is usable afterwards: the checking thread is gone, the lock released
    assert len(hsm.sign_all(jobs[:3])) == 3
    assert not [t for t in threading.enumerate() if t.name == "coldvault-signature-check"]


# --------------------------------------------------------------------------- refusals
def test_a_missing_key_is_key_not_found(hsm) -> None:
    with pytest.raises(KeyNotFound) as err:
        hsm.find_key(kid("absent"))
    assert (err.value.key_id, err.value.token_label) == (kid("absent").hex(), hsm.token_info.label)
    with pytest.raises(KeyNotFound):
        hsm.sign_ecdsa(kid("absent"), b"\x00" * 32)
    with pytest.raises(KeyNotFound):
        hsm.sign_ed25519(kid("absent"), b"m")
    assert kid("absent") not in {k.key_id for k in hsm.list_keys()}


def test_a_wrong_pin_is_refused_without_echoing_it(keystore_backend) -> None:
    """One wrong try, then a correct login (which resets a real token's retry counter)."""
    with pytest.raises(WrongPin) as err:
        keystore_backend.open(pin="cvconf-wrong-pin")
    assert isinstance(err.value, AuthError)
    assert (err.value.role, err.value.token_label) == ("user", keystore_backend.label)
    assert "cvconf-wrong-pin" not in str(err.value)
    assert "cvconf-wrong-pin" not in repr(err.value.to_dict())
    with keystore_backend.open() as ks:
        assert ks.token_info.label == keystore_backend.label


def test_caller_mistakes_are_value_errors(hsm) -> None:
    with pytest.raises(ValueError):
        hsm.generate_key("secp256r1", kid("p256"), "p256")
    with pytest.raises(ValueError):
        hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x00" * 32, kid("zero"), "zero")
    with pytest.raises(ValueError):
        hsm.import_private_key(KeyAlgorithm.SECP256K1, N.to_bytes(32, "big"), kid("n"), "n")
    with pytest.raises(ValueError):
        hsm.import_private_key(KeyAlgorithm.ED25519, b"\x00" * 31, kid("short"), "short")
    with pytest.raises(ValueError):
        hsm.sign_ecdsa(kid("absent"), b"\x00" * 31)
    with pytest.raises(ValueError):
        hsm.random(0)
    assert {kid("p256"), kid("zero"), kid("n"), kid("short")}.isdisjoint(
        k.key_id for k in hsm.list_keys()
    )


def test_random_bytes_come_from_the_token(hsm) -> None:
    a, b = hsm.random(32), hsm.random(32)
    assert len(a) == len(b) == 32 and a != b
    assert len(hsm.random(4096)) == 4096

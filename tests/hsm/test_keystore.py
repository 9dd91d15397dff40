"""Pkcs11Keystore on a real SoftHSM2 token (no mocks): keys, signatures, attributes, errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading

import coincurve
import nacl.signing
import pytest
from pkcs11 import Mechanism

from coldvault.backends.pkcs11.errors import (
    DuplicateKey,
    EmulatedTokenRefused,
    KeyAlgorithmMismatch,
    MechanismUnsupported,
    TokenNotFound,
    UnsupportedKey,
)
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore, list_tokens
from coldvault.crypto.ed25519 import Ed25519Signature
from coldvault.crypto.paths import HARDENED
from coldvault.crypto.secp256k1 import LOW_S_MAX, SECP256K1_N, EcdsaSignature
from coldvault.errors import HardwareError
from coldvault.keys.keystore import (
    AUDIT_KEY_ID,
    IDENTITY_KEY_ID,
    KeyAdmin,
    KeyAlgorithm,
    KeyNotFound,
    Keystore,
    Signer,
    TokenInfo,
    derived_key_id,
    derived_key_label,
    held_key,
)

pytestmark = pytest.mark.lab

FP = bytes.fromhex("d34db33f")
PATH = [84 | HARDENED, 0 | HARDENED, 0 | HARDENED, 0, 5]


def _verify_host(public_key: bytes, sig: EcdsaSignature, digest: bytes) -> bool:
    return coincurve.PublicKey(public_key).verify(sig.der, digest, hasher=None)


def test_token_facts(keystore: Pkcs11Keystore, softhsm_lab, lab_config) -> None:
    info = keystore.token_info
    assert isinstance(info, TokenInfo) and info.emulated is True
    assert info.label == "coldvault-appliance"
    assert info.manufacturer == "SoftHSM project"
    assert info.model.startswith("SoftHSM")
    assert len(info.serial) == 16
    assert keystore.is_emulated is True
    tokens = list_tokens(softhsm_lab.module_path)
    assert all(isinstance(t, TokenInfo) and t.emulated for t in tokens)
    labels = {t.label for t in tokens}
    assert labels == {t.spec.label for t in lab_config.tokens}
    assert labels >= {"coldvault-appliance", "backup-site-a", "backup-site-b", "backup-site-c"}


def test_secp256k1_generated_key_signs_low_s_and_verifies(hsm: Pkcs11Keystore) -> None:
    info = hsm.generate_key(KeyAlgorithm.SECP256K1, AUDIT_KEY_ID, "audit")
    assert info.key_id == AUDIT_KEY_ID
    assert info.label == "audit"
    assert info.algorithm is KeyAlgorithm.SECP256K1
    assert len(info.public_key) == 33 and info.public_key[0] in (2, 3)
    assert hsm.find_key(AUDIT_KEY_ID) == info
    rs = set()
    # SoftHSM returns high-S about half the time: 2**-256 chance that 256 raw sigs were all low.
    for i in range(256):
        digest = hashlib.sha256(i.to_bytes(4, "big")).digest()
        sig = hsm.sign_ecdsa(AUDIT_KEY_ID, digest)
        assert isinstance(sig, EcdsaSignature) and sig.is_low_s
        assert 0 < sig.r < SECP256K1_N
        assert 0 < sig.s <= LOW_S_MAX
        assert _verify_host(info.public_key, sig, digest)
        assert len(sig.compact) == 64 and sig.der[0] == 0x30
        rs.add(sig.r)
    assert len(rs) == 256
    # non-deterministic: the same digest twice gives two different signatures
    d = b"\x42" * 32
    assert hsm.sign_ecdsa(AUDIT_KEY_ID, d) != hsm.sign_ecdsa(AUDIT_KEY_ID, d)


def test_ed25519_generated_key_verifies_with_pynacl(hsm: Pkcs11Keystore) -> None:
    info = hsm.generate_key(KeyAlgorithm.ED25519, IDENTITY_KEY_ID, "identity")
    assert info.algorithm is KeyAlgorithm.ED25519 and len(info.public_key) == 32
    verify_key = nacl.signing.VerifyKey(info.public_key)
    for message in (b"", b"x", os.urandom(1000)):
        sig = hsm.sign_ed25519(IDENTITY_KEY_ID, message)
        assert isinstance(sig, Ed25519Signature) and len(sig.raw) == 64
        assert verify_key.verify(message, sig.raw) == message
        assert sig.verify(info.public_key, message) and not sig.verify(info.public_key, b"?")


def test_imported_secp256k1_key_matches_host_public_key(hsm: Pkcs11Keystore) -> None:
    secret = bytearray(hashlib.sha256(b"coldvault test scalar").digest())
    host_public = coincurve.PrivateKey(bytes(secret)).public_key.format(compressed=True)
    key_id = derived_key_id(FP, PATH)
    label = derived_key_label(FP, PATH)
    info = hsm.import_private_key(KeyAlgorithm.SECP256K1, secret, key_id, label)
    assert info.public_key == host_public
    assert info.label == "d34db33f/84h/0h/0h/0/5"
    assert hsm.find_key(key_id).public_key == host_public
    digest = hashlib.sha256(b"spend").digest()
    for _ in range(20):
        sig = hsm.sign_ecdsa(key_id, digest)
        assert sig.s <= LOW_S_MAX
        assert _verify_host(host_public, sig, digest)


def test_imported_ed25519_key_matches_host_and_is_deterministic(hsm: Pkcs11Keystore) -> None:
    seed = hashlib.sha256(b"coldvault ed25519 seed").digest()
    host = nacl.signing.SigningKey(seed)
    info = hsm.import_private_key(KeyAlgorithm.ED25519, seed, b"sol-0", "sol/0")
    assert info.public_key == bytes(host.verify_key)
    message = b"solana message"
    assert hsm.sign_ed25519(b"sol-0", message).raw == host.sign(message).signature


def test_private_key_attributes(hsm: Pkcs11Keystore) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, b"gen-k1", "gen-k1")
    hsm.generate_key(KeyAlgorithm.ED25519, b"gen-ed", "gen-ed")
    hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x01" * 32, b"imp-k1", "imp-k1")
    for key_id in (b"gen-k1", b"gen-ed", b"imp-k1"):
        attrs = hsm.key_attributes(key_id)
        assert attrs.sensitive is True
        assert attrs.extractable is False
        assert attrs.token is True and attrs.private is True
        assert attrs.sign is True and attrs.derive is False
        info = hsm.find_key(key_id)
        assert info.sensitive is True and info.extractable is False
    for key_id in (b"gen-k1", b"gen-ed"):
        attrs = hsm.key_attributes(key_id)
        assert (attrs.always_sensitive, attrs.never_extractable, attrs.local) == (True, True, True)
    # PKCS#11: a key that once existed outside the token is neither.
    attrs = hsm.key_attributes(b"imp-k1")
    assert (attrs.always_sensitive, attrs.never_extractable, attrs.local) == (False, False, False)


def _pkcs11_tool_objects(softhsm_lab, token_label: str, pin: str) -> dict[str, dict[str, str]]:
    """Private-key objects by hex ID, as OpenSC's pkcs11-tool (an independent client) lists them."""
    out = subprocess.run(
        [
            "pkcs11-tool",
            "--module",
            softhsm_lab.module_path,
            "--token-label",
            token_label,
            "--login",
            "--pin",
            pin,
            "--list-objects",
        ],
        env=dict(os.environ, SOFTHSM2_CONF=str(softhsm_lab.conf_path)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    objects: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in out.splitlines():
        if not line.startswith(" "):
            current = {"type": line} if line.startswith("Private Key Object") else None
            continue
        if current is not None and ":" in line:
            name, value = line.strip().split(":", 1)
            current[name] = value.strip()
            if name == "ID":
                objects[value.strip()] = current
    return objects


def test_attributes_as_seen_by_pkcs11_tool(keystore, softhsm_lab, lab_config) -> None:
    keystore.generate_key(KeyAlgorithm.SECP256K1, b"tool-k1", "tool-k1")
    keystore.import_private_key(KeyAlgorithm.ED25519, b"\x07" * 32, b"tool-ed", "tool-ed")
    token = lab_config.appliance_token()
    objects = _pkcs11_tool_objects(softhsm_lab, token.label, token.user_pin)
    generated = objects[b"tool-k1".hex()]
    assert generated["type"].startswith("Private Key Object; EC")
    assert generated["Usage"] == "sign"
    access = {a.strip() for a in generated["Access"].split(",")}
    assert access == {"sensitive", "always sensitive", "never extractable", "local"}
    imported = objects[b"tool-ed".hex()]
    assert imported["type"] == "Private Key Object; EC_EDWARDS"
    assert imported["Usage"] == "sign"
    assert imported["Access"] == "sensitive"  # and, by omission, not extractable


def test_random_comes_from_the_token(hsm: Pkcs11Keystore) -> None:
    a, b = hsm.random(32), hsm.random(32)
    assert len(a) == 32 and len(b) == 32 and a != b
    assert len(hsm.random(4096)) == 4096
    with pytest.raises(ValueError):
        hsm.random(0)


def test_list_keys(hsm: Pkcs11Keystore) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, b"list-1", "list-1")
    hsm.generate_key(KeyAlgorithm.ED25519, b"list-2", "list-2")
    keys = {k.key_id: k for k in hsm.list_keys()}
    assert keys[b"list-1"].algorithm is KeyAlgorithm.SECP256K1
    assert keys[b"list-2"].algorithm is KeyAlgorithm.ED25519


def test_concurrent_threads_are_serialised(hsm: Pkcs11Keystore) -> None:
    info = hsm.generate_key(KeyAlgorithm.SECP256K1, b"threads", "threads")
    errors: list[BaseException] = []
    digest = hashlib.sha256(b"threads").digest()

    def work() -> None:
        try:
            for _ in range(50):
                assert _verify_host(info.public_key, hsm.sign_ecdsa(b"threads", digest), digest)
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ------------------------------------------------------------------------------- negatives
def test_missing_key_id(hsm: Pkcs11Keystore) -> None:
    with pytest.raises(KeyNotFound) as err:
        hsm.find_key(b"no-such-key")
    assert err.value.key_id == b"no-such-key".hex()
    assert err.value.token_label == hsm.token_info.label
    with pytest.raises(KeyNotFound):
        hsm.sign_ecdsa(b"no-such-key", b"\x00" * 32)
    with pytest.raises(KeyNotFound):
        hsm.sign_ed25519(b"no-such-key", b"m")
    assert held_key(hsm, b"no-such-key") is None  # "not held" is exactly KeyNotFound


def test_keystore_serves_both_seams(hsm: Pkcs11Keystore) -> None:
    """One object is the appliance's Signer and the ceremonies' KeyAdmin."""

    def sign_with(signer: Signer, key_id: bytes) -> EcdsaSignature:
        return signer.sign_ecdsa(key_id, b"\x07" * 32)

    def admin(keys: KeyAdmin) -> TokenInfo:
        keys.generate_key(KeyAlgorithm.SECP256K1, b"seams", "seams")
        return keys.token_info

    def both(keystore: Keystore) -> Keystore:
        return keystore

    assert admin(hsm).label == hsm.token_info.label
    info = both(hsm).find_key(b"seams")
    assert held_key(hsm, b"seams") == info
    assert sign_with(hsm, b"seams").verify(info.public_key, b"\x07" * 32)


def test_duplicate_key_id_refused(hsm: Pkcs11Keystore) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, b"dup", "dup")
    with pytest.raises(DuplicateKey) as err:
        hsm.generate_key(KeyAlgorithm.ED25519, b"dup", "dup")
    assert err.value.key_id == b"dup".hex()
    with pytest.raises(DuplicateKey):
        hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x02" * 32, b"dup", "dup")


def test_wrong_algorithm_for_key(hsm: Pkcs11Keystore) -> None:
    hsm.generate_key(KeyAlgorithm.SECP256K1, b"k1-only", "k1-only")
    hsm.generate_key(KeyAlgorithm.ED25519, b"ed-only", "ed-only")
    with pytest.raises(KeyAlgorithmMismatch) as err:
        hsm.sign_ed25519(b"k1-only", b"m")
    assert (err.value.expected, err.value.actual) == ("ed25519", "secp256k1")
    with pytest.raises(KeyAlgorithmMismatch):
        hsm.sign_ecdsa(b"ed-only", b"\x00" * 32)


def test_unknown_algorithm_and_bad_arguments_are_caller_bugs(hsm: Pkcs11Keystore) -> None:
    with pytest.raises(ValueError):
        hsm.generate_key("secp256r1", b"p256", "p256")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x00" * 32, b"zero", "zero")
    with pytest.raises(ValueError):
        hsm.import_private_key(KeyAlgorithm.ED25519, b"\x00" * 31, b"short", "short")
    hsm.generate_key(KeyAlgorithm.SECP256K1, b"digest", "digest")
    with pytest.raises(ValueError):
        hsm.sign_ecdsa(b"digest", b"\x00" * 31)


def test_key_on_unsupported_curve(keystore: Pkcs11Keystore, softhsm_lab, lab_config) -> None:
    token = lab_config.appliance_token()
    subprocess.run(
        [
            "pkcs11-tool",
            "--module",
            softhsm_lab.module_path,
            "--token-label",
            token.label,
            "--login",
            "--pin",
            token.user_pin,
            "--keypairgen",
            "--key-type",
            "EC:prime256v1",
            "--id",
            "9256",
            "--label",
            "p256",
        ],
        env=dict(os.environ, SOFTHSM2_CONF=str(softhsm_lab.conf_path)),
        capture_output=True,
        check=True,
        timeout=60,
    )
    try:
        with pytest.raises(UnsupportedKey) as err:
            keystore.find_key(bytes.fromhex("9256"))
        assert err.value.key_id == "9256"
        assert "06082a8648ce3d030107" in err.value.description  # prime256v1 OID
        assert bytes.fromhex("9256") not in {k.key_id for k in keystore.list_keys()}
    finally:
        for kind in ("privkey", "pubkey"):
            subprocess.run(
                [
                    "pkcs11-tool",
                    "--module",
                    softhsm_lab.module_path,
                    "--token-label",
                    token.label,
                    "--login",
                    "--pin",
                    token.user_pin,
                    "--delete-object",
                    "--type",
                    kind,
                    "--id",
                    "9256",
                ],
                env=dict(os.environ, SOFTHSM2_CONF=str(softhsm_lab.conf_path)),
                capture_output=True,
                check=True,
                timeout=60,
            )


def test_mechanism_the_token_lacks(keystore: Pkcs11Keystore) -> None:
    assert keystore.supports(Mechanism.ECDSA) and keystore.supports(Mechanism.EDDSA)
    assert not keystore.supports(Mechanism.SHA3_256)  # SoftHSM 2.6.1 has no SHA-3
    with pytest.raises(MechanismUnsupported) as err:
        keystore.require(Mechanism.SHA3_256, "hash with SHA-3")
    assert err.value.mechanism == "CKM_SHA3_256"
    assert err.value.token_label == "coldvault-appliance"
    assert str(err.value) == (
        "HSM token 'coldvault-appliance' does not support CKM_SHA3_256, which is needed "
        "to hash with SHA-3."
    )


def test_missing_token_label(softhsm_lab, lab_config) -> None:
    with pytest.raises(TokenNotFound) as err:
        Pkcs11Keystore.open(softhsm_lab.module_path, "no-such-token", "1234", allow_emulated=True)
    assert err.value.token_label == "no-such-token"
    assert "coldvault-appliance" in err.value.available
    assert str(err.value).startswith("No HSM token labelled 'no-such-token' is present")


def test_emulated_token_refused_without_allow_emulated(softhsm_lab, lab_config) -> None:
    token = lab_config.appliance_token()
    with pytest.raises(EmulatedTokenRefused) as err:
        Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin)
    assert err.value.manufacturer == "SoftHSM project"
    assert str(err.value).startswith("REFUSING EMULATED HSM")
    assert token.user_pin not in str(err.value)


def _swap_public_key(keystore: Pkcs11Keystore, key_id: bytes, algorithm, point_der: bytes):
    """Make the token lie: replace a key's public object with another key's point.

    This is the situation host verification exists for (a faulty or tampered HSM); it is
    built with real PKCS#11 objects on the real token, not with a mock.
    """
    from pkcs11 import Attribute, KeyType, ObjectClass

    from coldvault.backends.pkcs11.keystore import ED25519_OID_PARAMS, SECP256K1_PARAMS

    session = keystore._live()
    for obj in session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: key_id}):
        obj.destroy()
    is_k1 = algorithm is KeyAlgorithm.SECP256K1
    session.create_object(
        {
            Attribute.CLASS: ObjectClass.PUBLIC_KEY,
            Attribute.KEY_TYPE: KeyType.EC if is_k1 else KeyType.EC_EDWARDS,
            Attribute.EC_PARAMS: SECP256K1_PARAMS if is_k1 else ED25519_OID_PARAMS,
            Attribute.EC_POINT: point_der,
            Attribute.TOKEN: True,
            Attribute.VERIFY: True,
            Attribute.ID: key_id,
            Attribute.LABEL: "swapped",
        }
    )
    keystore._cache.clear()


def test_signature_failing_host_verification_is_never_returned(hsm) -> None:
    from coldvault.backends.pkcs11.errors import SignatureCheckFailed

    hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x05" * 32, b"liar-k1", "liar-k1")
    other = coincurve.PrivateKey(b"\x06" * 32).public_key.format(compressed=False)
    _swap_public_key(hsm, b"liar-k1", KeyAlgorithm.SECP256K1, b"\x04\x41" + other)
    with pytest.raises(SignatureCheckFailed) as err:
        hsm.sign_ecdsa(b"liar-k1", b"\x11" * 32)
    assert isinstance(err.value, HardwareError)
    assert err.value.algorithm == "secp256k1 ECDSA" and err.value.key_id == b"liar-k1".hex()

    hsm.import_private_key(KeyAlgorithm.ED25519, b"\x05" * 32, b"liar-ed", "liar-ed")
    other_ed = bytes(nacl.signing.SigningKey(b"\x06" * 32).verify_key)
    _swap_public_key(hsm, b"liar-ed", KeyAlgorithm.ED25519, b"\x04\x20" + other_ed)
    with pytest.raises(SignatureCheckFailed) as err:
        hsm.sign_ed25519(b"liar-ed", b"message")
    assert err.value.algorithm == "Ed25519"


def test_two_spellings_of_one_module_share_it(keystore, softhsm_lab, lab_config, tmp_path) -> None:
    """Closing a keystore opened through a symlink must not finalise the other's module."""
    link = tmp_path / "libsofthsm2-link.so"
    link.symlink_to(softhsm_lab.module_path)
    backup = next(t.spec for t in lab_config.tokens if t.spec.label == "backup-site-a")
    keystore.generate_key(KeyAlgorithm.SECP256K1, b"shared", "shared")
    with Pkcs11Keystore.open(str(link), backup.label, backup.user_pin, allow_emulated=True) as ks:
        assert ks.token_info.label == "backup-site-a"
    digest = b"\x33" * 32
    info = keystore.find_key(b"shared")
    assert _verify_host(info.public_key, keystore.sign_ecdsa(b"shared", digest), digest)


def test_second_login_to_an_open_token_is_refused(keystore, softhsm_lab, lab_config) -> None:
    """PKCS#11 login is per process: a second open would skip the PIN check, so refuse it."""
    from coldvault.backends.pkcs11.errors import TokenInUse
    from coldvault.backends.pkcs11.keystore import PinRole, init_pin, set_pin

    token = lab_config.appliance_token()
    for pin in (token.user_pin, "a-wrong-pin"):
        with pytest.raises(TokenInUse) as err:
            Pkcs11Keystore.open(softhsm_lab.module_path, token.label, pin, allow_emulated=True)
        assert err.value.token_label == token.label
    with pytest.raises(TokenInUse):
        init_pin(softhsm_lab.module_path, token.label, so_pin=token.so_pin,
                 user_pin="x" * 8, allow_emulated=True)  # fmt: skip
    with pytest.raises(TokenInUse):
        set_pin(softhsm_lab.module_path, token.label, role=PinRole.USER,
                old_pin=token.user_pin, new_pin="y" * 8, allow_emulated=True)  # fmt: skip
    assert keystore.random(8)  # the open keystore is unaffected


def test_module_that_does_not_load(tmp_path) -> None:
    from coldvault.backends.pkcs11.errors import ModuleLoadError

    bogus = tmp_path / "not-a-module.so"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(ModuleLoadError) as err:
        Pkcs11Keystore.open(str(bogus), "t", "1234")
    assert err.value.module_path == str(bogus)
    with pytest.raises(ModuleLoadError):
        list_tokens(str(tmp_path / "missing.so"))


def test_softhsm_with_a_missing_config_fails_to_initialise(softhsm_lab, tmp_path) -> None:
    code = (
        "import sys\n"
        "from coldvault.backends.pkcs11.errors import ModuleLoadError\n"
        "from coldvault.backends.pkcs11.keystore import list_tokens\n"
        "try:\n"
        "    list_tokens(sys.argv[1])\n"
        "except ModuleLoadError as err:\n"
        "    print(err.ckr, '|', err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, softhsm_lab.module_path],
        env=dict(os.environ, SOFTHSM2_CONF=str(tmp_path / "missing.conf")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("GeneralError | The PKCS#11 module ")
    assert "SOFTHSM2_CONF" in out


def test_expected_serial_pins_the_device(softhsm_lab, lab_config) -> None:
    from coldvault.backends.pkcs11.errors import WrongToken

    token = lab_config.appliance_token()
    serial = next(t.serial for t in softhsm_lab.status() if t.label == token.label)
    with pytest.raises(WrongToken) as err:
        Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                            allow_emulated=True, expected_serial="0000000000000000")  # fmt: skip
    assert (err.value.expected, err.value.actual) == ("0000000000000000", serial)
    with Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                             allow_emulated=True, expected_serial=serial) as ks:  # fmt: skip
        assert ks.token_info.serial == serial


def test_duplicate_check_uses_the_index_read_once(hsm: Pkcs11Keystore) -> None:
    """An id already on the token when the index is read is refused; one deleted through
    the keystore can be imported again (the index follows the keystore's own changes)."""
    hsm.generate_key(KeyAlgorithm.SECP256K1, b"idx-old", "idx-old")
    hsm.forget_keys()  # as if just opened: the key is known only from the token
    with pytest.raises(DuplicateKey):
        hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x09" * 32, b"idx-old", "x")
    first = hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x0a" * 32, b"idx-new", "n")
    assert hsm.find_key(b"idx-new") == first
    hsm.delete_key(b"idx-new")
    with pytest.raises(KeyNotFound):
        hsm.find_key(b"idx-new")
    again = hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x0a" * 32, b"idx-new", "n")
    assert again.public_key == first.public_key
    with pytest.raises(DuplicateKey):
        hsm.generate_key(KeyAlgorithm.ED25519, b"idx-new", "n")


def test_imported_keys_are_looked_up_from_their_handles(hsm: Pkcs11Keystore) -> None:
    """A key imported or generated by this keystore is found, signs and verifies, before and
    after the index is read again from the token."""
    imported = hsm.import_private_key(KeyAlgorithm.SECP256K1, b"\x0b" * 32, b"idx-imp", "imp")
    generated = hsm.generate_key(KeyAlgorithm.ED25519, b"idx-gen", "gen")
    for _ in range(2):
        assert hsm.find_key(b"idx-imp") == imported
        assert hsm.find_key(b"idx-gen") == generated
        sig = hsm.sign_ecdsa(b"idx-imp", b"\x12" * 32)
        assert _verify_host(imported.public_key, sig, b"\x12" * 32)
        hsm.forget_keys()

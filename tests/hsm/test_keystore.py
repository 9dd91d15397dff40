"""Pkcs11Keystore facts specific to SoftHSM2 (no mocks): emulation, OpenSC cross-checks, quirks.
The keystore contract every token must meet is tests/conformance/test_keystore.py."""

from __future__ import annotations

import os
import subprocess
import sys

import coincurve
import pytest
from pkcs11 import Mechanism

from coldvault.backends.pkcs11.errors import (
    DuplicateKey,
    EmulatedTokenRefused,
    MechanismUnsupported,
    TokenNotFound,
    UnsupportedKey,
)
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore, list_tokens
from coldvault.crypto.secp256k1 import EcdsaSignature
from coldvault.keys.keystore import KeyAlgorithm, KeyNotFound, TokenInfo

pytestmark = pytest.mark.lab



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


# ------------------------------------------------------------------------------- negatives
@pytest.mark.parametrize(
    "key_type,hex_id,named",
    [
        ("EC:prime256v1", "9256", "06082a8648ce3d030107"),  # prime256v1 OID
        # a key with no CKA_EC_PARAMS at all
        ("rsa:1024", "9257", "a RSA key"),
    ],
)
def test_key_on_unsupported_curve(
    keystore: Pkcs11Keystore, softhsm_lab, lab_config, key_type: str, hex_id: str, named: str
) -> None:
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
            key_type,
            "--id",
            hex_id,
            "--label",
            "unsupported",
        ],
        env=dict(os.environ, SOFTHSM2_CONF=str(softhsm_lab.conf_path)),
        capture_output=True,
        check=True,
        timeout=60,
    )
    try:
        with pytest.raises(UnsupportedKey) as err:
            keystore.find_key(bytes.fromhex(hex_id))
        assert err.value.key_id == hex_id
        assert named in err.value.description
        assert bytes.fromhex(hex_id) not in {k.key_id for k in keystore.list_keys()}
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
                    hex_id,
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
    # the open keystore is unaffected: it still signs, and the signature verifies
    info = keystore.generate_key(KeyAlgorithm.SECP256K1, b"still-open", "still-open")
    digest = b"\x44" * 32
    assert _verify_host(info.public_key, keystore.sign_ecdsa(b"still-open", digest), digest)


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

"""PIN handling on real SoftHSM2 tokens: wrong PINs, lockout behaviour, the init ceremony."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pkcs11 import exceptions as p11

from coldvault.backends.pkcs11.errors import (
    EmulatedTokenRefused,
    MechanismUnsupported,
    PinRejected,
    Pkcs11Error,
    TokenLocked,
    TokenNotFound,
    WrongPin,
    translate,
)
from coldvault.backends.pkcs11.keystore import PinRole, Pkcs11Keystore, init_pin, set_pin
from coldvault.errors import AuthError, HardwareError
from hardware_emulators.softhsm_lab import SoftHsmLab, TokenSpec

pytestmark = pytest.mark.lab


def _token(lab_config, label: str) -> TokenSpec:
    return next(t.spec for t in lab_config.tokens if t.spec.label == label)


def test_wrong_user_pin(softhsm_lab, lab_config) -> None:
    token = _token(lab_config, "backup-site-a")
    with pytest.raises(WrongPin) as err:
        Pkcs11Keystore.open(softhsm_lab.module_path, token.label, "wrong-pin", allow_emulated=True)
    assert isinstance(err.value, AuthError)
    assert err.value.role == "user"
    assert err.value.token_label == "backup-site-a"
    assert err.value.tries_left is None  # SoftHSM 2.6.1 reports no retry counter
    assert "wrong-pin" not in str(err.value)
    assert str(err.value) == (
        "The user PIN for HSM token 'backup-site-a' is wrong; the token does not report how "
        "many tries are left."
    )


def test_softhsm_does_not_lock_the_pin(tmp_path) -> None:
    """SoftHSM 2.6.1 sets CKF_USER_PIN_COUNT_LOW but never locks: document, don't rely on it."""
    spec = TokenSpec(label="lockout-probe", so_pin="so-pin-1", user_pin="user-pin-1")
    lab = SoftHsmLab(state_dir=tmp_path, tokens=[spec]).setup()
    # This process already initialised SoftHSM with the session lab's conf; a fresh process
    # is needed to see a second conf.  Run the probe in a subprocess.
    code = (
        "import sys\n"
        "from coldvault.backends.pkcs11.errors import WrongPin\n"
        "from coldvault.backends.pkcs11.keystore import Pkcs11Keystore\n"
        "m, label = sys.argv[1], sys.argv[2]\n"
        "for i in range(15):\n"
        "    try:\n"
        "        Pkcs11Keystore.open(m, label, 'bad-pin', allow_emulated=True)\n"
        "    except WrongPin as e:\n"
        "        assert e.tries_left is None\n"
        "with Pkcs11Keystore.open(m, label, 'user-pin-1', allow_emulated=True) as ks:\n"
        "    print('still-open', ks.token_info.label)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, lab.module_path, spec.label],
        env={**os.environ, **lab.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "still-open lockout-probe"


def test_set_and_init_pin_ceremony(softhsm_lab, lab_config) -> None:
    token = _token(lab_config, "backup-site-c")
    module = softhsm_lab.module_path
    set_pin(
        module,
        token.label,
        role=PinRole.USER,
        old_pin=token.user_pin,
        new_pin="new-user-pin",
        allow_emulated=True,
    )
    try:
        with pytest.raises(WrongPin):
            Pkcs11Keystore.open(module, token.label, token.user_pin, allow_emulated=True)
        with Pkcs11Keystore.open(module, token.label, "new-user-pin", allow_emulated=True) as ks:
            assert ks.token_info.label == token.label
        # SO resets the user PIN (C_InitPIN), e.g. after a holder forgot it.
        init_pin(
            module,
            token.label,
            so_pin=token.so_pin,
            user_pin=bytearray(b"reset-pin"),
            allow_emulated=True,
        )
        with Pkcs11Keystore.open(module, token.label, b"reset-pin", allow_emulated=True):
            pass
        with pytest.raises(WrongPin) as err:
            init_pin(
                module, token.label, so_pin="wrong-so-pin", user_pin="x" * 8, allow_emulated=True
            )
        assert err.value.role == "security-officer"
        with pytest.raises(PinRejected):
            set_pin(
                module,
                token.label,
                role=PinRole.USER,
                old_pin="reset-pin",
                new_pin="",
                allow_emulated=True,
            )
        # change the SO PIN and back
        set_pin(
            module,
            token.label,
            role=PinRole.SO,
            old_pin=token.so_pin,
            new_pin="new-so-pin",
            allow_emulated=True,
        )
        set_pin(
            module,
            token.label,
            role=PinRole.SO,
            old_pin="new-so-pin",
            new_pin=token.so_pin,
            allow_emulated=True,
        )
    finally:
        init_pin(
            module, token.label, so_pin=token.so_pin, user_pin=token.user_pin, allow_emulated=True
        )
    with Pkcs11Keystore.open(module, token.label, token.user_pin, allow_emulated=True):
        pass


def test_pin_helpers_refuse_emulated_tokens(softhsm_lab, lab_config) -> None:
    token = _token(lab_config, "backup-site-b")
    with pytest.raises(EmulatedTokenRefused):
        init_pin(softhsm_lab.module_path, token.label, so_pin=token.so_pin, user_pin="abcd1234")
    with pytest.raises(EmulatedTokenRefused):
        set_pin(
            softhsm_lab.module_path,
            token.label,
            role=PinRole.USER,
            old_pin=token.user_pin,
            new_pin="abcd1234",
        )
    with pytest.raises(TokenNotFound):
        init_pin(softhsm_lab.module_path, "nope", so_pin="x" * 8, user_pin="y" * 8)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (p11.PinIncorrect(), WrongPin),
        (p11.PinLocked(), TokenLocked),
        (p11.PinLenRange(), PinRejected),
        (p11.NoSuchToken(), TokenNotFound),
        (p11.TokenNotPresent(), TokenNotFound),
        (p11.MechanismInvalid(), MechanismUnsupported),
        (p11.DeviceRemoved(), Pkcs11Error),
        (p11.GeneralError(), Pkcs11Error),
    ],
)
def test_translation_table(exc: p11.PKCS11Error, expected: type) -> None:
    """The one translation point maps each CKR family to its coldvault error."""
    err = translate(exc, token_label="t", mechanism="CKM_X", purpose="test")
    assert type(err) is expected
    assert isinstance(err, HardwareError | AuthError)
    assert str(err).endswith(".")

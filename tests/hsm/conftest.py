"""One conformance suite over every keystore backend (STYLE.md principle 5).

Tests that take the ``hsm`` fixture run against SoftHSM always and, opt-in, against a real
PKCS#11 token.  The real run needs all of::

    COLDVAULT_REAL_HSM_MODULE   path of the vendor's PKCS#11 module
    COLDVAULT_REAL_HSM_TOKEN    token label
    COLDVAULT_REAL_HSM_PIN      user PIN
    COLDVAULT_REAL_HSM_SERIAL   the token's serial: the run refuses any other token

It creates and deletes keys (ids prefixed by the tests), so use a scratch token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

REAL_ENV = (
    "COLDVAULT_REAL_HSM_MODULE",
    "COLDVAULT_REAL_HSM_TOKEN",
    "COLDVAULT_REAL_HSM_PIN",
    "COLDVAULT_REAL_HSM_SERIAL",
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "hsm" in metafunc.fixturenames:
        backends = ["softhsm"]
        if all(os.environ.get(name) for name in REAL_ENV):
            backends.append("real")
        metafunc.parametrize("hsm", backends, indirect=True)


@pytest.fixture
def hsm(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "softhsm":
        yield request.getfixturevalue("keystore")
        return
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    module, token, pin, serial = (os.environ[name] for name in REAL_ENV)
    # Emulated tokens are refused here, and any token but the one with this serial (WrongToken).
    with Pkcs11Keystore.open(module, token, pin, expected_serial=serial) as ks:
        before = {k.key_id for k in ks.list_keys()}
        try:
            yield ks
        finally:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)

"""One appliance's trust material on the test process's lab, for the end-to-end modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coldvault.keys.pool import ProvisioningRecord
from hardware_emulators.lab import Lab, LabConfig
from hardware_emulators.trust_setup import LabTrust, setup_trust


@contextmanager
def appliance_lab(
    out: Path, lab_config: LabConfig, softhsm_lab: Any, pcsc_lab: Any,
    policy_text: Callable[[ProvisioningRecord], str],
) -> Iterator[tuple[Lab, LabTrust]]:  # fmt: skip
    """The session's SoftHSM and pcscd (one of each per process: libpcsclite and the
    PKCS#11 module are bound once per process), this module's own card states, and the
    trust material made on them with ``policy_text``. The appliance state starts empty (no
    anchor on the token); keys added to the appliance token are deleted afterwards."""
    from coldvault.backends.pkcs11.anchor import TokenAnchorStore
    from coldvault.backends.pkcs11.keystore import Pkcs11Keystore

    lab = Lab(lab_config, out / "lab")
    lab.softhsm, lab.pcsc = softhsm_lab, pcsc_lab
    token = lab_config.appliance_token()

    def open_keystore() -> Pkcs11Keystore:
        return Pkcs11Keystore.open(softhsm_lab.module_path, token.label, token.user_pin,
                                   allow_emulated=True)  # fmt: skip

    with open_keystore() as ks:
        before = {k.key_id for k in ks.list_keys()}
        TokenAnchorStore(ks).destroy()
    try:
        yield lab, setup_trust(lab, out / "trust", policy_text=policy_text)
    finally:
        for reader in range(lab_config.readers):
            lab.remove(reader)
        with open_keystore() as ks:
            for key in ks.list_keys():
                if key.key_id not in before:
                    ks.delete_key(key.key_id)
            TokenAnchorStore(ks).destroy()

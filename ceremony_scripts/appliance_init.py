"""``init-appliance``: set the HSM token PINs and create the appliance's own keys.

Keys created in the HSM (generated inside it, never imported):

* ``identity`` -- Ed25519, the appliance identity (``coldvault.keys.keystore.IDENTITY_KEY_ID``)
* ``audit``    -- secp256k1, seals the audit trail (``coldvault.keys.keystore.AUDIT_KEY_ID``)

A token that already holds keys is a *live* appliance: re-initialising it is refused unless
``--destroy-existing`` is given AND the admin quorum of the roster approves with cards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ceremony_scripts import quorum_cards
from ceremony_scripts.hsm import HsmOptions, hsm_device, hsm_options
from ceremony_scripts.runner import CeremonyRun, default_transcript_path
from ceremony_scripts.seed import common_options
from ceremony_scripts.ui import Operator
from coldvault.backends.pkcs11.keystore import PinRole, Pkcs11Keystore, init_pin, set_pin
from coldvault.errors import Refused
from coldvault.keys.keystore import AUDIT_KEY_ID, IDENTITY_KEY_ID, KeyAlgorithm

MIN_USER_PIN = 6
MIN_SO_PIN = 8


class LiveApplianceRefused(Refused):
    code = "live-appliance"

    def __init__(self, token: str, keys: int) -> None:
        super().__init__(
            f"Token {token} already holds {keys} key(s): it is a live appliance. "
            "Re-initialising needs --destroy-existing and the admin quorum (--roster)."
        )
        self.token = token
        self.keys = keys


@click.command("init-appliance")
@common_options
@hsm_options
@click.option("--destroy-existing", is_flag=True,
              help="Destroy every key on a live token (needs the admin quorum).")  # fmt: skip
@click.option("--roster", "roster_path", type=click.Path(exists=True, path_type=Path),
              help="Signed roster whose admins approve --destroy-existing.")  # fmt: skip
@click.option("--export-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("exports"), show_default=True)  # fmt: skip
def init_appliance(**kw: Any) -> None:
    """Set the appliance HSM's PINs and create its identity and audit keys."""
    op = Operator(assume_yes=kw["assume_yes"])
    opts = HsmOptions(kw["module"], kw["token"], kw["allow_emulated"])
    path = kw["transcript_path"] or default_transcript_path(Path("transcripts"), "init-appliance")
    params = {"token": opts.token, "destroy_existing": kw["destroy_existing"]}
    roster = quorum_cards.load_roster(kw["roster_path"]) if kw["roster_path"] else None
    with CeremonyRun(
        op, "init-appliance", path, actor=kw["operator_name"], parameters=params
    ) as run:
        op.step("Check the HSM", ["the HSM serial shown matches the one on the device label"])
        old_user = op.secret(f"Current HSM user PIN for token {opts.token}")
        with Pkcs11Keystore.open(
            opts.module, opts.token, old_user, allow_emulated=opts.allow_emulated
        ) as keystore:
            existing = keystore.list_keys()
            device = hsm_device(keystore)
            if keystore.is_emulated:
                op.warn(f"Token {opts.token} is EMULATED (SoftHSM): lab use only.")
        run.record("hsm-checked", {"existing_keys": len(existing)}, devices=[device])
        op.ok(f"Token {device.serial}: {len(existing)} key(s) present.")
        if existing:
            if not kw["destroy_existing"] or roster is None:
                raise LiveApplianceRefused(opts.token, len(existing))
            op.step("Admin quorum approves destroying the live keys")
            quorum_cards.collect_admin_quorum(
                op, run, roster, "init-appliance",
                {"token": opts.token, "serial": device.serial, "destroy_keys": len(existing)},
                allow_emulated=opts.allow_emulated,
            )  # fmt: skip
        op.step("Set the token PINs", ["each PIN is typed twice, hidden; nobody watches"])
        old_so = op.secret(f"Current security-officer PIN for token {opts.token}")
        new_so = op.new_pin("New security-officer PIN", min_length=MIN_SO_PIN)
        new_user = op.new_pin("New user PIN", min_length=MIN_USER_PIN)
        set_pin(opts.module, opts.token, role=PinRole.SO, old_pin=old_so, new_pin=new_so,
                allow_emulated=opts.allow_emulated)  # fmt: skip
        init_pin(opts.module, opts.token, so_pin=new_so, user_pin=new_user,
                 allow_emulated=opts.allow_emulated)  # fmt: skip
        del old_so, new_so, old_user
        run.record("pins-set", {"so_pin_changed": True, "user_pin_set": True}, devices=[device])
        op.ok("PINs set.")
        with Pkcs11Keystore.open(
            opts.module, opts.token, new_user, allow_emulated=opts.allow_emulated
        ) as keystore:
            del new_user
            if existing:
                for key in keystore.list_keys():
                    keystore.delete_key(key.key_id)
                run.record("keys-destroyed", {"count": len(existing)}, devices=[device])
                op.warn(f"{len(existing)} key(s) destroyed.")
            op.step("Generate the appliance keys inside the HSM")
            identity = keystore.generate_key(
                KeyAlgorithm.ED25519, IDENTITY_KEY_ID, "coldvault-identity"
            )
            audit = keystore.generate_key(KeyAlgorithm.SECP256K1, AUDIT_KEY_ID, "coldvault-audit")
        public = {
            "token": opts.token,
            "hsm": device.serial,
            "identity_ed25519": identity.public_key.hex(),
            "audit_secp256k1": audit.public_key.hex(),
        }
        run.record("keys-generated", public, devices=[device])
        op.table("Appliance keys", [(k, v) for k, v in public.items()])
        kw["export_dir"].mkdir(parents=True, exist_ok=True)
        out = kw["export_dir"] / "appliance-keys.json"
        out.write_text(json.dumps(public, indent=2, sort_keys=True) + "\n")
        run.record("exports-written", {"file": str(out)})
        op.step("Close the transcript")
        run.finish({"identity_ed25519": public["identity_ed25519"]})
    op.ok("Appliance initialised.")


__all__ = ["LiveApplianceRefused", "init_appliance"]

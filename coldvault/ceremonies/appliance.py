"""``init-appliance``: set the HSM token's PINs and create the appliance's own keys in it.

Keys generated inside the HSM (never imported):

* ``identity`` -- Ed25519, the appliance identity (:data:`coldvault.keys.keystore.IDENTITY_KEY_ID`)
* ``audit``    -- secp256k1, seals the audit trail (:data:`coldvault.keys.keystore.AUDIT_KEY_ID`)

A token that already holds keys is a *live* appliance: re-initialising it is refused
unless ``destroy_existing`` is chosen AND the admin quorum of the roster approves with
their cards.  Written: ``<export_dir>/appliance-keys.json`` (token, serial, public keys),
never over an existing file (refused before the token is touched).
"""

from __future__ import annotations

import json
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.ceremonies.hardware import Cards, HsmToken, hsm_device
from coldvault.ceremonies.operator import Operator, new_pin
from coldvault.ceremonies.outputs import refuse_existing, write_new
from coldvault.ceremonies.params import CeremonyParams, check_type
from coldvault.ceremonies.run import CeremonyRun, Closed
from coldvault.errors import Refused
from coldvault.keys.keystore import AUDIT_KEY_ID, IDENTITY_KEY_ID, KeyAlgorithm
from coldvault.quorum.roster import Roster

MIN_USER_PIN = 6
MIN_SO_PIN = 8
KEYS_FILE = "appliance-keys.json"
KEYS_INSTEAD = "choose another --export-dir (that file describes keys made earlier)."


class LiveApplianceRefused(Refused):
    """The token already holds keys and their destruction was not approved."""

    code = "live-appliance"

    def __init__(self, token: str, keys: int) -> None:
        super().__init__(
            f"Token {token} already holds {keys} key(s): it is a live appliance. "
            "Re-initialising needs --destroy-existing and the admin quorum (--roster)."
        )
        self.token = token
        self.keys = keys


@dataclass(frozen=True, kw_only=True)
class InitAppliance(CeremonyParams):
    """Parameters of ``init-appliance``: ``roster`` holds the admins who must approve
    ``destroy_existing`` on a live token."""

    destroy_existing: bool = False
    roster: Roster | None = None
    export_dir: Path = Path("exports")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_type("destroy_existing", self.destroy_existing, bool)
        check_type("export_dir", self.export_dir, Path)
        if self.roster is not None:
            check_type("roster", self.roster, Roster)


@dataclass(frozen=True)
class ApplianceKeys:
    """A completed ``init-appliance``: the public keys made in the HSM."""

    closed: Closed
    token: str
    hsm_serial: str
    identity_ed25519: bytes
    audit_secp256k1: bytes
    destroyed: int
    file: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            **self.closed.to_dict(),
            "token": self.token,
            "hsm": self.hsm_serial,
            "identity_ed25519": self.identity_ed25519.hex(),
            "audit_secp256k1": self.audit_secp256k1.hex(),
            "destroyed_keys": self.destroyed,
            "file": str(self.file),
        }


def init_appliance(
    op: Operator, params: InitAppliance, token: HsmToken, cards: Cards | None = None
) -> ApplianceKeys:
    """Run ``init-appliance``; ``cards`` collect the admin quorum for a live token."""
    if params.destroy_existing and params.roster is not None and cards is None:
        raise ValueError("an approved --destroy-existing needs the cards")
    label = token.label
    out = params.export_dir / KEYS_FILE
    refuse_existing([out], KEYS_INSTEAD)
    parameters = {"token": label, "destroy_existing": params.destroy_existing}
    with CeremonyRun(op, "init-appliance", params, parameters=parameters) as run:
        op.step("Check the HSM", ["the HSM serial, shown once the current user PIN is accepted, "
                                 "matches the one on the device label"])
        old_user = op.secret(f"Current HSM user PIN for token {label}")
        with closing(token.login(old_user)) as session:
            existing = session.list_keys()
            device = hsm_device(session)
            if session.token_info.emulated:
                op.warn(f"Token {label} is EMULATED (SoftHSM): lab use only.")
        run.record("hsm-checked", {"existing_keys": len(existing)}, devices=[device])
        op.ok(f"Token {device.serial}: {len(existing)} key(s) present.")
        if existing:
            if not params.destroy_existing or params.roster is None or cards is None:
                raise LiveApplianceRefused(label, len(existing))
            op.step("Admin quorum approves destroying the live keys")
            cards.ceremony_quorum(
                run, params.roster, "init-appliance",
                {"token": label, "serial": device.serial, "destroy_keys": len(existing)},
            )  # fmt: skip
        op.step("Set the token PINs", ["each PIN is typed twice, hidden; nobody watches"])
        old_so = op.secret(f"Current security-officer PIN for token {label}")
        new_so = new_pin(op, "New security-officer PIN", min_length=MIN_SO_PIN)
        new_user = new_pin(op, "New user PIN", min_length=MIN_USER_PIN)
        token.change_so_pin(old_so, new_so)
        token.init_user_pin(new_so, new_user)
        del old_so, new_so, old_user
        run.record("pins-set", {"so_pin_changed": True, "user_pin_set": True}, devices=[device])
        op.ok("PINs set.")
        with closing(token.login(new_user)) as session:
            del new_user
            if existing:
                for key in session.list_keys():
                    session.delete_key(key.key_id)
                run.record("keys-destroyed", {"count": len(existing)}, devices=[device])
                op.warn(f"{len(existing)} key(s) destroyed.")
            op.step("Generate the appliance keys inside the HSM")
            identity = session.generate_key(
                KeyAlgorithm.ED25519, IDENTITY_KEY_ID, "coldvault-identity"
            )
            audit = session.generate_key(KeyAlgorithm.SECP256K1, AUDIT_KEY_ID, "coldvault-audit")
        public = {
            "token": label,
            "hsm": device.serial,
            "identity_ed25519": identity.public_key.hex(),
            "audit_secp256k1": audit.public_key.hex(),
        }
        run.record("keys-generated", public, devices=[device])
        op.table("Appliance keys", list(public.items()))
        write_new(out, (json.dumps(public, indent=2, sort_keys=True) + "\n").encode(), KEYS_INSTEAD)
        run.record("exports-written", {"file": str(out)})
        op.step("Close the transcript")
        closed = run.finish({"identity_ed25519": public["identity_ed25519"]})
    op.ok("Appliance initialised.")
    return ApplianceKeys(
        closed, label, device.serial, identity.public_key, audit.public_key,
        len(existing), out,
    )  # fmt: skip


__all__ = ["ApplianceKeys", "InitAppliance", "LiveApplianceRefused", "init_appliance"]

"""Recovering the appliance's state directory (docs/audit.md, "Recovery").

:func:`repair_tail` -- ``coldvault audit repair-tail``: a crash in the middle of an append
leaves a torn (incomplete) last line in ``audit.jsonl`` and the appliance refuses to start.
The repair, with the HSM user PIN:

1. verifies every complete line and seal with the HSM's audit key, and checks them against
   the state anchored in the HSM (nothing anchored may be missing) and the ledger's
   sealed-through mark -- a trail that was cut or replaced is refused, nothing changed;
2. moves the torn bytes to ``audit.jsonl.torn-at-<offset>`` beside the trail (never
   deleted) and cuts them from the trail;
3. appends a ``repair`` entry (how many bytes, their SHA-256, where they went) and seals it
   with the HSM; the anchor follows the new entries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from appliance.config import ApplianceConfig
from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.errors import Refused
from coldvault.keys.keystore import AUDIT_KEY_ID
from coldvault.records import audit as auditmod
from coldvault.records.anchor import Anchor, check_trail
from coldvault.records.errors import AuditTruncated
from coldvault.records.ledger import Ledger


class TailIntact(Refused):
    """``repair-tail`` found no torn line: nothing to repair."""

    code = "audit-tail-intact"

    def __init__(self, path: str) -> None:
        super().__init__(
            f"The last line of the audit trail {path} is complete: there is no torn tail to "
            "repair, and nothing was changed."
        )
        self.path = path


@dataclass(frozen=True)
class TailRepaired:
    """What ``repair-tail`` did (public facts)."""

    trail: str
    entries_kept: int
    torn_bytes: int
    torn_sha256: str
    moved_to: str
    anchored_through: int
    repair_seq: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_keystore(cfg: ApplianceConfig, hsm_pin: str, *, allow_emulated: bool) -> Pkcs11Keystore:
    """The appliance's token as the start-up opens it (emulation needs flag and config)."""
    emulated_ok = allow_emulated and cfg.allow_emulated_hardware
    return Pkcs11Keystore.open(
        str(cfg.hsm_module), cfg.hsm_token_label, hsm_pin, allow_emulated=emulated_ok
    )


def anchored_log(
    path: Any, keystore: Pkcs11Keystore, anchor: Anchor | None, **kw: Any
) -> tuple[auditmod.AuditLog, list[Anchor]]:
    """The trail opened for appending, sealed by the HSM, each entry anchored in it."""
    anchors = TokenAnchorStore(keystore)
    state = [anchor or Anchor()]
    public_key = keystore.find_key(AUDIT_KEY_ID).public_key

    def anchor_entry(entry: auditmod.AuditEntry) -> None:
        state[0] = state[0].with_entry(entry.seq, entry.hash, sealed=entry.event == "seal")
        anchors.save(state[0].to_bytes())

    log = auditmod.AuditLog(
        path, sealer=lambda digest: keystore.sign_ecdsa(AUDIT_KEY_ID, digest),
        audit_public_key=public_key, on_append=anchor_entry, **kw,
    )  # fmt: skip
    return log, state


def read_token_anchor(keystore: Pkcs11Keystore) -> Anchor | None:
    raw = TokenAnchorStore(keystore).load()
    return None if raw is None else Anchor.from_bytes(raw)


def repair_tail(cfg: ApplianceConfig, hsm_pin: str, *, allow_emulated: bool) -> TailRepaired:
    """``coldvault audit repair-tail`` (see the module docstring)."""
    path = cfg.audit_log
    with open_keystore(cfg, hsm_pin, allow_emulated=allow_emulated) as keystore:
        public_key = keystore.find_key(AUDIT_KEY_ID).public_key
        report, torn = auditmod.verify_prefix(path, public_key)
        if not torn:
            raise TailIntact(str(path))
        ledger = Ledger(cfg.ledger_db) if cfg.ledger_db.exists() else None
        try:
            expected = ledger.audit_sealed_through() if ledger is not None else None
            found = -1 if report.sealed_through is None else report.sealed_through
            if expected is not None and found < expected:
                raise AuditTruncated(report.entries, expected, found)
            anchor = read_token_anchor(keystore)
            if anchor is not None:
                check_trail(anchor, path, entries=report.entries,
                            sealed_through=report.sealed_through, allow_torn_tail=True)  # fmt: skip
            on_seal = ledger.set_audit_sealed_through if ledger is not None else None
            log, _ = anchored_log(path, keystore, anchor, recover_torn_tail=True, on_seal=on_seal)
            with log:
                moved = log.torn_file
                if moved is None:  # torn a moment ago, complete now: nothing was moved
                    raise TailIntact(str(path))
                digest = hashlib.sha256(moved.read_bytes()).hexdigest()
                entry = log.append("repair", {
                    "what": "torn audit tail", "torn_bytes": log.recovered_bytes,
                    "torn_sha256": digest, "moved_to": moved.name,
                    "entries_kept": report.entries,
                    "anchored_through": anchor.audit_seq if anchor is not None else -1,
                })  # fmt: skip
                log.seal()
        finally:
            if ledger is not None:
                ledger.close()
    return TailRepaired(
        str(path), report.entries, log.recovered_bytes, digest, str(moved),
        anchor.audit_seq if anchor is not None else -1, entry.seq,
    )  # fmt: skip


__all__ = ["TailIntact", "TailRepaired", "anchored_log", "open_keystore", "repair_tail"]

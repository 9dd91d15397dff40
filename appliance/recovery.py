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

:func:`reset_state` -- ``coldvault state reset``: the state directory is genuinely lost (the
disk died, the trail is damaged beyond its tail) and no backup of it exists.  With the HSM
user PIN and the admin quorum of the roster in force:

1. the signed documents are verified as at start-up (roster chain from the pinned genesis,
   policy, wallet registry) and must not be older than the versions anchored in the HSM;
   a state directory that still checks out against the anchor is refused (nothing lost),
   and one whose only fault is a torn last line is sent to ``repair-tail``;
2. the admins approve this reset with their cards (the one card-approval loop; the
   ceremony transcript records it), and the approvals are checked again here;
3. what is left of the old state directory is renamed ``<state_dir>.lost-<UTC time>``
   (never deleted); a new one is made: a ledger with the documents in force, and a trail
   whose first entry, ``state-reset``, names the previous anchor (entry, hash, seal), the
   directory moved aside and the approving cards with their signatures; it is sealed by
   the HSM and the anchor starts again from it.

Limits and velocity totals of the lost trail cannot be recovered: the day's totals start
from zero, which is why the admin quorum decides (docs/audit.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.daemon import load_trust
from ceremony_scripts.quorum_cards import ceremony_token
from coldvault.backends.pkcs11.anchor import TokenAnchorStore
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.ceremonies.hardware import Cards
from coldvault.ceremonies.operator import Operator, confirm_or_cancel
from coldvault.ceremonies.params import CeremonyParams
from coldvault.ceremonies.run import CeremonyRun
from coldvault.config import ApplianceConfig
from coldvault.errors import ColdvaultError, Refused
from coldvault.keys.keystore import AUDIT_KEY_ID
from coldvault.quorum.approvals import Tally
from coldvault.quorum.errors import ThresholdNotMet
from coldvault.quorum.roster import Role
from coldvault.records import audit as auditmod
from coldvault.records.anchor import Anchor, check_configs, check_roster_chain, check_trail
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


class StateNotLost(Refused):
    """``state reset`` on a state directory that still checks out (or only has a torn
    tail): nothing is lost, nothing was changed."""

    code = "state-not-lost"

    def __init__(self, state_dir: str, instead: str) -> None:
        super().__init__(
            f"The state directory {state_dir} is not lost: {instead} Nothing was changed."
        )
        self.state_dir = state_dir


@dataclass(frozen=True)
class StateReset:
    """What ``state reset`` did (public facts)."""

    state_dir: str
    moved_to: str
    previous_anchor_seq: int
    previous_anchor_head: str
    approved_by: tuple[str, ...]
    transcript: str
    reset_head: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "approved_by": list(self.approved_by)}


def _refuse_if_not_lost(cfg: ApplianceConfig, public_key: bytes, anchor: Anchor | None) -> None:
    """:class:`StateNotLost` when the trail verifies against the anchor as it is, or would
    after ``repair-tail``."""
    path = cfg.audit_log
    if not path.exists():
        if anchor is None or anchor.audit_seq < 0:
            raise StateNotLost(str(cfg.state_dir), "there is no trail and the HSM anchors none.")
        return
    try:
        report, torn = auditmod.verify_prefix(path, public_key)
        if anchor is not None:
            check_trail(anchor, path, entries=report.entries,
                        sealed_through=report.sealed_through, allow_torn_tail=True)  # fmt: skip
    except ColdvaultError:
        return  # damaged or behind the anchor: lost
    if torn:
        raise StateNotLost(str(cfg.state_dir), "only its last line is torn; run "
                           "'coldvault audit repair-tail' instead.")  # fmt: skip
    raise StateNotLost(str(cfg.state_dir), "its audit trail verifies against the HSM anchor.")


def _move_aside(state_dir: Path) -> Path | None:
    if not state_dir.exists():
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = state_dir.with_name(f"{state_dir.name}.lost-{stamp}")
    state_dir.rename(aside)
    return aside


def reset_state(
    cfg: ApplianceConfig,
    hsm_pin: str,
    op: Operator,
    cards: Cards,
    *,
    params: CeremonyParams,
    reason: str,
    allow_emulated: bool,
) -> StateReset:
    """``coldvault state reset`` (see the module docstring)."""
    if not reason.strip():
        raise ValueError("a state reset needs its reason")
    with open_keystore(cfg, hsm_pin, allow_emulated=allow_emulated) as keystore:
        public_key = keystore.find_key(AUDIT_KEY_ID).public_key
        anchor = read_token_anchor(keystore)
        _refuse_if_not_lost(cfg, public_key, anchor)
        trust = load_trust(cfg)
        roster, configs = trust.roster, trust.configs
        if anchor is not None:
            check_configs(anchor, configs)
            check_roster_chain(anchor, trust.roster_chain)
        previous = anchor or Anchor()
        parameters: dict[str, Any] = {
            "appliance_id": cfg.appliance_id,
            "token_serial": keystore.token_info.serial,
            "state_dir": str(cfg.state_dir),
            "reason": reason,
            "anchored_seq": previous.audit_seq,
            "anchored_head": previous.audit_head,
            **{f"{c.kind}_version": c.version for c in configs},
        }
        with CeremonyRun(op, "state-reset", params, parameters=parameters) as run:
            op.step("Check what is lost", [
                "the state directory cannot be restored from a backup",
                "the day's limit totals start again from zero after the reset",
            ])  # fmt: skip
            op.table("State reset", [(k, str(v)) for k, v in parameters.items()])
            confirm_or_cancel(op, "Reset the appliance state as shown?")
            op.step("Admin quorum approves the reset")
            token = ceremony_token("state-reset", run.log.ceremony_id, roster.appliance_id,
                                   parameters)  # fmt: skip
            approvals = cards.admin_signatures(run, roster, token, what="the state reset")
            tally = Tally(roster, Role.ADMIN, token, roster.admin_threshold)
            for approval in approvals:
                tally.add(approval.card_serial, approval.signature)
            if not tally.satisfied:
                raise ThresholdNotMet("the state reset", tally.count, roster.admin_threshold)
            op.step("Start a new state directory")
            aside = _move_aside(cfg.state_dir)
            run.record("state-moved-aside", {"moved_to": str(aside) if aside else ""})
            cfg.state_dir.mkdir(parents=True)
            with Ledger(cfg.ledger_db) as ledger:
                for active in configs:
                    ledger.set_active_config(active)
                log, state = anchored_log(
                    cfg.audit_log, keystore, Anchor().with_configs(configs),
                    on_seal=ledger.set_audit_sealed_through,
                )
                with log:
                    log.append("state-reset", {
                        "reason": reason, "ceremony_id": run.log.ceremony_id,
                        "previous_anchor_seq": previous.audit_seq,
                        "previous_anchor_head": previous.audit_head,
                        "previous_sealed_through": previous.sealed_through,
                        "moved_to": str(aside) if aside else "",
                        "approvals": [{"card_serial": a.card_serial, "holder": a.holder,
                                       "signature": a.signature.hex()} for a in approvals],
                        **{f"{c.kind}_version": c.version for c in configs},
                    })  # fmt: skip
                    seal = log.seal()
            run.record("state-reset", {"audit_head": seal.hash, "anchored_seq": seal.seq})
            op.ok(f"New state directory {cfg.state_dir}; the old one is {aside}.")
            closed = run.finish({"audit_head": seal.hash})
    return StateReset(
        str(cfg.state_dir), str(aside) if aside else "", previous.audit_seq,
        previous.audit_head, tuple(a.card_serial for a in approvals), str(closed.transcript),
        seal.hash,
    )  # fmt: skip


__all__ = [
    "StateNotLost",
    "StateReset",
    "TailIntact",
    "TailRepaired",
    "anchored_log",
    "open_keystore",
    "repair_tail",
    "reset_state",
]

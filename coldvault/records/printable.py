"""The printable record of a ceremony: a document model built from its transcript.

:func:`transcript_record` reads and verifies a transcript (:mod:`coldvault.records.transcript`)
and returns a :class:`PrintableRecord`: everything a paper copy for the archive, the
witnesses and the auditors must show, as plain values. Rendering it as PDF or HTML is the
front end's job (``ceremony_scripts/printing.py``); nothing here draws.

Every ceremony writes a transcript, so one builder covers the key ceremonies, the backup
record (``backup``: the custodian <-> share table), the drill report (``drill``) and the
policy / wallet registry / address book / roster approvals (``approve-document``).

A record holds public data only -- the transcript already passed the secret filter -- and
never a cut value: addresses, descriptors and hashes are carried whole.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldvault.records.errors import TranscriptError
from coldvault.records.transcript import (
    CLOSE_STEP,
    WITNESS_STEP,
    VerifyResult,
    read_entries,
    verify,
)

#: The step a ceremony records the numbers of the tamper-evident bags sealed in it.
BAGS_STEP = "tamper-bags"
#: The step a drill records each share offered in (target, custodians, site, outcome).
SHARE_STEP = "share-offered"
#: The mark printed across every page of a record that is not a completed, verified ceremony.
ABORTED_MARK = "ABORTED \u2014 INCOMPLETE"
OPEN_MARK = "INCOMPLETE \u2014 NOT CLOSED"
UNVERIFIED_MARK = "NOT VERIFIED \u2014 DO NOT RELY ON"
#: Longest value given a QR code (a QR code of version 40 at level M holds 2,331 bytes).
MAX_QR_CHARS = 1500

#: data keys whose text values a coordinator or auditor re-enters: each gets a QR code
_QR_KEYS = {
    "descriptor": "descriptor",
    "key_origin": "xpub with origin",
    "xpub": "xpub",
    "ur_output": "ur:crypto-output",
    "ur_account": "ur:crypto-account",
    "cosigner_key": "cosigner key",
    "genesis_sha256": "genesis roster SHA-256",
    "roster_sha256": "roster SHA-256",
    "audit_secp256k1": "audit public key",
    "identity_ed25519": "appliance identity key",
    "record_sha256": "backup record SHA-256",
    "report_sha256": "drill report SHA-256",
    "plan_sha256": "backup plan SHA-256",
}
#: data keys holding a list of addresses
_ADDRESS_KEYS = ("first_addresses", "addresses")

_SUMMARIES = {
    "init-appliance": "The appliance HSM token was initialised: new security-officer and user "
    "PINs were set and the appliance's identity and audit keys were generated inside the HSM.",
    "enrol-cards": "Smart cards were enrolled: each card generated its own signing key, and the "
    "admins signed the roster of card holders.",
    "generate-seed": "A seed was generated offline from HSM, operating-system and dice entropy, "
    "backed up and used to import the signing key pool into the HSM.",
    "provision": "The seed was rebuilt from its backup in memory and a key pool was imported "
    "into the HSM.",
    "extend-pool": "The key pool in the HSM was extended with more keys.",
    "approve-document": "The admin quorum approved a signed document (roster, policy, wallet "
    "registry or address book) with their cards.",
    "revoke-card": "A card was revoked from the roster with the admin quorum's approval.",
    "replace-card": "A card was replaced in the roster with the admin quorum's approval.",
    "backup": "The seed was split into shares, each sealed to a key that never leaves its "
    "site's HSM or custodian's card, written and read back through its own target.",
    "card-unblock": "A card holder's blocked or forgotten user PIN was replaced with a new one "
    "on their card (RESET RETRY COUNTER), authorised by the card's admin PIN or its resetting "
    "code. No PIN or code is recorded.",
    "card-change-pin": "A card's user or admin PIN was changed with the current one. No PIN is "
    "recorded.",
    "card-set-reset-code": "A card's resetting code was set with the admin PIN, so that the "
    "holder can unblock their user PIN without an admin. The code is not recorded.",
    "drill": "A restore drill rebuilt the seed in memory from the surviving shares of a lost-"
    "site scenario, compared it with the registered wallets and wiped it.",
}


@dataclass(frozen=True)
class Participant:
    """A person named in the ceremony, with what they did (each gets a signature line)."""

    name: str
    role: str
    card_serial: str = ""
    site: str = ""


@dataclass(frozen=True)
class QrValue:
    """A public value to re-enter elsewhere, printed whole and as a QR code."""

    label: str
    value: str


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class PrintableRecord:
    """One printable record (see the module docstring)."""

    title: str
    ceremony: str
    ceremony_id: str
    status: str  # "completed", "aborted", "open" or "not verified"
    mark: str  # "" for a completed, verified ceremony; else printed across every page
    summary: tuple[str, ...]
    participants: tuple[Participant, ...]
    equipment: tuple[tuple[str, str], ...]  # (kind, serial)
    bags: tuple[str, ...]
    custodians: Table | None
    shares: Table | None  # a drill's shares offered, each with its outcome
    facts: tuple[tuple[str, str], ...]
    qr_values: tuple[QrValue, ...]
    steps: Table
    verification: tuple[tuple[str, str], ...]
    source: str

    @property
    def complete(self) -> bool:
        return not self.mark


# -- building ---------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _walk(data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every (key, value) in ``data``, at any depth (lists of objects included)."""
    for key, value in data.items():
        yield key, value
        if isinstance(value, Mapping):
            yield from _walk(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    yield from _walk(item)


def _qr_values(entries: list[dict[str, Any]]) -> list[QrValue]:
    found: list[QrValue] = []
    seen: set[str] = set()

    def add(label: str, value: str) -> None:
        if value and value not in seen and len(value) <= MAX_QR_CHARS:
            seen.add(value)
            found.append(QrValue(label, value))

    for entry in entries:
        if entry["step"] == WITNESS_STEP:
            continue
        for key, value in _walk(entry["data"]):
            if key in _QR_KEYS and isinstance(value, str):
                add(_QR_KEYS[key], value)
            elif key in _ADDRESS_KEYS and isinstance(value, list):
                for address in value:
                    if isinstance(address, str):
                        add("address", address)
        if entry["step"] in ("document-reviewed", "document-approved"):
            kind = _text(entry["data"].get("kind")) or "document"
            add(f"{kind} SHA-256", _text(entry["data"].get("sha256")))
    return found


def _participants(entries: list[dict[str, Any]]) -> list[Participant]:
    people: dict[tuple[str, str, str], Participant] = {}

    def add(person: Participant) -> None:
        people.setdefault((person.name, person.role, person.card_serial), person)

    operator = entries[0]["actor"] if entries else ""
    if operator:
        add(Participant(operator, "operator"))
    for entry in entries:
        data, step = entry["data"], entry["step"]
        holder = _text(data.get("holder"))
        serial = _text(data.get("card_serial"))
        site = _text(data.get("site"))
        if step == "card-enrolled" and holder:
            add(Participant(holder, f"card holder ({_text(data.get('role'))})", serial, site))
        elif step in ("admin-approval", "roster-approval") and holder:
            add(Participant(holder, "admin approver", serial, site))
        elif step == WITNESS_STEP and holder:
            add(Participant(holder, f"witness ({_text(data.get('role'))})", serial))
        elif step == "card-presented":  # a card without a name still gets a signature line
            add(Participant(holder, "card holder", serial))
        elif step == "room-checked" and data.get("confirmed_by"):
            add(Participant(_text(data["confirmed_by"]), "room check"))
    return list(people.values())


def _equipment(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found: dict[tuple[str, str], None] = {}
    for entry in entries:
        for device in entry["devices"]:
            if isinstance(device, Mapping):
                found[(_text(device.get("kind")), _text(device.get("serial")))] = None
        data = entry["data"]
        if entry["step"] == "target-enrolled":
            if data.get("kind") == "hsm":
                found[("hsm", f"{_text(data.get('label'))}:{_text(data.get('serial'))}")] = None
            elif data.get("kind") == "card":
                found[("card", _text(data.get("card")))] = None
    return list(found)


def _custodians(entries: list[dict[str, Any]]) -> Table | None:
    """The custodian <-> share table of a backup or of a seed's paper shares: target, who
    holds it, site, medium, sealed share, read back."""
    rows: dict[str, dict[str, str]] = {}
    for entry in entries:
        data, step = entry["data"], entry["step"]
        target = _text(data.get("target"))
        if not target or step not in (
            "target-enrolled", "share-written", "paper-share-shown", "share-read-back",
        ):  # fmt: skip
            continue
        row = rows.setdefault(target, {"site": _text(data.get("site")), "custodians": "",
                                       "medium": "", "sealed": "", "read": "no"})  # fmt: skip
        named = data.get("custodians")
        if isinstance(named, list) and named:
            row["custodians"] = ", ".join(_text(n) for n in named)
        if step == "target-enrolled":
            if data.get("kind") == "hsm":
                label, serial = _text(data.get("label")), _text(data.get("serial"))
                row["medium"] = f"HSM token {label} ({serial})"
            else:
                row["medium"] = f"card {_text(data.get('card'))}"
        elif step == "share-written":
            row["sealed"] = _text(data.get("blob_sha256"))
        elif step == "paper-share-shown":
            row["medium"], row["read"] = "paper (words written by the custodian)", "n/a"
        else:
            row["read"] = "yes"
    if not rows:
        return None
    return Table(
        "Custodians and shares (public data only)",
        ("share target", "custodians", "site", "held on", "sealed share SHA-256", "read back"),
        tuple((t, r["custodians"], r["site"], r["medium"], r["sealed"], r["read"])
              for t, r in rows.items()),  # fmt: skip
    )


def _shares_offered(entries: list[dict[str, Any]]) -> Table | None:
    """A drill's shares: each target offered, who holds it, where, and what happened."""
    rows = []
    for entry in entries:
        if entry["step"] != SHARE_STEP:
            continue
        data = entry["data"]
        custodians = data.get("custodians")
        rows.append((
            _text(data.get("target")),
            ", ".join(_text(c) for c in custodians) if isinstance(custodians, list) else "",
            _text(data.get("site")), _text(data.get("held_on")), _text(data.get("position")),
            _text(data.get("outcome")),
        ))  # fmt: skip
    if not rows:
        return None
    return Table(
        "Shares offered in the drill (public data only)",
        ("share target", "custodians", "site", "held on", "share", "outcome"),
        tuple(rows),
    )


_FACT_KEYS = (
    "master_fingerprint", "version", "kind", "sha256", "roster_sha256", "record_sha256",
    "report_sha256", "passed", "rebuilt_fingerprint", "scenario", "plan", "set_identifier",
    "reason", "admin_threshold", "appliance_id", "token", "imported", "key_count", "approvals",
    "threshold", "credential", "authorised_by", "result", "user_pin_tries", "admin_pin_tries",
    "reset_code_tries",
)  # fmt: skip


def _facts(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    facts: dict[str, str] = {}
    for entry in entries:
        if entry["step"] in ("open", WITNESS_STEP):
            continue
        for key, value in entry["data"].items():
            if key in _FACT_KEYS and isinstance(value, str | int | bool):
                facts[key.replace("_", " ")] = _text(value)
    return list(facts.items())


def _bags(entries: list[dict[str, Any]]) -> list[str]:
    bags: list[str] = []
    for entry in entries:
        if entry["step"] == BAGS_STEP:
            bags += [_text(b) for b in entry["data"].get("bags", []) if _text(b)]
    return bags


def _summary(ceremony: str, status: str, entries: list[dict[str, Any]]) -> list[str]:
    lines = [_SUMMARIES.get(ceremony, f"A {ceremony} ceremony.")]
    close = next((e for e in entries if e["step"] == CLOSE_STEP), None)
    if status == "completed":
        lines.append("The ceremony completed; its transcript is closed.")
    elif status == "aborted":
        reason = _text(close["data"].get("reason")) if close else ""
        lines.append(
            "THE CEREMONY WAS ABORTED and did not complete"
            + (f" (reason: {reason})." if reason else ".")
            + " Nothing in this record may be relied on as the ceremony's result."
        )
    elif status == "open":
        lines.append(
            "THE TRANSCRIPT WAS NEVER CLOSED: the ceremony stopped before its end. "
            "Nothing in this record may be relied on as the ceremony's result."
        )
    else:
        lines.append(
            "THE TRANSCRIPT DID NOT VERIFY: it was changed after it was written, or is damaged. "
            "Do not rely on this record; check the original file."
        )
    for entry in entries:
        data = entry["data"]
        if entry["step"] == "report-written":
            verdict = "PASSED" if data.get("passed") else "FAILED"
            lines.append(f"The drill {verdict}.")
        elif entry["step"] == "document-reviewed":
            kind = _text(data.get("kind")) or "document"
            lines.append(f"The {kind} document reviewed: {_text(data.get('file'))}, "
                         f"SHA-256 {_text(data.get('sha256'))}.")
            changes = data.get("changes")
            if isinstance(changes, list):
                lines += [f"Change: {_text(c)}" for c in changes]
    return lines


def _verification(result: VerifyResult | None, error: str, path: Path) -> list[tuple[str, str]]:
    rows = [("file", str(path))]
    if result is None:
        return [*rows, ("result", f"NOT VERIFIED: {error}")]
    rows += [
        ("result", f"VERIFIED: {result.entries} entries, hash chain intact, status "
                   f"{result.status}"),
        ("final hash (signed by witnesses)", result.final_hash or "(none: never closed)"),
        ("last entry hash", result.last_hash),
        ("witness signatures", f"{len(result.witnesses)} checked"),
        ("check again with", f"coldvault transcript verify {path}"),
    ]  # fmt: skip
    return rows


def transcript_record(path: Path, *, roster: Any = None) -> PrintableRecord:
    """The printable record of the transcript at ``path`` (read and verified here;
    ``roster`` as for :func:`coldvault.records.transcript.verify`).

    A transcript that does not verify still gives a record -- of what the file says -- marked
    NOT VERIFIED on every page; a file that cannot be read at all raises
    :class:`~coldvault.records.errors.TranscriptError`."""
    path = Path(path)
    result: VerifyResult | None
    try:
        result, error = verify(path, roster=roster), ""
    except TranscriptError as exc:
        result, error = None, exc.message
    entries = read_entries(path)
    first = entries[0]
    ceremony, ceremony_id = _text(first.get("ceremony")), _text(first.get("ceremony_id"))
    if result is None:
        status, mark = "not verified", UNVERIFIED_MARK
    else:
        status = result.status
        mark = {"completed": "", "aborted": ABORTED_MARK}.get(status, OPEN_MARK)
    steps = Table(
        "Steps",
        ("#", "time (UTC)", "step", "actor", "devices"),
        tuple(
            (
                str(e["index"]), _text(e["timestamp"]), _text(e["step"]), _text(e["actor"]),
                ", ".join(f"{_text(d.get('kind'))} {_text(d.get('serial'))}"
                          for d in e["devices"] if isinstance(d, Mapping)),
            )
            for e in entries
        ),
    )  # fmt: skip
    qr_values = _qr_values(entries)
    if result is not None and result.final_hash:
        qr_values.append(QrValue("final transcript hash", result.final_hash))
    return PrintableRecord(
        title=f"coldvault ceremony record: {ceremony}",
        ceremony=ceremony,
        ceremony_id=ceremony_id,
        status=status,
        mark=mark,
        summary=tuple(_summary(ceremony, status, entries)),
        participants=tuple(_participants(entries)),
        equipment=tuple(_equipment(entries)),
        bags=tuple(_bags(entries)),
        custodians=_custodians(entries),
        shares=_shares_offered(entries),
        facts=tuple(_facts(entries)),
        qr_values=tuple(qr_values),
        steps=steps,
        verification=tuple(_verification(result, error, path)),
        source=str(path),
    )


def parse_bags(text: str) -> tuple[str, ...]:
    """Bag numbers as typed: separated by commas or spaces; ``none`` or nothing for none."""
    items = [b.strip() for b in text.replace(",", " ").split()]
    if [b.lower() for b in items] in ([], ["none"], ["-"]):
        return ()
    return tuple(dict.fromkeys(items))


__all__ = [
    "ABORTED_MARK",
    "BAGS_STEP",
    "OPEN_MARK",
    "SHARE_STEP",
    "UNVERIFIED_MARK",
    "Participant",
    "PrintableRecord",
    "QrValue",
    "Table",
    "parse_bags",
    "transcript_record",
]

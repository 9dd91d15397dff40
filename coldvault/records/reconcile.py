"""What the verified audit trail says was signed, and the ledger checked against it.

The ledger (SQLite) is a convenience copy: whoever can write to the state directory can
change it. The audit trail is hash-chained, sealed by the HSM and anchored in it
(:mod:`coldvault.records.anchor`), so per-day totals for the policy's limits come from the
trail (:class:`TrailTotals`) and the ledger must agree with it (:func:`check_ledger`).

A request counts as signed when the trail holds its ``signature`` entry; its movements are
the ones of its ``review`` entry (external movements only: change is not spent), counted on
the UTC day of the ``signature`` entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from coldvault.errors import IntegrityError
from coldvault.records.audit import AUDIT
from coldvault.records.chain import walk
from coldvault.records.ledger import Ledger

__all__ = ["LedgerDisagrees", "SignedRequest", "TrailTotals", "check_ledger"]

_CHANGE = "change"


class LedgerDisagrees(IntegrityError):
    """The ledger does not match the verified audit trail (edited, deleted or replaced)."""

    code = "ledger-disagrees"

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The ledger does not agree with the verified audit trail: {reason}. The appliance "
            "refuses to start; restore the ledger from its backup or follow the lost-state "
            "recovery in docs/appliance.md."
        )
        self.reason = reason


@dataclass(frozen=True)
class SignedRequest:
    digest: str
    wallet: str
    day: str  # UTC date of the signature entry, YYYY-MM-DD
    spent: tuple[tuple[str, int], ...]  # (asset, base units) of the external movements
    seq: int  # the signature entry


@dataclass
class TrailTotals:
    """Signed requests and per-day totals, fed entry by entry from a verified trail."""

    signed: dict[str, SignedRequest] = field(default_factory=dict)
    _reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    _by_fingerprint: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_trail(cls, path: Path) -> TrailTotals:
        totals = cls()
        if path.exists():
            for line in walk(path, AUDIT):
                totals.observe(line.entry)
        return totals

    def observe(self, entry: Mapping[str, Any]) -> None:
        """Take one (verified) audit entry into account."""
        event, fields = entry["event"], entry["fields"]
        if event == "review":
            self._reviews[str(fields["digest"])] = dict(fields)
            self._by_fingerprint[str(fields["fingerprint"])] = str(fields["digest"])
        elif event == "signature":
            digest = str(fields.get("sha256") or self._by_fingerprint.get(
                str(fields.get("fingerprint")), ""))
            review = self._reviews.get(digest)
            if review is None:
                return
            spent = tuple(
                (str(m["asset"]), int(m["amount"]))
                for m in review.get("movements", ()) if m.get("kind") != _CHANGE
            )  # fmt: skip
            self.signed[digest] = SignedRequest(
                digest, str(review["wallet"]), str(entry["time"])[:10], spent, int(entry["seq"])
            )

    def day_totals(self, wallet: str, day: date | None = None) -> dict[str, int]:
        """Base units signed per asset from ``wallet`` on ``day`` (UTC; default today)."""
        wanted = (day or datetime.now(UTC).date()).isoformat()
        out: dict[str, int] = {}
        for req in self.signed.values():
            if req.wallet == wallet and req.day == wanted:
                for asset, amount in req.spent:
                    out[asset] = out.get(asset, 0) + amount
        return out

    def all_totals(self) -> dict[tuple[str, str], int]:
        """Everything signed, per (wallet, asset), over all days."""
        out: dict[tuple[str, str], int] = {}
        for req in self.signed.values():
            for asset, amount in req.spent:
                out[(req.wallet, asset)] = out.get((req.wallet, asset), 0) + amount
        return out


def check_ledger(ledger: Ledger, trail: TrailTotals, *, repair: bool = True) -> list[str]:
    """Refuse a ledger that lost or invented signed requests or whose totals differ.

    With ``repair``, a request the trail shows signed but the ledger still has as
    ``approved`` (a crash between the ``signature`` entry and the ledger update) is completed
    in the ledger; the digests completed are returned so the caller can audit the repair.
    Without it (an auditor's read-only check) that is reported as a disagreement."""
    in_ledger = ledger.signed_digests()
    repaired: list[str] = []
    for digest in sorted(set(trail.signed) - in_ledger):
        if repair and ledger.status(bytes.fromhex(digest)) == "approved":
            ledger.mark_signed(bytes.fromhex(digest))
            repaired.append(digest)
        else:
            raise LedgerDisagrees(f"request {digest[:16]} is signed in the trail but not in it")
    extra = ledger.signed_digests() - set(trail.signed)
    if extra:
        raise LedgerDisagrees(
            f"it shows {len(extra)} signed request(s) the trail does not, e.g. "
            f"{sorted(extra)[0][:16]}"
        )
    mine = ledger.all_totals()
    theirs = trail.all_totals()
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, 0) != theirs.get(key, 0):
            wallet, asset = key
            raise LedgerDisagrees(
                f"its total for {wallet} {asset} is {mine.get(key, 0)}, the trail's is "
                f"{theirs.get(key, 0)}"
            )
    return repaired

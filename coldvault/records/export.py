"""The reconciliation export: the ledger's movement rows for one client, as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime

from coldvault.errors import ConfigError

STATUSES = ("received", "approved", "signed", "refused")


class BadTimeBound(ConfigError):
    code = "bad-time"

    def __init__(self, text: str) -> None:
        super().__init__(
            f"{text[:40]!r} is not an ISO-8601 date (2026-11-22) or date-time (2026-11-22T18:00Z)."
        )
        self.text = text[:40]


@dataclass(frozen=True)
class MovementRow:
    """One line of the reconciliation export."""

    client: str
    wallet: str
    fingerprint: str
    request_digest: str
    chain: str
    network: str
    request_kind: str
    status: str
    time: str  # signed_at for signed requests, else received_at
    index: int
    movement_kind: str
    asset: str
    amount: int
    destination: str
    note: str
    request_fee: int | None


EXPORT_COLUMNS = tuple(MovementRow.__dataclass_fields__)


def iso_utc(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and Z; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TimeBound = datetime | date | str | None


def _bound(value: TimeBound, *, default: str) -> str:
    """A query bound: ``None`` is ``default``; a ``str`` is ISO-8601 (date or date-time,
    UTC unless it names an offset); a date means 00:00 UTC of that day."""
    if value is None:
        return default
    if isinstance(value, str):
        text = value
        try:
            value = (
                datetime.fromisoformat(text)
                if "T" in text or " " in text
                else date.fromisoformat(text)
            )
        except ValueError as exc:
            raise BadTimeBound(text) from exc
    if isinstance(value, datetime):
        return iso_utc(value)
    return value.isoformat() + "T00:00:00.000000Z"


def _cell(value: object) -> object:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def query_movements(
db: sqlite3.Connection,
    client: str,
    since: TimeBound = None,
    until: TimeBound = None,
    *,
    statuses: Iterable[str] = ("signed",),
) -> list[MovementRow]:
    """The rows of :meth:`coldvault.records.ledger.Ledger.movements` (bounds and order as documented
    there), read from the ledger database ``db``."""
    wanted = tuple(statuses)
    if not wanted or any(s not in STATUSES for s in wanted):
        raise ValueError(f"statuses must be among {STATUSES}")
    rows = db.execute(
        "SELECT r.client, r.wallet, r.fingerprint, r.digest, r.chain, r.network, r.kind,"
        " r.status, COALESCE(r.signed_at, r.received_at) AS t, m.idx, m.kind, m.asset,"
        " m.amount, m.destination, m.note, r.fee"
        " FROM requests r JOIN movements m ON m.request_digest = r.digest"
        " WHERE r.client = ? AND r.status IN (SELECT value FROM json_each(?))"
        " AND t >= ? AND t < ?"
        " ORDER BY t, r.digest, m.idx",
        (
            client,
            json.dumps(wanted),
            _bound(since, default=""),
            _bound(until, default="9999-12-31T23:59:59.999999Z"),
        ),
    ).fetchall()
    return [
        MovementRow(
            client=r[0],
            wallet=r[1],
            fingerprint=r[2],
            request_digest=r[3],
            chain=r[4],
            network=r[5],
            request_kind=r[6],
            status=r[7],
            time=r[8],
            index=r[9],
            movement_kind=r[10],
            asset=r[11],
            amount=int(r[12]),
            destination=r[13],
            note=r[14],
            request_fee=None if r[15] is None else int(r[15]),
        )
        for r in rows
    ]


def format_movements(rows: Iterable[MovementRow], fmt: str = "csv") -> str:
    """The reconciliation export as text: ``"csv"`` (header row, RFC 4180, formula-like
    text cells prefixed with ``'``) or ``"json"`` (a list of objects, amounts as
    decimal strings so no JSON reader rounds them)."""
    if fmt == "json":
        items = []
        for r in rows:
            d = asdict(r)
            d["amount"] = str(r.amount)
            d["request_fee"] = None if r.request_fee is None else str(r.request_fee)
            items.append(d)
        return json.dumps(items, indent=2, sort_keys=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(EXPORT_COLUMNS)
        for r in rows:
            writer.writerow([_cell(v) if v is not None else "" for v in asdict(r).values()])
        return out.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; use 'csv' or 'json'")

"""The request ledger: SQLite records of requests, consumed approvals and daily totals.

One file (stdlib ``sqlite3``, WAL journal, ``synchronous=FULL``, foreign keys on); the schema
version is ``PRAGMA user_version`` and migrations run forward only (schema in docs/audit.md).
Amounts are stored as decimal text: wei do not fit SQLite's 64-bit integers.

The ledger is the appliance's :class:`coldvault.quorum.approvals.ReplayGuard` (approvals are
single-use), the source of per-day totals for :meth:`coldvault.policy.Policy.evaluate`
(UTC days, counted when a request is signed), and the per-client movements export for
reconciliation (:meth:`Ledger.export_movements`, CSV or JSON, built by
:mod:`coldvault.records.export`).
"""

from __future__ import annotations

import difflib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from coldvault.errors import ConfigError, InputError, Refused
from coldvault.quorum.approvals import Approval
from coldvault.quorum.documents import ConfigVersion, check_not_rolled_back
from coldvault.quorum.errors import ApprovalReplayed
from coldvault.records.export import (
    MovementRow,
    TimeBound,
    format_movements,
    iso_utc,
    query_movements,
)
from coldvault.requests.base import MovementKind, Review

__all__ = [
    "SCHEMA_VERSION",
    "DuplicateRequest",
    "InvalidTransition",
    "Ledger",
    "LedgerNotFound",
    "LedgerSchemaError",
    "UnknownClient",
]

SCHEMA_VERSION = 1

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE requests (
        digest TEXT PRIMARY KEY,            -- hex SHA-256 of the request bytes
        fingerprint TEXT NOT NULL,
        wallet TEXT NOT NULL,
        client TEXT NOT NULL,
        chain TEXT NOT NULL,
        network TEXT NOT NULL,
        kind TEXT NOT NULL,
        fee TEXT,                           -- base units, decimal
        fee_rate REAL,                      -- sat/vB (Bitcoin)
        status TEXT NOT NULL CHECK (status IN ('received','approved','signed','refused')),
        required_approvals INTEGER,
        policy_version INTEGER,
        reason TEXT,
        received_at TEXT NOT NULL,
        approved_at TEXT,
        signed_at TEXT,
        refused_at TEXT
    );
    CREATE INDEX requests_client_signed ON requests (client, signed_at);
    CREATE TABLE movements (
        request_digest TEXT NOT NULL REFERENCES requests (digest) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,
        asset TEXT NOT NULL,
        amount TEXT NOT NULL,               -- base units, decimal
        destination TEXT NOT NULL,
        note TEXT NOT NULL,
        PRIMARY KEY (request_digest, idx)
    );
    CREATE TABLE approvers (
        request_digest TEXT NOT NULL REFERENCES requests (digest) ON DELETE CASCADE,
        card_serial TEXT NOT NULL,
        holder TEXT NOT NULL,
        site TEXT NOT NULL,
        PRIMARY KEY (request_digest, card_serial)
    );
    CREATE TABLE consumed_approvals (
        approval_id TEXT PRIMARY KEY,       -- hex, coldvault.quorum.approvals token or approval id
        request_digest TEXT NOT NULL,
        consumed_at TEXT NOT NULL
    );
    CREATE TABLE daily_totals (
        day TEXT NOT NULL,                  -- UTC date, YYYY-MM-DD
        wallet TEXT NOT NULL,
        asset TEXT NOT NULL,
        total TEXT NOT NULL,                -- base units, decimal
        PRIMARY KEY (day, wallet, asset)
    );
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
}


class LedgerSchemaError(ConfigError):
    code = "ledger-schema"

    def __init__(self, found: int) -> None:
        super().__init__(
            f"The ledger has schema version {found}, not the {SCHEMA_VERSION} this software "
            "knows; refusing to open it."
        )
        self.found = found


class LedgerNotFound(ConfigError):
    code = "ledger-not-found"

    def __init__(self, path: str) -> None:
        super().__init__(f"The ledger {path} does not exist.")
        self.path = path


class LedgerUnreadable(ConfigError):
    """The ledger file is not an SQLite database, is damaged, or is another program's."""

    code = "ledger-unreadable"

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            f"The ledger {path} {problem}; it was left unchanged (restore it from a backup, "
            "or see docs/audit.md)."
        )
        self.path = path
        self.problem = problem


class UnknownClient(InputError):
    """An export names a client the ledger has never seen (a typo must not look like a
    quiet day: an empty export with exit 0)."""

    code = "ledger-unknown-client"

    def __init__(self, client: str, known: Sequence[str]) -> None:
        close = difflib.get_close_matches(client, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        listed = ", ".join(repr(k) for k in known) if known else "none yet"
        super().__init__(
            f"The ledger has no request of client {client!r}.{hint} Clients in the ledger: "
            f"{listed}."
        )
        self.client = client


class DuplicateRequest(Refused):
    code = "duplicate-request"

    def __init__(self, fingerprint: str, signed_at: str) -> None:
        super().__init__(
            f"Request {fingerprint} was already signed at {signed_at}; it is not signed twice."
        )
        self.fingerprint = fingerprint
        self.signed_at = signed_at


class InvalidTransition(Refused):
    code = "invalid-transition"

    def __init__(self, digest: str, status: str, wanted: str) -> None:
        super().__init__(f"Request {digest[:16]} is {status}; it cannot become {wanted}.")
        self.digest = digest
        self.status = status
        self.wanted = wanted


class Ledger:
    def __init__(
        self,
        path: Path | str,
        *,
        now: Callable[[], datetime] | None = None,
        read_only: bool = False,
    ) -> None:
        """Open (creating and migrating unless ``read_only``) the ledger at ``path``.

        ``read_only=True`` is for exports and audits beside a running appliance (WAL lets
        readers in while the appliance writes); it never creates or migrates."""
        self.path = Path(path)
        self._now = now or (lambda: datetime.now(UTC))
        try:
            self._open(read_only)
        except sqlite3.DatabaseError as exc:  # a file that is not a SQLite database
            raise LedgerUnreadable(str(self.path), str(exc)) from None

    def _open(self, read_only: bool) -> None:
        if read_only:
            if not self.path.exists():
                raise LedgerNotFound(str(self.path))
            uri = self.path.resolve().as_uri() + "?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
            self._check_readable()
            found = self.schema_version
            if found != SCHEMA_VERSION:
                self._db.close()
                raise LedgerSchemaError(found)
            return
        created = not self.path.exists()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        if created:
            os.chmod(self.path, 0o640)
        else:
            self._check_readable()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # ------------------------------------------------------------------ plumbing
    def _check_readable(self) -> None:
        """Refuse, before anything is written, a file that is not an intact ledger."""
        try:
            verdict = self._db.execute("PRAGMA quick_check").fetchone()
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            tables = {
                row[0]
                for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except sqlite3.DatabaseError as exc:
            self._db.close()
            problem = (
                "is not an SQLite database"
                if "not a database" in str(exc)
                else (f"is damaged ({exc})")
            )
            raise LedgerUnreadable(str(self.path), problem) from None
        if verdict is None or verdict[0] != "ok":
            self._db.close()
            detail = " ".join(str(verdict[0] if verdict else "no answer").split())
            detail = detail.replace("*** in database main *** ", "")
            raise LedgerUnreadable(str(self.path), f"is damaged ({detail[:200]})")
        if version == 0 and tables:
            self._db.close()
            raise LedgerUnreadable(
                str(self.path), "is an SQLite database of another program, not a ledger"
            )

    def _migrate(self) -> None:
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            self._db.close()
            raise LedgerSchemaError(found)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            with self._tx():
                for statement in _MIGRATIONS[version].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {int(version)}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests
    def record_received(self, review: Review) -> None:
        """Record (or re-open) a request; a request already signed is refused."""
        digest = review.request_digest.hex()
        now = iso_utc(self._now())
        with self._tx() as db:
            row = db.execute(
                "SELECT status, signed_at FROM requests WHERE digest = ?", (digest,)
            ).fetchone()
            if row is not None and row[0] == "signed":
                raise DuplicateRequest(review.fingerprint, row[1])
            db.execute("DELETE FROM requests WHERE digest = ?", (digest,))
            db.execute(
                "INSERT INTO requests (digest, fingerprint, wallet, client, chain, network, kind,"
                " fee, fee_rate, status, received_at) VALUES (?,?,?,?,?,?,?,?,?,'received',?)",
                (
                    digest, review.fingerprint, review.wallet, review.client, str(review.chain),
                    review.network, review.kind,
                    None if review.fee is None else str(review.fee), review.fee_rate, now,
                ),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO movements VALUES (?,?,?,?,?,?,?)",
                [
                    (digest, i, str(m.kind), m.asset, str(m.amount), m.destination, m.note)
                    for i, m in enumerate(review.movements)
                ],
            )

    def _status(self, db: sqlite3.Connection, digest: str) -> str:
        row = db.execute("SELECT status FROM requests WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise ValueError(f"request {digest[:16]} was never recorded")
        return str(row[0])

    def mark_approved(
        self,
        request_digest: bytes,
        approvals: Sequence[Approval],
        *,
        required: int,
        policy_version: int,
    ) -> None:
        digest = request_digest.hex()
        with self._tx() as db:
            status = self._status(db, digest)
            if status != "received":
                raise InvalidTransition(digest, status, "approved")
            db.execute(
                "UPDATE requests SET status='approved', approved_at=?, required_approvals=?,"
                " policy_version=? WHERE digest=?",
                (iso_utc(self._now()), required, policy_version, digest),
            )
            db.executemany(
                "INSERT INTO approvers VALUES (?,?,?,?)",
                [(digest, a.card_serial, a.holder, a.site) for a in approvals],
            )

    def mark_signed(self, request_digest: bytes) -> None:
        """Mark signed and add the external movements to today's (UTC) totals, atomically."""
        digest = request_digest.hex()
        moment = self._now()
        with self._tx() as db:
            status = self._status(db, digest)
            if status != "approved":
                raise InvalidTransition(digest, status, "signed")
            wallet = db.execute("SELECT wallet FROM requests WHERE digest=?", (digest,)).fetchone()[
                0
            ]
            rows = db.execute(
                "SELECT asset, amount FROM movements WHERE request_digest=? AND kind != ?",
                (digest, str(MovementKind.CHANGE)),
            ).fetchall()
            day = moment.astimezone(UTC).date().isoformat()
            for asset, amount in rows:
                current = db.execute(
                    "SELECT total FROM daily_totals WHERE day=? AND wallet=? AND asset=?",
                    (day, wallet, asset),
                ).fetchone()
                total = int(amount) + (int(current[0]) if current else 0)
                db.execute(
                    "INSERT OR REPLACE INTO daily_totals VALUES (?,?,?,?)",
                    (day, wallet, asset, str(total)),
                )
            db.execute(
                "UPDATE requests SET status='signed', signed_at=? WHERE digest=?",
                (iso_utc(moment), digest),
            )

    def mark_refused(self, request_digest: bytes, reason: str) -> None:
        digest = request_digest.hex()
        with self._tx() as db:
            status = self._status(db, digest)
            if status not in ("received", "approved"):
                raise InvalidTransition(digest, status, "refused")
            db.execute(
                "UPDATE requests SET status='refused', refused_at=?, reason=? WHERE digest=?",
                (iso_utc(self._now()), reason[:500], digest),
            )

    def status(self, request_digest: bytes) -> str | None:
        row = self._db.execute(
            "SELECT status FROM requests WHERE digest=?", (request_digest.hex(),)
        ).fetchone()
        return None if row is None else str(row[0])

    def day_totals(self, wallet: str, day: date | None = None) -> dict[str, int]:
        """Base units signed per asset from ``wallet`` on ``day`` (UTC; default today)."""
        day = day or self._now().astimezone(UTC).date()
        rows = self._db.execute(
            "SELECT asset, total FROM daily_totals WHERE day=? AND wallet=?",
            (day.isoformat(), wallet),
        )
        return {asset: int(total) for asset, total in rows}

    def signed_digests(self) -> set[str]:
        """Hex digests of every request the ledger has as signed."""
        rows = self._db.execute("SELECT digest FROM requests WHERE status='signed'")
        return {str(row[0]) for row in rows}

    def unfinished(self) -> set[str]:
        """Hex digests of requests left ``received`` or ``approved`` (a run that stopped)."""
        rows = self._db.execute(
            "SELECT digest FROM requests WHERE status IN ('received','approved')"
        )
        return {str(row[0]) for row in rows}

    def all_totals(self) -> dict[tuple[str, str], int]:
        """The daily totals summed over all days, per (wallet, asset)."""
        out: dict[tuple[str, str], int] = {}
        for wallet, asset, total in self._db.execute(
            "SELECT wallet, asset, total FROM daily_totals"
        ):
            key = (str(wallet), str(asset))
            out[key] = out.get(key, 0) + int(total)
        return out

    # ------------------------------------------------------------------ replay guard
    def is_consumed(self, approval_id: bytes) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM consumed_approvals WHERE approval_id=?", (approval_id.hex(),)
        ).fetchone()
        return row is not None

    def consume(self, approval_ids: Sequence[bytes], *, request_digest: bytes) -> None:
        """Record approval ids atomically; :class:`ApprovalReplayed` if any was used before."""
        now = iso_utc(self._now())
        try:
            with self._tx() as db:
                db.executemany(
                    "INSERT INTO consumed_approvals VALUES (?,?,?)",
                    [(i.hex(), request_digest.hex(), now) for i in approval_ids],
                )
        except sqlite3.IntegrityError as exc:
            row = self._db.execute(
                "SELECT fingerprint FROM requests WHERE digest=?", (request_digest.hex(),)
            ).fetchone()
            raise ApprovalReplayed("", row[0] if row else request_digest.hex()[:16]) from exc

    # ------------------------------------------------------------------ active configuration
    def set_active_config(self, active: ConfigVersion) -> None:
        """Record the configuration version now in force; a lower version (or the same
        version with other content) than the recorded one is refused (``ConfigRollback``)."""
        with self._tx() as db:
            check_not_rolled_back(active, self._config(db, active.kind))
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                (f"config:{active.kind}", f"{active.version}:{active.sha256.hex()}"),
            )

    def active_config(self, kind: str) -> ConfigVersion | None:
        return self._config(self._db, kind)

    @staticmethod
    def _config(db: sqlite3.Connection, kind: str) -> ConfigVersion | None:
        row = db.execute("SELECT value FROM meta WHERE key=?", (f"config:{kind}",)).fetchone()
        if row is None:
            return None
        version, digest = str(row[0]).split(":")
        return ConfigVersion(kind, int(version), bytes.fromhex(digest))

    # ------------------------------------------------------------------ audit anchor
    def set_audit_sealed_through(self, seq: int) -> None:
        """Remember the highest sealed audit seq (for ``audit.verify(expect_sealed_through=)``)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('audit_sealed_through', ?)", (str(seq),)
            )

    def audit_sealed_through(self) -> int | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='audit_sealed_through'").fetchone()
        return None if row is None else int(row[0])

    # ------------------------------------------------------------------ export
    def movements(
        self,
        client: str,
        since: TimeBound = None,
        until: TimeBound = None,
        *,
        statuses: Iterable[str] = ("signed",),
    ) -> list[MovementRow]:
        """Movements of ``client``'s requests in ``[since, until)`` (signing time for signed
        requests, receipt time otherwise), oldest first. Bounds: datetime, date (00:00 UTC),
        ISO-8601 text (:class:`BadTimeBound` if unreadable), or ``None`` (unbounded)."""
        return query_movements(self._db, client, since, until, statuses=statuses)

    def clients(self) -> list[str]:
        """Every client with at least one request in the ledger, sorted."""
        rows = self._db.execute("SELECT DISTINCT client FROM requests ORDER BY client")
        return [str(row[0]) for row in rows]

    def export_movements(
        self,
        client: str,
        since: TimeBound = None,
        until: TimeBound = None,
        fmt: str = "csv",
        *,
        statuses: Iterable[str] = ("signed",),
    ) -> str:
        """The reconciliation export as text: ``"csv"`` (header row, RFC 4180, formula-like
        text cells prefixed with ``'``) or ``"json"`` (a list of objects, amounts as
        decimal strings so no JSON reader rounds them). A client the ledger has never seen
        is :class:`UnknownClient`."""
        known = self.clients()
        if client not in known:
            raise UnknownClient(client, known)
        return format_movements(self.movements(client, since, until, statuses=statuses), fmt)

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from coldvault.quorum.approvals import ApprovalSession, ApprovalToken
from coldvault.quorum.errors import ApprovalReplayed
from coldvault.records.export import EXPORT_COLUMNS
from coldvault.records.ledger import (
    SCHEMA_VERSION,
    DuplicateRequest,
    InvalidTransition,
    Ledger,
    LedgerSchemaError,
)
from coldvault.requests.base import Chain, Movement, MovementKind

from .conftest import make_review

WEI = 10**18


class Clock:
    def __init__(self) -> None:
        self.t = datetime(2026, 11, 22, 23, 59, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t


def signed(ledger: Ledger, review, cards=None) -> None:
    ledger.record_received(review)
    ledger.mark_approved(review.request_digest, [], required=2, policy_version=7)
    ledger.mark_signed(review.request_digest)


def test_schema_and_pragmas(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        assert ledger._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert ledger._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db = sqlite3.connect(tmp_path / "l.db")
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(LedgerSchemaError) as info:
        Ledger(tmp_path / "l.db")
    assert info.value.found == 99


def test_lifecycle_and_daily_totals_by_utc_day(tmp_path: Path) -> None:
    clock = Clock()
    with Ledger(tmp_path / "l.db", now=clock) as ledger:
        r1 = make_review()
        ledger.record_received(r1)
        assert ledger.status(r1.request_digest) == "received"
        with pytest.raises(InvalidTransition):
            ledger.mark_signed(r1.request_digest)
        ledger.mark_approved(r1.request_digest, [], required=3, policy_version=7)
        ledger.mark_signed(r1.request_digest)
        assert ledger.status(r1.request_digest) == "signed"
        assert ledger.day_totals("acme-btc-cold") == {"BTC": 50_000_000}  # change not counted
        with pytest.raises(DuplicateRequest):
            ledger.record_received(r1)
        with pytest.raises(InvalidTransition):
            ledger.mark_refused(r1.request_digest, "late")
        clock.t += timedelta(minutes=2)  # next UTC day
        r2 = make_review(request_digest=b"\x02" * 32)
        signed(ledger, r2)
        assert ledger.day_totals("acme-btc-cold") == {"BTC": 50_000_000}
        assert ledger.day_totals("acme-btc-cold", date(2026, 11, 22)) == {"BTC": 50_000_000}
        r3 = make_review(request_digest=b"\x03" * 32)
        signed(ledger, r3)
        assert ledger.day_totals("acme-btc-cold") == {"BTC": 100_000_000}
        with pytest.raises(ValueError):
            ledger.mark_signed(b"\x09" * 32)


def test_big_wei_amounts(tmp_path: Path) -> None:
    review = make_review(
        chain=Chain.ETHEREUM, network="1", kind="eth-transaction", wallet="globex-eth",
        client="globex", fee=10**16, fee_rate=None,
        movements=(Movement(MovementKind.EXTERNAL, "ETH", 40 * WEI, "0x" + "11" * 20),),
    )  # fmt: skip
    with Ledger(tmp_path / "l.db") as ledger:
        signed(ledger, review)
        signed(ledger, make_review(**{**review.__dict__, "request_digest": b"\x05" * 32}))
        assert ledger.day_totals("globex-eth") == {"ETH": 80 * WEI}


def test_refused_request_can_be_resubmitted(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        r = make_review()
        ledger.record_received(r)
        ledger.mark_refused(r.request_digest, "policy: per-day-limit")
        assert ledger.status(r.request_digest) == "refused"
        ledger.record_received(r)
        assert ledger.status(r.request_digest) == "received"


def test_replay_guard_persists_across_reopen(tmp_path: Path, cards) -> None:
    review = make_review()
    roster = cards.roster()
    token = ApprovalToken.for_review(review, policy_version=7, roster=roster, required_approvals=2)
    sigs = [(c.serial, c.sign(token.to_bytes())) for c in cards.approvers[:2]]
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.record_received(review)
        s = ApprovalSession(roster, token, guard=ledger)
        for serial, sig in sigs:
            s.add(serial, sig)
        approvals = s.consume()
        ledger.mark_approved(review.request_digest, approvals, required=2, policy_version=7)
        with pytest.raises(ApprovalReplayed):
            ledger.consume([token.token_id], request_digest=review.request_digest)
    with Ledger(tmp_path / "l.db") as ledger:  # after a restart
        s = ApprovalSession(roster, token, guard=ledger)
        with pytest.raises(ApprovalReplayed):
            s.add(*sigs[0])
        assert ledger.is_consumed(token.approval_id("APR-1"))
        assert not ledger.is_consumed(token.approval_id("APR-2"))


def test_audit_anchor(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db") as ledger:
        assert ledger.audit_sealed_through() is None
        ledger.set_audit_sealed_through(41)
        assert ledger.audit_sealed_through() == 41


def test_export_csv_and_json(tmp_path: Path) -> None:
    clock = Clock()
    with Ledger(tmp_path / "l.db", now=clock) as ledger:
        clock.t -= timedelta(minutes=5)
        signed(ledger, make_review())
        clock.t += timedelta(minutes=1)
        other = make_review(client="globex", wallet="g", request_digest=b"\x07" * 32)
        signed(ledger, other)
        pending = make_review(request_digest=b"\x08" * 32)
        ledger.record_received(pending)
        evil = make_review(
            request_digest=b"\x06" * 32,
            movements=(Movement(MovementKind.EXTERNAL, "BTC", 1, "bc1q", note="=HYPERLINK(1)"),),
        )
        clock.t += timedelta(minutes=1)
        signed(ledger, evil)
        since, until = date(2026, 11, 22), date(2026, 11, 23)
        rows = ledger.movements("acme", since, until)
        assert [(r.index, r.movement_kind, r.amount) for r in rows] == [
            (0, "external", 50_000_000), (1, "change", 1_000_000), (0, "external", 1),
        ]  # fmt: skip
        assert {r.status for r in rows} == {"signed"}
        assert len(ledger.movements("acme", since, until, statuses=("received",))) == 2
        assert ledger.movements("acme", date(2026, 11, 23), date(2026, 11, 24)) == []

        text = ledger.export_movements("acme", since, until, "csv")
        parsed = list(csv.reader(io.StringIO(text)))
        assert tuple(parsed[0]) == EXPORT_COLUMNS and len(parsed) == 4
        assert parsed[1][EXPORT_COLUMNS.index("amount")] == "50000000"
        assert parsed[3][EXPORT_COLUMNS.index("note")] == "'=HYPERLINK(1)"

        items = json.loads(ledger.export_movements("acme", since, until, "json"))
        assert items[0]["amount"] == "50000000" and items[0]["client"] == "acme"
        assert items[0]["request_fee"] == "5000"
        assert all(i["client"] == "acme" for i in items)
        with pytest.raises(ValueError):
            ledger.export_movements("acme", since, until, "xml")


def test_read_only_export_beside_a_writer(tmp_path: Path) -> None:
    from coldvault.records.ledger import LedgerNotFound

    with pytest.raises(LedgerNotFound):
        Ledger(tmp_path / "none.db", read_only=True)
    assert not (tmp_path / "none.db").exists()
    writer = Ledger(tmp_path / "l.db", now=Clock())
    signed(writer, make_review())
    reader = Ledger(tmp_path / "l.db", read_only=True)
    rows = reader.movements("acme", date(2026, 11, 22), date(2026, 11, 23))
    assert len(rows) == 2
    with pytest.raises(sqlite3.OperationalError):  # read-only really is
        reader.record_received(make_review(request_digest=b"\x04" * 32))
    reader.close()
    writer.close()


def test_active_config_versions_never_go_back(tmp_path: Path) -> None:
    from coldvault.quorum.documents import ConfigRollback, ConfigVersion

    with Ledger(tmp_path / "l.db") as ledger:
        assert ledger.active_config("policy") is None
        ledger.set_active_config(ConfigVersion("policy", 7, b"\x07" * 32))
        ledger.set_active_config(ConfigVersion("policy", 7, b"\x07" * 32))  # same: fine
        ledger.set_active_config(ConfigVersion("roster", 2, b"\x02" * 32))
        with pytest.raises(ConfigRollback):
            ledger.set_active_config(ConfigVersion("policy", 6, b"\x06" * 32))
        with pytest.raises(ConfigRollback):
            ledger.set_active_config(ConfigVersion("policy", 7, b"\x08" * 32))
    with Ledger(tmp_path / "l.db") as ledger:  # survives a restart
        assert ledger.active_config("policy") == ConfigVersion("policy", 7, b"\x07" * 32)
        assert ledger.active_config("roster") == ConfigVersion("roster", 2, b"\x02" * 32)


def test_export_bounds_as_text_or_open(tmp_path: Path) -> None:
    from coldvault.records.export import BadTimeBound

    with Ledger(tmp_path / "l.db", now=Clock()) as ledger:  # signed 2026-11-22T23:59Z
        signed(ledger, make_review())
        assert len(ledger.movements("acme")) == 2
        assert len(ledger.movements("acme", since="2026-11-22", until="2026-11-23")) == 2
        assert len(ledger.movements("acme", since="2026-11-22T23:59:00Z")) == 2
        assert ledger.movements("acme", until="2026-11-22T23:58:59") == []  # naive = UTC
        assert ledger.movements("acme", since="2026-11-23T07:00:00+08:00") == [
            r for r in ledger.movements("acme") if r.time >= "2026-11-22T23:00"
        ]
        assert ledger.export_movements("acme", fmt="json").count('"amount"') == 2
        with pytest.raises(BadTimeBound):
            ledger.movements("acme", since="yesterday")


def test_export_of_an_unknown_client_is_an_error_not_an_empty_file(tmp_path: Path) -> None:
    from coldvault.errors import EXIT_BAD_INPUT, exit_status
    from coldvault.records.ledger import UnknownClient

    with Ledger(tmp_path / "l.db", now=Clock()) as ledger:
        signed(ledger, make_review())
        assert ledger.clients() == ["acme"]
        with pytest.raises(UnknownClient, match="Did you mean 'acme'") as err:
            ledger.export_movements("acmee")
        assert err.value.client == "acmee" and exit_status(err.value) == EXIT_BAD_INPUT
        assert ledger.export_movements("acme").count("\n") == 3  # header and two movements


@pytest.mark.parametrize("read_only", [True, False])
def test_a_file_that_is_not_a_ledger_is_bad_input(tmp_path: Path, read_only: bool) -> None:
    from coldvault.errors import EXIT_BAD_INPUT, exit_status
    from coldvault.records.ledger import LedgerUnreadable

    bad = tmp_path / "ledger.sqlite3"
    content = b"not a database" * 100
    bad.write_bytes(content)
    with pytest.raises(LedgerUnreadable) as err:
        Ledger(bad, read_only=read_only)
    assert err.value.code == "ledger-unreadable" and exit_status(err.value) == EXIT_BAD_INPUT
    assert str(bad) in err.value.message
    assert bad.read_bytes() == content  # nothing written

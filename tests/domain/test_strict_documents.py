"""Strict documents: every TOML/JSON file coldvault reads goes through coldvault.schema.

Each bad input is refused with one sentence naming the place: a misspelt key names the
nearest declared one, a number out of range (NaN, infinity, negative, zero where zero means
nothing, a boolean for an integer) names its range, non-UTF-8 text and deep nesting are
refused before any parser recursion, and a ledger that is not an intact SQLite ledger is
refused without being changed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from coldvault import schema
from coldvault.backup.drill import ScenarioInvalid, parse_scenario
from coldvault.backup.errors import PlanInvalid
from coldvault.backup.plan import parse_plan
from coldvault.errors import ConfigError
from coldvault.policy import PolicyInvalid, parse_policy
from coldvault.quorum.documents import (
    SignedDocument,
    SignedDocumentInvalid,
    approvals_path,
    load_signed_document,
    write_signed_document,
)
from coldvault.quorum.roster import Roster, RosterInvalid
from coldvault.records.ledger import Ledger, LedgerUnreadable
from coldvault.requests.wallets import parse_wallets
from tests.backup.plans import LAB_PLAN

EXAMPLE = (Path(__file__).parent / "policy_example.toml").read_text()


def no_proofs(*_args: str) -> bool:
    return True


# -- the checker itself ------------------------------------------------------------------------
SPEC = schema.Table(
    {
        "fps": schema.Number(positive=True, maximum=100),
        "count": schema.Number(integer=True),
        "rate": schema.Number(maximum=1),
        "on": schema.Flag(),
        "wallet": schema.Items(schema.Table({"max_fee_rate": schema.Number()})),
    }
)


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("fps = 0", "", "fps must be a finite number greater than 0 and at most 100, not 0"),
        ("fps = nan", "", "fps must be a finite number greater than 0 and at most 100, not nan"),
        ("fps = -inf", "", "fps must be a finite number greater than 0 and at most 100, not -inf"),
        ("count = true", "", "count must be an integer of at least 0, not true"),
        ("count = 1.5", "", "count must be an integer of at least 0, not 1.5"),
        ("count = -3", "", "count must be an integer of at least 0, not -3"),
        ("rate = 1.01", "", "rate must be a finite number between 0 and 1, not 1.01"),
        ("on = 1", "", "on must be true or false, not 1"),
        ("fsp = 3", "", "unknown key 'fsp' (did you mean fps?)"),
        ("zzz = 3", "", "unknown key 'zzz' (known keys: count, fps, on, rate, wallet)"),
        (
            "[[wallet]]\nmax_fee_rte = 2",
            "wallet[0]",
            "unknown key 'max_fee_rte' (did you mean max_fee_rate?)",
        ),
        (
            "[[wallet]]\nmax_fee_rate = nan",
            "wallet[0]",
            "max_fee_rate must be a finite number of at least 0, not nan",
        ),
        ("wallet = 3", "", "wallet must be a list, not 3"),
        ("count = " + "[" * 40 + "]" * 40, "", "the document is nested deeper than 32 levels"),
    ],
)
def test_checker_names_the_place_and_the_rule(text: str, where: str, problem: str) -> None:
    with pytest.raises(schema.SchemaViolation) as info:
        schema.load_toml(text, SPEC)
    assert (info.value.where, info.value.problem) == (where, problem)


def test_checker_refuses_non_utf8_and_bombs_before_parsing() -> None:
    with pytest.raises(schema.SchemaViolation) as info:
        schema.parse_toml(b"fps = 1\n\xc3\x28")
    assert info.value.problem == "the file is not UTF-8 text (invalid byte at offset 8)"
    with pytest.raises(schema.SchemaViolation) as info:
        schema.parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert info.value.problem == "the document is nested deeper than 32 levels"
    with pytest.raises(schema.SchemaViolation) as info:
        schema.parse_toml("x = " + "{a = " * 100_000 + "1" + "}" * 100_000)
    assert info.value.problem == "the document is nested deeper than 32 levels"


def test_checker_accepts_good_documents() -> None:
    doc = schema.load_toml("fps = 5\ncount = 2\non = true\n[[wallet]]\nmax_fee_rate = 2.5\n", SPEC)
    assert doc["wallet"][0]["max_fee_rate"] == 2.5


# -- every loader ------------------------------------------------------------------------------
def policy_error(text: str | bytes) -> str:
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text, ownership_verifier=no_proofs)
    return str(info.value)


def test_policy_misspelt_fee_rate_cap_is_refused_not_dropped() -> None:
    assert "max_fee_rate = 80.0" in EXAMPLE
    text = EXAMPLE.replace("max_fee_rate = 80.0", "max_fee_rte = 80.0")
    assert policy_error(text) == (
        "The policy is invalid at wallet[0]: unknown key 'max_fee_rte' "
        "(did you mean max_fee_rate?)."
    )


@pytest.mark.parametrize(
    ("value", "shown"), [("nan", "nan"), ("inf", "inf"), ("-1.0", "-1"), ("true", "true")]
)
def test_policy_fee_rate_must_be_finite_and_non_negative(value: str, shown: str) -> None:
    text = EXAMPLE.replace("max_fee_rate = 80.0", f"max_fee_rate = {value}")
    assert policy_error(text) == (
        "The policy is invalid at wallet[0]: max_fee_rate must be a finite number of at least "
        f"0, not {shown}."
    )


def test_policy_limits_must_be_integers() -> None:
    text = EXAMPLE.replace("[wallet.limits.BTC]\n", "[wallet.limits.BTC]\nper_dya = 1\n", 1)
    assert policy_error(text) == (
        "The policy is invalid at wallet[0].limits.BTC: unknown key 'per_dya' "
        "(did you mean per_day?)."
    )


def test_policy_not_utf8_and_too_deep() -> None:
    assert policy_error(EXAMPLE.encode().replace(b"globex", b"glob\xffex", 1)).startswith(
        "The policy is invalid: the file is not UTF-8 text (invalid byte at offset "
    )
    deep = EXAMPLE + "\nextra = " + "[" * 64 + "]" * 64 + "\n"
    assert policy_error(deep) == (
        "The policy is invalid: the document is nested deeper than 32 levels."
    )


WALLETS = """
[[wallet]]
name = "acme-btc"
client = "acme"
chain = "bitcoin"
network = "test"
template = "bip84"
master_fingerprint = "73c5da0a"
account_path = "m/84h/1h/0h"
max_index = 99
"""


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "max_index = 99",
            "max_idx = 99",
            "wallet registry w.toml: wallet[0] unknown key 'max_idx' (did you mean max_index?).",
        ),
        (
            "max_index = 99",
            "max_index = -1",
            "wallet registry w.toml: wallet[0] max_index must be an integer between 0 and "
            "2147483647, not -1.",
        ),
        (
            "max_index = 99",
            "require_non_witness_utxo = 0",
            "wallet registry w.toml: wallet[0] require_non_witness_utxo must be true or false, "
            "not 0.",
        ),
    ],
)
def test_wallet_registry_is_strict(old: str, new: str, message: str) -> None:
    assert parse_wallets(WALLETS.encode(), where="w.toml")
    with pytest.raises(ConfigError) as info:
        parse_wallets(WALLETS.replace(old, new).encode(), where="w.toml")
    assert str(info.value) == message


def test_scenario_is_strict() -> None:
    with pytest.raises(ScenarioInvalid) as info:
        parse_scenario(b'name = "x"\nlost_site = ["site-a"]\n')
    assert str(info.value) == (
        "The drill scenario is invalid: unknown key 'lost_site' (did you mean lost_sites?)."
    )
    with pytest.raises(ScenarioInvalid) as info:
        parse_scenario(b'name = "x"\nlost_sites = "site-a"\n')
    assert str(info.value) == "The drill scenario is invalid: lost_sites must be a list, not text."


def test_plan_names_the_nearest_field() -> None:
    assert 'description = "' in LAB_PLAN
    with pytest.raises(PlanInvalid) as info:
        parse_plan(LAB_PLAN.replace('description = "', 'descripton = "', 1), where="plan.toml")
    assert str(info.value) == (
        "The backup plan plan.toml is invalid: descripton: is not a known field "
        "(did you mean description?)."
    )


def test_roster_unknown_key_and_bad_number(cards) -> None:
    obj = cards.roster().to_json()
    obj["admin_treshold"] = obj.pop("admin_threshold")
    with pytest.raises(RosterInvalid) as info:
        Roster.from_json(obj)
    assert str(info.value) == (
        "The roster is invalid: unknown key 'admin_treshold' (did you mean admin_threshold?)."
    )
    obj = cards.roster().to_json()
    obj["version"] = True
    with pytest.raises(RosterInvalid) as info:
        Roster.from_json(obj)
    assert str(info.value) == (
        "The roster is invalid (version): version must be an integer of at least 1, not true."
    )
    with pytest.raises(RosterInvalid) as info:
        Roster.from_bytes(b"[" * 50_000 + b"]" * 50_000)
    assert str(info.value) == "The roster is invalid: the document is nested deeper than 32 levels."


def test_approvals_file_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    write_signed_document(path, SignedDocument("policy", 3, "vault-01", b"x = 1\n", ()))
    assert load_signed_document(path, "policy").version == 3
    header = json.loads(approvals_path(path).read_text())
    header["aproavls"] = header.pop("approvals")
    approvals_path(path).write_text(json.dumps(header))
    with pytest.raises(SignedDocumentInvalid) as info:
        load_signed_document(path, "policy")
    assert str(info.value) == (
        f"The signed document {path} is invalid: the approvals file: unknown key 'aproavls' "
        "(did you mean approvals?)."
    )
    approvals_path(path).write_bytes(b"\xff\xfe{}")
    with pytest.raises(SignedDocumentInvalid) as info:
        load_signed_document(path, "policy")
    assert str(info.value) == (
        f"The signed document {path} is invalid: the approvals file: the file is not UTF-8 "
        "text (invalid byte at offset 0)."
    )


# -- the ledger --------------------------------------------------------------------------------
def test_non_sqlite_ledger_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    junk = b"these are not the bytes of a database\n" * 200
    path.write_bytes(junk)
    for read_only in (False, True):
        with pytest.raises(LedgerUnreadable) as info:
            Ledger(path, read_only=read_only)
        assert str(info.value) == (
            f"The ledger {path} is not an SQLite database; it was left unchanged (restore it "
            "from a backup, or see docs/audit.md)."
        )
    assert path.read_bytes() == junk
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite3"]


def test_damaged_ledger_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).close()
    data = bytearray(path.read_bytes())
    data[4096 : 4096 + 300] = b"\x5a" * 300  # the first table's page
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerUnreadable) as info:
        Ledger(path)
    assert info.value.problem.startswith("is damaged (")
    assert "\n" not in str(info.value)
    assert path.read_bytes() == bytes(data)


def test_another_programs_database_is_not_turned_into_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (name TEXT)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(LedgerUnreadable) as info:
        Ledger(path)
    assert info.value.problem == "is an SQLite database of another program, not a ledger"
    assert path.read_bytes() == before


def test_cbor_bomb_is_one_sentence() -> None:
    from coldvault.errors import EXIT_BAD_INPUT, exit_status
    from coldvault.transport.registry.cbor import MalformedCbor
    from coldvault.transport.registry.codec import decode_registry
    from coldvault.transport.ur import UR

    with pytest.raises(MalformedCbor) as info:
        decode_registry(UR("eth-sign-request", b"\x81" * 100_000 + b"\x00"))
    assert str(info.value) == (
        "The 'eth-sign-request' UR payload is not acceptable CBOR (nested deeper than 16 "
        "levels)."
    )
    assert exit_status(info.value) == EXIT_BAD_INPUT


def test_state_files_with_json_bombs_are_refused_cleanly() -> None:
    """Files in the state directory are untrusted too (an insider can write there): a stored
    response or anchor copy nested absurdly deep is a named integrity error, never a
    RecursionError."""
    from coldvault.records.anchor import Anchor, AnchorCorrupt
    from coldvault.records.responses import ResponseCorrupt, StoredResponse

    bomb = b"[" * 200_000 + b"]" * 200_000
    digest = "ab" * 32
    with pytest.raises(ResponseCorrupt) as info:
        StoredResponse.from_bytes(digest, bomb)
    assert str(info.value) == (
        f"The stored response of request {digest[:16]} is unusable: the document is nested "
        "deeper than 32 levels."
    )
    with pytest.raises(AnchorCorrupt) as anchor:
        Anchor.from_bytes(bomb)
    assert str(anchor.value) == (
        "The state anchor on the HSM token cannot be read: the document is nested deeper "
        "than 32 levels."
    )


def test_unreadable_files_are_one_sentence(tmp_path: Path) -> None:
    from coldvault.requests.wallets import load_wallets

    folder = tmp_path / "policy.toml"
    folder.mkdir()
    (tmp_path / "policy.toml.approvals.json").write_text("{}")
    with pytest.raises(SignedDocumentInvalid) as info:
        load_signed_document(folder, "policy")
    assert str(info.value) == (
        f"The signed document {folder} is invalid: {folder} cannot be read (Is a directory)."
    )
    with pytest.raises(ConfigError) as config:
        load_wallets(folder)
    assert str(config.value) == f"wallet registry {folder} cannot be read (Is a directory)"

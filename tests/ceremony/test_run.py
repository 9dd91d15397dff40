"""The ceremony run lifecycle and parameter checks, without hardware."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldvault.ceremonies import GenerateSeed, ParameterError, RecoverPool
from coldvault.ceremonies.approve import ApproveDocument
from coldvault.ceremonies.backup import BackupFormat, BackupPlan
from coldvault.ceremonies.enrol import EnrolCards
from coldvault.ceremonies.operator import confirm_or_cancel, new_pin
from coldvault.ceremonies.params import CeremonyParams, PoolParams
from coldvault.ceremonies.proposals import DocumentKind
from coldvault.ceremonies.revoke import CardChange
from coldvault.ceremonies.run import CeremonyRun, transcript_name
from coldvault.errors import Cancelled, HardwareError
from coldvault.keys.pool import Template
from coldvault.records.transcript import read_entries, verify

from .support import ScriptedOperator


def _run(tmp_path: Path, op: ScriptedOperator, name: str = "t") -> CeremonyRun:
    params = CeremonyParams(actor="Olga Operator", transcript=tmp_path / f"{name}.jsonl")
    return CeremonyRun(op, "test-ceremony", params, parameters={"n": 1})


def test_completed_run(tmp_path: Path) -> None:
    op = ScriptedOperator()
    with _run(tmp_path, op) as run:
        run.record("step-one", {"value": 1})
        closed = run.finish({"done": True})
    result = verify(tmp_path / "t.jsonl")
    assert result.status == "completed" and result.ceremony_id == closed.ceremony_id
    assert result.final_hash == closed.final_hash
    assert [e["step"] for e in read_entries(tmp_path / "t.jsonl")] == ["open", "step-one", "close"]
    assert (tmp_path / "t.html").read_text().startswith("<!DOCTYPE html>")
    assert op.said("title") == ["coldvault ceremony: test-ceremony"]
    assert f"Ceremony id: {closed.ceremony_id}" in op.said("info")


@pytest.mark.parametrize(
    "raised, expected, reason",
    [
        (KeyboardInterrupt(), Cancelled, "cancelled"),
        (Cancelled("no"), Cancelled, "cancelled"),
        (
            HardwareError("The reader went away."),
            HardwareError,
            "HardwareError: The reader went away.",
        ),
        (RuntimeError("value q-not-in-transcript"), RuntimeError, "unexpected RuntimeError"),
    ],
)
def test_abort_records_the_reason_and_wipes_secrets(
    tmp_path: Path, raised: BaseException, expected: type, reason: str
) -> None:
    op = ScriptedOperator()
    secret = bytearray(b"\x11" * 32)
    with pytest.raises(expected):
        with _run(tmp_path, op) as run:
            run.secret(secret)
            run.secret_on_screen = True
            raise raised
    assert secret == bytearray(32)  # wiped
    assert op.clears == 1  # words on screen were cleared first
    last = read_entries(tmp_path / "t.jsonl")[-1]
    assert last["step"] == "close" and last["data"] == {"status": "aborted", "reason": reason}
    assert "q-not-in-transcript" not in (tmp_path / "t.jsonl").read_text()


def test_default_transcript_name_is_the_ceremony_id(tmp_path: Path) -> None:
    op = ScriptedOperator()
    params = CeremonyParams(actor="o", transcript_dir=tmp_path / "transcripts")
    with CeremonyRun(op, "enrol-cards", params, parameters={}) as run:
        closed = run.finish()
    assert closed.transcript.parent == tmp_path / "transcripts"
    assert closed.transcript.name.endswith(f"-{closed.ceremony_id}.jsonl")
    assert read_entries(closed.transcript)[0]["ceremony_id"] == closed.ceremony_id
    assert transcript_name("x", "id").startswith("x-") and transcript_name("x", "id").endswith(
        "-id.jsonl"
    )


def test_confirm_and_new_pin() -> None:
    with pytest.raises(Cancelled, match="did not confirm"):
        confirm_or_cancel(ScriptedOperator(("^Sure\\?$", "no")), "Sure?")
    confirm_or_cancel(ScriptedOperator(("^Sure\\?$", True)), "Sure?")
    op = ScriptedOperator(
        ("^New user PIN$", "123"),
        ("^New user PIN$", "123456"),
        ("^Repeat new user PIN$", "654321"),
        ("^New user PIN$", "123456"),
        ("^Repeat new user PIN$", "123456"),
    )
    assert new_pin(op, "New user PIN", min_length=6) == "123456"
    assert op.said("warn") == [
        "The PIN must have at least 6 characters.",
        "The two entries differ; enter the PIN again.",
    ]
    with pytest.raises(ValueError):
        new_pin(op, "x", min_length=0)


@pytest.mark.parametrize(
    "make, error, text",
    [
        (
            lambda p: BackupPlan(BackupFormat.SLIP39, 3, 2, True),
            ParameterError,
            "--threshold must be between 1 and --shares",
        ),
        (
            lambda p: BackupPlan(BackupFormat.SLIP39, 1, 3, True),
            ParameterError,
            "1-of-N SLIP-39 sharing is not allowed",
        ),
        (
            lambda p: BackupPlan(BackupFormat.SLIP39, 2, 17, True),
            ParameterError,
            "--shares must be between 1 and 16",
        ),
        (lambda p: BackupPlan("slip39", 2, 3, True), ValueError, "wrong type str"),
        (
            lambda p: GenerateSeed(actor="o", backup=BackupPlan(BackupFormat.BIP39)),
            ParameterError,
            "Choose --paper-backup",
        ),
        (
            lambda p: GenerateSeed(actor=" ", backup=BackupPlan(BackupFormat.BIP39, paper=True)),
            ParameterError,
            "--operator",
        ),
        (
            lambda p: GenerateSeed(
                actor="o", backup=BackupPlan(BackupFormat.BIP39, paper=True), witnesses=17
            ),
            ParameterError,
            "--witnesses",
        ),
        (
            lambda p: GenerateSeed(
                actor="o", backup=BackupPlan(BackupFormat.BIP39, paper=True), witnesses="1"
            ),
            ValueError,
            "wrong type",
        ),
        (lambda p: PoolParams(network="signet"), ParameterError, "--network must be one of"),
        (lambda p: PoolParams(pool_size=0), ParameterError, "--pool-size must be between"),
        (lambda p: PoolParams(templates=["bip84"]), ValueError, "wrong type list"),
        (
            lambda p: RecoverPool(actor="o", expect_fingerprint="abc"),
            ParameterError,
            "8 hex digits",
        ),
        (
            lambda p: EnrolCards(actor="o", count=1, appliance_id="v", admin_threshold=2),
            ParameterError,
            "--admin-threshold cannot be larger than --cards",
        ),
        (
            lambda p: EnrolCards(actor="o", count=0, appliance_id="v"),
            ParameterError,
            "--cards must be between 1 and 64",
        ),
        (
            lambda p: ApproveDocument(actor="o", kind=DocumentKind.WALLETS, file=p, rosters=(p,)),
            ParameterError,
            "give --version N",
        ),
        (
            lambda p: ApproveDocument(actor="o", kind=DocumentKind.POLICY, file=p, rosters=()),
            ParameterError,
            "--roster is required",
        ),
        (
            lambda p: ApproveDocument(
                actor="o", kind=DocumentKind.POLICY, file=p, rosters=(p,), genesis_sha256="abc"
            ),
            ParameterError,
            "64 hex digits",
        ),
        (
            lambda p: ApproveDocument(actor="o", kind="policy", file=p, rosters=(p,)),
            ValueError,
            "wrong type",
        ),
        (
            lambda p: CardChange(actor="o", rosters=(p,), card=" ", reason="x", out=p),
            ParameterError,
            "--card",
        ),
        (
            lambda p: CardChange(actor="o", rosters=(p,), card="C1", reason="", out=p),
            ParameterError,
            "--reason",
        ),
    ],
)
def test_parameters_are_checked_when_made(make, error, text, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(error, match=text):
        make(tmp_path)


def test_parameters_are_normalised(tmp_path: Path) -> None:
    params = RecoverPool(actor="o", expect_fingerprint=" DEADBEEF ")
    assert params.expect_fingerprint == "deadbeef"
    doc = ApproveDocument(
        actor="o",
        kind=DocumentKind.POLICY,
        file=tmp_path,
        rosters=(tmp_path,),
        genesis_sha256="AB" * 32,
    )
    assert doc.genesis_sha256 == "ab" * 32
    pool = PoolParams(network="test")  # the network applies to the Bitcoin templates only
    assert [s.network for s in pool.specs] == ["test", "test", "1", "mainnet-beta"]
    assert pool.to_dict()["templates"] == [str(t) for t in Template]

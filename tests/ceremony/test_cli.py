"""The ceremony CLI's output contract, in process (click's runner, no terminal):
``--json`` alone on stdout, human text on stderr, each error shown once, the documented
exit statuses, and an unexpected exception as one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ceremony_scripts.cli import ceremony
from coldvault.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_REFUSED
from coldvault.records.transcript import TranscriptWriter, read_entries

OPERATOR = ["--operator", "Olga Operator"]


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None):  # noqa: A002
    return CliRunner().invoke(ceremony, list(args), input=input, env=env, catch_exceptions=False)


def seed_args(tmp_path: Path, *extra: str) -> list[str]:
    """generate-seed up to its first question (the HSM is not opened before it)."""
    return [
        "generate-seed", *OPERATOR, "--module", str(tmp_path / "no-module.so"),
        "--transcript", str(tmp_path / "t.jsonl"), "--export-dir", str(tmp_path / "x"), *extra,
    ]  # fmt: skip


def unapproved_roster(tmp_path: Path) -> Path:
    path = tmp_path / "roster-1.json"
    path.write_text('{"version": 1}')  # no roster-1.json.approvals.json beside it
    return path


@pytest.mark.parametrize("as_json", [True, False])
def test_an_error_is_shown_once(tmp_path: Path, as_json: bool) -> None:
    roster = unapproved_roster(tmp_path)
    args = ["revoke-card", *OPERATOR, "--roster", str(roster), "--card", "FFFFC0DE0001",
            "--reason", "lost", "--out", str(tmp_path / "roster-2.json"),
            "--transcript", str(tmp_path / "t.jsonl")]  # fmt: skip
    result = run(*args, *(["--json"] if as_json else []))
    assert result.exit_code == EXIT_BAD_INPUT
    entries = read_entries(tmp_path / "t.jsonl")
    message = entries[-1]["data"]["reason"].split(": ", 1)[1]
    both = "".join((result.stdout + result.stderr).split())  # the console wraps long lines
    assert both.count("".join(message.split())) == 1, result.stdout + result.stderr
    if as_json:
        lines = result.stdout.splitlines()
        assert len(lines) == 1
        error = json.loads(lines[0])
        assert error["ok"] is False and error["message"] == message and error["error"]
        assert "Error:" not in result.stderr
    else:
        assert result.stdout == ""
        assert "".join(f"Error: {message}".split()) in both
    assert "The ceremony was aborted; the transcript records it" in result.stderr


@pytest.mark.parametrize("answer", ["no\n", ""], ids=["no", "end-of-input"])
def test_no_or_interrupt_is_cancelled(tmp_path: Path, answer: str) -> None:
    result = run(*seed_args(tmp_path, "--paper-backup", "--json"), input=answer)
    assert result.exit_code == EXIT_REFUSED
    assert json.loads(result.stdout)["error"] == "cancelled"
    assert "Is the room prepared as listed? Type yes to continue" in result.stderr
    last = read_entries(tmp_path / "t.jsonl")[-1]
    assert last["data"] == {"status": "aborted", "reason": "cancelled"}
    assert "Internal error" not in result.stdout + result.stderr


def test_parameter_errors_before_anything_starts(tmp_path: Path) -> None:
    result = run(*seed_args(tmp_path))
    assert result.exit_code == EXIT_BAD_INPUT and result.stdout == ""
    assert "Error: Choose --paper-backup" in result.stderr
    result = run(*seed_args(tmp_path, "--paper-backup", "--threshold", "3", "--shares", "2",
                            "--json"))  # fmt: skip
    assert result.exit_code == EXIT_BAD_INPUT
    assert json.loads(result.stdout)["error"] == "ceremony-parameter"
    assert not (tmp_path / "t.jsonl").exists()
    result = run("approve-document", *OPERATOR, "--kind", "wallets", "--roster",
                 str(unapproved_roster(tmp_path)), str(tmp_path / "roster-1.json"))  # fmt: skip
    assert result.exit_code == EXIT_BAD_INPUT
    assert "give --version N" in result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    result = run(*seed_args(tmp_path, "--paper-backup", "--threshold", "0", "--json"))
    assert result.exit_code == EXIT_BAD_INPUT
    error = json.loads(result.stdout)
    assert error["error"] == "usage" and "--threshold" in error["message"]
    result = run(*seed_args(tmp_path, "--paper-backup", "--threshold", "0"))
    assert result.exit_code == EXIT_BAD_INPUT and result.stdout == ""
    assert "Invalid value for '--threshold'" in result.stderr


def test_an_unexpected_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ceremony_scripts.seed

    def broken(*_args: object, **_kw: object) -> None:
        raise RuntimeError("value 1234 must not be shown")

    monkeypatch.setattr(ceremony_scripts.seed, "generate_seed", broken)
    result = run(*seed_args(tmp_path, "--paper-backup"), env={"COLDVAULT_DEBUG": "0"})
    assert result.exit_code == EXIT_INTERNAL and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Internal error (RuntimeError)" in lines[0]
    assert "1234" not in result.stderr and "Traceback" not in result.stderr
    result = run(*seed_args(tmp_path, "--paper-backup", "--json"))
    assert json.loads(result.stdout)["error"] == "internal"
    result = run(*seed_args(tmp_path, "--paper-backup"), env={"COLDVAULT_DEBUG": "1"})
    assert result.exit_code == EXIT_INTERNAL and "Traceback" in result.stderr


def test_transcript_verify_and_render(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    writer = TranscriptWriter.create(path, "test", actor="o")
    writer.append("step", actor="o", data={"n": 1})
    final = writer.close(actor="o")
    result = run("transcript", "verify", "--json", str(path))
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["status"], data["entries"], data["final_hash"]) == ("completed", 3, final)
    result = run("transcript", "verify", str(path))
    assert result.stdout.startswith("VERIFIED ")
    result = run("transcript", "render", str(path))
    assert result.exit_code == 0 and path.with_suffix(".html").exists()

    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x20
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(raw)
    result = run("transcript", "verify", str(bad))
    assert result.exit_code == EXIT_BAD_INPUT and result.stdout == ""
    assert result.stderr.startswith("Error: Transcript")
    result = run("transcript", "verify", "--json", str(bad))
    assert json.loads(result.stdout)["ok"] is False

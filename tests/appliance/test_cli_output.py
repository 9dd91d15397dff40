"""Errors to output through the real ``coldvault`` command line (appliance/errors_out.py).

Every family is driven through the real click tree (CliRunner keeps stdout and stderr apart)
or the installed console script: with ``--json`` stdout holds exactly one JSON document and
nothing else, human text goes to stderr, and the exit status is the documented one.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cbor2
import click
import pytest
from click.testing import CliRunner, Result

from appliance.cli import main
from appliance.errors_out import ReportingGroup, json_option, wants_json
from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_INTERNAL, EXIT_REFUSED

BIN = Path(sys.executable).parent

CONFIG = """
[appliance]
id = "vault-01"
state_dir = "state"
allow_emulated_hardware = false

[hsm]
module = "/nonexistent/libvendor.so"
token_label = "coldvault-appliance"

[trust]
rosters = ["roster-1.json"]
genesis_roster_sha256 = "{genesis}"
policy = "policy.toml"
wallets = "wallets.toml"

[input]
source = "files"
path = "frames"
"""


def run(args: list[str], *, input: str | None = None) -> Result:  # noqa: A002 - click's name
    return CliRunner().invoke(main, args, input=input)


def only_json(result: Result) -> dict:
    """stdout must be exactly one JSON document (a trailing newline is all that may follow)."""
    document, end = json.JSONDecoder().raw_decode(result.stdout)
    assert result.stdout[end:] == "\n", result.stdout
    assert isinstance(document, dict)
    return document


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(b"coldvault output contract")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(CONFIG.format(genesis="ab" * 32))
    return path


# ----------------------------------------------------------------------------- done
def test_success_json_is_one_document_and_round_trips(payload: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    encoded = run(["qr", "encode", str(payload), "--type", "bytes", "--out", str(out), "--json"])
    assert encoded.exit_code == EXIT_DONE, encoded.stderr
    assert only_json(encoded) == {"ok": True, "frames": 1, "out": str(out), "format": "ur"}
    assert encoded.stderr == ""

    decoded = run(["qr", "decode", "--text", str(out / "frames.txt"), "--json"])
    assert decoded.exit_code == EXIT_DONE
    document = only_json(decoded)
    assert document["ok"] is True and document["ur_type"] == "bytes"
    assert cbor2.loads(bytes.fromhex(document["hex"])) == payload.read_bytes()  # UR "bytes"


def test_success_without_json_prints_the_result_line_only(payload: Path, tmp_path: Path) -> None:
    out = tmp_path / "frames"
    result = run(["qr", "encode", str(payload), "--type", "bytes", "--out", str(out)])
    assert result.exit_code == EXIT_DONE
    assert result.stdout == f"wrote 1 frames to {out}\n"
    assert result.stderr == ""


# ----------------------------------------------------------------------------- bad input: 2
def test_bad_input_is_exit_2_with_the_error_code(tmp_path: Path) -> None:
    garbage = tmp_path / "frames.txt"
    garbage.write_text("this is not a QR frame\n")
    result = run(["qr", "decode", "--text", str(garbage), "--json"])
    assert result.exit_code == EXIT_BAD_INPUT
    document = only_json(result)
    assert document["ok"] is False and document["error"] == "qr-unknown-format"
    assert result.stderr.startswith("error: This QR code is not a signing request")
    assert result.stderr.count("\n") == 1

    human = run(["qr", "decode", "--text", str(garbage)])
    assert human.exit_code == EXIT_BAD_INPUT
    assert human.stdout == "" and human.stderr == result.stderr


def test_bad_configuration_is_exit_2(tmp_path: Path) -> None:
    result = run(["appliance", "check", "--config", str(tmp_path / "missing.toml"), "--json"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert only_json(result)["error"] == "config"
    assert "does not exist" in result.stderr


# ----------------------------------------------------------------------------- usage: 2
def test_bad_option_value_is_a_usage_error_in_json_too(payload: Path, tmp_path: Path) -> None:
    result = run(["qr", "encode", str(payload), "--json", "--fragment-len", "many",
                  "--out", str(tmp_path / "x")])
    assert result.exit_code == EXIT_BAD_INPUT
    document = only_json(result)
    assert document["error"] == "usage" and "--fragment-len" in document["message"]
    assert "Usage:" in result.stderr
    assert not (tmp_path / "x").exists()


def test_unknown_option_and_command_are_usage_errors() -> None:
    unknown = run(["qr", "encode", "--bogus", "--json"])
    assert unknown.exit_code == EXIT_BAD_INPUT
    assert unknown.stdout == ""  # parsing stopped before --json was read
    assert "No such option '--bogus'" in unknown.stderr
    missing = run(["nonsense"])
    assert missing.exit_code == EXIT_BAD_INPUT and missing.stdout == ""
    assert "No such command 'nonsense'" in missing.stderr


def test_run_json_needs_once(config: Path) -> None:
    result = run(["appliance", "run", "--config", str(config), "--json"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert only_json(result)["error"] == "usage"
    assert "--json needs --once" in result.stderr


def test_ledger_export_json_format_reports_errors_as_json(tmp_path: Path) -> None:
    db = tmp_path / "ledger.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as conn:  # a database, but not a ledger
        conn.execute("CREATE TABLE other (a)")
        conn.commit()
    result = run(["ledger", "export", "--db", str(db), "--client", "acme", "--format", "json"])
    assert result.exit_code == EXIT_BAD_INPUT
    message = (
        f"The ledger {db} is an SQLite database of another program, not a ledger; it was left "
        "unchanged (restore it from a backup, or see docs/audit.md)."
    )
    assert only_json(result) == {
        "ok": False, "error": "ledger-unreadable", "path": str(db),
        "problem": "is an SQLite database of another program, not a ledger", "message": message,
    }
    csv = run(["ledger", "export", "--db", str(db), "--client", "acme"])
    assert csv.exit_code == EXIT_BAD_INPUT and csv.stdout == ""
    assert csv.stderr == f"error: {message}\n"


# ----------------------------------------------------------------------------- refused: 1
def test_refusal_is_exit_1_and_the_console_is_on_stderr(config: Path) -> None:
    # --allow-emulated although the configuration forbids emulators: refused at start-up,
    # after the HSM PIN prompt, before anything touches the (absent) HSM module
    result = run(["appliance", "check", "--config", str(config), "--allow-emulated",
                  "--dev-allow-network", "--json"], input="123456\n")
    assert result.exit_code == EXIT_REFUSED
    document = only_json(result)
    assert document["ok"] is False and document["error"] == "emulated-hardware"
    assert "HSM user PIN for token coldvault-appliance: " in result.stderr
    assert "refused: --allow-emulated was given" in result.stderr
    assert "123456" not in result.stdout + result.stderr


# ----------------------------------------------------------------------------- cancelled: 1
def test_closed_console_is_cancelled(config: Path) -> None:
    result = run(["appliance", "check", "--config", str(config), "--json"], input="")
    assert result.exit_code == EXIT_REFUSED
    assert only_json(result) == {"ok": False, "error": "cancelled",
                                 "message": "Cancelled by the operator."}
    assert result.stderr.endswith("cancelled: Cancelled by the operator.\n")


def _read_until(stream: int, marker: bytes, timeout: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen!r}"
        ready, _, _ = select.select([stream], [], [], left)
        if ready:
            chunk = os.read(stream, 4096)
            assert chunk, f"the process closed stderr before {marker!r}: {seen!r}"
            seen += chunk
    return seen


def test_ctrl_c_at_a_prompt_is_cancelled_not_internal(config: Path) -> None:
    proc = subprocess.Popen(
        [str(BIN / "coldvault"), "appliance", "check", "--config", str(config), "--json"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, COLDVAULT_DEBUG="0"),
    )
    try:
        assert proc.stderr is not None and proc.stdout is not None
        _read_until(proc.stderr.fileno(), b"HSM user PIN for token")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_REFUSED
    assert json.loads(stdout) == {"ok": False, "error": "cancelled",
                                  "message": "Cancelled by the operator."}
    assert b"Internal error" not in stderr and b"Traceback" not in stderr


def test_click_abort_and_no_at_a_confirmation_are_cancelled() -> None:
    @click.group(cls=ReportingGroup)
    def tool() -> None:
        """A front end on the shared reporting path."""

    @tool.command()
    @json_option
    def wipe() -> None:
        click.confirm("Wipe?", abort=True, err=True)
        click.echo(json.dumps({"ok": True}) if wants_json() else "wiped")

    no = CliRunner().invoke(tool, ["wipe", "--json"], input="n\n")
    assert no.exit_code == EXIT_REFUSED
    assert only_json(no)["error"] == "cancelled"
    assert "Wipe?" in no.stderr and "cancelled: " in no.stderr
    yes = CliRunner().invoke(tool, ["wipe", "--json"], input="y\n")
    assert yes.exit_code == EXIT_DONE and only_json(yes) == {"ok": True}


# ----------------------------------------------------------------------------- internal: 3
def _boom(*_args: object, **_kwargs: object) -> None:
    raise ZeroDivisionError("secret detail that must not reach the operator")


def test_unexpected_exception_is_exit_3_in_one_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    trail = tmp_path / "audit.jsonl"
    trail.write_text("")
    monkeypatch.setattr("appliance.cli.verify", _boom)
    monkeypatch.delenv("COLDVAULT_DEBUG", raising=False)
    args = ["audit", "verify", str(trail), "--audit-pubkey", "02" + "11" * 32]
    result = run([*args, "--json"])
    assert result.exit_code == EXIT_INTERNAL
    document = only_json(result)
    assert document["error"] == "internal" and document["kind"] == "ZeroDivisionError"
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("internal error: Internal error (ZeroDivisionError)")
    assert "secret detail" not in result.stdout + result.stderr

    monkeypatch.setenv("COLDVAULT_DEBUG", "1")
    debug = run(args)
    assert debug.exit_code == EXIT_INTERNAL and debug.stdout == ""
    assert "Traceback" in debug.stderr and "secret detail" in debug.stderr


# ----------------------------------------------------------------------------- help
@pytest.mark.parametrize("group", [[], ["appliance"], ["audit"], ["ledger"], ["qr"]])
def test_every_group_documents_the_exit_statuses(group: list[str]) -> None:
    result = run([*group, "--help"])
    assert result.exit_code == EXIT_DONE
    text = " ".join(result.stdout.split())
    assert "Exit status: 0 done 1 refused or cancelled" in text
    assert "2 bad input or usage 3 internal error" in text

"""Strict inputs through the real command lines: each bad file is exit 2 and one sentence
(stderr ``error: <sentence>``; with --json the one document on stdout), never a traceback
or "Internal error"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli import main
from ceremony_scripts.plans import backup
from coldvault.errors import EXIT_BAD_INPUT
from tests.backup.plans import lab_plan

CONFIG = """
[appliance]
id = "vault-01"
state_dir = "state"
allow_emulated_hardware = false

[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "coldvault-appliance"

[trust]
rosters = ["roster-1.json"]
genesis_roster_sha256 = "{genesis}"
policy = "policy.toml"
wallets = "wallets.toml"

[input]
source = "files"
path = "frames"

[output]
sink = "gif"
fps = 5
"""


def check(tmp_path: Path, text: str | bytes) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    path = tmp_path / "appliance.toml"
    if isinstance(text, str):
        path.write_text(text)
    else:
        path.write_bytes(text)
    result = CliRunner().invoke(main, ["appliance", "check", "--config", str(path), "--json"])
    document = json.loads(result.stdout)
    return result.exit_code, document, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "sentence"),
    [
        ("allow_emulated_hardware = false", "alow_emulated_hardware = true",
         "[appliance] unknown key 'alow_emulated_hardware' (did you mean "
         "allow_emulated_hardware?)."),
        ("fps = 5", "fps = 0",
         "[output] fps must be a finite number greater than 0 and at most 100, not 0."),
        ("fps = 5", "fps = nan",
         "[output] fps must be a finite number greater than 0 and at most 100, not nan."),
        ('path = "frames"', 'path = "frames"\nfps = -10',
         "[input] fps must be a finite number greater than 0 and at most 1000, not -10."),
        ('path = "frames"', 'path = "frames"\nseed = 1.5',
         "[input] seed must be an integer between 0 and 18446744073709551615, not 1.5."),
        ('sink = "gif"', 'sink = "gif"\nfragment_len = true',
         "[output] fragment_len must be an integer between 10 and 2000, not true."),
        ('path = "frames"', "path = " + "[" * 100 + "]" * 100,
         "the document is nested deeper than 32 levels."),
    ],
)
def test_bad_configuration_is_one_sentence_and_exit_2(
    tmp_path: Path, old: str, new: str, sentence: str
) -> None:
    text = CONFIG.format(genesis="ab" * 32)
    assert old in text
    status, document, stderr = check(tmp_path, text.replace(old, new, 1))
    path = tmp_path / "appliance.toml"
    message = f"configuration file {path}: {sentence}"
    assert status == EXIT_BAD_INPUT
    assert document == {"ok": False, "error": "config", "message": message}
    assert stderr == f"error: {message}\n"


def test_non_utf8_configuration_is_one_sentence(tmp_path: Path) -> None:
    text = CONFIG.format(genesis="ab" * 32).encode().replace(b"vault-01", b"vault\xe9-01")
    status, document, stderr = check(tmp_path, text)
    assert status == EXIT_BAD_INPUT
    offset = text.index(b"\xe9")
    assert document["message"] == (
        f"configuration file {tmp_path / 'appliance.toml'}: the file is not UTF-8 text "
        f"(invalid byte at offset {offset})."
    )
    assert "Traceback" not in stderr and "Internal error" not in stderr


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"SQLite format 3\x00" + b"\xff" * 200, "is not an SQLite database"),
        (b"\x00" * 5000, "is not an SQLite database"),
        (b"just some text\n" * 300, "is not an SQLite database"),
    ],
)
def test_a_ledger_that_is_not_a_ledger_is_exit_2(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    db = tmp_path / "ledger.sqlite3"
    db.write_bytes(content)
    result = CliRunner().invoke(
        main, ["ledger", "export", "--db", str(db), "--client", "acme", "--format", "json"]
    )
    assert result.exit_code == EXIT_BAD_INPUT
    document = json.loads(result.stdout)
    assert document["error"] == "ledger-unreadable"
    assert document["message"] == (
        f"The ledger {db} {problem}; it was left unchanged (restore it from a backup, or see "
        "docs/audit.md)."
    )
    assert db.read_bytes() == content


def test_misspelt_plan_field_names_the_nearest_through_the_ceremony_cli(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(lab_plan().replace("member_threshold", "member_treshold", 1))
    result = CliRunner().invoke(backup, ["plan", "check", str(path), "--json"])
    assert result.exit_code == EXIT_BAD_INPUT
    document = json.loads(result.stdout)
    assert document["error"] == "backup-plan-invalid"
    assert document["problem"] == "is not a known field (did you mean member_threshold?)"
    assert "Traceback" not in result.stderr

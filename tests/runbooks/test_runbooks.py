"""The runbooks in docs/runbooks/ are executed: a runbook that drifts from the product fails.

One lab (brought up by the first runbook's own ``coldvault-lab up``) and one working
directory serve the whole module, in order: first deployment, then a signing day, the backup
and the restore drill, then the recovery runbooks, each on the state the previous left --
as an operator team would run them. Every ``coldvault`` command line of every runbook, run or
not, is also checked against the command trees of the CLIs (sub-commands and options exist).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from appliance.cli import main as coldvault_cli
from hardware_emulators.cli import main as lab_cli
from tests.runbooks.runner import (
    BIN,
    RUNBOOKS,
    Dialogue,
    Runner,
    all_blocks,
    base_env,
    blocks,
    command_exists,
    command_lines,
    lab_config,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

#: run in this order, each on the state the previous one left
ORDER = ("first-deployment", "signing-day", "backup-and-drill", "recovery")


def all_runbooks() -> list[Path]:
    return sorted(RUNBOOKS.glob("*.md"))


class Team:
    """The module's working directory, its shell environment and what it typed so far."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = base_env(workdir)
        self.lab = lab_config()
        self.log = workdir / "runbooks.log"
        self.failed = ""
        self.env_blocks: list[str] = []
        self.dialogue = Dialogue({}, self.lab)

    def run(self, name: str) -> list[str]:
        """Run every runnable block of ``name``; returns the skipped blocks' reasons."""
        if self.failed:
            pytest.skip(f"the runbook {self.failed} failed before this one")
        loaded = Dialogue.load(name, self.lab)
        self.dialogue.answers = loaded.answers
        runner = Runner(self.workdir, self.env, self.dialogue, self.log,
                        env_blocks=self.env_blocks)  # fmt: skip
        try:
            for block in blocks(RUNBOOKS / f"{name}.md"):
                runner.run(block)
        except BaseException:
            self.failed = name
            raise
        return runner.skipped


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    workdir = tmp_path_factory.mktemp("runbooks")
    crew = Team(workdir)
    try:
        yield crew
    finally:
        subprocess.run(  # stop exactly the lab this module started (by its state directory)
            [str(BIN / "coldvault-lab"), "down"], cwd=workdir, env=crew.env,
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip


def _resolve(words: list[str]) -> tuple[list[str], click.Command | None]:
    """The click command a command line names (``coldvault ceremony backup ...``), found by
    walking the installed CLIs' command trees, and the sub-command path taken."""
    command: click.Command = {"coldvault": coldvault_cli, "coldvault-lab": lab_cli}[words[0]]
    path = [words[0]]
    for word in words[1:]:
        if not isinstance(command, click.Group) or word.startswith("-"):
            break
        sub = command.commands.get(word)
        if sub is None:
            return path, None
        command, path = sub, [*path, word]
    return path, None if isinstance(command, click.Group) else command


@pytest.mark.parametrize("name", ORDER)
def test_runbook_runs(team: Team, name: str) -> None:
    if not (RUNBOOKS / f"{name}.md").exists():
        pytest.skip(f"docs/runbooks/{name}.md is not written yet")
    skipped = team.run(name)
    if name == "backup-and-drill":
        # the drill ran with --config appliance.toml: it went into the appliance's own trail
        entries = [json.loads(line) for line in
                   (team.workdir / "state" / "audit.jsonl").read_text().splitlines()]
        drills = [e["fields"] for e in entries
                  if e["event"] == "ceremony" and e["fields"].get("ceremony") == "drill"]
        assert [(d["scenario"], d["passed"]) for d in drills] == [("site-b lost", True)]
    if skipped:
        pytest.skip("ran every block except: " + "; ".join(skipped))


@pytest.mark.parametrize("runbook", all_runbooks(), ids=lambda p: p.stem)
def test_runbook_commands_exist(runbook: Path) -> None:
    """Every coldvault command line names a real command and real options, runnable or not --
    production-only lines too (lines of a block that waits for a command not yet in this tree
    are left out)."""
    pending = {b.number for b in all_blocks(runbook) if b.needs and not command_exists(b.needs)}
    problems = []
    for words in command_lines(runbook, skip_blocks=pending):
        path, command = _resolve(words)
        if command is None:
            problems.append(f"{' '.join(words)}: no such command")
            continue
        options = {opt for param in command.params for opt in param.opts}
        options |= {"--help"}
        problems += [f"{' '.join(path)}: no option {word}" for word in words
                     if word.startswith("--") and word.split("=")[0] not in options]
    assert problems == [], "\n".join(problems)

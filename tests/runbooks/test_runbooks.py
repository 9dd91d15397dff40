"""The runbooks in docs/runbooks/ are executed: a runbook that drifts from the product fails.

One lab (brought up by the first runbook's own ``coldvault-lab up``) and one working
directory serve the whole module, in order: first deployment, then a signing day, the backup
and the restore drill, then the recovery runbooks, each on the state the previous left --
as an operator team would run them. Every ``coldvault`` command line of every runbook, run or
not, is also checked against its ``--help`` (sub-commands and options exist).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runbooks.runner import (
    BIN,
    RUNBOOKS,
    Dialogue,
    Runner,
    base_env,
    blocks,
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


@pytest.mark.parametrize("runbook", all_runbooks(), ids=lambda p: p.stem)
def test_runbook_commands_exist(runbook: Path) -> None:
    """Every coldvault command line names real sub-commands and options (checked with
    --help), runnable or not -- production-only lines too."""
    problems = []
    helps: dict[tuple[str, ...], str] = {}
    for words in command_lines(runbook):
        path = [w for w in words[: next((i for i, w in enumerate(words) if w.startswith("-")),
                                        len(words))]]  # fmt: skip
        # the sub-command path: words up to the first option or argument --help accepts
        while path:
            key = tuple(path)
            if key not in helps:
                done = subprocess.run(  # noqa: S603
                    [str(BIN / path[0]), *path[1:], "--help"], capture_output=True, text=True,
                    check=False, timeout=60,
                )  # fmt: skip
                helps[key] = done.stdout if done.returncode == 0 else ""
            if helps[key] and "Commands:" not in helps[key] or len(path) == 1:
                break
            path.pop()
        text = helps.get(tuple(path), "")
        if not text:
            problems.append(f"{' '.join(words)}: no such command")
            continue
        for word in words:
            if word.startswith("--") and word.split("=")[0] not in text:
                problems.append(f"{' '.join(path)}: no option {word}")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("name", ORDER)
def test_runbook_runs(team: Team, name: str) -> None:
    if not (RUNBOOKS / f"{name}.md").exists():
        pytest.skip(f"docs/runbooks/{name}.md is not written yet")
    skipped = team.run(name)
    if skipped:
        pytest.skip("ran every block except: " + "; ".join(skipped))

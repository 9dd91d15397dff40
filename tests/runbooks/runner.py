"""Run the command blocks of a runbook (docs/runbooks/*.md) as an operator would.

A fenced ``sh`` block whose first line is a marker comment is run; other blocks are only
read (their ``coldvault`` command lines are still checked against ``--help``, see
:func:`command_lines`):

* ``# runbook: step=NAME`` -- run the block with ``bash -euo pipefail`` in the runbook's
  working directory. If the dialogue file (``tests/runbooks/dialogues/<runbook>.toml``) has a
  table ``[NAME]``, its ``answers`` are typed at the prompts (see :class:`Dialogue`).
* ``# runbook: env`` -- variables for every later block: run once (to check it), then
  sourced at the start of every later block, as if typed into the operator's one shell.
* ``needs="coldvault card unblock"`` after either marker -- run only if that command exists in
  this tree (its ``--help`` succeeds); otherwise the block is skipped, with the reason.

Dialogue answers are ``[prompt regex, action]`` pairs, in order. An action is text to type
(``${...}`` substituted) or one of ``@insert SERIAL`` / ``@remove`` (the card in reader 0,
through ``coldvault-lab``), ``@words TITLE|LABEL`` (read the words shown under TITLE, press
Enter, answer the word checks for LABEL, keep the words in memory as ``${words:TITLE}``),
``@wait`` (just wait for the prompt). Substitutions: ``${lab:token_user}``,
``${lab:token_so}``, ``${card:SERIAL:pin}``, ``${card:SERIAL:admin_pin}``,
``${token:LABEL:user_pin}`` (the lab file's test PINs), ``${new:NAME}`` (a random value made on
first use, the same afterwards), ``${dice:NAME}`` (random dice rolls that pass the dice
checks), ``${words:TITLE}``. Typed text never reaches the log, and the log is paused while
words are on the screen.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import time
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import pexpect

from hardware_emulators.ceremony_driver import random_dice, read_and_confirm_words, unlogged
from hardware_emulators.lab import DEFAULT_LAB_FILE, LabConfig

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = ROOT / "docs" / "runbooks"
DIALOGUES = Path(__file__).resolve().parent / "dialogues"
BIN = ROOT / ".venv" / "bin"
MARKER = re.compile(r"^#\s*runbook:\s*(?P<kind>step=(?P<name>[\w.-]+)|env)(?P<rest>.*)$")
NEEDS = re.compile(r'needs="(?P<cmd>[^"]+)"')
FENCE = re.compile(r"^```sh\n(?P<body>.*?)^```", re.M | re.S)
SUBST = re.compile(r"\$\{(?P<kind>lab|card|token|new|dice|words):(?P<key>[^}]+)\}")
PROMPT_TIMEOUT = 180


@dataclass(frozen=True)
class Block:
    runbook: str
    number: int
    name: str  # "" for an env block
    body: str
    needs: str = ""

    @property
    def is_env(self) -> bool:
        return not self.name


def blocks(runbook: Path) -> list[Block]:
    """The runnable blocks of ``runbook``, in order."""
    return [b for b in all_blocks(runbook) if b.name != "-"]


def all_blocks(runbook: Path) -> list[Block]:
    """Every sh block of ``runbook``; a block without a marker has the name ``-``."""
    found: list[Block] = []
    for number, match in enumerate(FENCE.finditer(runbook.read_text()), start=1):
        body = match.group("body")
        first = body.splitlines()[0] if body else ""
        marker = MARKER.match(first)
        if marker is None:
            found.append(Block(runbook.stem, number, "-", body))
            continue
        needs = NEEDS.search(marker.group("rest"))
        found.append(Block(runbook.stem, number, marker.group("name") or "", body,
                           needs.group("cmd") if needs else ""))  # fmt: skip
    return found


def command_lines(runbook: Path, *, skip_blocks: Collection[int] = ()) -> list[list[str]]:
    """Every ``coldvault``/``coldvault-lab`` command in the sh blocks (but the numbers in
    ``skip_blocks``), as words (continuation lines joined, ``$VAR`` words kept)."""
    commands = []
    for number, match in enumerate(FENCE.finditer(runbook.read_text()), start=1):
        if number in skip_blocks:
            continue
        text = match.group("body").replace("\\\n", " ")
        for line in text.splitlines():
            line = line.strip()
            if re.match(r"^(coldvault|coldvault-lab)\s", line):
                commands.append(shlex.split(line.split(" >")[0].split(" |")[0], comments=True))
    return commands


def command_exists(command: str) -> bool:
    words = shlex.split(command)
    done = subprocess.run(  # noqa: S603
        [str(BIN / words[0]), *words[1:], "--help"], capture_output=True, check=False, timeout=60
    )
    return done.returncode == 0


@dataclass
class Dialogue:
    """The answers of one runbook's interactive blocks and the values typed so far."""

    answers: dict[str, list[tuple[str, str]]]
    lab: LabConfig
    new: dict[str, str] = field(default_factory=dict, repr=False)
    words: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, runbook: str, lab: LabConfig) -> Dialogue:
        path = DIALOGUES / f"{runbook}.toml"
        data = tomllib.loads(path.read_text()) if path.exists() else {}
        return cls({k: [tuple(a) for a in v["answers"]] for k, v in data.items()}, lab)

    def value(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, key = match.group("kind"), match.group("key")
            if kind == "lab":
                token = self.lab.appliance_token()
                return {"token_user": token.user_pin, "token_so": token.so_pin}[key]
            if kind == "token":
                label, which = key.split(":")
                spec = next(t.spec for t in self.lab.tokens if t.spec.label == label)
                return str(getattr(spec, which))
            if kind == "card":
                serial, which = key.split(":")
                return str(getattr(self.lab.card(serial), which))
            if kind == "new":
                return self.new.setdefault(key, secrets.token_hex(5))
            if kind == "dice":
                return self.new.setdefault(f"dice:{key}", random_dice())
            return self.words[key]

        return SUBST.sub(one, text)


class BlockFailed(AssertionError):
    pass


@dataclass
class Runner:
    """Runs blocks in ``workdir`` with ``env``; keeps the env blocks seen so far."""

    workdir: Path
    env: dict[str, str]
    dialogue: Dialogue
    log: Path
    env_blocks: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lab_cli(self, *args: str, check: bool = True) -> None:
        """``coldvault-lab ARGS``: the second terminal, where cards go in and out."""
        subprocess.run(  # noqa: S603
            [str(BIN / "coldvault-lab"), *args], cwd=self.workdir, env=self.env, check=check,
            capture_output=True, timeout=60,
        )  # fmt: skip

    def run(self, block: Block) -> None:
        if block.needs and not command_exists(block.needs):
            self.skipped.append(f"{block.runbook} block {block.number} ({block.name or 'env'}): "
                                f"`{block.needs}` is not in this tree")
            return
        script = self.workdir / f".runbook-{block.runbook}-{block.number}.sh"
        script.write_text("\n".join([*self.env_blocks, block.body]))
        child = pexpect.spawn(
            "bash", ["--noprofile", "--norc", "-euo", "pipefail", str(script)],
            cwd=str(self.workdir), env=self.env, encoding="utf-8", timeout=PROMPT_TIMEOUT,
            dimensions=(50, 240),
        )  # fmt: skip
        with self.log.open("a") as log:
            started = time.monotonic()
            log.write(f"\n===== {block.runbook} block {block.number} {block.name}\n")
            log.flush()
            child.logfile_read = log
            try:
                self._answer(child, block)
                child.expect(pexpect.EOF)
            except (pexpect.TIMEOUT, pexpect.EOF) as exc:
                raise BlockFailed(
                    f"{block.runbook} block {block.number} ({block.name}): {type(exc).__name__} "
                    f"waiting for a prompt; see {self.log}"
                ) from None
            finally:
                child.close()
                self.lab_cli("remove", "0", check=False)
                log.write(f"\n===== {time.monotonic() - started:.1f} s\n")
        if child.exitstatus != 0:
            raise BlockFailed(f"{block.runbook} block {block.number} ({block.name or 'env'}) "
                              f"exited with {child.exitstatus}; see {self.log}")
        if block.is_env:
            self.env_blocks.append(block.body)

    def _answer(self, child: pexpect.spawn, block: Block) -> None:
        for prompt, action in self.dialogue.answers.get(block.name, []):
            if not action.startswith("@words "):  # that action waits for its own title
                child.expect(prompt)
            if action == "@wait":
                continue
            if action.startswith("@insert "):
                self.lab_cli("insert", action.split()[1], "0")
            elif action == "@remove":
                self.lab_cli("remove", "0")
            elif action.startswith("@words "):
                title, label = action.removeprefix("@words ").split("|")
                with unlogged(child):
                    self.dialogue.words[title] = read_and_confirm_words(child, title, label)
            else:
                child.sendline(self.dialogue.value(action))


def base_env(workdir: Path) -> dict[str, str]:
    """The operator's shell: the virtualenv first on PATH, a private lab directory, a wide
    monochrome terminal."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COLDVAULT_", "SOFTHSM2_", "PCSCLITE_"))}  # fmt: skip
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}",
        COLDVAULT_LAB_DIR=str(workdir / "lab-state"),
        NO_COLOR="1", TERM="dumb", COLUMNS="240", PYTHONUNBUFFERED="1", HOME=str(workdir),
    )  # fmt: skip
    return env


def lab_config() -> LabConfig:
    return LabConfig.load(DEFAULT_LAB_FILE)

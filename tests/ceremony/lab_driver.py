"""Drive the ceremony CLI through its real prompts with pexpect (shared by the lab tests)."""

from __future__ import annotations

import os
import random
import re
import sys
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parents[2]
PROMPT_TIMEOUT = 60
DICE_PROMPT = r"Dice rolls \(digits 1-6, at least 99\): "


def fair_dice(seed: int = 11) -> str:
    """Deterministic 99 rolls that pass the dice checks (test input, not a secret)."""
    from coldvault.keys.entropy import DiceRejected, check_dice

    rng = random.Random(seed)  # noqa: S311 - test data
    while True:
        text = "".join(rng.choice("123456") for _ in range(99))
        try:
            check_dice(text)
            return text
        except DiceRejected:
            continue


def spawn(args: list[str], env: dict[str, str], log: Path) -> pexpect.spawn:
    full_env = dict(os.environ, **env, NO_COLOR="1", TERM="dumb", PYTHONUNBUFFERED="1")
    child = pexpect.spawn(
        sys.executable,
        ["-m", "ceremony_scripts.cli", *args],
        env=full_env,
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=PROMPT_TIMEOUT,
        dimensions=(50, 240),
    )
    child.logfile_read = log.open("a")
    return child


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus if child.exitstatus is not None else -(child.signalstatus or 0))


def read_and_confirm_words(child: pexpect.spawn, title: str, check_label: str) -> str:
    """Read the words shown for ``title``, press Enter, answer the two word checks."""
    child.expect(re.escape(title) + r"\s+write every word down")
    child.expect("Press Enter: ")
    words = {int(n): w for n, w in re.findall(r"(\d+)\. ([a-z]+)", child.before)}
    child.sendline("")
    for _ in range(2):
        child.expect(re.escape(check_label) + r", word (\d+): ")
        child.sendline(words[int(child.match.group(1))])
    return " ".join(words[k] for k in sorted(words))

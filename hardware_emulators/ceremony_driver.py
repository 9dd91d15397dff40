"""Drive ``coldvault`` console commands through their real prompts with pexpect.

The one driver behind the demo and the ceremony lab tests: it spawns ``coldvault ceremony
...`` (or any other ``coldvault`` command) on a pseudo-terminal, types answers at the
prompts, inserts and pulls lab cards when the ceremony asks, reads backup words off the
screen and answers the word checks, and collects the exit status.

The console log of a child records only what the command prints, never what is typed
(pexpect's ``logfile_read``); :func:`unlogged` pauses even that while backup words are on
the screen.

Every PIN, dice roll and word typed here is lab data: never run this against real hardware.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import pexpect

from coldvault.keys.entropy import DiceRejected, check_dice

ROOT = Path(__file__).resolve().parents[1]
#: the ``coldvault`` console script of the running interpreter's environment
COLDVAULT = Path(sys.executable).parent / "coldvault"
PROMPT_TIMEOUT = 120
COLUMNS = 240
DICE_PROMPT = r"Dice rolls \(digits 1-6, at least 99\): "
WORDS_NOT_LOGGED = "\n[backup words were on screen here; they are not logged]\n"

#: (prompt regex, answer): the answer is typed after the prompt shows; None types nothing
Dialogue = Iterable[tuple[str, str | None]]


class CeremonyFailed(RuntimeError):
    """A driven command ended with a non-zero exit status."""

    def __init__(self, status: int, log: str) -> None:
        super().__init__(f"the command exited with {status}; see {log}")
        self.status = status
        self.log = log


class CardSlot(Protocol):
    """Puts a card into the reader the command reads, and takes it out again."""

    def insert(self, serial: str, reader: int) -> None: ...

    def remove(self, reader: int) -> object: ...


# --------------------------------------------------------------------------- dice
def _checked_dice(rng: random.Random, rolls: int) -> str:
    """``rolls`` dice from ``rng`` that pass the ceremony's own dice checks."""
    if rolls < 99:
        raise ValueError("the seed ceremony asks for at least 99 dice rolls")
    while True:
        text = "".join(rng.choice("123456") for _ in range(rolls))
        try:
            check_dice(text)
            return text
        except DiceRejected:
            continue


def fair_dice(seed: int = 11, rolls: int = 99) -> str:
    """Deterministic dice rolls that pass the dice checks (test input, not a secret)."""
    return _checked_dice(random.Random(seed), rolls)  # noqa: S311 - test data


def random_dice(rolls: int = 120) -> str:
    """Unpredictable dice rolls for a demo seed, checked so the run is not refused by chance
    (a real ceremony types real rolls)."""
    return _checked_dice(secrets.SystemRandom(), rolls)


# --------------------------------------------------------------------------- processes
def spawn_coldvault(
    argv: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    timeout: float = PROMPT_TIMEOUT,
    columns: int = COLUMNS,
    stdout: Path | None = None,
) -> pexpect.spawn:
    """Start ``coldvault *argv`` on a pty with ``env`` added to this process's environment.

    What the command prints is appended to ``log``; what is typed never is. With ``stdout``,
    the command's standard output (its machine output, e.g. ``--json``) goes to that file
    instead, alone, while prompts and human text (stderr) stay on the terminal."""
    full_env = dict(
        os.environ, **env, NO_COLOR="1", TERM="dumb", COLUMNS=str(columns), PYTHONUNBUFFERED="1"
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    child = pexpect.spawn(
        str(COLDVAULT),
        list(argv),
        env=full_env,
        cwd=str(ROOT),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(50, columns),
        preexec_fn=None if stdout is None else _stdout_to(stdout),
    )
    child.logfile_read = log.open("a")
    return child


def _stdout_to(path: Path) -> Callable[[], None]:
    """A pre-exec hook (run in the child) that points its stdout at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def redirect() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.close(fd)

    return redirect


def json_document(stdout: str, command: str) -> dict[str, Any]:
    """A command's machine output: its whole stdout is exactly one JSON object."""
    try:
        result = json.loads(stdout)
    except json.JSONDecodeError as exc:
        raise RuntimeError(
            f"coldvault {command}: stdout is not one JSON document ({exc}): {stdout[:300]!r}"
        ) from None
    if not isinstance(result, dict):
        raise RuntimeError(f"coldvault {command}: stdout is JSON but not an object")
    return result


def spawn(
    args: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    timeout: float = PROMPT_TIMEOUT,
    stdout: Path | None = None,
) -> pexpect.spawn:
    """Start ``coldvault ceremony *args`` (see :func:`spawn_coldvault`)."""
    return spawn_coldvault(["ceremony", *args], env, log, timeout=timeout, stdout=stdout)


def finish(child: pexpect.spawn) -> int:
    """Wait for the command to end, close its log; returns its exit status (-signal if
    killed)."""
    child.expect(pexpect.EOF)
    child.close()
    log: IO[str] | None = child.logfile_read
    if log is not None:
        log.close()
    if child.exitstatus is not None:
        return int(child.exitstatus)
    return -int(child.signalstatus or 0)


def finish_ok(child: pexpect.spawn) -> None:
    """:func:`finish`, raising :class:`CeremonyFailed` unless the command succeeded."""
    log = getattr(child.logfile_read, "name", "the console log")
    status = finish(child)
    if status != 0:
        raise CeremonyFailed(status, str(log))


# --------------------------------------------------------------------------- prompts
def answer(child: pexpect.spawn, dialogue: Dialogue) -> None:
    """For each (regex, answer): wait for the prompt, then type the answer (if any)."""
    for expected, reply in dialogue:
        child.expect(expected)
        if reply is not None:
            child.sendline(reply)


def pin_prompt(holder: str) -> str:
    """The regex of the card PIN prompt for ``holder``'s card."""
    return r"PIN for card \S+ \(" + re.escape(holder) + r"\): "


def use_card(
    child: pexpect.spawn,
    slot: CardSlot,
    serial: str,
    prompt: str,
    dialogue: Dialogue = (),
    *,
    reader: int = 0,
) -> None:
    """Insert card ``serial`` when ``prompt`` shows, answer ``dialogue``, pull the card when
    the command says so (and also if anything goes wrong)."""
    child.expect(re.escape(prompt))
    slot.insert(serial, reader)
    try:
        answer(child, dialogue)
        child.expect(re.escape("Remove the card."))
    finally:
        slot.remove(reader)


@contextmanager
def unlogged(child: pexpect.spawn, note: str = WORDS_NOT_LOGGED) -> Iterator[None]:
    """Keep what the command prints inside the block out of its console log (backup words
    on the screen); ``note`` marks the gap."""
    log: IO[str] | None = child.logfile_read
    if log is not None:
        log.write(note)
    child.logfile_read = None
    try:
        yield
    finally:
        child.logfile_read = log


def read_and_confirm_words(child: pexpect.spawn, title: str, check_label: str) -> str:
    """Read the words shown for ``title``, press Enter, answer the two word checks; returns
    the words, space-separated."""
    child.expect(re.escape(title) + r"\s+write every word down")
    child.expect("Press Enter: ")
    words = {int(n): w for n, w in re.findall(r"(\d+)\. ([a-z]+)", child.before)}
    child.sendline("")
    for _ in range(2):
        child.expect(re.escape(check_label) + r", word (\d+): ")
        child.sendline(words[int(child.match.group(1))])
    return " ".join(words[k] for k in sorted(words))

"""The operator console as the operator sees it: captured from a rich console of a fixed
width (``record=True``), at narrow and wide terminals, with and without colour."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest
from rich.console import Console

from appliance.console import OperatorConsole
from coldvault.policy import Decision
from coldvault.policy.model import RuleResult
from coldvault.requests import Chain, Movement, MovementKind, Review
from coldvault.transport.assemble import Assembler
from coldvault.transport.ur import UR, UREncoder

# a taproot (bech32m) address: 62 characters, longer than a narrow terminal
LONG_ADDRESS = "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297"
CHANGE_ADDRESS = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
REFUSAL = (
    "Destination bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297 is not on "
    "wallet treasury-cold's whitelist; the request was refused and nothing was signed."
)
WIDTHS = (40, 80, 100, 200)


def _review() -> Review:
    return Review(
        chain=Chain.BITCOIN, network="main", kind="psbt", wallet="treasury-cold",
        client="acme", fee=1_250, fee_rate=5.0,
        movements=(
            Movement(MovementKind.EXTERNAL, "BTC", 1_250_000, LONG_ADDRESS),
            Movement(MovementKind.CHANGE, "BTC", 98_748_750, CHANGE_ADDRESS, note="index 7"),
        ),
        details=(("descriptor", "wsh(sortedmulti(2,[d34db33f/48h/0h/0h/2h]xpub6E...))"),),
        warnings=("The fee rate is above the wallet's usual range.",),
        request_digest=b"\x01" * 32,
    )  # fmt: skip


def _decision(allowed: bool) -> Decision:
    return Decision(allowed, 2, (
        RuleResult("destination-whitelisted", allowed, {}, REFUSAL if not allowed else "ok"),
        RuleResult("per-transaction-limit", True, {}, "0.01250000 BTC is within the limit."),
    ), 3)  # fmt: skip


def _console(width: int, *, no_color: bool = False) -> tuple[OperatorConsole, Console]:
    rich = Console(
        file=io.StringIO(), width=width, record=True, highlight=False, soft_wrap=True,
        force_terminal=False, color_system=None if no_color else "truecolor",
        no_color=no_color or None,
    )  # fmt: skip
    return OperatorConsole(console=rich), rich


@pytest.mark.parametrize("width", WIDTHS)
def test_refusals_and_addresses_are_never_cut(width: int) -> None:
    ui, rich = _console(width)
    ui.show_review(_review(), _decision(False))
    ui.error(REFUSAL)
    text = rich.export_text()
    assert text.count(REFUSAL) == 2  # the failing rule and the REFUSED section, both whole
    assert LONG_ADDRESS in text and CHANGE_ADDRESS in text
    assert "0.01250000 BTC (1,250,000 sat)" in text
    assert "0.98748750 BTC (98,748,750 sat)" in text
    assert "0.00001250 BTC (1,250 sat)" in text  # the fee
    assert "wsh(sortedmulti(2,[d34db33f/48h/0h/0h/2h]xpub6E...))" in text  # markup-like text
    assert "REFUSED" in text and "…" not in text


@pytest.mark.parametrize("width", WIDTHS)
def test_no_line_is_wider_than_the_terminal_except_unbreakable_text(width: int) -> None:
    """Rules and labels fit; only soft-wrapped lines (wrapped by the terminal) run longer."""
    ui, rich = _console(width)
    ui.error(REFUSAL)
    lines = rich.export_text().splitlines()
    assert all(len(line) <= width for line in lines if not line.strip() or line[0] in "─━")
    assert lines[1] == REFUSAL


def test_monochrome_keeps_every_meaning_in_words() -> None:
    ui, rich = _console(80, no_color=True)
    ui.show_review(_review(), _decision(False))
    ui.warn("Check the change address on the coordinator.")
    ui.error(REFUSAL)
    plain = rich.export_text()
    for word in ("REFUSED", "WARNING:", "FAIL", "pass", "EXTERNAL", "CHANGE", "REVIEW"):
        assert word in plain, word


def test_no_color_console_emits_no_colour() -> None:
    out = io.StringIO()
    ui = OperatorConsole(stream=out, width=80, no_color=True)
    ui.console._force_terminal = True  # as on a real terminal
    ui.error(REFUSAL)
    ui.show_review(_review(), _decision(True))
    assert not re.search(r"\x1b\[(3\d|9\d|38;)", out.getvalue())  # no foreground colour
    assert "Approvals required: 2" in re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())


def test_receiving_progress_counts_fragments_and_percent() -> None:
    """Progress lines come from the fountain decoder's own state, as the daemon feeds it."""
    encoder = UREncoder(UR("bytes", bytes(range(256)) * 8), 100)
    ui, rich = _console(80)
    assembler = Assembler()
    for n in range(400):
        part = encoder.next_part()
        if n % 3 == 1:
            continue  # a lossy camera: every third frame is missed
        p = assembler.feed(part)
        ui.progress(p)
        if p.complete:
            break
    text = rich.export_text()
    needed = encoder.seq_len
    assert f"receiving ur: 1/{needed} fragments" in text.lower()
    last = text.strip().splitlines()[-1]
    assert last.endswith("100 % decoded"), last
    percents = [int(m) for m in re.findall(r"(\d+) % decoded", text)]
    assert percents == sorted(percents) and percents[0] < 100


@pytest.mark.parametrize("width", WIDTHS)
def test_the_ceremony_console_never_cuts_either(width: int) -> None:
    from ceremony_scripts.ui import ConsoleOperator

    rich = Console(file=io.StringIO(), width=width, record=True, highlight=False)
    op = ConsoleOperator(console=rich)
    descriptor = "wsh(sortedmulti(2,[d34db33f/48h/0h/0h/2h]" + "xpub6E" * 18 + "/0/*))"
    op.table("Wallet acme-btc", [("descriptor", descriptor), ("address", LONG_ADDRESS)])
    op.error(REFUSAL)
    op.info(f"genesis {'ab' * 32}")
    text = rich.export_text()
    for whole in (descriptor, LONG_ADDRESS, REFUSAL, "ab" * 32, "ERROR"):
        assert whole in text, whole


@pytest.mark.parametrize("flag", [True, False])
def test_no_color_flag_on_a_real_terminal(tmp_path: Path, flag: bool) -> None:
    """On a pty, ``coldvault --no-color`` prints no colour; without it the same error is red
    (so the check can fail)."""
    import os
    import shutil

    import pexpect

    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    bad = tmp_path / "ledger.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    argv = [*(["--no-color"] if flag else []), "ledger", "export", "--db", str(bad),
            "--client", "acme"]  # fmt: skip
    exe = shutil.which("coldvault", path=str(Path(sys.executable).parent))
    assert exe is not None
    child = pexpect.spawn(exe, argv, env=env, encoding="utf-8", timeout=60)
    out = child.read()
    child.close()
    assert child.exitstatus == 2, out
    assert "error:" in out  # the meaning is a word either way
    coloured = bool(re.search(r"\x1b\[(3\d|9\d|38;)", out))
    assert coloured is not flag, out

"""Cross-implementation proof at the mnemonic layer: shares split to a backup plan recover
with the shamir-mnemonic reference CLI (``shamir recover``), and shares made by its
``shamir create`` recover with ours."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coldvault.backup.plan import parse_plan
from coldvault.backup.shares import combine, split_for_plan
from tests.backup.plans import flat_plan, lab_plan

SHAMIR = shutil.which("shamir") or str(Path(sys.executable).with_name("shamir"))
pytestmark = pytest.mark.skipif(not Path(SHAMIR).exists(), reason="shamir CLI not installed")
SECRET = bytes.fromhex("0c94b4c5f8a2e6d1d1d6a6a0f5b38d6b1e2c3d4e5f60718293a4b5c6d7e8f901")


def _shamir(*args: str, stdin: str = "") -> str:
    proc = subprocess.run(
        [SHAMIR, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    "text,targets",
    [
        (lab_plan(), ["a-card", "c-hsm"]),  # 2 of 3 site groups
        (flat_plan(3, sites=5), ["t4", "t0", "t2"]),  # 3 of 5
    ],
)
def test_our_plan_shares_recover_with_shamir_recover(text: str, targets: list[str]) -> None:
    shares = split_for_plan(parse_plan(text), SECRET)
    typed = "".join(bytes(shares.words(t)).decode() + "\n" for t in targets)
    out = _shamir("recover", stdin=typed)
    assert "SUCCESS!" in out
    assert f"Your master secret is: {SECRET.hex()}" in out


def test_shamir_create_shares_recover_with_ours() -> None:
    out = _shamir(
        "create",
        "custom",
        "-t",
        "2",
        "-g",
        "1",
        "1",
        "-g",
        "1",
        "1",
        "-g",
        "2",
        "3",
        "-S",
        SECRET.hex(),
        "-p",
        "TREZOR",
    )
    lines = [ln for ln in out.splitlines() if len(ln.split()) in (20, 33)]
    assert len(lines) == 5
    group_1, _group_2, member_1, _member_2, member_3 = lines
    secret = combine([member_3.encode(), group_1.encode(), member_1.encode()], "TREZOR")
    assert bytes(secret) == SECRET
    assert bytes(combine([group_1.encode(), member_1.encode(), member_3.encode()])) != SECRET

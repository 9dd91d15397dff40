"""``coldvault-lab broadcast-check``: the lab's coordinator (embit) compares the signed PSBT
with its request, verifies each signature and finalizes, before anything is broadcast."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from embit import bip32
from embit.psbt import PSBT

from hardware_emulators.cli import main
from hardware_emulators.demo import parties

ROOT = bip32.HDKey.from_seed(bytes(range(32)))
ACCOUNT = ROOT.derive("m/84h/0h/0h")
DESCRIPTOR = f"wpkh([{ROOT.my_fingerprint.hex()}/84h/0h/0h]{ACCOUNT.to_public()}/<0;1>/*)"
PAYEE = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"


def _request(amount: int = 1_250_000) -> bytes:
    return parties.bitcoin_psbt(DESCRIPTOR, pay_to=PAYEE, amount=amount, fee=2_000)


def _signed(request: bytes) -> bytes:
    psbt = PSBT.parse(request)
    assert psbt.sign_with(ROOT) == 1  # the appliance's part, played by embit's own key
    return psbt.serialize()


def _run(tmp_path: Path, request: bytes, signed: bytes, *extra: str) -> tuple[int, str]:
    (tmp_path / "request.psbt").write_bytes(request)
    (tmp_path / "signed.psbt").write_bytes(signed)
    result = CliRunner().invoke(main, [
        "broadcast-check", "--request", str(tmp_path / "request.psbt"),
        "--signed", str(tmp_path / "signed.psbt"), *extra,
    ])  # fmt: skip
    return result.exit_code, result.output


def test_the_requested_transaction_signed_is_shown_in_full_and_finalized(tmp_path: Path) -> None:
    request = _request()
    status, out = _run(tmp_path, request, _signed(request), "--json")
    assert status == 0, out
    view = json.loads(out)
    assert view["outputs"][0] == {"address": PAYEE, "amount": 1_250_000}
    assert view["fee"] == 2_000 and len(view["outputs"]) == 2
    assert view["txid"] == PSBT.parse(request).tx.txid().hex()
    (tmp_path / "text").mkdir()
    status, text = _run(tmp_path / "text", request, _signed(request))
    assert status == 0 and f"pays 1,250,000 sat to {PAYEE}" in text and "fee 2,000 sat" in text


def test_another_transaction_or_no_signature_is_not_broadcast(tmp_path: Path) -> None:
    request = _request()
    other = _signed(_request(amount=1_250_001))
    status, out = _run(tmp_path, request, other)
    assert status == 1 and "is not the requested" in out and "do not broadcast" in out
    (tmp_path / "u").mkdir()
    status, out = _run(tmp_path / "u", request, request)  # nothing signed
    assert status == 1 and "does not finalize" in out


def test_a_file_that_is_not_a_psbt_is_bad_input(tmp_path: Path) -> None:
    status, out = _run(tmp_path, _request(), b"not a psbt")
    assert status == 2 and "signed response is not a PSBT" in out and "Traceback" not in out

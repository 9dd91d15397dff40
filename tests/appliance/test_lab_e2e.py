"""The appliance end to end on the lab: real SoftHSM, real pcscd + vpcd + virtual cards,
QR frames through the virtual camera, the real ``coldvault`` console driven by pexpect.

Each request is built by an independent library (embit, eth-account, solders) and each
response is checked by it. Quorum-bypass attempts and policy violations are refused with
their reason and leave an audit record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_REFUSED
from coldvault.records.audit import verify
from coldvault.records.errors import AuditTampered
from hardware_emulators.demo import flow as demo
from hardware_emulators.demo import parties
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import LabTrust
from tests.appliance.lab_world import appliance_lab

pytestmark = [pytest.mark.lab, pytest.mark.slow]
BIN = Path(sys.executable).parent


class World:
    def __init__(self, out: Path, lab: Lab, trust: LabTrust, dests: dict[str, parties.Proof]):
        self.out, self.lab, self.trust, self.dests = out, lab, trust, dests

    @property
    def trail(self) -> Path:
        return self.out / "state" / "audit.jsonl"

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.trail.read_text().splitlines()]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, softhsm_lab, pcsc_lab, lab_config
) -> Iterator[World]:
    out = tmp_path_factory.mktemp("e2e")
    dests = {
        "btc": parties.bitcoin_counterparty("acme-treasury"),
        "eth": parties.ethereum_counterparty("globex-exchange"),
        "sol": parties.solana_counterparty("initech-payroll"),
    }
    policy = demo.policy_for(dests["btc"], dests["eth"], dests["sol"])
    with appliance_lab(out, lab_config, softhsm_lab, pcsc_lab, policy) as (lab, trust):
        yield World(out, lab, trust, dests)


def test_bitcoin_psbt_signed_with_two_card_approvals(world: World) -> None:
    line = demo.bitcoin_flow(world.out, world.lab, world.trust, world.dests["btc"])
    assert "finalized by embit" in line
    signed = [e for e in world.events() if e["event"] == "signature"]
    assert signed and signed[-1]["fields"]["response_type"] == "crypto-psbt"
    approvals = [e for e in world.events() if e["event"] == "approval"]
    assert {a["fields"]["holder"] for a in approvals} >= {"Alice Approver"}


def test_ethereum_eip1559_recovers_our_address(world: World) -> None:
    line = demo.ethereum_flow(world.out, world.lab, world.trust, world.dests["eth"])
    assert "recovers sender" in line


def test_solana_transfer_verifies(world: World) -> None:
    line = demo.solana_flow(world.out, world.lab, world.trust, world.dests["sol"])
    assert "solders verifies" in line


def test_non_whitelisted_destination_refused_and_audited(world: World) -> None:
    line = demo.refusal_flow(world.out, world.lab, world.trust)
    assert "not on wallet acme-btc's whitelist" in line
    refusals = [e for e in world.events() if e["event"] == "refusal"]
    assert refusals[-1]["fields"]["rule"] == "destination-whitelisted"


def _request(world: World, name: str, amount: int, seed: int) -> tuple[Path, Path]:
    account = world.trust.account("acme-btc")
    psbt = parties.bitcoin_psbt(str(account["descriptor"]), pay_to=world.dests["btc"].address,
                                amount=amount, fee=1_500, seed=seed)
    work = world.out / name
    work.mkdir()
    (work / "request.psbt").write_bytes(psbt)
    demo.qr("encode", str(work / "request.psbt"), "--fragment-len", "400",
            "--out", str(work / "request"))
    config = demo._config(world.out, world.lab, world.trust, name, drop=0.0, blur=0.0)
    return work, config


class Console(pexpect.spawn):
    """``coldvault`` at a terminal whose stdout is a file: the console (prompts, review,
    progress, errors) must all arrive on stderr, the terminal; the JSON result alone in
    the file."""

    def __init__(self, args: list[str], stdout: Path, *, log: Path | None = None) -> None:
        self.stdout_path = stdout

        def stdout_to_file() -> None:
            fd = os.open(stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, 1)
            os.close(fd)

        super().__init__(str(BIN / "coldvault"), args, env=dict(os.environ, COLUMNS="110"),
                         encoding="utf-8", timeout=120, preexec_fn=stdout_to_file,
                         logfile=open(log, "w") if log else None)  # noqa: SIM115


def _spawn(world: World, work: Path, config: Path) -> Console:
    args = ["appliance", "run", "--config", str(config), "--allow-emulated",
            "--dev-allow-network", "--once", "--json", "--frames", str(work / "request"),
            "--out", str(work / "response")]
    return Console(args, work / "result.json", log=work / "console.log")


def _present(world: World, child: pexpect.spawn, serial: str, pin: str) -> None:
    child.expect("insert an approver card")
    world.lab.insert(serial, 0)
    child.expect(r"PIN for card \S+ \(")
    child.sendline(pin)


def _result(child: Console, status: int) -> dict:
    """The command's one JSON document (its whole stdout), after checking its exit status."""
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == status, child.before
    assert '"ok"' not in child.before  # the terminal (stderr) never carries the result
    return json.loads(child.stdout_path.read_text())


def test_quorum_bypass_attempts_are_refused_then_quorum_signs(world: World) -> None:
    work, config = _request(world, "bypass", 200_000, seed=21)
    lab = world.lab
    child = _spawn(world, work, config)
    try:
        child.expect("HSM user PIN")
        child.sendline(lab.config.appliance_token().user_pin)
        child.expect("Type APPROVE")
        child.sendline("APPROVE")
        # 1. wrong PIN: refused with tries left, audited
        _present(world, child, "C0DE0001", "999999")
        child.expect("rejected the user PIN")
        child.expect("Remove the card")
        lab.remove(0)
        # 2. an admin card cannot approve a sign request
        child.expect("insert an approver card")
        lab.insert("C0DE0004", 0)
        child.expect("has role admin")
        child.expect("Remove the card")
        lab.remove(0)
        # 3. a valid approval by Alice
        _present(world, child, "C0DE0001", lab.config.card("C0DE0001").pin)
        child.expect(r"Approved by Alice Approver \(1 of 2\)")
        child.expect("Remove the card")
        lab.remove(0)
        # 4. Alice again: the same holder counts once, refused before her PIN is asked
        child.expect("insert an approver card")
        lab.insert("C0DE0001", 0)
        idx = child.expect(["already approved", r"PIN for card \S+ \("])
        assert idx == 0, "a PIN was asked of a holder who had already approved"
        child.expect("Remove the card")
        lab.remove(0)
        # 5. Bob completes the quorum
        _present(world, child, "C0DE0002", lab.config.card("C0DE0002").pin)
        child.expect("Remove the card")
        lab.remove(0)
        result = _result(child, EXIT_DONE)
    finally:
        child.terminate(force=True)
        for reader in range(lab.config.readers):
            lab.remove(reader)
    assert result["ok"] is True, result
    assert len(result["approvals"]) == 2
    refused = [e["fields"] for e in world.events() if e["event"] == "approval-refused"]
    reasons = " | ".join(f["reason"] for f in refused[-3:])
    assert "rejected the user PIN" in reasons
    assert "has role admin" in reasons
    assert "already approved" in reasons


def test_replayed_request_is_reshown_not_signed_again(world: World) -> None:
    # the same PSBT bytes as the quorum test: already signed, so its stored response is
    # shown again, with no approvals and no second HSM signature
    signatures_before = [e for e in world.events() if e["event"] == "signature"]
    work, config = _request(world, "replay", 200_000, seed=21)
    child = _spawn(world, work, config)
    try:
        child.expect("HSM user PIN")
        child.sendline(world.lab.config.appliance_token().user_pin)
        result = _result(child, EXIT_DONE)
    finally:
        child.terminate(force=True)
    assert result["ok"] is True and result["reshown"] is True
    assert result["approvals"] == []
    assert [e for e in world.events() if e["event"] == "signature"] == signatures_before
    reshown = [e["fields"] for e in world.events() if e["event"] == "reshown"]
    assert reshown and reshown[-1]["audit_seq"] == result["audit_seq"]
    assert (work / "response" / "frames.txt").exists()


def test_response_drawn_on_the_console_reads_back(world: World) -> None:
    """``--sink terminal``: the stored response of the signed request is drawn on this
    console as text QR codes until the operator presses Enter; nothing is written to disk,
    and the frames, read off the terminal by a QR decoder, reassemble to the response."""
    import re

    from coldvault.backends.qr_decode import default_decoder
    from coldvault.transport.assemble import Assembler

    from .terminal_qr import HALF_BLOCKS, rasterise

    work, config = _request(world, "terminal", 200_000, seed=21)  # signed earlier: re-shown
    args = ["appliance", "run", "--config", str(config), "--allow-emulated",
            "--dev-allow-network", "--once", "--json", "--frames", str(work / "request"),
            "--sink", "terminal"]  # fmt: skip
    child = Console(args, work / "result.json", log=work / "console.log")
    try:
        child.expect("HSM user PIN")
        child.sendline(world.lab.config.appliance_token().user_pin)
        child.expect(r"response frame 1; press Enter when the coordinator has it")
        child.expect(r"response frame 8; press Enter")
        drawn = child.before
        child.sendline("")
        result = _result(child, EXIT_DONE)
    finally:
        child.terminate(force=True)
    assert result["ok"] is True and result["reshown"] is True and result["frames"] == []
    assert not (work / "response").exists()
    screen = re.sub(r"\x1b\[\d*F\x1b\[J", "", drawn.replace("\r\n", "\n"))
    pictures = [
        "\n".join(line for line in chunk.split("\n") if line and set(line) <= set(HALF_BLOCKS))
        for chunk in re.split(r"response frame \d+[^\n]*\n", screen)
    ]
    pictures = [p for p in pictures if p.strip()]
    assert len(pictures) >= 7
    assembler, decoder = Assembler(), default_decoder()
    for picture in pictures:
        (text,) = decoder.decode(rasterise(picture))
        if assembler.feed(text).complete:
            break
    stored = [json.loads(f.read_text())["response"]
              for f in (world.out / "state" / "responses").glob("*.response")]  # fmt: skip
    assert assembler.result().content.hex() in stored


def test_operator_cancel_at_review_signs_nothing(world: World) -> None:
    work, config = _request(world, "cancel", 300_000, seed=33)
    child = _spawn(world, work, config)
    try:
        child.expect("HSM user PIN")
        child.sendline(world.lab.config.appliance_token().user_pin)
        child.expect("Type APPROVE")
        child.sendline("no")
        result = _result(child, EXIT_REFUSED)
    finally:
        child.terminate(force=True)
    assert result["ok"] is False and result["error"] == "cancelled"
    assert not (work / "response").exists()


def _check(world: World, config: Path, *flags: str, status: int, pin: str | None = None
           ) -> dict:
    child = Console(["appliance", "check", "--config", str(config), "--json", *flags],
                    world.out / "check.json")
    child.expect("HSM user PIN")
    child.sendline(pin or world.lab.config.appliance_token().user_pin)
    return _result(child, status)


def test_startup_refusals(world: World) -> None:
    config = world.out / "appliance-bitcoin.toml"
    if not config.exists():
        _, config = _request(world, "startup", 1000, seed=5)
    ok = _check(world, config, "--allow-emulated", "--dev-allow-network", status=EXIT_DONE)
    assert ok["ok"] is True and ok["emulated"] is True
    refused = _check(world, config, "--dev-allow-network", status=EXIT_REFUSED)
    assert refused["ok"] is False and refused["error"] == "emulated-hsm-refused"
    wrong_pin = _check(world, config, "--allow-emulated", "--dev-allow-network", pin="0000",
                       status=EXIT_BAD_INPUT)
    assert wrong_pin["ok"] is False and wrong_pin["error"] == "hsm-wrong-pin"
    from appliance.netcheck import live_network_interfaces

    if live_network_interfaces():
        no_net = _check(world, config, "--allow-emulated", status=EXIT_REFUSED)
        assert no_net["ok"] is False and no_net["error"] == "network-up"
    # a policy edited after the admins signed it is refused
    policy = world.trust.policy_path
    original = policy.read_bytes()
    try:
        policy.write_bytes(original.replace(b"per_day = 300000000", b"per_day = 900000000"))
        tampered = _check(world, config, "--allow-emulated", "--dev-allow-network",
                          status=EXIT_BAD_INPUT)
        assert tampered["ok"] is False and tampered["error"] == "document-hash-mismatch"
    finally:
        policy.write_bytes(original)


def test_audit_trail_verifies_and_detects_edits(world: World) -> None:
    key = world.trust.audit_public_key.hex()
    done = subprocess.run([str(BIN / "coldvault"), "audit", "verify", str(world.trail),
                           "--audit-pubkey", key, "--json"], capture_output=True, text=True,
                          check=False)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["ok"] and report["seals"] >= 1
    lines = world.trail.read_text().splitlines(keepends=True)
    edited = world.out / "edited.jsonl"
    edited.write_text("".join(lines[:3] + [lines[3].replace('"', "'", 1)] + lines[4:]))
    bad = subprocess.run([str(BIN / "coldvault"), "audit", "verify", str(edited),
                          "--audit-pubkey", key, "--json"], capture_output=True, text=True,
                         check=False)
    assert bad.returncode == 2 and json.loads(bad.stdout)["ok"] is False
    deleted = world.out / "deleted.jsonl"
    deleted.write_text("".join(lines[:2] + lines[3:]))
    with pytest.raises(AuditTampered):
        verify(deleted, world.trust.audit_public_key)


def test_ledger_exports_the_clients_signed_movements(world: World) -> None:
    db = world.out / "state" / "ledger.sqlite3"
    assert db.exists(), "the payments signed earlier in this module must be in the ledger"
    done = subprocess.run([str(BIN / "coldvault"), "ledger", "export", "--db", str(db),
                           "--client", "acme", "--format", "json"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rows, "the signed Bitcoin payment must appear in the client's export"
    assert all(r["client"] == "acme" for r in rows)
    assert any(r["destination"] == world.dests["btc"].address for r in rows)
    csv_out = subprocess.run([str(BIN / "coldvault"), "ledger", "export", "--db", str(db),
                              "--client", "acme"], capture_output=True, text=True, check=False)
    assert csv_out.stdout.splitlines()[0].startswith("client,")
    other = subprocess.run([str(BIN / "coldvault"), "ledger", "export", "--db", str(db),
                            "--client", "globex", "--format", "json"], capture_output=True,
                           text=True, check=False)
    assert all(r["client"] == "globex" for r in json.loads(other.stdout))

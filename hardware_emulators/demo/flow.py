"""``make demo``: the product's main job, end to end, on the emulated lab.

1. Lab up: SoftHSM tokens, a private pcscd with vpcd readers, blank virtual OpenPGP cards.
2. Trust, made by the REAL ceremonies driven through their console prompts
   (``hardware_emulators/demo/ceremonies.py``): ``init-appliance`` (new token PINs, HSM
   audit/identity
   keys), ``enrol-cards`` (keys generated on the cards, roster signed by the admins),
   ``generate-seed`` (dice typed, SLIP-39 shares read off the screen, Bitcoin pool),
   ``provision`` (Ethereum and Solana pools from typed shares), ``approve-document``
   (wallet registry and policy -- whitelist with ownership proofs -- approved by the admin
   cards). The PINs set there are the ones the appliance runs type; no demo secret is
   written to disk (checked at the end).
3. For a Bitcoin PSBT (built by embit from the exported descriptor), an EIP-1559 transaction
   (eth-account) and a Solana transfer (solders): the request is rendered as animated QR
   frames, played through the virtual camera with dropped and blurred frames into
   ``coldvault appliance run``, which is driven through its real console prompts (HSM PIN,
   APPROVE, card insertions, card PINs) by pexpect; 2-of-3 card approvals; the response
   frames are decoded and checked with the independent library.
4. A request to a non-whitelisted destination is refused with the rule that decided it.
5. ``coldvault audit verify`` checks the whole trail.
6. The seed is backed up to the three site tokens (``ceremony backup``, every share read
   back) and the drill "site-b lost" rebuilds it from sites A and C, restores the key pool
   into a fresh token and verifies its test signatures (``hardware_emulators/demo/backups.py``).

Everything lands in ``demo-out/``; the lab is torn down at the end, also on failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # noqa: S404
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pexpect
from rich.console import Console

from coldvault.keys.pool import ProvisioningRecord, Template
from coldvault.policy import AssetLimits, Policy, Tier, WalletPolicy, policy_toml
from coldvault.requests.base import Chain
from hardware_emulators.ceremony_driver import (
    COLDVAULT,
    answer,
    finish,
    json_document,
    spawn_coldvault,
)
from hardware_emulators.demo import parties
from hardware_emulators.demo.backups import FRESH_PIN, backup_and_drill
from hardware_emulators.demo.ceremonies import READER, Pins, assert_not_on_disk, ceremony_trust
from hardware_emulators.lab import Lab
from hardware_emulators.trust_setup import APPLIANCE_ID, LabTrust, appliance_config

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "demo-out"
APPROVERS = ("C0DE0001", "C0DE0002", "C0DE0003")

console = Console(highlight=False)


class Payee(Protocol):
    """Where a flow pays: a counterparty's proof or an address-book entry."""

    @property
    def address(self) -> str: ...


def step(title: str) -> None:
    console.rule(f"[bold cyan]{title}")


def demo_policy(
    record: ProvisioningRecord, btc: parties.Proof, eth: parties.Proof, sol: parties.Proof
) -> Policy:
    """The demo policy for the provisioned wallets (found by template: the fast path names
    them acme-btc/globex-eth/initech-sol, the ``provision`` ceremony
    ``<client>-<template>-<network>-<account>``), each whitelisting one counterparty."""
    spec = {a.spec.template: a.spec for a in record.accounts}
    b, e, s = spec[Template.BIP84], spec[Template.ETH], spec[Template.SOL]
    wallets = (
        WalletPolicy(
            name=b.name, client=b.client, chain=Chain.BITCOIN, network="main",
            kinds=frozenset({"psbt"}), min_approvals=2, max_fee=100_000, max_fee_rate=200.0,
            limits={"BTC": AssetLimits(per_transaction=100_000_000, per_day=300_000_000)},
            tiers=(Tier("BTC", 50_000_000, 2), Tier("BTC", None, 3)),
            destinations=(btc.destination(),),
        ),
        WalletPolicy(
            name=e.name, client=e.client, chain=Chain.ETHEREUM, network="1",
            kinds=frozenset({"eth-transaction"}), min_approvals=2,
            max_fee=20_000_000_000_000_000,
            limits={"ETH": AssetLimits(per_transaction=5 * 10**18, per_day=10 * 10**18)},
            destinations=(eth.destination(),),
        ),
        WalletPolicy(
            name=s.name, client=s.client, chain=Chain.SOLANA, network="mainnet-beta",
            kinds=frozenset({"sol-transaction"}), min_approvals=2, max_fee=100_000,
            limits={"SOL": AssetLimits(per_transaction=50_000_000_000, per_day=100_000_000_000)},
            destinations=(sol.destination(),),
        ),
    )  # fmt: skip
    return Policy(1, APPLIANCE_ID, frozenset(Chain), {w.name: w for w in wallets})


def policy_for(
    btc: parties.Proof, eth: parties.Proof, sol: parties.Proof
) -> Callable[[ProvisioningRecord], str]:
    """The demo policy document (:func:`demo_policy`) for a provisioning record."""
    return lambda record: policy_toml(demo_policy(record, btc, eth, sol))


def run_appliance(
    lab: Lab, config: Path, frames: Path, out: Path, *, approvers: tuple[str, ...],
    expect_refusal: bool = False, log: Path, pins: Pins | None = None,
) -> dict[str, object]:
    """Drive ``coldvault appliance run --once`` through its console prompts, typing ``pins``
    (default: the lab file's). The log holds what the appliance prints, never what is typed."""
    pins = pins or Pins.from_lab(lab)
    args = ["appliance", "run", "--config", str(config), "--allow-emulated",
            "--dev-allow-network", "--once", "--json", "--frames", str(frames), "--out", str(out)]
    result_file = log.with_suffix(".json")
    child = spawn_coldvault(args, dict(lab.env, COLDVAULT_DEBUG="1"), log, timeout=180,
                            columns=110, stdout=result_file)
    try:
        answer(child, [("HSM user PIN for token", pins.token_user)])
        if child.expect(["Type APPROVE to continue", pexpect.EOF]) == 0:
            child.sendline("no" if expect_refusal else "APPROVE")
            for serial in () if expect_refusal else approvers:
                if child.expect(["insert an approver card", pexpect.EOF]) == 1:
                    break  # the quorum is met (or the request was refused)
                lab.insert(serial, READER)
                try:
                    answer(child, [(r"PIN for card \S+ \(", pins.card(serial)),
                                   ("Remove the card", None)])
                finally:
                    lab.remove(READER)
        finish(child)
    finally:
        if child.isalive():
            child.terminate(force=True)
        for reader in range(lab.config.readers):
            lab.remove(reader)
    return json_document(result_file.read_text(), "appliance run")






def coldvault(*args: str) -> dict[str, object]:
    """Run a non-interactive ``coldvault`` command with ``--json``; return its result."""
    done = subprocess.run(  # noqa: S603 - our own console script, no shell
        [str(COLDVAULT), *args, "--json"], capture_output=True, text=True, timeout=300,
        check=False,
    )
    command = " ".join(args)
    if not done.stdout.strip():
        raise RuntimeError(f"coldvault {command} printed nothing: {done.stderr}")
    result = json_document(done.stdout, command)
    if done.returncode != 0 and result.get("ok") is not False:
        raise RuntimeError(f"coldvault {command} failed: {done.stderr}")
    return result


def qr(*args: str) -> dict[str, object]:
    result = coldvault("qr", *args)
    if not result.get("ok"):
        raise RuntimeError(f"coldvault qr {' '.join(args)} failed: {result}")
    return result


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    step("1. Emulated lab: SoftHSM2, pcscd + vpcd readers, virtual OpenPGP cards")
    lab = Lab.from_file(state_dir=OUT / "lab")
    lab.up()
    os.environ.update(lab.env)
    try:
        console.print(f"pcscd readers: {', '.join(lab.pcsc.reader_names())}")
        step("2. Trust material by the real ceremonies, driven through their prompts")
        btc_dest = parties.bitcoin_counterparty("acme-treasury")
        eth_dest = parties.ethereum_counterparty("globex-exchange")
        sol_dest = parties.solana_counterparty("initech-payroll")
        policy = policy_for(btc_dest, eth_dest, sol_dest)
        trust, pins, demo_secrets = ceremony_trust(
            lab, OUT / "trust", policy_text=policy, say=lambda text: console.print(f"  {text}")
        )
        console.print(f"roster v1: {len(trust.roster.holders)} card holders, "
                      f"admin threshold {trust.roster.admin_threshold}")
        for account in trust.record.accounts:
            console.print(f"  {account.spec.name}: {account.to_dict()['key_origin'] or ''} "
                          f"first address {account.first_addresses[0]}")
        results = []
        results.append(bitcoin_flow(OUT, lab, trust, btc_dest, pins=pins))
        results.append(ethereum_flow(OUT, lab, trust, eth_dest, pins=pins))
        results.append(solana_flow(OUT, lab, trust, sol_dest, pins=pins))
        results.append(refusal_flow(OUT, lab, trust, pins=pins))
        step("7. Audit trail")
        trail = str(OUT / "state" / "audit.jsonl")
        report = coldvault("audit", "verify", trail, "--audit-pubkey",
                           trust.audit_public_key.hex())
        console.print(f"audit trail: {report['entries']} entries, {report['seals']} seals, "
                      f"ok={report['ok']}")
        if not report["ok"]:
            raise RuntimeError("audit verification failed")
        step("8. Seed backup to the three site tokens, and the restore drill 'site-b lost'")
        results += backup_and_drill(
            lab, OUT / "backup", trust, demo_secrets[-3:], lambda text: console.print(f"  {text}"),
            pins=pins, audit_trail=OUT / "state" / "audit.jsonl",
        )
        checked = assert_not_on_disk(OUT, [*demo_secrets, FRESH_PIN])
        del demo_secrets
        console.print(f"no PIN, dice roll or backup word in any of the {checked} files written")
        step(f"Demo complete in {time.monotonic() - started:.0f} s")
        for line in results:
            console.print(f"[green]OK[/] {line}")
        return 0
    finally:
        lab.down()


def _config(out: Path, lab: Lab, trust: LabTrust, name: str, drop: float, blur: float
            ) -> Path:
    path = out / f"appliance-{name}.toml"
    path.write_text(appliance_config(
        trust, lab, state_dir=out / "state", frames=out / name / "request",
        out=out / name / "response", drop_rate=drop, blur_rate=blur,
    ))
    return path


def wallet(trust: LabTrust, template: Template) -> dict[str, object]:
    """The provisioned account of ``template`` (names differ between fast path and ceremony)."""
    for account in trust.record.accounts:
        if account.spec.template is template:
            return trust.account(account.spec.name)
    raise KeyError(str(template))


def bitcoin_flow(out: Path, lab: Lab, trust: LabTrust, dest: Payee, *,
                 pins: Pins | None = None, name: str = "bitcoin",
                 expect_rule: str | None = None) -> str:
    step("3. Bitcoin: PSBT from embit -> animated UR -> virtual camera (25 % drops) -> 2-of-3")
    account = wallet(trust, Template.BIP84)
    psbt = parties.bitcoin_psbt(str(account["descriptor"]), pay_to=dest.address,
                                amount=1_250_000, fee=2_000)
    work = out / name
    work.mkdir()
    (work / "request.psbt").write_bytes(psbt)
    qr("encode", str(work / "request.psbt"), "--type", "crypto-psbt", "--fragment-len", "120",
       "--out", str(work / "request"))
    config = _config(out, lab, trust, name, drop=0.25, blur=0.1)
    result = run_appliance(lab, config, work / "request", work / "response",
                           approvers=() if expect_rule else APPROVERS, log=work / "console.log",
                           pins=pins)
    if expect_rule is not None:
        return _refused(result, expect_rule)
    if not result.get("ok"):
        raise RuntimeError(f"bitcoin request failed: {result}")
    qr("decode", str(work / "response"), "--out", str(work / "signed.psbt"))
    raw, inputs = parties.finalize_psbt((work / "signed.psbt").read_bytes())
    (work / "final-tx.hex").write_text(raw + "\n")
    return (f"Bitcoin: signed PSBT finalized by embit ({inputs} input, {len(raw) // 2} bytes), "
            f"approvals {result['approvals']}")


def ethereum_flow(out: Path, lab: Lab, trust: LabTrust, dest: Payee, *,
                  pins: Pins | None = None, name: str = "ethereum",
                  expect_rule: str | None = None) -> str:
    step("4. Ethereum: EIP-1559 eth-sign-request -> appliance -> eth-signature")
    from hardware_emulators.demo.chains import eth_request, eth_verify

    work = out / name
    work.mkdir()
    account = wallet(trust, Template.ETH)
    cbor, tx = eth_request(account, to=dest.address, value=10**17)
    (work / "request.cbor").write_bytes(cbor)
    qr("encode", str(work / "request.cbor"), "--type", "eth-sign-request", "--cbor",
       "--fragment-len", "100", "--out", str(work / "request"))
    config = _config(out, lab, trust, name, drop=0.1, blur=0.0)
    result = run_appliance(lab, config, work / "request", work / "response",
                           approvers=() if expect_rule else APPROVERS, log=work / "console.log",
                           pins=pins)
    if expect_rule is not None:
        return _refused(result, expect_rule)
    if not result.get("ok"):
        raise RuntimeError(f"ethereum request failed: {result}")
    qr("decode", str(work / "response"), "--out", str(work / "signature.cbor"))
    sender = eth_verify(tx, (work / "signature.cbor").read_bytes())
    ours = str(account["first_addresses"][0])  # type: ignore[index]
    if sender.lower() != ours.lower():
        raise RuntimeError(f"eth-account recovered {sender}, not our address {ours}")
    return f"Ethereum: eth-account recovers sender {sender} = our address for m/44h/60h/0h/0/0"


def solana_flow(out: Path, lab: Lab, trust: LabTrust, dest: Payee, *,
                pins: Pins | None = None, name: str = "solana",
                expect_rule: str | None = None) -> str:
    step("5. Solana: system transfer sol-sign-request -> appliance (Ed25519 in SoftHSM)")
    from hardware_emulators.demo.chains import sol_request, sol_verify

    work = out / name
    work.mkdir()
    account = wallet(trust, Template.SOL)
    cbor, message, signer = sol_request(account, to=dest.address, lamports=250_000_000)
    (work / "request.cbor").write_bytes(cbor)
    qr("encode", str(work / "request.cbor"), "--type", "sol-sign-request", "--cbor",
       "--fragment-len", "100", "--out", str(work / "request"))
    config = _config(out, lab, trust, name, drop=0.1, blur=0.0)
    result = run_appliance(lab, config, work / "request", work / "response",
                           approvers=() if expect_rule else APPROVERS, log=work / "console.log",
                           pins=pins)
    if expect_rule is not None:
        return _refused(result, expect_rule)
    if not result.get("ok"):
        raise RuntimeError(f"solana request failed: {result}")
    qr("decode", str(work / "response"), "--out", str(work / "signature.cbor"))
    sol_verify(message, signer, (work / "signature.cbor").read_bytes())
    if signer != str(account["first_addresses"][0]):  # type: ignore[index]
        raise RuntimeError("the Solana signer is not our first address")
    return f"Solana: solders verifies the transfer signature of {signer}"


def _refused(result: dict[str, object], rule: str) -> str:
    """The refusal an ``expect_rule`` flow expects: not signed, refused by ``rule``."""
    if result.get("ok") or result.get("rule") != rule:
        raise RuntimeError(f"the request was not refused by rule {rule}: {result}")
    return f"Refused: {result['message']}"


def refusal_flow(out: Path, lab: Lab, trust: LabTrust, *, pins: Pins | None = None) -> str:
    step("6. Policy: a payment to a destination that is not whitelisted is refused")
    stranger = parties.bitcoin_counterparty("unknown-party")
    return bitcoin_flow(out, lab, trust, stranger, pins=pins, name="refused",
                        expect_rule="destination-whitelisted")


"""What a careful signer is warned about on the review screen, and refusals naming the real
cause. PSBTs are built with embit (the independent library); the warnings are asserted on the
screen the operator console renders (appliance.console.OperatorConsole, 100 columns)."""

from __future__ import annotations

import dataclasses
import io
import random

import psbt_fixtures as fx
import pytest
from embit.psbt import PSBT
from embit.script import Script
from embit.transaction import TransactionOutput

from appliance.console import OperatorConsole
from coldvault.policy import Decision
from coldvault.requests.base import PreparedRequest
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin import request as P
from coldvault.requests.bitcoin.checks import address, dust_threshold
from coldvault.requests.bitcoin.errors import SighashRefused, UtxoDisagrees
from coldvault.requests.bitcoin.maps import IN_SIGHASH_TYPE
from coldvault.requests.dispatch import prepare_request
from coldvault.transport.assemble import Assembler
from coldvault.transport.registry.cbor import MalformedCbor
from coldvault.transport.ur import UR, encode_single

#: 2026-01-01T00:00:00Z: the host clock every test here pretends to read.
NOW = 1_767_225_600
#: Mainnet block 840,000 was mined at 1,713,571,767; at 540 s a block the upper-bound
#: estimate for NOW is 840,000 + (NOW - 1,713,571,767) // 540.
TIP_BOUND = 840_000 + (NOW - 1_713_571_767) // 540
P2WSH = b"\x00\x20" + bytes(range(32))


def _prepare(wf: fx.WalletFixture, raw: bytes) -> PreparedRequest:
    ks = fx.SoftwareKeystore(wf.root)
    return P.prepare_psbt(
        raw, wallets={wf.wallet.name: wf.wallet}, lookup_key=ks.lookup_key, now=NOW
    )


def _psbt(wf: fx.WalletFixture, *, pay: int = 150_000, script: bytes = P2WSH, **kw) -> bytes:
    args: dict = {
        "inputs": [(0, 1, 120_000), (1, 3, 80_000)],
        "external": [(script, pay)],
        "change": [(1, 4, 40_000)],
    }
    args.update(kw)
    return fx.build_psbt(wf, **args)


def screen(req: PreparedRequest) -> str:
    """The review screen exactly as the operator sees it (100 columns)."""
    out = io.StringIO()
    OperatorConsole(stream=out, width=100).show_review(req.review, Decision(True, 2, (), 3))
    return out.getvalue()


def _flat(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------ dust


@pytest.mark.parametrize(
    ("kind", "threshold"), [("p2pkh", 546), ("p2sh", 540), ("p2wpkh", 294), ("p2tr", 330)]
)
def test_dust_thresholds_are_bitcoin_cores(kind: str, threshold: int) -> None:
    assert dust_threshold(fx.external_script(random.Random(1), kind)) == threshold
    assert dust_threshold(P2WSH) == 330
    assert dust_threshold(b"\x6a\x04abcd") == 0  # OP_RETURN is unspendable, never dust


def test_dust_output_is_warned_naming_the_amount_and_address() -> None:
    wf = fx.make_wallet("wpkh")
    req = _prepare(wf, _psbt(wf, pay=329))
    dest = address(P2WSH, "test")
    text = _flat(screen(req))
    assert (
        f"WARNING: output 0 pays 329 sat to {dest}, below the 330 sat dust limit for its script:"
        " Bitcoin nodes will not relay the transaction" in text
    )
    assert "dust" not in _flat(screen(_prepare(wf, _psbt(wf, pay=330))))


# ------------------------------------------------------------------ absolute locktime


def test_far_future_time_locktime_is_warned() -> None:
    wf = fx.make_wallet("wpkh")
    locktime = NOW + 30 * 86400
    text = _flat(screen(_prepare(wf, _psbt(wf, locktime=locktime))))
    assert (
        f"WARNING: locktime {locktime} (unix time) is far in the future: the transaction cannot"
        " be mined for about 30 days after the host clock's time" in text
    )
    soon = _flat(screen(_prepare(wf, _psbt(wf, locktime=NOW + 3600))))
    assert "far in the future" not in soon


def test_far_future_height_locktime_is_warned_on_mainnet_only() -> None:
    main = dataclasses.replace(fx.make_wallet("wpkh"), wallet=dataclasses.replace(
        fx.make_wallet("wpkh").wallet, network="main"))  # fmt: skip
    far = TIP_BOUND + 5_000
    text = _flat(screen(_prepare(main, _psbt(main, locktime=far))))
    assert (
        f"WARNING: locktime {far} (block height) is far in the future: by the host clock the"
        f" chain is at most near block {TIP_BOUND:,}, so the transaction cannot be mined for"
        " about 5,000 blocks (about 35 days)" in text
    )
    # anti-fee-sniping locktimes (at or just past the tip) are normal, never warned
    for near in (TIP_BOUND - 3_000, TIP_BOUND + 100):
        assert "far in the future" not in screen(_prepare(main, _psbt(main, locktime=near)))
    # test networks have no height estimate
    wf = fx.make_wallet("wpkh")
    assert "far in the future" not in screen(_prepare(wf, _psbt(wf, locktime=far)))


def test_locktime_with_every_sequence_final_is_not_enforced_so_not_warned() -> None:
    wf = fx.make_wallet("wpkh")
    raw = _psbt(wf, locktime=NOW + 400 * 86400, sequence=0xFFFFFFFF)
    assert "far in the future" not in screen(_prepare(wf, raw))


# ------------------------------------------------------------------ relative timelocks


def test_block_relative_timelock_is_warned_naming_the_sequence() -> None:
    wf = fx.make_wallet("wsh")
    text = _flat(screen(_prepare(wf, _psbt(wf, sequence=144))))
    for i in (0, 1):
        assert (
            f"WARNING: input {i} has a relative timelock (BIP-68 sequence 0x00000090): the"
            " transaction cannot be mined until 144 blocks (about 24 hours) after the coin it"
            " spends was confirmed" in text
        )


def test_time_relative_timelock_is_warned_in_seconds() -> None:
    wf = fx.make_wallet("wpkh")
    seq = (1 << 22) | 675  # 675 * 512 s = 345,600 s = 4 days
    text = _flat(screen(_prepare(wf, _psbt(wf, sequence=seq))))
    assert (
        "input 0 has a relative timelock (BIP-68 sequence 0x004002a3): the transaction cannot"
        " be mined until 345,600 seconds (about 4 days) after the coin it spends was confirmed"
    ) in text


@pytest.mark.parametrize("sequence", [0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF, 1 << 31 | 144, 0])
def test_no_relative_timelock_warning_when_bip68_does_not_lock(sequence: int) -> None:
    wf = fx.make_wallet("wpkh")
    assert "relative timelock" not in screen(_prepare(wf, _psbt(wf, sequence=sequence)))


def test_version_1_transactions_have_no_relative_timelocks() -> None:
    wf = fx.make_wallet("wpkh")
    p = PSBT.parse(_psbt(wf, sequence=144))
    p.tx_version = 1
    assert "relative timelock" not in screen(_prepare(wf, p.serialize()))


# ------------------------------------------------------------------ addresses are whole


def test_addresses_are_never_cut_on_the_review() -> None:
    wf = fx.make_wallet("wsh")  # change to a 62-character P2WSH address
    req = _prepare(wf, _psbt(wf))
    text = screen(req)
    dests = [m.destination for m in req.review.movements]
    assert len(dests) == 2 and all(len(d) == 62 for d in dests)
    assert "…" not in text
    for d in dests:  # each address whole, on one line
        assert sum(d in line for line in text.splitlines()) >= 1


def test_a_screen_too_narrow_folds_an_address_but_never_cuts_it() -> None:
    wf = fx.make_wallet("wsh")
    req = _prepare(wf, _psbt(wf))
    out = io.StringIO()
    OperatorConsole(stream=out, width=60).show_review(req.review, Decision(True, 2, (), 3))
    joined = "".join(c for c in out.getvalue() if c.isalnum())
    assert "…" not in out.getvalue()
    for m in req.review.movements:
        assert m.destination in joined


# ------------------------------------------------------------------ refusals name the cause


def test_witness_utxo_with_another_script_is_reported_as_a_script_difference() -> None:
    wf = fx.make_wallet("wpkh")
    p = PSBT.parse(_psbt(wf))
    wu = p.inputs[1].witness_utxo
    p.inputs[1].witness_utxo = TransactionOutput(wu.value, Script(b"\x00\x14" + b"\x11" * 20))
    with pytest.raises(UtxoDisagrees) as info:
        _prepare(wf, p.serialize())
    msg = str(info.value)
    assert "input 1's witness UTXO script (0014" + "11" * 20 + ") differs" in msg
    assert f"the amounts agree ({wu.value} sat)" in msg
    assert "amount differs" not in msg and "fee attack" not in msg


def test_witness_utxo_with_another_amount_names_both_amounts() -> None:
    wf = fx.make_wallet("wpkh")
    p = PSBT.parse(_psbt(wf))
    real = p.inputs[0].witness_utxo.value
    p.inputs[0].witness_utxo.value = real + 1
    with pytest.raises(UtxoDisagrees, match="fee attack") as info:
        _prepare(wf, p.serialize())
    assert f"amount ({real + 1} sat) differs from the previous transaction's output ({real} sat)" \
        in str(info.value)


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        (0x41, "0x41 (not a Bitcoin sighash type: the 0x40 bit is SIGHASH_FORKID of Bitcoin Cash)"),
        (0xC1, "0xc1 (not a Bitcoin sighash type: the 0x40 bit is SIGHASH_FORKID of Bitcoin Cash)"),
        (0x101, "0x101 (not a defined Bitcoin sighash type)"),
        (0x21, "0x21 (not a defined Bitcoin sighash type)"),
        (0x81, "0x81 (SIGHASH_ALL|ANYONECANPAY)"),
        (0x03, "0x3 (SIGHASH_SINGLE)"),
    ],
)
def test_sighash_refusal_names_the_type_truly(kind: int, said: str) -> None:
    wf = fx.make_wallet("wpkh")
    raw = pp.parse_psbt(_psbt(wf))
    inputs = list(raw.inputs)
    inputs[0] = inputs[0].with_field(IN_SIGHASH_TYPE, b"", kind.to_bytes(4, "little"))
    with pytest.raises(SighashRefused) as info:
        _prepare(wf, dataclasses.replace(raw, inputs=tuple(inputs)).serialize())
    msg = str(info.value)
    assert f"input 0 asks for sighash type {said}; only SIGHASH_ALL (0x1) is signed" in msg
    if kind in (0x41, 0xC1, 0x101, 0x21):
        assert "(SIGHASH_ALL)" not in msg


@pytest.mark.parametrize(
    "cbor",
    [
        bytes.fromhex("59ffff70736274ff"),  # byte string claiming 65,535 bytes, 5 present
        bytes.fromhex("5f4270734274ffff"),  # indefinite-length byte string
        bytes.fromhex("a1"),  # map missing its entries
    ],
)
def test_malformed_cbor_in_a_psbt_ur_is_reported_as_cbor(cbor: bytes) -> None:
    asm = Assembler()
    asm.feed(encode_single(UR("crypto-psbt", cbor)))
    received = asm.result()
    with pytest.raises(MalformedCbor) as info:
        prepare_request(received, wallets={}, lookup_key=lambda _k: None, request_digest=b"")
    msg = str(info.value)
    assert msg.startswith("The 'crypto-psbt' UR payload is not acceptable CBOR (")
    assert "psbt magic" not in msg and "not a PSBT" not in msg

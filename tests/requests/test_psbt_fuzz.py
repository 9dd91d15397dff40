"""Mutated PSBT bytes never crash the pre-parser or prepare_psbt: only ColdvaultError."""

from __future__ import annotations

import json
import random
from pathlib import Path

import psbt_fixtures as fx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldvault.errors import ColdvaultError
from coldvault.requests.bitcoin import parse as pp
from coldvault.requests.bitcoin.request import prepare_psbt

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
_rng = random.Random(3)
_WALLETS = [fx.make_wallet(k) for k in fx.KINDS]
_KS = fx.SoftwareKeystore(_WALLETS[0].root)
_REGISTRY = {w.wallet.name: w.wallet for w in _WALLETS}
SEEDS: list[bytes] = [
    fx.build_psbt(
        w,
        inputs=[(0, 1, 50_000), (1, 2, 60_000)],
        external=[(fx.external_script(_rng), 70_000)],
        change=[(1, 3, 39_000)],
    )
    for w in _WALLETS
]
SEEDS.append(fx.to_v2(SEEDS[1], height_locks=[1000, None]))
for name in ("bip174_psbt.json", "bip370_psbtv2.json"):
    SEEDS += [
        bytes.fromhex(c["hex"])
        for c in json.loads((VECTORS / name).read_text())["cases"]
        if c["category"] != "invalid"
    ]

FUZZ = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def _run(data: bytes) -> None:
    try:
        psbt = pp.parse_psbt(data)
    except ColdvaultError:
        return
    assert psbt.serialize() == data  # anything accepted re-serialises byte-identically
    try:
        req = prepare_psbt(data, wallets=_REGISTRY, lookup_key=_KS.lookup_key)
    except ColdvaultError:
        return
    assert req.review.fee is not None and req.review.fee >= 0
    req.finish(_KS.sign_jobs(req.jobs))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.sampled_from([0x00, 0x01, 0xFC, 0xFD, 0xFE, 0xFF, 0x20, 0x51]))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=9))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


@FUZZ
@given(mutated())
def test_mutated_psbts_only_raise_coldvault_errors(data: bytes) -> None:
    _run(data)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_random_bytes_after_magic(tail: bytes) -> None:
    _run(pp.MAGIC + tail)
    _run(tail)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    try:
        pp.parse_psbt(text)
    except ColdvaultError:
        pass


def test_seeds_are_signable() -> None:
    for raw in SEEDS[:6]:
        req = prepare_psbt(raw, wallets=_REGISTRY, lookup_key=_KS.lookup_key)
        assert req.jobs

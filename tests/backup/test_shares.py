"""Splitting to a plan and combining, with the official SLIP-39 vectors and shamir-mnemonic
itself as oracles (also for what check_plan claims about a plan)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from coldvault.backup.check import check_plan, propose_plan
from coldvault.backup.errors import PassphraseInvalid
from coldvault.backup.plan import Plan, parse_plan
from coldvault.backup.shares import combine, share_facts, split_for_plan
from coldvault.crypto.bip32 import HDKey
from coldvault.crypto.mnemonics import InsufficientShares, ShareError
from tests.backup.plans import flat_plan, lab_plan

VECTORS = json.loads(Path("/work/shared/vectors/slip39.json").read_text())
SECRET = bytes(range(32))


@pytest.mark.parametrize("case", VECTORS, ids=[v[0].split(".")[0] for v in VECTORS])
def test_official_vectors(case) -> None:
    description, words, secret_hex, xprv = case
    shares = [w.encode() for w in words]
    if not secret_hex:
        with pytest.raises(ShareError):
            combine(shares, "TREZOR")
        return
    secret = combine(shares, "TREZOR")
    assert bytes(secret).hex() == secret_hex, description
    assert HDKey.from_seed(secret).xprv() == xprv


def test_split_follows_the_plan() -> None:
    plan = parse_plan(lab_plan())
    shares = split_for_plan(plan, SECRET, "pass phrase")
    assert "words hidden" in repr(shares) and "academic" not in repr(shares)
    facts = {t: share_facts(shares.words(t)) for t in shares.targets}
    assert {f.identifier for f in facts.values()} == {shares.info.identifier}
    assert all(
        f.extendable and f.group_threshold == 2 and f.group_count == 3 for f in facts.values()
    )
    assert bytes(shares.words("a-hsm")) == bytes(shares.words("a-card"))  # copies
    assert bytes(shares.words("a-hsm")) != bytes(shares.words("b-hsm"))
    assert (facts["c-card"].group, facts["c-card"].member) == (2, 0)
    secret = combine([shares.words("a-card"), shares.words("c-hsm")], "pass phrase")
    assert bytes(secret) == SECRET
    assert bytes(combine([shares.words("a-card"), shares.words("c-hsm")])) != SECRET
    shares.wipe()
    with pytest.raises(ValueError):
        shares.words("a-card")


def test_flat_scheme_has_distinct_members() -> None:
    shares = split_for_plan(parse_plan(flat_plan(2, sites=4)), SECRET[:16])
    members = [share_facts(shares.words(f"t{i}")).member for i in range(4)]
    assert members == [0, 1, 2, 3]
    assert bytes(combine([shares.words("t3"), shares.words("t1")])) == SECRET[:16]
    with pytest.raises(InsufficientShares):
        combine([shares.words("t3")])


def test_a_64_byte_bip39_seed_can_be_sharded() -> None:
    seed = bytes(range(64))
    shares = split_for_plan(parse_plan(flat_plan(2)), seed, extendable=False)
    assert not shares.info.extendable
    assert bytes(combine([shares.words("t0"), shares.words("t2")])) == seed


def test_bad_inputs() -> None:
    plan = parse_plan(flat_plan(2))
    with pytest.raises(PassphraseInvalid):
        split_for_plan(plan, SECRET, "pässword")
    with pytest.raises(ValueError):
        split_for_plan(plan, SECRET[:20])


def _rebuilds(plan: Plan, shares, targets) -> bool:
    try:
        return bytes(combine([shares.words(t) for t in targets])) == SECRET
    except InsufficientShares:
        return False


@pytest.mark.parametrize(
    "plan",
    [
        parse_plan(lab_plan()),
        parse_plan(flat_plan(1)),
        parse_plan(flat_plan(3)),
        propose_plan(["a", "b", "c", "d"], survive=2),
        propose_plan(["a", "b", "c"], survive=1, collusion=2, custodians_per_site=2),
    ],
    ids=["lab", "flat-1-of-3", "flat-3-of-3", "proposed-2-of-4", "proposed-collusion-2"],
)
def test_check_plan_agrees_with_shamir_mnemonic(plan: Plan) -> None:
    """What check_plan says about a site, a custodian or a loss is what combining the real
    shares of those targets does."""
    shares = split_for_plan(plan, SECRET)
    report = check_plan(plan, collusion=2, survive=2)
    by_rule = {(f.rule.value, f.sites, f.custodians) for f in report.findings}
    everything = {t.id for t in plan.targets}
    for site in plan.sites:
        alone = _rebuilds(plan, shares, [t.id for t in site.targets])
        assert alone == (("site-alone", (site.name,), ()) in by_rule)
    reach = {c: {t.id for t in plan.targets if c in t.custodians} for c in plan.custodians}
    for pair in itertools.combinations(plan.custodians, 2):
        together = _rebuilds(plan, shares, sorted(reach[pair[0]] | reach[pair[1]]))
        alone = any(("custodian-alone", (), (c,)) in by_rule for c in pair)
        assert together == (alone or ("collusion", (), pair) in by_rule)
    for lost in plan.sites:
        left = everything - {t.id for t in lost.targets}
        assert (not _rebuilds(plan, shares, sorted(left))) == (
            ("site-loss", (lost.name,), ()) in by_rule
        )

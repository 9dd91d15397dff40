"""Wallet script derivation agrees with embit's own descriptor derivation for every supported
script type, on both branches, and refuses descriptors it does not derive."""

from __future__ import annotations

from dataclasses import replace

import pytest
from embit.descriptor import Descriptor
from psbt_fixtures import TEMPLATES, make_wallet

from coldvault.requests.bitcoin.wallet import WalletDescriptorError, WalletScripts

INDEXES = (0, 1, 7, 99)


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
def test_scripts_match_embits_derivation(kind: str) -> None:
    wf = make_wallet(kind)
    scripts = WalletScripts(wf.wallet)
    for branch in (0, 1):
        for index in INDEXES:
            ours = scripts.derive(branch, index)
            oracle = wf.descriptor.derive(index, branch_index=branch)
            assert ours.script_pubkey == oracle.script_pubkey().data
            if kind.startswith("sh-"):
                assert ours.redeem_script == oracle.redeem_script().data
            else:
                assert ours.redeem_script is None
            if kind.endswith("wsh"):
                assert ours.witness_script == oracle.witness_script().data
            else:
                assert ours.witness_script is None
            mine = [k for k in oracle.keys if k.origin.fingerprint == wf.root.my_fingerprint]
            assert ours.our_pubkey == mine[0].get_public_key().sec()
            assert ours.our_path == scripts.account + (branch, index)


def test_unsorted_multi_keeps_the_descriptor_order() -> None:
    wf = make_wallet("wsh")
    text = wf.wallet.descriptor.replace("sortedmulti(", "multi(")
    scripts = WalletScripts(replace(wf.wallet, descriptor=text))
    oracle = Descriptor.from_string(text)
    for index in INDEXES:
        assert scripts.derive(0, index).witness_script == (
            oracle.derive(index, branch_index=0).witness_script().data
        )


def test_a_key_with_steps_before_the_branch_is_refused() -> None:
    wf = make_wallet("wpkh")
    text = wf.wallet.descriptor.replace("/<0;1>/*", "/5/<0;1>/*")
    with pytest.raises(WalletDescriptorError, match="must end in /<0;1>/\\*"):
        WalletScripts(replace(wf.wallet, descriptor=text))

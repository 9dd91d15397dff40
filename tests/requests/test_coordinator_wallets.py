"""Reading coordinators' multisig wallets (no hardware): every accepted format gives the same
wallet as embit derives it, and every malformed file is refused with its reason."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from embit import bip32
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum
from embit.networks import NETWORKS

from coldvault.errors import EXIT_BAD_INPUT, exit_status
from coldvault.requests.bitcoin.coordinator import (
    CoordinatorWalletInvalid,
    Source,
    read_multisig,
    registry_with,
)

ROOTS = [bip32.HDKey.from_seed(random.Random(i).randbytes(32)) for i in range(3)]  # noqa: S311
PATH = "m/48h/0h/0h/2h"


def xpub(root: bip32.HDKey) -> str:
    return root.derive(PATH).to_public().to_base58()


KEYS = [f"[{r.my_fingerprint.hex()}/48h/0h/0h/2h]{xpub(r)}" for r in ROOTS]
DESCRIPTOR = add_checksum(f"wsh(sortedmulti(2,{','.join(k + '/<0;1>/*' for k in KEYS)}))")
FIRST = Descriptor.from_string(DESCRIPTOR.split("#")[0]).derive(0, branch_index=0).address(
    NETWORKS["main"])
COLDCARD = "\n".join([
    "# Coldcard Multisig setup file (exported from Sparrow)", "Name: treasury-vault",
    "Policy: 2 of 3", "Derivation: m/48'/0'/0'/2'", "Format: P2WSH", "",
    *(f"{r.my_fingerprint.hex().upper()}: {xpub(r)}" for r in ROOTS),
])
BSMS = f"BSMS 1.0\n{DESCRIPTOR}\n/0/*,/1/*\n{FIRST}\n"


@pytest.mark.parametrize(("text", "source"), [
    (DESCRIPTOR, Source.DESCRIPTOR),
    (COLDCARD, Source.COLDCARD), (BSMS, Source.BSMS),
])
def test_every_format_gives_the_same_wallet(text: str, source: Source) -> None:
    setup = read_multisig(text.encode())
    assert setup.source is source and setup.policy == "2 of 3"
    assert setup.descriptor == DESCRIPTOR
    assert setup.first_addresses(1) == [("0/0", FIRST)]
    rows = dict(setup.rows())
    assert rows["cosigner 1 xpub"] in {xpub(r) for r in ROOTS}


@pytest.mark.parametrize(("text", "reason"), [
    (DESCRIPTOR[:-1] + ("q" if DESCRIPTOR[-1] != "q" else "p"), "checksum is wrong"),
    (DESCRIPTOR.split("#")[0], "it has no #checksum"),
    (DESCRIPTOR.split("#")[0] + "#", "it has no #checksum"),
    (add_checksum(DESCRIPTOR.split("#")[0].replace("sortedmulti", "multi")),
     "keeps the key order"),
    (add_checksum(f"wpkh({KEYS[0]}/<0;1>/*)"), "only P2WSH multisig"),
    (add_checksum(f"sh(wsh(sortedmulti(2,{','.join(k + '/<0;1>/*' for k in KEYS)})))"),
     "only P2WSH"),
    (add_checksum("wsh(sortedmulti(2,{}))".format(
        ",".join(k + "/<0;1>/*" for k in [KEYS[0], KEYS[0], KEYS[1]]))), "appears twice"),
    (add_checksum(f"wsh(sortedmulti(2,{xpub(ROOTS[0])}/<0;1>/*,{KEYS[1]}/<0;1>/*))"),
     "has no [fingerprint"),
    (BSMS.replace(FIRST, FIRST[:-1] + ("q" if FIRST[-1] != "q" else "p")), "first address"),
    (BSMS.replace("BSMS 1.0", "BSMS 2.0"), "must be 4 lines"),
    (COLDCARD.replace("Policy: 2 of 3", "Policy: 2 of 4"), "names 4 cosigners"),
    (COLDCARD.replace("Format: P2WSH", "Format: P2SH-P2WSH"), "is not P2WSH"),
    (COLDCARD.replace("Derivation: m/48'/0'/0'/2'", "Derivation: m/48'/0'/0'"),
     "does not match its path"),
    ("hello", "neither a descriptor"),
])
def test_bad_files_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(CoordinatorWalletInvalid) as err:
        read_multisig(text.encode())
    assert reason in err.value.message
    assert exit_status(err.value) == EXIT_BAD_INPUT


def test_not_utf8_and_too_large() -> None:
    with pytest.raises(CoordinatorWalletInvalid, match="not UTF-8"):
        read_multisig(b"\xff\xfe")
    with pytest.raises(CoordinatorWalletInvalid, match="larger than"):
        read_multisig(b"x" * 20_000)


def test_registry_gains_the_wallet_and_keeps_the_others() -> None:
    registry = (b'[[wallet]]\nname = "acme-btc"\nclient = "acme"\nchain = "bitcoin"\n'
                b'network = "main"\ntemplate = "bip84"\nmaster_fingerprint = "0a1b2c3d"\n'
                b'account_path = "m/84h/0h/0h"\n'
                b'[[wallet]]\nname = "vault"\nclient = "acme"\nchain = "bitcoin"\n'
                b'network = "main"\ntemplate = "bip48-wsh-sortedmulti"\n'
                b'master_fingerprint = "0a1b2c3d"\naccount_path = "m/48h/0h/0h/2h"\n')
    setup = read_multisig(BSMS.encode())
    fp = ROOTS[0].my_fingerprint
    text = registry_with(registry, setup, name="vault", client="acme", master_fingerprint=fp)
    assert text.count(b"[[wallet]]") == 2 and DESCRIPTOR.encode() in text
    with pytest.raises(CoordinatorWalletInvalid, match="already registered"):
        registry_with(text, setup, name="vault", client="acme", master_fingerprint=fp)


@pytest.mark.parametrize("text", [BSMS, COLDCARD], ids=["bsms", "coldcard"])
def test_a_wallet_file_sent_as_bbqr_frames_reads_as_the_file(text: str, tmp_path: Path) -> None:
    """A coordinator's BBQr animation of the wallet file (rendered, then read back through the
    QR decoder) gives the same wallet as the file itself."""
    from coldvault.backends.qr_decode import default_decoder
    from coldvault.ceremonies.register import read_source
    from coldvault.transport import render as qr_render
    from coldvault.transport.formats import TransportFormat
    from coldvault.transport.reply import encode_reply

    stream = encode_reply(TransportFormat.BBQR, "text", text.encode(), max_fragment_len=120)
    frames = stream.frames(None)
    assert len(frames) > 1 and all(f.startswith("B$") for f in frames)
    for i, frame in enumerate(frames):
        (tmp_path / f"frame-{i:04d}.png").write_bytes(qr_render.render_png(frame))
    from_qr = read_source(tmp_path, default_decoder())
    assert from_qr.descriptor == read_multisig(text.encode()).descriptor
    assert from_qr.descriptor.startswith("wsh(sortedmulti(2,")

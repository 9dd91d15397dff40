"""The fuzz targets: one function per parser of untrusted input, each taking raw bytes.

A target feeds its bytes to the parser the way the appliance or a ceremony does (QR text,
CBOR, PSBT bytes, file contents). Any :class:`coldvault.errors.ColdvaultError` is an accepted
outcome; every other exception is a bug in the parser (see :mod:`tests.fuzz.harness`).

Targets that read a file write the bytes to a scratch directory that lives as long as the
process (removed at exit). The corpus of each target is ``tests/fuzz/corpus/<name>/``.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from coldvault.backup.drill import parse_scenario
from coldvault.backup.envelope import parse_sealed
from coldvault.backup.plan import parse_plan
from coldvault.backup.record import parse_record
from coldvault.config import load_config
from coldvault.policy.errors import UnprovenDestination
from coldvault.policy.load import parse_policy
from coldvault.quorum.approvals import ApprovalToken
from coldvault.quorum.documents import approvals_path, load_signed_document
from coldvault.quorum.roster import Roster
from coldvault.requests.bitcoin.request import prepare_psbt
from coldvault.requests.ethereum import rlp
from coldvault.requests.ethereum.eip712 import parse_typed_data
from coldvault.requests.ethereum.tx import decode_transaction
from coldvault.requests.solana.message import parse_message
from coldvault.requests.wallets import parse_wallets
from coldvault.transport import bbqr, bytewords, legacy
from coldvault.transport.assemble import Assembler
from coldvault.transport.fountain import FountainDecoder, Part
from coldvault.transport.registry.codec import DECODERS, decode_registry
from coldvault.transport.ur import UR, parse_ur
from tests.requests import psbt_fixtures as fx

#: The message limit the fuzzed assemblers run with (the appliance's default is larger; a
#: smaller one keeps each input's memory small while exercising the same checks).
MAX_MESSAGE = 64 * 1024
#: UR types the registry target chooses from: its first byte picks one (modulo the count).
REGISTRY_TYPES = tuple(sorted(DECODERS))
ETH_DATA_TYPES = (1, 4)  # legacy RLP transaction, EIP-2718 typed transaction


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    #: what the bytes are, for the report
    what: str
    #: inputs longer than this are cut before the parser sees them
    max_input: int = 64 * 1024


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _lines(data: bytes) -> list[str]:
    return _text(data).splitlines()[:200]


# --------------------------------------------------------------------------- scratch files


@cache
def _scratch() -> Path:
    path = Path(tempfile.mkdtemp(prefix="coldvault-fuzz-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _file(name: str, data: bytes) -> Path:
    path = _scratch() / name
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- QR transport


def run_assembler(data: bytes) -> None:
    """Scanned QR text, one frame a line, in any format (UR, BBQr, pMofN, UR v1, plain)."""
    asm = Assembler(max_message_len=MAX_MESSAGE)
    for line in _lines(data):
        asm.feed(line)
        if asm.is_complete:
            asm.result()
            asm.reset()


def run_ur(data: bytes) -> None:
    """UR strings (single and multipart), then the fountain decoder through the assembler."""
    for line in _lines(data)[:20]:
        parse_ur(line, max_len=2 * MAX_MESSAGE)
    run_assembler(data)


def run_bytewords(data: bytes) -> None:
    """Bytewords text in the style its separators suggest (standard, uri or minimal)."""
    text = _text(data)
    style = (
        bytewords.Style.STANDARD if " " in text
        else bytewords.Style.URI if "-" in text
        else bytewords.Style.MINIMAL
    )  # fmt: skip
    bytewords.decode(text, style, max_len=MAX_MESSAGE)


def fountain_parts(data: bytes) -> list[bytes]:
    """The parts in a fountain input: each is a 2-byte big-endian length, then its CBOR."""
    parts, pos = [], 0
    while pos + 2 <= len(data) and len(parts) < 200:
        size = int.from_bytes(data[pos : pos + 2], "big")
        parts.append(data[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return parts


def run_fountain(data: bytes) -> None:
    """Fountain part CBOR (:func:`fountain_parts`) fed to one decoder."""
    dec = FountainDecoder(max_message_len=MAX_MESSAGE)
    for cbor in fountain_parts(data):
        dec.receive(Part.from_cbor(cbor))
        if dec.is_complete:
            _ = dec.result
            break


def run_bbqr(data: bytes) -> None:
    joiner = bbqr.Joiner(max_file_len=MAX_MESSAGE)
    for line in _lines(data):
        bbqr.parse_header(line)
        joiner.add(line)
        if joiner.is_complete:
            joiner.result()
            break


def run_legacy(data: bytes) -> None:
    """Specter pMofN and UR v1 frames, parsed alone and assembled."""
    for line in _lines(data)[:20]:
        if line[:1].lower() == "p":
            legacy.parse_pmofn(line)
        else:
            legacy.parse_urv1(line)
    run_assembler(data)


# --------------------------------------------------------------------------- requests


@cache
def _psbt_wallets() -> tuple[dict, Callable]:
    fixtures = [fx.make_wallet(k) for k in fx.KINDS]
    keystore = fx.SoftwareKeystore(*(w.root for w in fixtures[:1]))
    return {w.wallet.name: w.wallet for w in fixtures}, keystore.lookup_key


def run_psbt(data: bytes) -> None:
    """PSBT bytes or base64 text, through the pre-parser and every signer check."""
    wallets, lookup = _psbt_wallets()
    prepare_psbt(data, wallets=wallets, lookup_key=lookup, now=1_767_225_600)


def run_registry(data: bytes) -> None:
    if not data:
        return
    ur_type = REGISTRY_TYPES[data[0] % len(REGISTRY_TYPES)]
    decode_registry(UR(ur_type, data[1:] or b"\x00"), max_len=MAX_MESSAGE)


def run_eth_rlp(data: bytes) -> None:
    rlp.decode(data)


def run_eth_tx(data: bytes) -> None:
    if not data:
        return
    decode_transaction(data[1:], ETH_DATA_TYPES[data[0] % 2], 1)


def run_eip712(data: bytes) -> None:
    parse_typed_data(data)


def run_solana(data: bytes) -> None:
    parse_message(data)


# --------------------------------------------------------------------------- documents


def run_config(data: bytes) -> None:
    load_config(_file("appliance.toml", data))


def run_policy(data: bytes) -> None:
    """The ownership proofs through the real verifier; when a proof fails (the corpus has no
    valid ones), the rest of the document again with an accepting verifier."""
    try:
        parse_policy(data)
    except UnprovenDestination:
        parse_policy(data, ownership_verifier=lambda *_args: True)


def run_wallets(data: bytes) -> None:
    parse_wallets(data)


def run_roster(data: bytes) -> None:
    Roster.from_bytes(data)


APPROVED_CONTENT = b'[[wallet]]\nname = "acme-btc-cold"\n'


def run_approvals(data: bytes) -> None:
    """A signed document's approvals file (``<document>.approvals.json``)."""
    doc = _file("wallets.toml", APPROVED_CONTENT)
    approvals_path(doc).write_bytes(data)
    load_signed_document(doc, "wallets")


def run_approval_token(data: bytes) -> None:
    ApprovalToken.from_bytes(data)


def run_plan(data: bytes) -> None:
    parse_plan(data)


def run_scenario(data: bytes) -> None:
    parse_scenario(data)


def run_sealed_share(data: bytes) -> None:
    parse_sealed(data)


def run_backup_record(data: bytes) -> None:
    parse_record(data)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("psbt", run_psbt, "PSBT bytes or base64 (prepare_psbt)"),
        Target("assembler", run_assembler, "QR frame lines, any format (Assembler)"),
        Target("ur", run_ur, "UR text lines (parse_ur, bytewords, fountain)"),
        Target("bytewords", run_bytewords, "bytewords text, all three styles"),
        Target("fountain", run_fountain, "length-prefixed fountain part CBOR"),
        Target("bbqr", run_bbqr, "BBQr frame lines (header, Joiner)"),
        Target("legacy", run_legacy, "pMofN / UR v1 frame lines"),
        Target("registry", run_registry, "selector byte + UR registry CBOR"),
        Target("eth-rlp", run_eth_rlp, "RLP bytes"),
        Target("eth-tx", run_eth_tx, "selector byte + legacy/EIP-1559 transaction"),
        Target("eip712", run_eip712, "EIP-712 typed data JSON"),
        Target("solana", run_solana, "Solana message bytes"),
        Target("config", run_config, "appliance configuration TOML (load_config)"),
        Target("policy", run_policy, "policy TOML (parse_policy)"),
        Target("wallets", run_wallets, "wallet registry TOML (parse_wallets)"),
        Target("roster", run_roster, "roster JSON (Roster.from_bytes)"),
        Target("approvals", run_approvals, "signed document approvals JSON"),
        Target("approval-token", run_approval_token, "card approval token bytes"),
        Target("plan", run_plan, "backup plan TOML (parse_plan)"),
        Target("scenario", run_scenario, "drill scenario TOML (parse_scenario)"),
        Target("sealed-share", run_sealed_share, "sealed backup share blob"),
        Target("backup-record", run_backup_record, "backup record bytes"),
    )
}

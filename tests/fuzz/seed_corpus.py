"""Writes the seed corpus of every fuzz target (``python -m tests.fuzz.seed_corpus``).

Seeds come from the official vectors in ``tests/vectors/`` (copies of the shared vectors,
sources in ``tests/vectors/SOURCES.md``) and from the deterministic test data generators
(``tests/requests/psbt_fixtures.py``, ``tests/backup/plans.py``). Files are named
``seed-<what>``; inputs that once broke a parser are kept as ``regress-<what>`` and are never
rewritten by this script. Re-running it rewrites the same seed files byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path

import cbor2

from coldvault.backup.envelope import Curve, Recipient, ShareHeader, seal
from coldvault.backup.plan import TargetKind
from coldvault.quorum.approvals import ApprovalToken
from coldvault.quorum.documents import SignedDocument, approvals_path, write_signed_document
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.transport import bbqr
from coldvault.transport.formats import TransportFormat
from coldvault.transport.fountain import FountainEncoder
from coldvault.transport.reply import encode_reply
from tests.appliance.test_config_and_states import GOOD as GOOD_CONFIG
from tests.backup.plans import flat_plan, lab_plan
from tests.fuzz.harness import CORPUS
from tests.fuzz.targets import APPROVED_CONTENT, REGISTRY_TYPES
from tests.requests import psbt_fixtures as fx

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
#: Seeds larger than this are left out (the big BBQr PSBTs): mutations of small inputs
#: reach the same code, faster.
MAX_SEED = 16 * 1024


def _json(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def _psbts() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name in ("bip174_psbt.json", "bip370_psbtv2.json"):
        for i, case in enumerate(_json(name)["cases"]):
            out[f"{name.split('_')[0]}-{i:02d}"] = bytes.fromhex(case["hex"])
    rng = random.Random(11)
    for kind in fx.KINDS:
        wf = fx.make_wallet(kind)
        out[f"fixture-{kind}"] = fx.build_psbt(
            wf, inputs=[(0, 1, 50_000), (1, 2, 60_000)],
            external=[(fx.external_script(rng), 70_000)], change=[(1, 3, 39_000)],
            sequence=144 if kind == "wsh" else 0xFFFFFFFD,
        )  # fmt: skip
    out["fixture-v2"] = fx.to_v2(out["fixture-wpkh"], height_locks=[1000, None])
    out["fixture-base64"] = base64.b64encode(out["fixture-pkh"])
    return out


def _small_psbt() -> bytes:
    return (VECTORS / "bbqr" / "1in2out.psbt").read_bytes()


def _frames(fmt: TransportFormat, payload: bytes, ur_type: str = "crypto-psbt") -> bytes:
    stream = encode_reply(fmt, ur_type, payload, max_fragment_len=120)
    frames = stream.frames(None if not stream.is_endless else stream.parts_needed + 3)
    return "\n".join(frames).encode()


def _registry() -> dict[str, bytes]:
    reg = _json("ur_registry.json")
    found: list[tuple[str, str, str]] = []  # (name, ur type, cbor hex)
    for paper, cases in reg["foundation_rs"].items():
        if paper == "source":
            continue
        for i, case in enumerate(cases):
            ur_type = case["as-ur"].split("/")[0].removeprefix("ur:")
            found.append((f"{paper}-{i}", ur_type, case["as-cbor"]))
    for ur_type, cases in reg["keystone"].items():
        if ur_type == "sources":
            continue
        for i, case in enumerate(cases):
            found.append((f"keystone-{ur_type}-{i}", case["ur_type"], case["cbor_hex"]))
    out = {}
    for name, ur_type, cbor_hex in found:
        if ur_type in REGISTRY_TYPES:
            out[name] = bytes([REGISTRY_TYPES.index(ur_type)]) + bytes.fromhex(cbor_hex)
    return out


def _keystone_sign_data(ur_type: str) -> list[tuple[int, bytes]]:
    """(data type, sign data) of each Keystone request vector."""
    out = []
    for case in _json("ur_registry.json")["keystone"][ur_type]:
        fields = cbor2.loads(bytes.fromhex(case["cbor_hex"]))
        out.append((fields.get(3, 1), fields[2]))
    return out


MAIL = {  # the example of EIP-712 itself
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail", "version": "1", "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
    },
}  # fmt: skip

#: the appliance configuration the config tests start from (a valid lab file)
CONFIG = GOOD_CONFIG.lstrip("\n") % ("ab" * 32)


def _wallets() -> bytes:
    lines = []
    for kind in fx.KINDS:
        w = fx.make_wallet(kind).wallet
        lines += [
            "[[wallet]]", f'name = "{w.name}"', f'client = "{w.client}"', 'chain = "bitcoin"',
            f'network = "{w.network}"', f'template = "{w.template}"',
            f'master_fingerprint = "{w.master_fingerprint}"',
            f'account_path = "{w.account_path}"', f'descriptor = "{w.descriptor}"',
            f"max_index = {w.max_index}", "",
        ]  # fmt: skip
    return "\n".join(lines).encode()


def _roster() -> bytes:
    holders = []
    for i, role in enumerate((Role.ADMIN, Role.ADMIN, Role.APPROVER, Role.BACKUP_CUSTODIAN)):
        key = hashlib.sha256(b"coldvault/fuzz-roster/%d" % i).digest()
        holders.append(CardHolder(f"C0DE000{i}", f"Holder {i}", role, "hk", "ed25519", key))
    return Roster(1, "vault-01", tuple(holders), 2).to_bytes()


def _approvals(scratch: Path) -> bytes:
    doc = SignedDocument("wallets", 4, "vault-01", APPROVED_CONTENT)
    doc = doc.with_approval("C0DE0000", b"\x01" * 64).with_approval("C0DE0001", b"\x02" * 64)
    path = scratch / "wallets.toml"
    write_signed_document(path, doc)
    return approvals_path(path).read_bytes()


def _token() -> bytes:
    return ApprovalToken(
        b"\x11" * 32, "9EDA-37D6-8340", "wpkh-ours-0", "client-a", 3, 1, "vault-01",
        b"\x22" * 16, 1_767_225_600, 1_767_226_200, 2,
    ).to_bytes()  # fmt: skip


def _sealed() -> bytes:
    public = hashlib.sha256(b"coldvault/fuzz-x25519").digest()
    recipient = Recipient(TargetKind.CARD, Curve.X25519, public, "C0DE0003")
    header = ShareHeader("plan-1", 4242, 1, 0, "b-card", "site-b", recipient.binding())
    return seal(bytearray(b"academic acid acrobat romp chubby quarter"), recipient, header)


def seeds(scratch: Path) -> dict[str, dict[str, bytes]]:
    """Every target's seeds: target -> seed name -> bytes."""
    psbt = _small_psbt()
    fountain = FountainEncoder(bytes(range(256)) * 3, 100)
    parts = b"".join(
        len(c).to_bytes(2, "big") + c
        for c in (fountain.next_part().to_cbor() for _ in range(fountain.seq_len + 2))
    )
    bcur = _json("bcur.json")
    ur_lines = [bcur["single_part_ur"]["expected_ur"]]
    keystone = _json("ur_registry.json")["keystone"]
    ur_lines += [
        c["ur"] for cases in keystone.values() if isinstance(cases, list) for c in cases
        if isinstance(c, dict) and "ur" in c
    ]
    return {
        "psbt": _psbts(),
        "assembler": {
            f"{fmt.value}": _frames(fmt, psbt)
            for fmt in TransportFormat
        } | {"bbqr-real-scan": (VECTORS / "bbqr" / "real-scan.txt").read_bytes()},
        "ur": {"ur-multipart": _frames(TransportFormat.UR, psbt)}
        | {f"ur-{i}": line.encode() for i, line in enumerate(ur_lines)},
        "bytewords": {
            f"{c['name']}-{style}": c[style].encode()
            for c in bcur["bytewords"]["cases"] for style in ("standard", "uri", "minimal")
            if style in c
        },  # fmt: skip
        "fountain": {"parts-256x3": parts},
        "bbqr": {
            f"split-{enc}": "\n".join(bbqr.split(psbt, "P", encoding=enc).parts).encode()
            for enc in ("H", "2", "Z")
        } | {"real-scan": (VECTORS / "bbqr" / "real-scan.txt").read_bytes()},
        "legacy": {
            "pmofn": _frames(TransportFormat.PMOFN, psbt),
            "urv1": _frames(TransportFormat.URV1, psbt),
        },
        "registry": _registry(),
        "eth-rlp": {
            f"keystone-{i}": data[1:] if data[:1] == b"\x02" else data
            for i, (_t, data) in enumerate(_keystone_sign_data("eth-sign-request"))
        },
        "eth-tx": {
            f"keystone-{i}": bytes([0 if t == 1 else 1]) + data
            for i, (t, data) in enumerate(_keystone_sign_data("eth-sign-request")) if t in (1, 4)
        },  # fmt: skip
        "eip712": {"mail": json.dumps(MAIL).encode()},
        "solana": {
            f"keystone-{i}": data
            for i, (_t, data) in enumerate(_keystone_sign_data("sol-sign-request"))
        },
        "config": {"lab": CONFIG.encode()},
        "policy": {"example": (VECTORS.parent / "domain" / "policy_example.toml").read_bytes()},
        "wallets": {"five-kinds": _wallets()},
        "roster": {"four-holders": _roster()},
        "approvals": {"two-approvals": _approvals(scratch)},
        "approval-token": {"token": _token()},
        "plan": {"lab": lab_plan().encode(), "flat-2-of-3": flat_plan(2).encode()},
        "scenario": {"site-b-lost": b'name = "site B lost"\nlost_sites = ["site-b"]\n'},
        "sealed-share": {"x25519-card": _sealed()},
        "backup-record": {"empty-object": b"{}"},
    }


def write_seeds() -> int:
    import tempfile

    written = 0
    with tempfile.TemporaryDirectory() as scratch:
        for target, items in seeds(Path(scratch)).items():
            folder = CORPUS / target
            folder.mkdir(parents=True, exist_ok=True)
            for name, data in items.items():
                if len(data) <= MAX_SEED:
                    (folder / f"seed-{name}").write_bytes(data)
                    written += 1
    return written


if __name__ == "__main__":
    print(f"wrote {write_seeds()} seed files under {CORPUS}")  # noqa: T201

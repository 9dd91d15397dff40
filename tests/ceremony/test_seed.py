"""``generate-seed``, ``provision`` and ``extend-pool`` in process: a scripted operator,
a private SoftHSM token (real PKCS#11), and for witnesses and quorum virtual cards behind
the lab's pcscd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from embit.descriptor import Descriptor
from embit.networks import NETWORKS

from coldvault.backends.pkcs11.errors import WrongPin
from coldvault.ceremonies import (
    GenerateSeed,
    ParameterError,
    RecoverPool,
    extend_pool,
    generate_seed,
    provision_from_backup,
)
from coldvault.ceremonies.backup import BackupCheckFailed, BackupFormat, BackupPlan
from coldvault.ceremonies.params import PoolParams
from coldvault.ceremonies.provision import FingerprintMismatch
from coldvault.crypto import mnemonics
from coldvault.errors import Cancelled
from coldvault.keys.keystore import KeyAlgorithm
from coldvault.keys.pool import AccountSpec, Template, derive_pool
from coldvault.records.printable import transcript_record
from coldvault.records.transcript import TranscriptExists, read_entries, verify
from hardware_emulators.ceremony_driver import fair_dice

from .conftest import LabToken
from .support import ScriptedOperator, files_under

pytestmark = pytest.mark.lab

OPERATOR = "Olga Operator"
POOL = 3
DICE = r"^Dice rolls \(digits 1-6, at least 99\)$"
CONFIRM_ROOM = r"^Is the room prepared as listed\?$"


def hsm_pin(token: LabToken) -> tuple[str, str]:
    return (f"^HSM user PIN for token {token.label} \\(", token.user_pin)


def seed_params(tmp_path: Path, name: str, **kw: object) -> GenerateSeed:
    values: dict[str, object] = {
        "actor": OPERATOR,
        "transcript": tmp_path / "transcripts" / f"{name}.jsonl",
        "backup": BackupPlan(BackupFormat.SLIP39, 2, 3, paper=True),
        "pool": PoolParams(pool_size=POOL, export_dir=tmp_path / "exports"),
    }
    values.update(kw)
    return GenerateSeed(**values)  # type: ignore[arg-type]


def shares_script(op: ScriptedOperator, count: int = 3) -> None:
    for i in range(1, count + 1):
        op.then(*op.check_words(f"share {i} of {count}", f"share {i}"))


CUSTODIANS = ("Carol Custodian", "Dave Custodian", "Erin Custodian")


def generate(token: LabToken, tmp_path: Path) -> tuple[ScriptedOperator, list[str], object]:
    """A SLIP-39 2-of-3 seed with paper backup, the dice refused once; the whole pool."""
    op = ScriptedOperator(
        (CONFIRM_ROOM, True), hsm_pin(token), (DICE, "6" * 120), (DICE, fair_dice())
    )
    shares_script(op)
    plan = BackupPlan(BackupFormat.SLIP39, 2, 3, paper=True, custodians=CUSTODIANS)
    result = generate_seed(op, seed_params(tmp_path, "seed", backup=plan), token.token)
    shares = [" ".join(op.words[f"share {i} of 3"]) for i in (1, 2, 3)]
    return op, shares, result


def test_generate_seed_then_provision(hsm_token: LabToken, tmp_path: Path) -> None:
    op, shares, result = generate(hsm_token, tmp_path)
    assert not op.script and op.clears >= 6  # every share on a cleared screen, cleared after
    assert "Every dice roll has the same value" in " ".join(op.said("warn"))
    secret = mnemonics.recover_secret([shares[2], shares[0]])
    exports, pool = derive_pool(secret, [AccountSpec(t) for t in Template], POOL)
    fingerprint = exports[0].master_fingerprint.hex()
    assert result.master_fingerprint == fingerprint  # type: ignore[attr-defined]
    assert op.table_rows("Seed") == {"master fingerprint": fingerprint}

    # the HSM holds exactly the derivations, sensitive and not extractable
    keys = hsm_token.keys()
    assert len(pool) == 3 * POOL * 2 and len(keys) == len(pool)
    for key in pool:
        info = keys[key.key_id]
        assert (info.public_key, info.label, info.algorithm) == (
            key.public_key,
            key.label,
            key.algorithm,
        )
        assert info.sensitive and not info.extractable
    assert sum(1 for k in keys.values() if k.algorithm is KeyAlgorithm.ED25519) == POOL
    # OpenSC, an independent PKCS#11 client, sees the same flags. Imported keys
    # (C_CreateObject) existed outside the token, so PKCS#11 never calls them "never
    # extractable"; they are CKA_SENSITIVE and not CKA_EXTRACTABLE now.
    flags = hsm_token.private_key_flags()
    if flags is not None:
        assert set(flags) == {key.label for key in pool}
        for access in flags.values():
            assert "sensitive" in access and "extractable" not in access
            assert "never extractable" not in access

    # the exported descriptor derives the HSM keys' addresses (embit)
    bip84 = exports[0]
    text = (tmp_path / "exports" / f"{bip84.spec.name}.descriptor.txt").read_text().strip()
    assert text == bip84.descriptor
    desc = Descriptor.from_string(text)
    for key in (k for k in pool if k.wallet == bip84.spec.name):
        want = Descriptor.from_string(f"wpkh({keys[key.key_id].public_key.hex()})").address()
        got = desc.derive(key.path[-1], branch_index=key.path[-2]).address(NETWORKS["main"])
        assert got == want
    account = json.loads((tmp_path / "exports" / f"{bip84.spec.name}.account.json").read_text())
    assert account["first_addresses"] == list(bip84.first_addresses)
    assert (tmp_path / "exports" / "wallets.proposed.toml").read_text().count("[[wallet]]") == 4

    # the transcript: complete, verified, its steps, its printable copy
    path = tmp_path / "transcripts" / "seed.jsonl"
    assert verify(path).status == "completed"
    entries = read_entries(path)
    steps = [e["step"] for e in entries]
    assert steps[:3] == ["open", "room-checked", "hsm-opened"]
    for step in (
        "dice-rejected",
        "entropy",
        "shares-created",
        "seed-created",
        "keys-imported",
        "exports-written",
        "close",
    ):
        assert step in steps
    # who took which paper share: on the sheet's heading and in the record, never a word
    sheets = [e["data"] for e in entries if e["step"] == "paper-share-shown"]
    assert sheets == [{"target": f"share {i}", "custodians": [name]}
                      for i, name in enumerate(CUSTODIANS, start=1)]  # fmt: skip
    assert "Share 2 of 3, written down and kept by Dave Custodian." in op.said("info")
    table = transcript_record(path).custodians
    assert table is not None and [row[:2] for row in table.rows] == [
        (f"share {i}", name) for i, name in enumerate(CUSTODIANS, start=1)
    ]
    assert entries[0]["ceremony_id"] == result.closed.ceremony_id  # type: ignore[attr-defined]
    assert f"Ceremony id: {entries[0]['ceremony_id']}" in op.said("info")
    assert entries[-1]["hash"] == result.closed.final_hash  # type: ignore[attr-defined]
    assert path.with_suffix(".html").read_text().count("data:image/png;base64,") >= 6

    # no secret reached any file: share words, the master secret, the PIN, the dice
    written = files_under(tmp_path)
    for share in shares:
        assert " ".join(share.split()[3:8]).encode() not in written
    assert secret.hex().encode() not in written and fair_dice().encode() not in written
    assert hsm_token.user_pin.encode() not in written

    # a backup of another seed than expected is refused before any import
    op = ScriptedOperator(
        hsm_pin(hsm_token), ("^SLIP-39 share 1$", shares[0]), ("^SLIP-39 share 2$", shares[1])
    )
    params = RecoverPool(
        actor=OPERATOR,
        transcript=tmp_path / "transcripts" / "wrong-fp.jsonl",
        pool=PoolParams(pool_size=9, export_dir=tmp_path / "x"),
        expect_fingerprint="DEADBEEF",
    )
    with pytest.raises(FingerprintMismatch) as refused:
        provision_from_backup(op, params, hsm_token.token)
    assert (refused.value.expected, refused.value.found) == ("deadbeef", fingerprint)
    assert verify(tmp_path / "transcripts" / "wrong-fp.jsonl").status == "aborted"
    assert len(hsm_token.keys()) == len(pool) and not (tmp_path / "x").exists()

    # provision from two other shares: the existing keys verified, the pool grows by one
    op = ScriptedOperator(
        hsm_pin(hsm_token),
        ("^SLIP-39 share 1$", shares[1]),
        ("^SLIP-39 share 2$", shares[2]),
        (f"^Is {fingerprint} the fingerprint recorded at seed generation\\?$", True),
    )
    params = RecoverPool(
        actor=OPERATOR,
        pool=PoolParams(pool_size=POOL + 1, export_dir=tmp_path / "exports2"),
        expect_fingerprint=fingerprint,
        transcript_dir=tmp_path / "transcripts",
    )
    grown = provision_from_backup(op, params, hsm_token.token)
    assert (grown.imported, grown.already_present) == (6, len(pool))
    assert len(hsm_token.keys()) == len(pool) + 6
    assert "1 share(s) accepted; more are needed." in op.said("info")
    # the default transcript file is named by the ceremony id the banner showed
    assert grown.closed.transcript.parent == tmp_path / "transcripts"
    assert grown.closed.transcript.name.startswith("provision-")
    assert grown.closed.transcript.name.endswith(f"-{grown.closed.ceremony_id}.jsonl")
    assert f"Ceremony id: {grown.closed.ceremony_id}" in op.said("info")
    steps = [e["step"] for e in read_entries(grown.closed.transcript)]
    assert {"seed-recovered", "shares-combined", "keys-imported", "close"} <= set(steps)


def test_bip39_paper_backup_and_recovery(hsm_token: LabToken, tmp_path: Path) -> None:
    op = ScriptedOperator((CONFIRM_ROOM, True), hsm_pin(hsm_token), (DICE, fair_dice(3)))
    op.then(*op.check_words("the 24-word mnemonic", "the mnemonic"))
    pool = PoolParams(templates=(Template.BIP84,), pool_size=1, export_dir=tmp_path / "e")
    params = seed_params(
        tmp_path, "seed", backup=BackupPlan(BackupFormat.BIP39, paper=True), pool=pool
    )
    made = generate_seed(op, params, hsm_token.token)
    words = op.words["the 24-word mnemonic"]
    assert len(words) == 24 and made.provisioned is not None
    assert made.to_dict()["keys"] == 2

    # a mistyped mnemonic is refused with the reason, then the right one is accepted
    wrong = " ".join([*words[:-1], "zoo" if words[-1] != "zoo" else "abandon"])
    fp = made.master_fingerprint
    op = ScriptedOperator(
        hsm_pin(hsm_token),
        ("^BIP-39 mnemonic", wrong),
        ("^BIP-39 mnemonic", " ".join(words)),
        (f"^Is {fp} the fingerprint", True),
    )
    params = RecoverPool(
        actor=OPERATOR,
        transcript=tmp_path / "t" / "prov.jsonl",
        pool=PoolParams(templates=(Template.BIP84,), pool_size=2, export_dir=tmp_path / "e2"),
        backup=BackupFormat.BIP39,
        expect_fingerprint=fp,
    )
    result = provision_from_backup(op, params, hsm_token.token)
    assert (result.imported, result.already_present) == (2, 2)
    assert op.said("warn")  # the checksum refusal was shown
    steps = [e["step"] for e in read_entries(tmp_path / "t" / "prov.jsonl")]
    assert steps.count("backup-input-rejected") == 1


def test_wrong_backup_words_stop_the_ceremony(hsm_token: LabToken, tmp_path: Path) -> None:
    """Three failed word checks of a paper copy: BackupCheckFailed, nothing imported."""
    op = ScriptedOperator(
        (CONFIRM_ROOM, True),
        hsm_pin(hsm_token),
        (DICE, fair_dice()),
        ("^When share 1 of 2 is written down", ""),
    )
    op.then(*[(r"^share 1, word \d+$", "wrong")] * 6)
    params = seed_params(tmp_path, "bad-words", backup=BackupPlan(BackupFormat.SLIP39, 2, 2, True))
    with pytest.raises(BackupCheckFailed):
        generate_seed(op, params, hsm_token.token)
    assert verify(tmp_path / "transcripts" / "bad-words.jsonl").status == "aborted"
    assert hsm_token.keys() == {} and not (tmp_path / "exports").exists()
    assert op.clears >= 2  # the words were cleared from the screen


def test_operator_says_no_cancels(hsm_token: LabToken, tmp_path: Path) -> None:
    op = ScriptedOperator((CONFIRM_ROOM, False))
    with pytest.raises(Cancelled):
        generate_seed(op, seed_params(tmp_path, "no"), hsm_token.token)
    path = tmp_path / "transcripts" / "no.jsonl"
    assert verify(path).status == "aborted"
    assert read_entries(path)[-1]["data"]["reason"] == "cancelled"
    assert not (tmp_path / "exports").exists()


def test_ctrl_c_at_the_dice_cancels_and_leaves_nothing(hsm_token: LabToken, tmp_path: Path) -> None:
    op = ScriptedOperator((CONFIRM_ROOM, True), hsm_pin(hsm_token), (DICE, KeyboardInterrupt()))
    with pytest.raises(Cancelled):
        generate_seed(op, seed_params(tmp_path, "abort"), hsm_token.token)
    path = tmp_path / "transcripts" / "abort.jsonl"
    assert verify(path).status == "aborted"
    assert read_entries(path)[-1]["data"]["reason"] == "cancelled"
    assert "The ceremony was cancelled" in " ".join(op.said("warn"))
    assert hsm_token.keys() == {} and not (tmp_path / "exports").exists()


def test_wrong_hsm_pin(hsm_token: LabToken, tmp_path: Path) -> None:
    op = ScriptedOperator(
        (CONFIRM_ROOM, True), (f"^HSM user PIN for token {hsm_token.label}", "not-the-pin")
    )
    with pytest.raises(WrongPin):
        generate_seed(op, seed_params(tmp_path, "pin"), hsm_token.token)
    entries = read_entries(tmp_path / "transcripts" / "pin.jsonl")
    assert entries[-1]["data"]["status"] == "aborted"
    assert entries[-1]["data"]["reason"].startswith("WrongPin: ")
    assert "not-the-pin" not in (tmp_path / "transcripts" / "pin.jsonl").read_text()


def test_existing_transcript_is_not_overwritten(hsm_token: LabToken, tmp_path: Path) -> None:
    path = tmp_path / "transcripts" / "seed.jsonl"
    path.parent.mkdir()
    path.write_text("keep me\n")
    with pytest.raises(TranscriptExists):
        generate_seed(ScriptedOperator(), seed_params(tmp_path, "seed"), hsm_token.token)
    assert path.read_text() == "keep me\n"


def test_extend_pool_needs_the_admin_quorum(hsm_token: LabToken, tmp_path: Path) -> None:
    params = RecoverPool(actor=OPERATOR, transcript=tmp_path / "t.jsonl")
    with pytest.raises(ParameterError, match="extend-pool needs --roster"):
        extend_pool(ScriptedOperator(), params, hsm_token.token, cards=None)  # type: ignore[arg-type]
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("plan", "says"),
    [
        (lambda: BackupPlan(BackupFormat.SLIP39, 2, 3, True, ("A", "B")), "given 2 times for 3"),
        (lambda: BackupPlan(BackupFormat.SLIP39, 2, 3, False, ("A", "B", "C")), "--paper-backup"),
        (lambda: BackupPlan(BackupFormat.SLIP39, 2, 3, True, ("A", "B", "a ")), "two shares"),
        (lambda: BackupPlan(BackupFormat.SLIP39, 2, 3, True, ("A", "B", " ")), "1 to 64"),
        (lambda: BackupPlan(BackupFormat.BIP39, paper=True, custodians=("A", "B")), "1 mnemonic"),
    ],
)
def test_share_custodians_are_one_per_share(plan: object, says: str) -> None:
    """A custodian list that does not name one distinct person per paper share is refused
    before anything starts (exit 2 at the console)."""
    with pytest.raises(ParameterError, match=says):
        plan()  # type: ignore[operator]

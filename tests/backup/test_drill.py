"""Restore drills on the lab: three SoftHSM backup tokens and three virtual cards (in
process, and through real pcscd), the 2-of-3 site plan, and every failure named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coldvault.backends.pkcs11.errors import WrongPin as HsmWrongPin
from coldvault.backends.pkcs11.keystore import Pkcs11Keystore
from coldvault.backup.drill import (
    DrillScenario,
    RestoreRequest,
    ScenarioInvalid,
    parse_scenario,
    run_drill,
    surviving,
)
from coldvault.backup.restore import expectations_from_provisioning
from coldvault.cards.openpgp import PinBlocked
from coldvault.cards.openpgp import WrongPin as CardWrongPin
from coldvault.keys.pool import AccountSpec, Template, provision
from tests.backup.conftest import USER_PIN
from tests.backup.lab_backup import LabAccess, direct_sessions, lab_backup, pcsc_sessions
from tests.backup.plans import lab_plan

pytestmark = pytest.mark.lab
#: SLIP-39 vector 45's master secret (256 bits)
SEED = bytes.fromhex("8dc652d6d6cd370d8c963141f6d79ba440300f25c467302c1d966bff8f62300d")
SITE_B_LOST = DrillScenario.site_lost("site-b")
SPECS = [
    AccountSpec(Template.BIP84, network="main"),
    AccountSpec(Template.BIP48_WSH, network="test"),
    AccountSpec(Template.ETH),
    AccountSpec(Template.SOL),
]


@pytest.fixture
def written(backup_tokens, direct_card):
    cards = direct_sessions(direct_card)
    return lab_backup(backup_tokens, cards, SEED, passphrase="drill pass"), cards


def _access(backup_tokens, cards, backup, **kw) -> LabAccess:
    return LabAccess(backup_tokens, cards, backup.plan.id, **kw)


def _status(report) -> dict[str, str]:
    return {s.target: s.status for s in report.shares}


def test_site_b_lost_rebuilds_and_restores_into_a_fresh_token(
    fresh_token, keystore, backup_tokens, direct_card, softhsm_lab
) -> None:
    # production: the appliance token holds the pool; the provisioning record is public
    production = provision(keystore, SEED, SPECS, 2)
    expected = expectations_from_provisioning(json.dumps(production.to_dict()).encode())
    cards = direct_sessions(direct_card)
    backup = lab_backup(backup_tokens, cards, SEED, passphrase="drill pass")
    access = _access(backup_tokens, cards, backup)
    label, pin = fresh_token
    with Pkcs11Keystore.open(softhsm_lab.module_path, label, pin, allow_emulated=True) as fresh:
        report = run_drill(
            backup.plan,
            backup.record,
            SITE_B_LOST,
            backup.blobs,
            access,
            passphrase="drill pass",
            expected=expected,
            restore=RestoreRequest(fresh, keep_keys=True),
        )
        assert report.passed, report.reasons
        restored = {k.key_id: k.public_key for k in fresh.list_keys()}
    assert restored == {
        k.key_id: k.public_key for k in keystore.list_keys() if k.key_id in restored
    }
    assert len(restored) == len(production.keys) == 12
    assert (
        report.rebuilt_fingerprint
        == report.expected_fingerprint
        == production.master_fingerprint.hex()
    )
    assert _status(report) == {
        "a-hsm": "used",
        "a-card": "used",
        "b-hsm": "lost",
        "b-card": "lost",
        "c-hsm": "used",
        "c-card": "used",
    }
    assert report.sites_used == ("site-a", "site-c")
    assert sorted(access.opened) == ["a-card", "a-hsm", "c-card", "c-hsm"]  # never site B
    assert [w.name for w in report.wallets] == [s.name for s in SPECS]
    assert all(w.fingerprint_ok and w.addresses_ok is not False for w in report.wallets)
    assert [w.xpub_ok for w in report.wallets] == [True, True, True, None]  # SOL has no xpub
    assert report.restore is not None and report.restore.ok
    assert report.restore.keys_imported == 12 and report.restore.token_label == label
    assert [s.algorithm for s in report.restore.signatures] == [
        "secp256k1",
        "secp256k1",
        "secp256k1",
        "ed25519",
    ]
    assert [s.step for s in report.steps] == [
        "plan",
        "collect",
        "rebuild",
        "compare",
        "restore",
        "wipe",
    ]
    text = json.dumps(report.to_dict())
    for secret in (SEED.hex(), "drill pass", USER_PIN, backup_tokens.pin("site-a"), pin):
        assert secret not in text


def test_lost_custodian_takes_only_their_card(written, backup_tokens) -> None:
    backup, cards = written
    scenario = DrillScenario("Alice gone", lost_custodians=frozenset({"FFFFC0DE0001"}))
    assert [t.id for t in surviving(backup.plan, scenario)] == [
        "b-hsm",
        "b-card",
        "c-hsm",
        "c-card",
    ]  # site A's token has no other operator
    report = run_drill(
        backup.plan,
        backup.record,
        scenario,
        backup.blobs,
        _access(backup_tokens, cards, backup),
        passphrase="drill pass",
    )
    assert report.passed, report.reasons
    assert report.sites_used == ("site-b", "site-c")


def test_below_threshold_says_how_many_more_and_from_where(written, backup_tokens) -> None:
    backup, cards = written
    access = _access(
        backup_tokens, cards, backup, pins={"c-hsm": "wrong-pin-c", "c-card": "000000"}
    )
    report = run_drill(
        backup.plan, backup.record, SITE_B_LOST, backup.blobs, access, passphrase="drill pass"
    )
    assert not report.passed and report.rebuilt_fingerprint == ""
    assert _status(report)["c-hsm"] == "failed" and _status(report)["c-card"] == "failed"
    errors = {s.target: s.error for s in report.shares if s.error}
    assert errors == {"c-hsm": HsmWrongPin.code, "c-card": CardWrongPin.code}
    assert HsmWrongPin.code != CardWrongPin.code
    shortfall = report.reasons[-1]
    assert shortfall.startswith(
        "Too few shares to rebuild the seed: 1 of the 2 groups needed are complete, 1 more needed ("
    )
    assert "group 'site-b' needs 1 more share(s) and no surviving target holds it" in shortfall
    assert (
        "group 'site-c' needs 1 more share(s) from c-hsm at site-c (FFFFC0DE0003) or c-card "
        "at site-c (FFFFC0DE0003)" in shortfall
    )
    assert (
        "Target 'c-card' at 'site-c': The card rejected the user PIN; 2 tries left"
        in (report.reasons[1])
    )
    assert [s.step for s in report.steps] == ["plan", "collect", "rebuild", "wipe"]


def test_wrong_card_pin_down_to_lockout(written, backup_tokens) -> None:
    backup, cards = written
    access = _access(backup_tokens, cards, backup, pins={"a-card": "999999"})
    messages = []
    for _ in range(3):
        report = run_drill(
            backup.plan, backup.record, SITE_B_LOST, backup.blobs, access, passphrase="drill pass"
        )
        failure = next(s for s in report.shares if s.target == "a-card")
        messages.append((failure.error, failure.message))
        assert report.rebuilt_fingerprint == report.expected_fingerprint  # a-hsm has a copy
        assert not report.passed
    assert [m[0] for m in messages] == [CardWrongPin.code, CardWrongPin.code, PinBlocked.code]
    assert "1 try left" in messages[1][1]
    assert "blocked" in messages[2][1]


def test_tampered_missing_and_foreign_shares_are_named(written, backup_tokens) -> None:
    backup, cards = written
    blobs = dict(backup.blobs)
    bad = bytearray(blobs["a-card"])
    bad[-3] ^= 0x10
    blobs["a-card"] = bytes(bad)
    del blobs["c-hsm"]
    blobs["c-card"] = backup.blobs["a-hsm"]
    report = run_drill(
        backup.plan,
        backup.record,
        SITE_B_LOST,
        blobs,
        _access(backup_tokens, cards, backup),
        passphrase="drill pass",
    )
    errors = {s.target: (s.error, s.site) for s in report.shares if s.error}
    assert errors == {
        "a-card": ("backup-blob-tampered", "site-a"),
        "c-hsm": ("backup-share-missing", "site-c"),
        "c-card": ("backup-foreign-share", "site-c"),
    }
    assert not report.passed
    assert "1 of the 2 groups needed are complete" in report.reasons[-1]


def test_a_share_of_another_backup_is_named(written, backup_tokens, direct_card) -> None:
    backup, cards = written
    other = lab_backup(backup_tokens, cards, bytes(32), text=lab_plan(backup_tokens.serials))
    blobs = {**backup.blobs, "c-card": other.blobs["c-card"]}
    report = run_drill(
        backup.plan,
        backup.record,
        SITE_B_LOST,
        blobs,
        _access(backup_tokens, cards, backup),
        passphrase="drill pass",
    )
    failure = next(s for s in report.shares if s.target == "c-card")
    assert failure.error == "backup-wrong-set"
    assert f"belongs to share set {other.record.share_set.identifier}" in failure.message
    assert report.rebuilt_fingerprint == report.expected_fingerprint  # c-hsm's copy


def test_a_wrong_passphrase_rebuilds_another_seed(written, backup_tokens) -> None:
    backup, cards = written
    report = run_drill(
        backup.plan,
        backup.record,
        SITE_B_LOST,
        backup.blobs,
        _access(backup_tokens, cards, backup),
        passphrase="guess",
    )
    assert not report.passed
    assert report.rebuilt_fingerprint != report.expected_fingerprint
    assert "a share set from another seed or a wrong passphrase" in report.reasons[-1]


def test_a_record_for_another_plan_is_a_plan_violation(written, backup_tokens) -> None:
    from coldvault.backup.plan import parse_plan

    backup, cards = written
    changed = parse_plan(backup.plan.to_toml().replace("Zurich, vault 3", "Basel, vault 9"))
    report = run_drill(
        changed,
        backup.record,
        SITE_B_LOST,
        backup.blobs,
        _access(backup_tokens, cards, backup),
        passphrase="drill pass",
    )
    assert not report.passed
    assert report.reasons[0].startswith("Plan violation: the backup record was written for plan")
    report = run_drill(
        backup.plan,
        backup.record,
        SITE_B_LOST,
        backup.blobs,
        _access(backup_tokens, cards, backup),
        passphrase="drill pass",
        collusion=2,
    )
    assert report.reasons[0].startswith("Plan violation: Custodians 'FFFFC0DE0001' and")


def test_paper_share_typed_by_its_keeper_and_wiped(backup_tokens, direct_card) -> None:
    text = lab_plan(backup_tokens.serials)
    text = text.replace('members = ["c-hsm", "c-card"]', 'members = ["c-hsm", "c-card", "c-paper"]')
    text += '\n[[sites.targets]]\nid = "c-paper"\nkind = "paper"\ncustodian = "FFFFC0DE0003"\n'
    cards = direct_sessions(direct_card)
    paper: dict[str, list[bytearray]] = {"c-paper": []}
    backup = lab_backup(backup_tokens, cards, SEED, text=text, paper=paper)
    typed = paper["c-paper"][0]
    assert backup.record.entry("c-paper").blob_sha256 == ""
    scenario = DrillScenario("site A lost", frozenset({"site-a"}))
    access = _access(backup_tokens, cards, backup, paper={"c-paper": typed})
    report = run_drill(backup.plan, backup.record, scenario, backup.blobs, access)
    assert report.passed, report.reasons
    assert _status(report)["c-paper"] == "used"
    assert typed == bytearray(len(typed))  # the drill wiped the typed words


def test_scenarios() -> None:
    scenario = parse_scenario(b'name = "site B lost"\nlost_sites = ["site-b"]\n')
    assert scenario == DrillScenario("site B lost", frozenset({"site-b"}))
    from coldvault.backup.plan import parse_plan

    plan = parse_plan(lab_plan())
    with pytest.raises(ScenarioInvalid) as info:
        DrillScenario.site_lost("site-x").check(plan)
    assert "no site 'site-x'" in info.value.message
    with pytest.raises(ScenarioInvalid):
        parse_scenario(b'name = "x"\nlost = []\n')
    with pytest.raises(ScenarioInvalid):
        parse_scenario(b"name = 3\n")


def test_drill_through_pcscd(backup_tokens, card_factory, pcsc_lab, tmp_path: Path) -> None:
    """The same drill with the cards in the lab's readers: every APDU goes through pyscard,
    pcscd, vpcd and the virtual card process."""
    readers = {}
    for index, serial in enumerate(("C0DE0001", "C0DE0002", "C0DE0003")):
        card_factory(serial, index)
        readers[f"FFFF{serial}"] = pcsc_lab.reader_names()[index]
    cards = pcsc_sessions(readers)
    backup = lab_backup(backup_tokens, cards, SEED)
    access = _access(backup_tokens, cards, backup)
    report = run_drill(backup.plan, backup.record, SITE_B_LOST, backup.blobs, access)
    assert report.passed, report.reasons
    assert report.sites_used == ("site-a", "site-c")
    access = _access(backup_tokens, cards, backup, pins={"c-card": "111111"})
    report = run_drill(backup.plan, backup.record, SITE_B_LOST, backup.blobs, access)
    failure = next(s for s in report.shares if s.target == "c-card")
    assert (failure.status, failure.error) == ("failed", CardWrongPin.code)


def _files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


def test_no_share_seed_or_pin_reaches_the_disk(
    backup_tokens, direct_card, softhsm_lab, tmp_path: Path
) -> None:
    """Write a backup (blobs and record into a site envelope on disk, like the ceremony), run
    a drill, then scan the envelope, the cards' state and the SoftHSM token files."""
    text = lab_plan(backup_tokens.serials)
    text = text.replace('members = ["c-hsm", "c-card"]', 'members = ["c-hsm", "c-card", "c-paper"]')
    text += '\n[[sites.targets]]\nid = "c-paper"\nkind = "paper"\ncustodian = "FFFFC0DE0003"\n'
    paper: dict[str, list[bytearray]] = {"c-paper": []}
    cards = direct_sessions(direct_card)
    backup = lab_backup(backup_tokens, cards, SEED, passphrase="drill pass", text=text, paper=paper)
    words = bytes(paper["c-paper"][0])  # the c group's share (on c-hsm and c-card too)
    envelope = tmp_path / "envelope"
    envelope.mkdir()
    for target, blob in backup.blobs.items():
        (envelope / f"{target}.share").write_bytes(blob)
    (envelope / "backup-record.json").write_bytes(backup.record.to_json())
    blobs = {p.stem: p.read_bytes() for p in envelope.glob("*.share")}
    access = _access(backup_tokens, cards, backup, paper={"c-paper": bytearray(words)})
    report = run_drill(
        backup.plan, backup.record, SITE_B_LOST, blobs, access, passphrase="drill pass"
    )
    assert report.passed, report.reasons
    (envelope / "drill-report.json").write_text(json.dumps(report.to_dict()))
    needles = [
        SEED,
        SEED.hex().encode(),
        words,
        b" ".join(words.split()[:4]),
        b"drill pass",
        USER_PIN.encode(),
        backup_tokens.pin("site-a").encode(),
    ]
    files = _files(tmp_path, Path(softhsm_lab.token_dir))
    assert len(files) > 10
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle[:8]!r}... found in {path}"

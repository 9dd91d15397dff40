"""The root fixtures and the lab file: what every other suite relies on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hardware_emulators.lab import DEFAULT_LAB_FILE, Lab, LabConfig, LabFileError
from tests.conftest import require_packages


def test_default_lab_file(lab_config: LabConfig) -> None:
    assert lab_config.appliance_token().label == "coldvault-appliance"
    backups = [t for t in lab_config.tokens if t.role == "backup"]
    assert [t.site for t in backups] == ["site-a", "site-b", "site-c"]
    assert lab_config.readers == 3 and lab_config.base_port is None
    assert len(lab_config.cards) == 5
    assert {c.role for c in lab_config.cards} == {"approver", "admin"}
    assert "TEST-ONLY" in DEFAULT_LAB_FILE.read_text()
    assert "lab-user" not in repr(lab_config)  # lab PINs stay out of reprs too


APPLIANCE = "[[softhsm.tokens]]\nlabel='a'\nso_pin='1234'\nuser_pin='1234'\nrole='appliance'\n"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            APPLIANCE + "[pcsc]\nreaders = 0\n",
            "pcsc: readers must be an integer between 1 and 16, not 0",
        ),
        (
            APPLIANCE + "[pcsc]\nreaders = 2.5\n",
            "pcsc: readers must be an integer between 1 and 16, not 2.5",
        ),
        (
            APPLIANCE + "[pcsc]\nreeders = 2\n",
            "pcsc: unknown key 'reeders' (did you mean readers?)",
        ),
        (APPLIANCE + "[lab]\nnmae = 'x'\n", "lab: unknown key 'nmae' (did you mean name?)"),
        (
            "[[softhsm.tokens]]\nlabel='x'\nso_pin='1234'\nuser_pin='1234'\nrole='backup'\n",
            "exactly one token must have role 'appliance'",
        ),
        (
            "[[softhsm.tokens]]\nlabel='x'\nso_pin='1234'\nuser_pin='1234'\nrole='boss'\n",
            "token role must be one of appliance, backup, not 'boss'",
        ),
        (
            "[[softhsm.tokens]]\nlabel='x'\nso_pin='1234'\nrole='appliance'\n",
            "softhsm.tokens[0]: the required key 'user_pin' is missing",
        ),
        (
            "[[softhsm.tokens]]\nlabel='x'\nso_pin='1'\nuser_pin='1234'\nrole='appliance'\n",
            "SoftHSM PINs must be 4..255 characters",
        ),
        ("[lab\n", "Expected ']'"),
    ],
)
def test_bad_lab_files(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(body)
    with pytest.raises(LabFileError) as err:
        LabConfig.load(path)
    assert problem in err.value.problem
    assert str(err.value).startswith(f"The lab file '{path}' is invalid:")


def test_bad_card_serials(tmp_path: Path) -> None:
    base = DEFAULT_LAB_FILE.read_text()
    path = tmp_path / "lab.toml"
    path.write_text(base.replace('serial = "C0DE0005"', 'serial = "C0DE0001"'))
    with pytest.raises(LabFileError) as err:
        LabConfig.load(path)
    assert "card serials must be unique" in err.value.problem
    path.write_text(base.replace('serial = "C0DE0005"', 'serial = "XYZ"'))
    with pytest.raises(LabFileError):
        LabConfig.load(path)


def test_missing_packages_skip_locally_and_fail_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_packages("X", False, "pkg")
    assert "needs the Debian package(s) pkg" in str(skipped.value)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception) as failed:
        require_packages("X", False, "pkg")
    assert str(failed.value).startswith("CI=true and X needs")
    require_packages("X", True, "pkg")  # available: no-op


@pytest.mark.lab
def test_softhsm_fixture_and_idempotent_setup(softhsm_lab, lab_config) -> None:
    assert os.environ["SOFTHSM2_CONF"] == str(softhsm_lab.conf_path)
    env_file = (softhsm_lab.state_dir / ".env").read_text()
    assert f"SOFTHSM2_CONF={softhsm_lab.conf_path}" in env_file
    assert (softhsm_lab.state_dir / ".module_path").read_text().strip() == softhsm_lab.module_path
    before = {t.label: t.serial for t in softhsm_lab.status()}
    softhsm_lab.setup()  # again: existing tokens are kept, not re-initialised
    assert {t.label: t.serial for t in softhsm_lab.status()} == before
    assert set(before) == {t.spec.label for t in lab_config.tokens}


@pytest.mark.lab
def test_keystore_fixture_cleans_up_its_keys(keystore) -> None:
    from coldvault.keys.keystore import KeyAlgorithm

    assert keystore.is_emulated
    keystore.generate_key(KeyAlgorithm.SECP256K1, b"fixture-temp", "fixture-temp")
    # the teardown of this fixture deletes it; test_keystore_fixture_started_clean checks


@pytest.mark.lab
def test_keystore_fixture_started_clean(keystore) -> None:
    assert b"fixture-temp" not in {k.key_id for k in keystore.list_keys()}


@pytest.mark.lab
def test_virtual_cards_are_visible_to_pcsc(virtual_cards, pcsc_lab) -> None:
    from smartcard.System import readers

    assert os.environ["PCSCLITE_CSOCK_NAME"] == str(pcsc_lab.socket_path)
    assert len(virtual_cards) == 3
    by_name = {str(r): r for r in readers()}
    for card, name in zip(virtual_cards, pcsc_lab.reader_names(), strict=True):
        assert card.inserted
        connection = by_name[name].createConnection()
        connection.connect()
        atr = bytes(connection.getATR())
        connection.disconnect()
        assert atr[0] == 0x3B


@pytest.mark.lab
def test_in_process_lab_up_insert_status_down(tmp_path: Path) -> None:
    """Lab.from_file as the fixtures and the supervisor use it (SoftHSM part only here:
    this process already talks to the session pcscd, see docs/lab.md)."""
    lab = Lab.from_file(DEFAULT_LAB_FILE, tmp_path / "lab")
    lab.up(pcsc=False)
    status = lab.status()
    assert len(status["softhsm"]["tokens"]) == 4
    assert status["pcsc"] == {"running": False, "pid": None, "socket": None, "readers": []}
    assert status["env"]["SOFTHSM2_CONF"].startswith(str(tmp_path))
    lab.down()


@pytest.mark.lab
def test_lab_fixture_inserts_lab_cards_on_the_shared_pcscd(lab, pcsc_lab, lab_config) -> None:
    from smartcard.System import readers

    assert lab.pcsc is pcsc_lab
    lab.insert("C0DE0005", 1)
    try:
        status = lab.status()
        assert [r["card"] for r in status["pcsc"]["readers"]] == [None, "C0DE0005", None]
        erin = next(c for c in status["cards"] if c["serial"] == "C0DE0005")
        assert erin["reader"] == 1 and erin["holder"] == "Erin Admin"
        assert status["pcsc"]["pid"] == pcsc_lab.pid
        reader = next(r for r in readers() if str(r) == pcsc_lab.reader_names()[1])
        connection = reader.createConnection()
        connection.connect()
        connection.disconnect()
        assert lab.card("C0DE0005").serial == 0xC0DE0005
    finally:
        assert lab.remove(1) == "C0DE0005"
    assert lab.remove(1) is None
    # a Lab sharing the session pcscd never stops it
    other = Lab(lab_config, lab.state_dir.parent / "other", pcsc=pcsc_lab)
    other.down()
    assert pcsc_lab.running()


@pytest.mark.lab
def test_cards_inserted_together_and_at_once_again_after_removal(lab, pcsc_lab) -> None:
    """``Lab.insert_many`` starts the cards together and returns once pcscd has powered every
    one; cards put into the readers right after the last ones left are powered and answer
    too; a bad placement starts no card at all.  (Whether pcscd would have missed a removal
    depends on timing, so this cannot show the wait for it is needed, only that it ends.)"""
    from coldvault.backends.pcsc import PcscConnection
    from coldvault.cards import OpenPgpSession
    from hardware_emulators.lab import LabCommandError

    def card_ids() -> list[str]:
        ids = []
        for name in pcsc_lab.reader_names():
            with PcscConnection(name) as connection:
                session = OpenPgpSession(connection)
                session.select()
                ids.append(session.card_id)
        return ids

    placements = [("C0DE0001", 0), ("C0DE0002", 1), ("C0DE0003", 2)]
    with pytest.raises(LabCommandError, match="Card C0DE0001 is already in reader 0"):
        lab.insert_many([*placements[:2], ("C0DE0001", 2)])
    assert [r["card"] for r in lab.status()["pcsc"]["readers"]] == [None, None, None]
    try:
        lab.insert_many(placements)
        assert card_ids() == ["FFFFC0DE0001", "FFFFC0DE0002", "FFFFC0DE0003"]
        for reader in range(3):
            lab.remove(reader)
        lab.insert_many([("C0DE0004", 0), ("C0DE0002", 1), ("C0DE0005", 2)])
        assert card_ids() == ["FFFFC0DE0004", "FFFFC0DE0002", "FFFFC0DE0005"]
    finally:
        for reader in range(3):
            lab.remove(reader)

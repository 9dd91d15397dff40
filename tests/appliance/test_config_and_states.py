"""Appliance configuration errors, the air-gap check and the state machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.netcheck import live_network_interfaces
from appliance.states import State, StateMachine
from coldvault.config import load_config
from coldvault.errors import ConfigError

GOOD = """
[appliance]
id = "vault-01"
state_dir = "state"
allow_emulated_hardware = true

[hsm]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "coldvault-appliance"

[trust]
rosters = ["roster-1.json"]
genesis_roster_sha256 = "%s"
policy = "policy.toml"
wallets = "wallets.toml"

[input]
source = "virtual-camera"
path = "frames"
drop_rate = 0.3

[output]
sink = "png-dir"
path = "out"
fragment_len = 150
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return path


def test_good_config_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD % ("ab" * 32)))
    assert cfg.appliance_id == "vault-01"
    assert cfg.roster_files == (tmp_path / "roster-1.json",)
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.audit_log == tmp_path / "state" / "audit.jsonl"
    assert cfg.input_drop_rate == 0.3
    assert cfg.fragment_len == 150
    assert cfg.allow_emulated_hardware is True


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.replace('id = "vault-01"\n', ""),
         "[appliance] the required key 'id' is missing."),
        (lambda s: s.replace("fragment_len = 150", "fragment_len = 5"),
         "[output] fragment_len must be an integer between 10 and 2000, not 5"),
        (lambda s: s.replace('"virtual-camera"', '"cam"'), "source must be one of"),
        (lambda s: s.replace("drop_rate = 0.3", 'drop_rate = "lots"'),
         "[input] drop_rate must be a finite number between 0 and 1, not text"),
        (lambda s: s + "\n[bogus]\nx = 1\n", "unknown key 'bogus' (known keys: appliance, "),
        (lambda s: s.replace("[hsm]", "[hsm"), "is not valid TOML"),
        (lambda s: s.replace('rosters = ["roster-1.json"]', "rosters = []"), "the genesis"),
        # misspelt keys are refused with the nearest valid key, never ignored
        (lambda s: s.replace("allow_emulated_hardware", "alow_emulated_hardware"),
         "[appliance] unknown key 'alow_emulated_hardware' "
         "(did you mean allow_emulated_hardware?)"),
        (lambda s: s.replace("drop_rate", "drop_rte"),
         "[input] unknown key 'drop_rte' (did you mean drop_rate?)"),
        # every number is range-checked
        (lambda s: s + "fps = 0\n",
         "[output] fps must be a finite number greater than 0 and at most 100, not 0"),
        (lambda s: s.replace("drop_rate = 0.3", "drop_rate = nan"),
         "[input] drop_rate must be a finite number between 0 and 1, not nan"),
        (lambda s: s.replace("drop_rate = 0.3", "drop_rate = -0.5"),
         "[input] drop_rate must be a finite number between 0 and 1, not -0.5"),
        (lambda s: s.replace("drop_rate = 0.3", "fps = inf"),
         "[input] fps must be a finite number greater than 0 and at most 1000, not inf"),
        (lambda s: s.replace("drop_rate = 0.3", "seed = true"),
         "[input] seed must be an integer between 0 and 18446744073709551615, not true"),
        (lambda s: s + "\n[timeouts]\nreceiving = -1\n",
         "[timeouts] receiving must be a finite number greater than 0 and at most 604800, "
         "not -1"),
        (lambda s: s.replace('path = "frames"', "path = " + "[" * 200 + "]" * 200),
         ": the document is nested deeper than 32 levels."),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, mutate, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, mutate(GOOD % ("ab" * 32))))
    assert message in str(err.value)


def test_non_utf8_config_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_bytes((GOOD % ("ab" * 32)).encode().replace(b"vault-01", b"vault-\xff01"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"configuration file {path}: the file is not UTF-8 text (invalid byte at offset 25)."
    )


def test_bad_genesis_hash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="64 hex digits"):
        load_config(write(tmp_path, GOOD % "xyz"))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_netcheck_reads_sysfs_flags(tmp_path: Path) -> None:
    for name, flags in (("lo", "0x9"), ("eth0", "0x1003"), ("wlan0", "0x1002")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "flags").write_text(flags + "\n")
    assert live_network_interfaces(tmp_path) == ["eth0"]


def test_state_machine_allows_the_flow_and_cancel_but_not_shortcuts() -> None:
    m = StateMachine()
    for s in (State.RECEIVING, State.REVIEW, State.COLLECTING_APPROVALS, State.SIGNING,
              State.SHOWING_RESPONSE, State.IDLE):
        m.to(s)
    m.to(State.RECEIVING)
    m.to(State.REVIEW)
    m.to(State.IDLE)  # cancel at review
    m.to(State.RECEIVING)
    with pytest.raises(ValueError, match="illegal transition receiving -> signing"):
        m.to(State.SIGNING)

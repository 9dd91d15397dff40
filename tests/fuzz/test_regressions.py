"""Inputs the fuzzers found that broke a parser, each now a clean, specific domain error.
The same inputs are kept in the corpus as ``regress-*`` files and replayed every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_config
from coldvault.backup.drill import MAX_SCENARIO_BYTES, parse_scenario
from coldvault.backup.errors import PlanInvalid
from coldvault.backup.plan import parse_plan
from coldvault.errors import ConfigError, InputError
from coldvault.requests.wallets import parse_wallets

DEEP = b"a = " + b"[" * 60_000


def test_config_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_bytes(b'\x80[appliance]\nid = "vault-01"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"configuration file {path} is not UTF-8 text (byte 0 is not valid)"


def test_config_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_bytes(DEEP)
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(path)


def test_wallet_registry_nested_too_deeply() -> None:
    with pytest.raises(ConfigError, match="wallet registry x is not valid TOML"):
        parse_wallets(DEEP, where="x")


def test_backup_plan_nested_too_deeply() -> None:
    with pytest.raises(PlanInvalid, match="is not valid TOML"):
        parse_plan(DEEP)


def test_drill_scenario_nested_too_deeply() -> None:
    deep = b"a = " + b"[" * (MAX_SCENARIO_BYTES - 10)  # as deep as the size cap allows
    with pytest.raises(InputError, match="not valid TOML"):
        parse_scenario(deep)

"""Inputs the fuzzers found that broke a parser, each now a clean, specific domain error.
The same inputs are kept in the corpus as ``regress-*`` files and replayed every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldvault import schema
from coldvault.backup.drill import MAX_SCENARIO_BYTES, parse_scenario
from coldvault.backup.errors import PlanInvalid
from coldvault.backup.plan import parse_plan
from coldvault.config import load_config
from coldvault.errors import ConfigError, InputError
from coldvault.requests.wallets import parse_wallets

DEEP = b"a = " + b"[" * 60_000


def test_config_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_bytes(b'\x80[appliance]\nid = "vault-01"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"configuration file {path}: the file is not UTF-8 text (invalid byte at offset 0)."
    )


def test_config_nested_too_deeply(tmp_path: Path) -> None:
    path = tmp_path / "appliance.toml"
    path.write_bytes(DEEP)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"configuration file {path}: the document is nested deeper than 32 levels."
    )


def test_wallet_registry_nested_too_deeply() -> None:
    with pytest.raises(ConfigError) as info:
        parse_wallets(DEEP, where="x")
    assert str(info.value) == "wallet registry x: the document is nested deeper than 32 levels."


def test_backup_plan_nested_too_deeply() -> None:
    with pytest.raises(PlanInvalid, match="the document is nested deeper than 32 levels"):
        parse_plan(DEEP)


def test_drill_scenario_nested_too_deeply() -> None:
    deep = b"a = " + b"[" * (MAX_SCENARIO_BYTES - 10)  # as deep as the size cap allows
    with pytest.raises(InputError, match="the document is nested deeper than 32 levels"):
        parse_scenario(deep)


def test_policy_nested_too_deeply() -> None:
    from coldvault.policy.errors import PolicyInvalid
    from coldvault.policy.load import parse_policy

    with pytest.raises(PolicyInvalid, match="the document is nested deeper than 32 levels"):
        parse_policy(DEEP)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('[a]\nb = [[1], {c = [2]}]\n', 3),
        ('[[wallet]]\nname = "[[[[[["\n', 2),  # brackets in strings do not count
        ("# [[[[[[[[\nx = 'a[[[['\n", 0),  # nor in comments and literal strings
        ('x = """\n[[[[ " ]]\n"""\ny = [[[0]]]\n', 3),  # multi-line strings
        ('x = "a\\"[[["\n', 0),  # an escaped quote does not end the string
    ],
)
def test_toml_depth_counts_only_structure(text: str, depth: int) -> None:
    assert schema.toml_depth(text) == depth


def test_valid_toml_at_the_depth_bound_still_loads() -> None:
    assert schema.parse_toml("a = " + "[" * 31 + "1" + "]" * 31)["a"]

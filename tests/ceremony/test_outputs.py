"""A ceremony's files are created only where none exists (coldvault.ceremonies.outputs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldvault.ceremonies.exports import check_exports_free, export_paths
from coldvault.ceremonies.outputs import OutputExists, refuse_existing, write_new
from coldvault.errors import EXIT_REFUSED, exit_status
from coldvault.keys.pool import AccountSpec, Template


def test_write_new_never_overwrites(tmp_path: Path) -> None:
    path = write_new(tmp_path / "d" / "a.json", b"first", "choose another --out.")
    assert path.read_bytes() == b"first"
    with pytest.raises(OutputExists) as refused:
        write_new(path, b"second", "choose another --out.")
    assert path.read_bytes() == b"first"
    assert refused.value.message == (
        f"The file {path} already exists and a ceremony never overwrites it; choose another "
        "--out."
    )
    assert exit_status(refused.value) == EXIT_REFUSED
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]  # no temporary left


def test_exports_are_checked_before_anything_is_imported(tmp_path: Path) -> None:
    specs = [AccountSpec(Template.BIP84), AccountSpec(Template.SOL)]
    check_exports_free(specs, tmp_path)  # empty: fine
    (tmp_path / "appliance-keys.json").write_text("{}")  # another ceremony's file: fine
    check_exports_free(specs, tmp_path)
    taken = tmp_path / "house-sol-mainnet-beta-0.account.json"
    assert taken in export_paths(specs, tmp_path)
    taken.write_text("{}")
    with pytest.raises(OutputExists) as refused:
        check_exports_free(specs, tmp_path)
    assert refused.value.path == str(taken) and "--export-dir" in refused.value.message
    with pytest.raises(OutputExists):
        refuse_existing([tmp_path / "nothing", taken], "x")

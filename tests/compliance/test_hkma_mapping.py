"""docs/compliance/hkma.md: every control is mapped, and every test and document it names
exists (tests found by parsing the test files, so a renamed or deleted test fails here)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "docs" / "compliance" / "hkma.md"
CONTROLS = (
    "HSM", "Offline key generation", "Key lifecycle", "multi-factor", "Audit trail",
    "Key sharding", "Anti-collusion", "Off-site backups", "Cold storage",
    "Whitelisted withdrawals with ownership tests", "Segregated client wallets",
    "Records and reconciliation", "disaster recovery", "Testing before deployment",
)  # fmt: skip
NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
DOC = re.compile(r"\b(docs/[\w/.-]+\.md)\b")


def rows() -> list[str]:
    return [line for line in MAPPING.read_text().splitlines() if re.match(r"^\| \d+ \|", line)]


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_control_has_a_feature_a_document_and_tests() -> None:
    table = rows()
    assert len(table) == len(CONTROLS)
    for control, row in zip(CONTROLS, table, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert control.lower() in cells[1].lower(), (control, cells[1])
        assert cells[2], f"{control}: no feature"
        assert DOC.search(cells[3]), f"{control}: no document"
        assert len(NODE.findall(cells[4])) >= 2, f"{control}: fewer than two tests"


def test_every_named_test_and_document_exists() -> None:
    text = MAPPING.read_text()
    missing = []
    cache: dict[str, set[str]] = {}
    for file, name in NODE.findall(text):
        path = ROOT / file
        if not path.exists():
            missing.append(f"{file} (no such file)")
            continue
        if file not in cache:
            cache[file] = defined_tests(path)
        if name not in cache[file]:
            missing.append(f"{file}::{name}")
    missing += [doc for doc in DOC.findall(text) if not (ROOT / doc).exists()]
    assert missing == [], "named in docs/compliance/hkma.md but missing:\n" + "\n".join(missing)

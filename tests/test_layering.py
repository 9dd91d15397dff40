"""Architecture guard: the library layer never imports hardware libraries, click, or prints."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = {"pkcs11", "smartcard", "pyzbar", "zxingcpp", "cv2", "serial"}
FRONTEND = {"click", "rich", "appliance", "ceremony_scripts", "hardware_emulators"}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def _library_files() -> list[Path]:
    return sorted((ROOT / "coldvault").rglob("*.py"))


def test_library_has_files() -> None:
    assert len(_library_files()) > 3


def test_only_backends_import_hardware_libraries() -> None:
    offenders = []
    for path in _library_files():
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("coldvault", "backends"):
            continue
        for line, mod in _imports(path):
            if mod in HARDWARE:
                offenders.append(f"{rel}:{line} imports {mod}")
    assert offenders == []


def test_library_never_imports_front_ends() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for path in _library_files()
        for line, mod in _imports(path)
        if mod in FRONTEND
    ]
    assert offenders == []


def test_library_never_prints() -> None:
    offenders = []
    for path in _library_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_ceremonies_do_not_import_the_appliance() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "ceremony_scripts").rglob("*.py"))
        for line, mod in _imports(path)
        if mod == "appliance"
    ]
    assert offenders == []

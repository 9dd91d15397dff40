"""Architecture guard: the house rules of docs/architecture.md, checked on the source tree.

* ``coldvault`` never prints, never imports click/rich or a front end, and only
  ``coldvault.backends`` imports hardware libraries.
* Inside ``coldvault`` the packages form layers (:data:`LAYERS`, the one declaration): a
  package imports only packages of lower layers. ``backends`` stands beside the stack: it may
  import the library, and no library package imports it (hardware is handed in, never looked
  up).
* Production packages (``coldvault``, ``appliance``, ``ceremony_scripts``) never import the
  emulators, pexpect or the tests; ``ceremony_scripts`` never imports ``appliance``.
* No module other than a package ``__init__`` hands on names it does not define, and no
  package has prefix-named sibling modules (``policy_load.py`` beside ``policy_rules.py``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARDWARE = {"pkcs11", "smartcard", "pyzbar", "zxingcpp", "cv2", "serial"}
FRONTEND = {"click", "rich", "appliance", "ceremony_scripts", "hardware_emulators"}
LAB_ONLY = {"hardware_emulators", "pexpect", "tests"}
PRODUCTION = ("coldvault", "appliance", "ceremony_scripts")

#: The layers of the library, lowest first. A package imports only from lower layers.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "jsonsafe"}),
    frozenset({"schema"}),
    frozenset({"crypto"}),
    frozenset({"transport", "cards"}),
    frozenset({"keys"}),
    frozenset({"requests"}),
    frozenset({"quorum"}),
    frozenset({"policy"}),
    frozenset({"records"}),
    frozenset({"backup"}),
    frozenset({"ceremonies"}),
    frozenset({"config"}),
)
#: Beside the stack: imports any library package, imported by none of them.
BESIDE = "backends"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return found


def _files(top: str) -> list[Path]:
    return sorted((ROOT / top).rglob("*.py"))


def _library_files() -> list[Path]:
    return _files("coldvault")


def _package(module: str) -> str | None:
    """The library package of a dotted module name (``coldvault.policy.load`` -> ``policy``)."""
    parts = module.split(".")
    if parts[0] != "coldvault" or len(parts) < 2:
        return None
    return parts[1]


def _layer(package: str) -> int:
    for index, layer in enumerate(LAYERS):
        if package in layer:
            return index
    raise AssertionError(f"coldvault.{package} is in no layer: declare it in LAYERS")


def test_library_has_files() -> None:
    assert len(_library_files()) > 3


def test_every_library_package_is_declared() -> None:
    packages = {p.name for p in (ROOT / "coldvault").iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in (ROOT / "coldvault").glob("*.py") if p.name != "__init__.py"}
    declared = set().union(*LAYERS) | {BESIDE}
    assert packages | modules <= declared


def test_packages_import_only_lower_layers() -> None:
    offenders = []
    for path in _library_files():
        rel = path.relative_to(ROOT)
        own = _package(".".join(rel.with_suffix("").parts))
        if own is None:
            continue
        for line, module in _imports(path):
            target = _package(module)
            if target is None or target == own:
                continue
            if module in {"coldvault.errors", "coldvault.jsonsafe"} or (
                target in {"errors", "jsonsafe"}
            ):
                target_layer = 0
            elif target == BESIDE:
                offenders.append(f"{rel}:{line} imports coldvault.{target} (hardware is handed in)")
                continue
            else:
                target_layer = _layer(target)
            if own == BESIDE:
                continue
            if target_layer >= _layer(own):
                offenders.append(f"{rel}:{line} ({own}) imports coldvault.{target}")
    offenders = sorted(set(offenders))
    assert offenders == [], "\n".join(offenders)


def test_only_backends_import_hardware_libraries() -> None:
    offenders = []
    for path in _library_files():
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("coldvault", "backends"):
            continue
        for line, mod in _imports(path):
            if mod.split(".")[0] in HARDWARE:
                offenders.append(f"{rel}:{line} imports {mod}")
    assert offenders == []


def test_library_never_imports_front_ends() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for path in _library_files()
        for line, mod in _imports(path)
        if mod.split(".")[0] in FRONTEND
    ]
    assert offenders == []


@pytest.mark.parametrize("top", PRODUCTION)
def test_production_never_imports_the_lab(top: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for path in _files(top)
        for line, mod in _imports(path)
        if mod.split(".")[0] in LAB_ONLY
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
        for path in _files("ceremony_scripts")
        for line, mod in _imports(path)
        if mod.split(".")[0] == "appliance"
    ]
    assert offenders == []


def _handed_on(path: Path) -> list[str]:
    """Names in ``__all__`` that the module imports instead of defining."""
    tree = ast.parse(path.read_text())
    defined: set[str] = set()
    imported: set[str] = set()
    exported: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    defined.add(target.id)
                    if target.id == "__all__" and isinstance(node.value, ast.List | ast.Tuple):
                        exported = [
                            e.value for e in node.value.elts if isinstance(e, ast.Constant)
                        ]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            imported.update(a.asname or a.name.split(".")[0] for a in node.names)
    return [name for name in exported if name not in defined and name in imported]


def test_no_module_hands_on_names_it_does_not_define() -> None:
    offenders = {
        str(path.relative_to(ROOT)): names
        for path in _library_files()
        if path.name != "__init__.py" and (names := _handed_on(path))
    }
    assert offenders == {}


def test_no_prefix_named_sibling_modules() -> None:
    offenders = []
    for folder in {p.parent for p in _library_files()}:
        by_prefix: dict[str, list[str]] = defaultdict(list)
        for module in folder.glob("*.py"):
            if "_" in module.stem.strip("_"):
                by_prefix[module.stem.split("_")[0]].append(module.name)
        for prefix, names in by_prefix.items():
            siblings = names + [p.name for p in folder.glob(f"{prefix}.py")]
            if len(siblings) > 1:
                offenders.append(f"{folder.relative_to(ROOT)}: {sorted(siblings)}")
    assert offenders == []

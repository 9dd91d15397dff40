"""Error codes are unique across the project.

The ``code`` of a :class:`~coldvault.errors.ColdvaultError` is what ``--json`` output, the
audit trail, the ledger and ceremony transcripts record, so two different causes must never
share one (a wrong card PIN and a wrong HSM PIN are different events). Every module of the
library and of the front ends is imported, every ColdvaultError subclass they define is
collected, and each must name its own code.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections import defaultdict

import pytest

from coldvault.errors import Cancelled, ColdvaultError

#: Packages whose error classes are checked (the library, the front ends, the lab).
PACKAGES = ("coldvault", "appliance", "ceremony_scripts", "hardware_emulators")
#: Modules not imported: ``__main__`` runs its program, the demo drives a whole lab run.
SKIP = re.compile(r"(^|\.)__main__$|^hardware_emulators\.demo(\.|$)")
CODE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
#: Codes the command line reports for failures that are not a ColdvaultError
#: (appliance/errors_out.py): no error class may claim them for another cause.
FRONT_END_CODES = {"usage"}

#: Classes that knowingly share a code (one cause raised in two places). None today: every
#: cause has its own class and code.
SAME_CAUSE: set[frozenset[str]] = set()


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found.add(sub)
        found |= _subclasses(sub)
    return found


def _project_errors() -> list[type[ColdvaultError]]:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not SKIP.search(info.name):
                importlib.import_module(info.name)
    classes = _subclasses(ColdvaultError) | {ColdvaultError}
    ours = [c for c in classes if c.__module__.split(".")[0] in PACKAGES]
    return sorted(ours, key=_name)


ERRORS = _project_errors()


def test_the_walk_finds_the_errors_of_every_package() -> None:
    packages = {c.__module__.split(".")[0] for c in ERRORS}
    # the ceremony front end defines no error of its own: the ceremonies' are the library's
    assert packages == set(PACKAGES) - {"ceremony_scripts"}
    assert len(ERRORS) > 150


@pytest.mark.parametrize("cls", ERRORS, ids=_name)
def test_every_error_class_names_its_own_code(cls: type[ColdvaultError]) -> None:
    assert "code" in vars(cls), f"{_name(cls)} inherits {cls.code!r}: give it its own code"
    assert CODE.match(cls.code), f"{_name(cls)}: {cls.code!r} is not lower-case-with-dashes"
    assert cls.code not in FRONT_END_CODES


def test_no_two_error_classes_share_a_code() -> None:
    by_code: dict[str, set[str]] = defaultdict(set)
    for cls in ERRORS:
        by_code[cls.code].add(_name(cls))
    shared = {
        code: sorted(names) for code, names in by_code.items()
        if len(names) > 1 and frozenset(names) not in SAME_CAUSE
    }
    assert shared == {}


def test_a_card_pin_and_an_hsm_pin_have_different_codes() -> None:
    from coldvault.backends.pkcs11.errors import WrongPin as HsmWrongPin
    from coldvault.cards.openpgp import WrongPin as CardWrongPin

    assert CardWrongPin.code == "card-wrong-pin"
    assert HsmWrongPin.code == "hsm-wrong-pin"


def test_operator_cancel_has_one_class() -> None:
    cancels = [c for c in ERRORS if c.code == "cancelled"]
    assert cancels == [Cancelled]

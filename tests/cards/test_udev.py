"""The shipped udev rules parse and follow our conventions (udev/README.md)."""

from __future__ import annotations

import re
from pathlib import Path

UDEV = Path(__file__).resolve().parents[2] / "udev"
RULES = sorted(UDEV.glob("*.rules"))
PAIR = re.compile(r'^(?P<key>[A-Z]+(?:\{[A-Za-z_]+\})?)(?P<op>==|!=|\+=|=|:=)"(?P<value>[^"]*)"$')
EXPECTED = {
    ("1050", "0407"),  # YubiKey 5 OTP+FIDO+CCID
    ("20a0", "42b2"),  # Nitrokey 3
    ("1050", "0030"),  # YubiHSM 2
    ("20a0", "4230"),  # Nitrokey HSM 2
}


def _rules() -> list[tuple[int, str, list[tuple[str, str, str]]]]:
    out = []
    for path in RULES:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            pairs = []
            for part in (p.strip() for p in text.split(",")):
                match = PAIR.match(part)
                assert match, f"{path.name}:{number}: cannot parse {part!r}"
                pairs.append((match["key"], match["op"], match["value"]))
            out.append((number, text, pairs))
    return out


def test_rules_exist_with_provenance() -> None:
    assert RULES
    readme = (UDEV / "README.md").read_text()
    assert "Provenance" in readme


def test_device_rules_follow_conventions() -> None:
    seen: set[tuple[str, str]] = set()
    for number, _text, pairs in _rules():
        keys = {key: (op, value) for key, op, value in pairs}
        if "ATTRS{idVendor}" not in keys:
            continue  # a control line (ACTION/SUBSYSTEM guards, LABEL)
        vendor, product = keys["ATTRS{idVendor}"], keys.get("ATTRS{idProduct}")
        assert product is not None, f"line {number}: idVendor without idProduct"
        for op, value in (vendor, product):
            assert op == "==" and re.fullmatch(r"[0-9a-f]{4}", value), f"line {number}"
        assert keys["MODE"] == ("=", "0660"), f"line {number}"
        assert keys["GROUP"] == ("=", "coldvault"), f"line {number}"
        assert keys["TAG"] == ("+=", "uaccess"), f"line {number}"
        assert not {"RUN", "PROGRAM", "IMPORT{program}"} & keys.keys(), f"line {number}"
        pair = (vendor[1], product[1])
        assert pair not in seen, f"line {number}: duplicate {pair}"
        seen.add(pair)
    assert EXPECTED <= seen


def test_every_device_rule_is_commented() -> None:
    for path in RULES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "ATTRS{idVendor}" in line:
                above = [ln for ln in lines[:i] if ln.strip()]
                assert above and (above[-1].startswith("#") or "ATTRS{idVendor}" in above[-1])


def test_control_flow_labels_match() -> None:
    text = "\n".join(p.read_text() for p in RULES)
    gotos = set(re.findall(r'GOTO="([^"]+)"', text))
    labels = set(re.findall(r'LABEL="([^"]+)"', text))
    assert gotos == labels

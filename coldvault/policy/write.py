"""Writing a policy: a :class:`Policy` value rendered as the documented TOML (docs/policy.md).

:func:`policy_toml` is the one writer of policy documents; :func:`parse_policy` reads its
output back to an equal value (the writer checks that before returning). Amounts are
written as exact integers, fee rates with the shortest exact float text, and strings
(addresses, labels, proof messages, signatures and evidence) whole, with TOML escapes only.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from coldvault.policy.errors import PolicyInvalid
from coldvault.policy.load import FORMAT, parse_policy
from coldvault.policy.model import DestinationKind, WalletPolicy
from coldvault.policy.rules import DEFAULT_DRILL_INTERVAL_DAYS, Policy
from coldvault.quorum.groups import GroupRequirement

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}  # fmt: skip


def _string(text: str) -> str:
    """A TOML basic string: every character kept, control characters escaped."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _integer(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer amount or count, not {value!r}")
    return str(value)


def _number(value: int | float) -> str:
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as exactly this float
    return _integer(value)


def _strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(_string(str(v)) for v in values) + "]"


def _groups(groups: GroupRequirement) -> str:
    return "{ " + ", ".join(f"{_key(g)} = {_integer(n)}" for g, n in groups.counts) + " }"


def _wallet(w: WalletPolicy) -> list[str]:
    lines = [
        "[[wallet]]",
        f"name = {_string(w.name)}",
        f"client = {_string(w.client)}",
        f"chain = {_string(str(w.chain))}",
        f"network = {_string(w.network)}",
        f"kinds = {_strings(sorted(w.kinds))}",
        f"min_approvals = {_integer(w.min_approvals)}",
    ]
    if w.max_fee is not None:
        lines.append(f"max_fee = {_integer(w.max_fee)}")
    if w.max_fee_rate is not None:
        lines.append(f"max_fee_rate = {_number(w.max_fee_rate)}")
    if w.allow_attested:
        lines.append("allow_attested = true")
    if w.groups:
        lines.append(f"groups = {_groups(w.groups)}")
    for asset, limits in w.limits.items():
        lines += [
            "",
            f"[wallet.limits.{_key(asset)}]",
            f"per_transaction = {_integer(limits.per_transaction)}",
            f"per_day = {_integer(limits.per_day)}",
        ]
        if limits.attested_per_transaction is not None:
            lines.append(f"attested_per_transaction = {_integer(limits.attested_per_transaction)}")
    for tier in w.tiers:
        lines += ["", "[[wallet.tier]]", f"asset = {_string(tier.asset)}"]
        if tier.up_to is not None:
            lines.append(f"up_to = {_integer(tier.up_to)}")
        lines.append(f"approvals = {_integer(tier.approvals)}")
        if tier.allow_attested is not None:
            lines.append(f"allow_attested = {'true' if tier.allow_attested else 'false'}")
        if tier.groups:
            lines.append(f"groups = {_groups(tier.groups)}")
    for d in w.destinations:
        lines += [
            "",
            "[[wallet.destination]]",
            f"address = {_string(d.address)}",
            f"chain = {_string(str(d.chain))}",
            f"label = {_string(d.label)}",
        ]
        if d.kind is DestinationKind.PROVEN:
            lines += [f"message = {_string(d.message)}", f"signature = {_string(d.signature)}"]
        else:
            lines.append(f"kind = {_string(str(d.kind))}")
        lines += [
            f"{name} = {_string(value)}"
            for name, value in dataclasses.asdict(d.evidence).items()
            if value
        ]
    for address, label in w.contracts:
        lines += [
            "",
            "[[wallet.contract]]",
            f"address = {_string(address)}",
            f"label = {_string(label)}",
        ]
    return lines


def _unchecked(*_proof: str) -> None:
    """Ownership proofs are checked when the document is loaded, not when it is written."""


def policy_toml(policy: Policy) -> str:
    """``policy`` as a policy document (docs/policy.md), ready for the admins to sign.

    Raises ``ValueError`` if the value is not one :func:`parse_policy` would produce (a
    wallet filed under another name, a tier without limits, a negative amount, ...): the
    document read back must equal ``policy`` (its ``sha256`` aside)."""
    lines = [
        f"format = {_string(FORMAT)}",
        f"version = {_integer(policy.version)}",
        f"appliance_id = {_string(policy.appliance_id)}",
        f"chains = {_strings(sorted(str(c) for c in policy.chains))}",
    ]
    if policy.drill_interval_days != DEFAULT_DRILL_INTERVAL_DAYS:
        lines.append(f"drill_interval_days = {_integer(policy.drill_interval_days)}")
    for wallet in policy.wallets.values():
        lines += ["", *_wallet(wallet)]
    text = "\n".join(lines) + "\n"
    try:
        parsed = parse_policy(text, ownership_verifier=_unchecked)
    except PolicyInvalid as exc:
        raise ValueError(f"the policy value cannot be written: {exc.message}") from exc
    if dataclasses.replace(parsed, sha256=policy.sha256) != policy:
        raise ValueError("the policy value does not read back equal; check wallet names")
    return text

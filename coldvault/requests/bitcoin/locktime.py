"""PSBT v2 (BIP-370) specifics: the "Determining Lock Time" algorithm.

embit 0.8 gets v2 wrong, so coldvault never hands it a v2 PSBT: the pre-parser
(:mod:`coldvault.requests.bitcoin.parse`) validates v2 fields and ranges itself and builds the
transaction skeleton from the per-input/per-output fields; this module decides ``nLockTime``.
"""

from __future__ import annotations

from coldvault.requests.bitcoin.errors import PsbtError
from coldvault.requests.bitcoin.maps import (
    G_FALLBACK_LOCKTIME,
    IN_REQUIRED_HEIGHT_LOCKTIME,
    IN_REQUIRED_TIME_LOCKTIME,
)
from coldvault.requests.bitcoin.parse import Psbt


class LocktimeUndeterminable(PsbtError):
    """BIP-370: some inputs need a height lock and others a time lock; no nLockTime works."""

    code = "psbt-locktime-undeterminable"


def _u32(value: bytes | None) -> int | None:
    return None if value is None else int.from_bytes(value, "little")


def determine_locktime(psbt: Psbt) -> int:
    """``nLockTime`` of the transaction a PSBT describes.

    v0: the unsigned transaction's value. v2 (BIP-370 "Determining Lock Time"):

    1. If no input has ``PSBT_IN_REQUIRED_TIME_LOCKTIME`` or ``..._HEIGHT_LOCKTIME``, the
       ``PSBT_GLOBAL_FALLBACK_LOCKTIME`` (0 when absent).
    2. Otherwise a lock type every such input accepts is chosen, height first when both fit
       (an input with both fields accepts either); none fits -> :class:`LocktimeUndeterminable`.
    3. The locktime is the largest value of the chosen type among the inputs.
    """
    if psbt.version == 0:
        if psbt.v0_locktime is None:
            raise ValueError("v0 PSBT without locktime")
        return psbt.v0_locktime
    heights: list[int] = []
    times: list[int] = []
    any_constraint = height_ok = time_ok = False
    for m in psbt.inputs:
        t = _u32(m.get(IN_REQUIRED_TIME_LOCKTIME))
        h = _u32(m.get(IN_REQUIRED_HEIGHT_LOCKTIME))
        if t is None and h is None:
            continue
        if not any_constraint:
            any_constraint = height_ok = time_ok = True
        if h is None:
            height_ok = False
        else:
            heights.append(h)
        if t is None:
            time_ok = False
        else:
            times.append(t)
    if not any_constraint:
        return _u32(psbt.globals.get(G_FALLBACK_LOCKTIME)) or 0
    if height_ok:
        return max(heights)
    if time_ok:
        return max(times)
    raise LocktimeUndeterminable(
        "some inputs need a block-height locktime and others a timestamp locktime,"
        " so no locktime satisfies them all",
        field="PSBT_IN_REQUIRED_HEIGHT_LOCKTIME",
    )

"""Timelocks: the BIP-370 "Determining Lock Time" algorithm and the review's timelock warnings.

embit 0.8 gets v2 wrong, so coldvault never hands it a v2 PSBT: the pre-parser
(:mod:`coldvault.requests.bitcoin.parse`) validates v2 fields and ranges itself and builds the
transaction skeleton from the per-input/per-output fields; this module decides ``nLockTime``
(:func:`determine_locktime`) and says what the operator must know about a transaction that
cannot be mined at once (:func:`timelock_warnings`): a far-future ``nLockTime`` and BIP-68
relative timelocks in input sequence numbers.
"""

from __future__ import annotations

from coldvault.requests.bitcoin.errors import PsbtError
from coldvault.requests.bitcoin.maps import (
    G_FALLBACK_LOCKTIME,
    IN_REQUIRED_HEIGHT_LOCKTIME,
    IN_REQUIRED_TIME_LOCKTIME,
)
from coldvault.requests.bitcoin.parse import LOCKTIME_THRESHOLD, Psbt


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


# --------------------------------------------------------------------------- warnings

#: An nLockTime further ahead of the host clock than this is "far in the future".
FAR_FUTURE_SECONDS = 7 * 24 * 3600
#: Mainnet block 840,000 and its timestamp: the host clock's height estimate starts here.
_MAINNET_ANCHOR = (840_000, 1_713_571_767)
#: Seconds per block assumed for the estimate: faster than the 600 s target, so the estimate
#: is an upper bound and a locktime at the real tip is never called far-future.
_FAST_BLOCK_SECONDS = 540
_SEQUENCE_FINAL = 0xFFFF_FFFF
_SEQ_DISABLE = 1 << 31  # BIP-68: no relative lock
_SEQ_TYPE_TIME = 1 << 22  # BIP-68: units of 512 s instead of blocks
_SEQ_MASK = 0xFFFF


def _days(seconds: float) -> str:
    days = seconds / 86400
    return f"about {days:,.0f} days" if days >= 2 else f"about {seconds / 3600:,.0f} hours"


def _absolute_warning(locktime: int, network: str, now: float) -> str | None:
    if locktime >= LOCKTIME_THRESHOLD:
        ahead = locktime - now
        if ahead <= FAR_FUTURE_SECONDS:
            return None
        return (
            f"locktime {locktime} (unix time) is far in the future: the transaction cannot be"
            f" mined for {_days(ahead)} after the host clock's time"
        )
    if network != "main" or locktime == 0:
        return None  # no height estimate on test networks; the locktime is on the screen
    anchor_height, anchor_time = _MAINNET_ANCHOR
    tip = anchor_height + max(0, int(now) - anchor_time) // _FAST_BLOCK_SECONDS
    blocks = locktime - tip
    if blocks * _FAST_BLOCK_SECONDS <= FAR_FUTURE_SECONDS:
        return None
    return (
        f"locktime {locktime} (block height) is far in the future: by the host clock the chain"
        f" is at most near block {tip:,}, so the transaction cannot be mined for about"
        f" {blocks:,} blocks ({_days(blocks * 600)})"
    )


def _relative_warning(i: int, sequence: int) -> str | None:
    if sequence & _SEQ_DISABLE or not sequence & _SEQ_MASK:
        return None
    value = sequence & _SEQ_MASK
    if sequence & _SEQ_TYPE_TIME:
        wait = f"{value * 512:,} seconds ({_days(value * 512)})"
    else:
        wait = f"{value:,} blocks ({_days(value * 600)})"
    return (
        f"input {i} has a relative timelock (BIP-68 sequence {sequence:#010x}): the transaction"
        f" cannot be mined until {wait} after the coin it spends was confirmed"
    )


def timelock_warnings(psbt: Psbt, locktime: int, network: str, now: float) -> list[str]:
    """Warnings, naming the value, for timelocks that can keep the transaction from being mined.

    * ``nLockTime`` (enforced unless every input's sequence is final) more than
      :data:`FAR_FUTURE_SECONDS` ahead of ``now`` -- for a block height on mainnet, ahead of
      an upper-bound height estimate from ``now``; test networks have no estimate.
    * BIP-68 relative timelocks: transaction version 2 or more, an input sequence with the
      disable bit clear and a non-zero lock value (blocks, or units of 512 seconds).
    """
    warnings: list[str] = []
    if any(t.sequence != _SEQUENCE_FINAL for t in psbt.tx_inputs):
        absolute = _absolute_warning(locktime, network, now)
        if absolute is not None:
            warnings.append(absolute)
    if psbt.tx_version >= 2:
        for i, t in enumerate(psbt.tx_inputs):
            relative = _relative_warning(i, t.sequence)
            if relative is not None:
                warnings.append(relative)
    return warnings

"""Bitcoin PSBT sign requests (docs/psbt.md).

The face (import these from ``coldvault.requests.bitcoin``):

* :func:`prepare_psbt` -- parse, check and plan a PSBT; its ``finish`` inserts the HSM's
  signatures as ``PSBT_IN_PARTIAL_SIG`` (:mod:`.request`).
* :func:`parse_psbt`, :class:`Psbt`, :class:`Limits`, ``DEFAULT_LIMITS`` -- the bounded
  pre-parser (:mod:`.parse`, :mod:`.maps`).
* :class:`WalletScripts`, :class:`ScriptType` -- script derivation from a registered
  wallet's descriptor (:mod:`.wallet`).
* :class:`PsbtError`, :class:`PsbtRefused`, :class:`KeyNotHeld`, :class:`BadHsmSignature`,
  :class:`TaprootRefused`, :class:`WalletDescriptorError` -- the error families; every
  specific error is in :mod:`.errors`.

The parts: :mod:`.parse` (bounded pre-parser), :mod:`.tx` (transactions), :mod:`.maps`
(key-value maps), :mod:`.checks` (BIP-174 signer checks), :mod:`.match` (wallet and change),
:mod:`.locktime`, :mod:`.sighash` (digests, size), :mod:`.wallet` and :mod:`.errors`.
"""

from __future__ import annotations

from coldvault.requests.bitcoin.errors import BadHsmSignature, KeyNotHeld, PsbtError, PsbtRefused
from coldvault.requests.bitcoin.maps import DEFAULT_LIMITS, Limits
from coldvault.requests.bitcoin.parse import Psbt, parse_psbt
from coldvault.requests.bitcoin.request import prepare_psbt
from coldvault.requests.bitcoin.wallet import (
    ScriptType,
    TaprootRefused,
    WalletDescriptorError,
    WalletScripts,
)

__all__ = [
    "DEFAULT_LIMITS",
    "BadHsmSignature",
    "KeyNotHeld",
    "Limits",
    "Psbt",
    "PsbtError",
    "PsbtRefused",
    "ScriptType",
    "TaprootRefused",
    "WalletDescriptorError",
    "WalletScripts",
    "parse_psbt",
    "prepare_psbt",
]

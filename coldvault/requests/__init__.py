"""Sign requests: parse untrusted bytes, build the operator's review, plan HSM signatures.

Every request kind (:mod:`.bitcoin`, :mod:`.ethereum`, :mod:`.solana`) turns untrusted bytes
into a :class:`PreparedRequest`: what the operator and approvers see (:class:`Review`), what
the HSM must sign (:class:`SignJob`) and ``finish(signatures)``, which verifies each
signature against our key and builds the response.

The face (import these from ``coldvault.requests``):

* :func:`prepare_request`, ``SIGNABLE_TYPES``, :class:`UnsupportedRequest` -- route one
  assembled QR payload by its UR type (:mod:`coldvault.requests.dispatch`).
* :class:`KeyLookup` -- how a request asks the keystore for a key (``None`` = not held).
* :class:`Chain`, :class:`Movement`, :class:`MovementKind`, :class:`Review`,
  :class:`SignJob`, :class:`PreparedRequest` -- the values shared with policy, quorum and
  records (:mod:`coldvault.requests.base`).
* :class:`Wallet`, :func:`load_wallets`, :func:`parse_wallets` -- the registered wallets
  (:mod:`coldvault.requests.wallets`).
* :class:`Asset`, :func:`format_amount` -- the native assets and the one exact amount
  formatter for every screen and document (:mod:`coldvault.requests.amounts`).

Modules inside the package import from defining modules, never from this face.
"""

from __future__ import annotations

from coldvault.requests.amounts import Asset, format_amount
from coldvault.requests.base import (
    Chain,
    Movement,
    MovementKind,
    PreparedRequest,
    Review,
    SignJob,
)
from coldvault.requests.dispatch import SIGNABLE_TYPES, UnsupportedRequest, prepare_request
from coldvault.requests.keys import KeyLookup
from coldvault.requests.wallets import Wallet, load_wallets, parse_wallets

__all__ = [
    "SIGNABLE_TYPES",
    "Asset",
    "Chain",
    "KeyLookup",
    "Movement",
    "MovementKind",
    "PreparedRequest",
    "Review",
    "SignJob",
    "UnsupportedRequest",
    "Wallet",
    "format_amount",
    "load_wallets",
    "parse_wallets",
    "prepare_request",
]

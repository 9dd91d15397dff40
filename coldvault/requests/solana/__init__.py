"""Solana sign requests (Keystone ``sol-sign-request``; docs/solana.md).

The face (import these from ``coldvault.requests.solana``):

* :func:`prepare_sol_request` (a decoded registry request) and :func:`prepare_sol` (its
  fields) -- parse, check and review; ``finish`` verifies the Ed25519 signature and builds
  the ``sol-signature`` (:mod:`.request`).
* :func:`sol_signature_cbor` -- the response CBOR.
* :func:`parse_message`, :class:`SolMessage` -- the bounded transaction-message parser
  (:mod:`.message`).
* :class:`SolanaRequestError`, :class:`SignerNotOurs`, :class:`UnshowableDestination`,
  :class:`MessageLooksLikeTransaction` -- the errors.

The wire enum ``SolSignType`` is defined once, in :mod:`coldvault.transport.registry`.
"""

from __future__ import annotations

from coldvault.requests.solana.message import SolanaRequestError, SolMessage, parse_message
from coldvault.requests.solana.request import (
    MessageLooksLikeTransaction,
    SignerNotOurs,
    UnshowableDestination,
    prepare_sol,
    prepare_sol_request,
    sol_signature_cbor,
)

__all__ = [
    "MessageLooksLikeTransaction",
    "SignerNotOurs",
    "SolMessage",
    "SolanaRequestError",
    "UnshowableDestination",
    "parse_message",
    "prepare_sol",
    "prepare_sol_request",
    "sol_signature_cbor",
]

"""Ethereum sign requests (Keystone ``eth-sign-request``; docs/ethereum.md).

The face (import these from ``coldvault.requests.ethereum``):

* :func:`prepare_eth_request` (a decoded registry request) and :func:`prepare_eth` (its
  fields) -- decode, check and review; ``finish`` builds the ``eth-signature`` (:mod:`.request`).
* :func:`recovery_id`, :func:`eth_signature_cbor` -- the response's ``v`` and CBOR.
* :func:`decode_transaction`, :class:`EthTransaction`, :func:`eth_address`,
  :func:`checksum_address` -- unsigned transactions and addresses (:mod:`.tx`).
* :func:`parse_typed_data` -- EIP-712 (:mod:`.eip712`).
* :class:`EthRequestError`, :class:`ChainIdMismatch`, :class:`UnsupportedTransactionType`,
  :class:`Eip712Error` -- the errors.

The wire enum ``EthDataType`` is defined once, in :mod:`coldvault.transport.registry`.
"""

from __future__ import annotations

from coldvault.requests.ethereum.eip712 import Eip712Error, parse_typed_data
from coldvault.requests.ethereum.request import (
    eth_signature_cbor,
    prepare_eth,
    prepare_eth_request,
    recovery_id,
)
from coldvault.requests.ethereum.tx import (
    ChainIdMismatch,
    EthRequestError,
    EthTransaction,
    UnsupportedTransactionType,
    checksum_address,
    decode_transaction,
    eth_address,
)

__all__ = [
    "ChainIdMismatch",
    "Eip712Error",
    "EthRequestError",
    "EthTransaction",
    "UnsupportedTransactionType",
    "checksum_address",
    "decode_transaction",
    "eth_address",
    "eth_signature_cbor",
    "parse_typed_data",
    "prepare_eth",
    "prepare_eth_request",
    "recovery_id",
]

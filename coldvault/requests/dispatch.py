"""Route an assembled QR payload to its request kind, chosen by the UR type string.

``crypto-psbt`` (and ``psbt``, BBQr ``P``, pMofN/plain PSBT text) -> :mod:`.bitcoin`;
``eth-sign-request`` -> :mod:`.ethereum`; ``sol-sign-request`` -> :mod:`.solana`.
The CBOR tag is never used to decide (Keystone's tags collide). Ethereum and Solana requests
name their key by master fingerprint and path; each request kind resolves that path once
and picks the one registered wallet of its chain whose seed and account cover it
(:func:`coldvault.requests.keys.find_wallet`).
"""

from __future__ import annotations

from collections.abc import Mapping

from coldvault.errors import Refused
from coldvault.requests.base import PreparedRequest
from coldvault.requests.bitcoin.request import prepare_psbt
from coldvault.requests.ethereum.request import prepare_eth_request
from coldvault.requests.keys import KeyLookup
from coldvault.requests.solana.request import prepare_sol_request
from coldvault.requests.wallets import Wallet
from coldvault.transport.formats import PSBT_TYPES, Received
from coldvault.transport.registry import EthSignRequest, SolSignRequest, decode_registry
from coldvault.transport.registry.bitcoin import PSBT
from coldvault.transport.ur import UR

SIGNABLE_TYPES = PSBT_TYPES | {"eth-sign-request", "sol-sign-request"}


class UnsupportedRequest(Refused):
    """The payload is valid but not a kind of sign request this appliance handles."""

    code = "unsupported-request"

    def __init__(self, ur_type: str) -> None:
        super().__init__(
            f"A {ur_type!r} payload is not a sign request this appliance handles "
            "(it signs crypto-psbt, eth-sign-request and sol-sign-request)."
        )
        self.ur_type = ur_type


def _psbt_bytes(received: Received) -> bytes:
    """The PSBT a PSBT request carries. A UR's CBOR is decoded as CBOR first, so malformed
    CBOR is reported as such (never as "not a PSBT")."""
    if not received.is_cbor:
        return received.payload
    value = decode_registry(UR(received.ur_type, received.cbor))
    if not isinstance(value, PSBT):
        raise UnsupportedRequest(received.ur_type)
    return value.data


def prepare_request(
    received: Received,
    *,
    wallets: Mapping[str, Wallet],
    lookup_key: KeyLookup,
    request_digest: bytes,
) -> PreparedRequest:
    """Parse and check one assembled request; raises the specific domain error.

    ``lookup_key`` returns ``None`` only when the keystore does not hold a key (see
    :func:`coldvault.keys.keystore.held_key`); any other keystore failure propagates."""
    ur_type = received.ur_type
    if ur_type in PSBT_TYPES:
        return prepare_psbt(
            _psbt_bytes(received), wallets=wallets, lookup_key=lookup_key,
            request_digest=request_digest,
        )
    if ur_type not in SIGNABLE_TYPES:
        raise UnsupportedRequest(ur_type)
    value = decode_registry(UR(ur_type, received.cbor))
    if isinstance(value, EthSignRequest):
        return prepare_eth_request(
            value, wallets=wallets, lookup_key=lookup_key, request_digest=request_digest
        )
    if isinstance(value, SolSignRequest):
        return prepare_sol_request(
            value, wallets=wallets, lookup_key=lookup_key, request_digest=request_digest
        )
    raise UnsupportedRequest(ur_type)

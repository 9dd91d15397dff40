"""Route an assembled QR payload to its request kind, chosen by the UR type string.

``crypto-psbt`` (and ``psbt``, BBQr ``P``, pMofN/plain PSBT text) -> :mod:`.psbt`;
``eth-sign-request`` -> :mod:`.ethereum`; ``sol-sign-request`` -> :mod:`.solana`.
The CBOR tag is never used to decide (Keystone's tags collide). Ethereum and Solana requests
name their key by master fingerprint and path; the one registered wallet of that chain whose
seed and account cover the path is chosen, so a request can never reach another client's
wallet by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from coldvault.errors import InputError, Refused
from coldvault.keys.keystore import KeyInfo
from coldvault.requests.base import Chain, PreparedRequest
from coldvault.requests.bitcoin.request import prepare_psbt
from coldvault.requests.ethereum.request import prepare_eth_request
from coldvault.requests.keys import parse_path
from coldvault.requests.solana.request import prepare_sol_request
from coldvault.requests.wallets import Wallet
from coldvault.transport.formats import PSBT_TYPES, Received
from coldvault.transport.registry import EthSignRequest, SolSignRequest, decode_registry
from coldvault.transport.ur import UR

SIGNABLE_TYPES = PSBT_TYPES | {"eth-sign-request", "sol-sign-request"}


class UnsupportedRequest(Refused):
    code = "unsupported-request"

    def __init__(self, ur_type: str) -> None:
        super().__init__(
            f"A {ur_type!r} payload is not a sign request this appliance handles "
            "(it signs crypto-psbt, eth-sign-request and sol-sign-request)."
        )
        self.ur_type = ur_type


class NoWalletForRequest(Refused):
    code = "no-wallet"

    def __init__(self, chain: Chain, fingerprint: str, path: str) -> None:
        super().__init__(
            f"No registered {chain} wallet uses seed {fingerprint} with an account covering "
            f"{path}; the request is not for this appliance's keys."
        )
        self.chain = str(chain)
        self.fingerprint = fingerprint
        self.path = path


class MissingPath(InputError):
    code = "missing-path"


def find_wallet(
    wallets: Mapping[str, Wallet], chain: Chain, fingerprint: bytes, path: tuple[int, ...],
    *, network: str | None = None,
) -> Wallet:
    """The registered wallet of ``chain`` whose seed and account path cover ``path`` (and,
    when given, whose network is ``network``, e.g. the EVM chain id)."""
    fp = fingerprint.hex()
    shown = "m/" + "/".join(
        f"{i & 0x7FFF_FFFF}h" if i & 0x8000_0000 else str(i) for i in path
    )
    for wallet in wallets.values():
        if wallet.chain is not chain or wallet.master_fingerprint.lower() != fp:
            continue
        if network is not None and wallet.network != network:
            continue
        account = parse_path(wallet.account_path)
        if tuple(path[: len(account)]) == account:
            return wallet
    raise NoWalletForRequest(chain, fp, shown)


def _keypath(request: EthSignRequest | SolSignRequest) -> tuple[bytes, tuple[int, ...]]:
    keypath = request.derivation_path
    if keypath.source_fingerprint is None:
        raise MissingPath("The sign request's derivation path has no source fingerprint.")
    try:
        indices = keypath.indices
    except ValueError as exc:
        raise MissingPath("The sign request's derivation path has a wildcard or range.") from exc
    return keypath.source_fingerprint.to_bytes(4, "big"), indices


def prepare_request(
    received: Received,
    *,
    wallets: Mapping[str, Wallet],
    lookup_key: Callable[[bytes], KeyInfo | None],
    request_digest: bytes,
) -> PreparedRequest:
    """Parse and check one assembled request; raises the specific domain error."""
    ur_type = received.ur_type
    if ur_type in PSBT_TYPES:
        return prepare_psbt(
            received.content, wallets=wallets, lookup_key=lookup_key,
            request_digest=request_digest,
        )
    if ur_type not in SIGNABLE_TYPES:
        raise UnsupportedRequest(ur_type)
    value = decode_registry(UR(ur_type, received.cbor))
    if isinstance(value, EthSignRequest):
        fingerprint, path = _keypath(value)
        wallet = find_wallet(
            wallets, Chain.ETHEREUM, fingerprint, path,
            network=None if value.chain_id is None else str(value.chain_id),
        )
        return prepare_eth_request(
            value, wallet=wallet, lookup_key=lookup_key, request_digest=request_digest
        )
    if isinstance(value, SolSignRequest):
        fingerprint, path = _keypath(value)
        wallet = find_wallet(wallets, Chain.SOLANA, fingerprint, path)
        return prepare_sol_request(
            value, wallet=wallet, lookup_key=lookup_key, request_digest=request_digest
        )
    raise UnsupportedRequest(ur_type)

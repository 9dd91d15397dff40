"""Which of our keys a chain request names: the key reference, wallet membership, key lookup.

Shared by the Ethereum and Solana requests; the errors here (a request whose path is not
resolvable, a key that is not ours, an address that is not our key's, a keystore signature
that does not verify) are the same for every account-based chain.

A request's derivation path is resolved exactly once, into a :class:`RequestKey`
(:meth:`RequestKey.from_keypath`), which then selects the wallet (:func:`find_wallet`) and
the HSM key (:func:`resolve_wallet_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from coldvault.crypto.paths import path_to_str, unhardened
from coldvault.errors import InputError, IntegrityError, Refused
from coldvault.keys.keystore import KeyAlgorithm, KeyInfo, derived_key_id
from coldvault.requests.base import Chain
from coldvault.requests.wallets import Wallet
from coldvault.transport.registry import Keypath

MAX_PATH_DEPTH = 10

#: How requests ask the keystore for a key: ``None`` means "not held" and nothing else
#: (:func:`coldvault.keys.keystore.held_key`); any other failure raises.
KeyLookup = Callable[[bytes], KeyInfo | None]


class MissingPath(InputError):
    """A sign request's derivation path has no source fingerprint, or a wildcard or range."""

    code = "missing-path"


class NoWalletForRequest(Refused):
    """No registered wallet of the chain uses the request's seed and account."""

    code = "no-wallet"

    def __init__(
        self, chain: Chain, fingerprint: str, path: str, *, other_network: str = "",
        requested_network: str = "",
    ) -> None:
        if other_network:
            super().__init__(
                f"The registered {chain} wallet with seed {fingerprint} and an account covering "
                f"{path} is for network {other_network}, but the request is for network "
                f"{requested_network}; nothing is signed for another network."
            )
        else:
            super().__init__(
                f"No registered {chain} wallet uses seed {fingerprint} with an account "
                f"covering {path}; the request is not for this appliance's keys."
            )
        self.chain = str(chain)
        self.fingerprint = fingerprint
        self.path = path


class AddressMismatch(Refused):
    """The request names an address that is not the one our key at that path controls."""

    code = "address-mismatch"

    def __init__(self, requested: str, ours: str, path: str) -> None:
        super().__init__(
            f"The request names address {requested}, but our key at {path} controls {ours}."
        )
        self.requested = requested
        self.ours = ours
        self.path = path


class KeyNotOurs(Refused):
    """The request's derivation path is not a key of the selected wallet."""

    code = "key-not-ours"

    def __init__(self, reason: str, *, path: str) -> None:
        super().__init__(reason)
        self.path = path


class ResponseSignatureInvalid(IntegrityError):
    """A signature the response would carry does not verify against the request's key.

    Checked again when the response is built, whichever keystore made the signature (the
    PKCS#11 keystore also checks its own output: ``hsm-signature-invalid``)."""

    code = "response-signature-invalid"


@dataclass(frozen=True)
class RequestKey:
    """The key a request names: a seed's master fingerprint and the full path under it."""

    fingerprint: bytes
    path: tuple[int, ...]

    @classmethod
    def from_keypath(cls, keypath: Keypath) -> RequestKey:
        """Resolve a registry ``crypto-keypath``; a missing source fingerprint, a wildcard or
        a range raises :class:`MissingPath`."""
        if keypath.source_fingerprint is None:
            raise MissingPath("The sign request's derivation path has no source fingerprint.")
        try:
            indices = keypath.indices
        except ValueError as exc:
            raise MissingPath(
                "The sign request's derivation path has a wildcard or range."
            ) from exc
        return cls(keypath.source_fingerprint.to_bytes(4, "big"), indices)

    @property
    def shown(self) -> str:
        """The path as text, e.g. ``"m/44h/60h/0h/0/5"``."""
        return path_to_str(self.path)


def find_wallet(
    wallets: Mapping[str, Wallet], chain: Chain, key: RequestKey, *, network: str | None = None
) -> Wallet:
    """The registered wallet of ``chain`` whose seed and account path cover ``key`` (and,
    when given, whose network is ``network``, e.g. the EVM chain id).

    A request can therefore never reach another client's wallet by accident."""
    fp = key.fingerprint.hex()
    other = ""  # the network of a wallet that covers the key but not the request's network
    for wallet in wallets.values():
        if wallet.chain is not chain or wallet.master_fingerprint.lower() != fp:
            continue
        if key.path[: len(wallet.account)] != wallet.account:
            continue
        if network is None or wallet.network == network:
            return wallet
        other = other or wallet.network
    raise NoWalletForRequest(chain, fp, key.shown, other_network=other,
                             requested_network=network or "")


def resolve_wallet_key(
    *,
    wallet: Wallet,
    path: Sequence[int],
    source_fingerprint: bytes,
    lookup_key: KeyLookup,
    algorithm: KeyAlgorithm,
    error: Callable[..., InputError],
) -> KeyInfo:
    """Check the path belongs to ``wallet`` and return our key for it (or refuse)."""
    if len(source_fingerprint) != 4:
        raise error("The source fingerprint must be 4 bytes.", field="source_fingerprint")
    if not 0 < len(path) <= MAX_PATH_DEPTH or any(not 0 <= i <= 0xFFFF_FFFF for i in path):
        raise error("The derivation path is empty, too long or invalid.", field="path")
    shown = path_to_str(path)
    if source_fingerprint.hex() != wallet.master_fingerprint.lower():
        raise KeyNotOurs(
            f"The request is for seed {source_fingerprint.hex()}, but wallet {wallet.name} "
            f"uses seed {wallet.master_fingerprint}.",
            path=shown,
        )
    account = wallet.account
    tail = tuple(path[len(account) :])
    if tuple(path[: len(account)]) != account or len(tail) > 2:
        raise KeyNotOurs(
            f"Path {shown} is not under wallet {wallet.name}'s account {wallet.account_path}.",
            path=shown,
        )
    if any(unhardened(i) > wallet.max_index for i in tail):
        raise KeyNotOurs(
            f"Path {shown} goes beyond index {wallet.max_index} of wallet {wallet.name}.",
            path=shown,
        )
    info = lookup_key(derived_key_id(source_fingerprint, path))
    if info is None or info.algorithm is not algorithm:
        raise KeyNotOurs(f"The keystore holds no {algorithm} key for {shown}.", path=shown)
    return info

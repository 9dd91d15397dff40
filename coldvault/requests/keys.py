"""Which of our keys a chain request names: account paths, wallet membership, key lookup.

Shared by the Ethereum and Solana requests and the dispatcher; the errors here (a key that
is not ours, an address that is not our key's, a keystore signature that does not verify)
are the same for every account-based chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coldvault.errors import ConfigError, InputError, IntegrityError, Refused
from coldvault.keys.keystore import KeyAlgorithm, KeyInfo, derived_key_id, path_to_str
from coldvault.requests.wallets import Wallet
from coldvault.transport.registry import Keypath

MAX_PATH_DEPTH = 10


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


class SignatureCheckFailed(IntegrityError):
    """A signature from the keystore does not verify against our public key."""

    code = "signature-check"


def parse_path(text: str) -> tuple[int, ...]:
    """``"m/44h/60h/0h"`` -> indices (``h``, ``H`` or ``'`` mark hardened)."""
    parts = text.strip().split("/")
    if not parts or parts[0] not in ("m", "M"):
        raise ConfigError(f"Account path {text!r} must start with 'm/'.")
    out = []
    for part in parts[1:]:
        hardened = part[-1:] in ("h", "H", "'")
        digits = part[:-1] if hardened else part
        if not digits.isdigit() or int(digits) >= 0x8000_0000:
            raise ConfigError(f"Account path {text!r} has an invalid element {part!r}.")
        out.append(int(digits) | (0x8000_0000 if hardened else 0))
    return tuple(out)


def resolve_wallet_key(
    *,
    wallet: Wallet,
    path: Sequence[int],
    source_fingerprint: bytes,
    lookup_key: Callable[[bytes], KeyInfo | None],
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
    account = parse_path(wallet.account_path)
    tail = tuple(path[len(account) :])
    if tuple(path[: len(account)]) != account or len(tail) > 2:
        raise KeyNotOurs(
            f"Path {shown} is not under wallet {wallet.name}'s account {wallet.account_path}.",
            path=shown,
        )
    if any((i & 0x7FFF_FFFF) > wallet.max_index for i in tail):
        raise KeyNotOurs(
            f"Path {shown} goes beyond index {wallet.max_index} of wallet {wallet.name}.",
            path=shown,
        )
    info = lookup_key(derived_key_id(source_fingerprint, path))
    if info is None or info.algorithm is not algorithm:
        raise KeyNotOurs(f"The keystore holds no {algorithm} key for {shown}.", path=shown)
    return info


def request_key_path(
    keypath: Keypath, *, error: Callable[..., InputError]
) -> tuple[bytes, tuple[int, ...]]:
    """``(source fingerprint, indices)`` of a registry request's derivation path; a wildcard,
    range or missing fingerprint raises ``error(..., field="derivation_path")``."""
    try:
        indices = keypath.indices
    except ValueError as exc:
        raise error(
            "The derivation path has a wildcard or range.", field="derivation_path"
        ) from exc
    if keypath.source_fingerprint is None:
        raise error("The derivation path has no source fingerprint.", field="derivation_path")
    return keypath.source_fingerprint.to_bytes(4, "big"), indices

"""Output descriptors (BIP-380/389) for the wallets the ceremonies export.

We only *write* descriptors here: key origins ``[fingerprint/path]xpub``, single-sig
``wpkh(...)`` and multisig ``wsh(sortedmulti(M, ...))`` with the ``<0;1>/*`` multipath
(receive and change in one string) and the BIP-380 checksum (computed by embit).
Cosigner keys given by other parties are validated before use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from embit.descriptor.checksum import add_checksum

from coldvault.crypto.bip32 import Network, check_extended_key
from coldvault.crypto.errors import CryptoInputError
from coldvault.crypto.paths import parse_path, path_to_str

MAX_COSIGNERS = 15  # P2WSH standardness limit for CHECKMULTISIG
MULTIPATH = "<0;1>/*"


class InvalidCosigner(CryptoInputError):
    """A cosigner key expression is malformed, duplicated or for the wrong network."""

    code = "invalid-cosigner"

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"Cosigner {position} is invalid: {message}.")
        self.position = position


@dataclass(frozen=True)
class KeyOrigin:
    """``[fingerprint/path]xpub``: who owns the key and where it sits under their seed."""

    fingerprint: bytes
    path: tuple[int, ...]
    xpub: str

    def __str__(self) -> str:
        return f"[{self.fingerprint.hex()}/{path_to_str(self.path, prefix='')}]{self.xpub}"


_ORIGIN = re.compile(r"^\[([0-9a-fA-F]{8})((?:/\d+[hH']?)*)\]([1-9A-HJ-NP-Za-km-z]{100,120})$")


def parse_key_origin(text: str, position: int = 1) -> KeyOrigin:
    """Parse ``[fp/48h/0h/0h/2h]xpub...`` (optionally followed by ``/<0;1>/*``)."""
    text = text.strip()
    if text.endswith("/" + MULTIPATH):
        text = text[: -len(MULTIPATH) - 1]
    match = _ORIGIN.match(text)
    if match is None:
        raise InvalidCosigner(position, "expected [fingerprint/path]xpub")
    try:
        path = parse_path("m" + match.group(2))
        fields = check_extended_key(match.group(3))
    except CryptoInputError as exc:
        raise InvalidCosigner(position, exc.message.rstrip(".")) from None
    if fields.is_private:
        raise InvalidCosigner(position, "it is a private key; only public keys are accepted")
    if fields.depth != len(path):
        raise InvalidCosigner(position, "the key depth does not match its origin path")
    return KeyOrigin(bytes.fromhex(match.group(1)), path, match.group(3))


def wpkh_descriptor(origin: KeyOrigin) -> str:
    """``wpkh([fp/84h/0h/0h]xpub/<0;1>/*)#checksum``."""
    return str(add_checksum(f"wpkh({origin}/{MULTIPATH})"))


def sortedmulti_descriptor(
    threshold: int, cosigners: Sequence[str | KeyOrigin], network: Network
) -> str:
    """``wsh(sortedmulti(M,[..]xpub/<0;1>/*,...))#checksum`` from cosigner key origins."""
    origins = [
        c if isinstance(c, KeyOrigin) else parse_key_origin(c, i)
        for i, c in enumerate(cosigners, start=1)
    ]
    if not 1 <= len(origins) <= MAX_COSIGNERS:
        raise ValueError(f"a multisig wallet has 1..{MAX_COSIGNERS} cosigners")
    if not 1 <= threshold <= len(origins):
        raise ValueError("threshold must be between 1 and the number of cosigners")
    seen: set[str] = set()
    want_test = network is not Network.MAIN
    for position, origin in enumerate(origins, start=1):
        if origin.xpub in seen:
            raise InvalidCosigner(position, "the same key appears twice")
        seen.add(origin.xpub)
        if (check_extended_key(origin.xpub).network is not Network.MAIN) != want_test:
            raise InvalidCosigner(position, f"the key is not for the {network} network")
    keys = ",".join(f"{o}/{MULTIPATH}" for o in origins)
    return str(add_checksum(f"wsh(sortedmulti({threshold},{keys}))"))


__all__ = [
    "InvalidCosigner",
    "KeyOrigin",
    "parse_key_origin",
    "sortedmulti_descriptor",
    "wpkh_descriptor",
]

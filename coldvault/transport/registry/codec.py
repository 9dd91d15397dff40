"""Decoding and encoding of registry values, dispatched on the UR type string."""


from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Union

from coldvault.transport.fountain import DEFAULT_MAX_MESSAGE_LEN
from coldvault.transport.registry.bitcoin import (
    PSBT,
    Account,
    Address,
    Bytes,
    Output,
    Seed,
    decode_account,
    decode_address,
    decode_bytes,
    decode_output_value,
    decode_psbt,
    decode_seed,
)
from coldvault.transport.registry.cbor import (
    MalformedCbor,
    RegistryError,
    loads_bounded,
)
from coldvault.transport.registry.keys import (
    ECKey,
    HDKey,
    Keypath,
)
from coldvault.transport.registry.keystone import (
    EthSignature,
    EthSignRequest,
    MultiAccounts,
    SolSignature,
    SolSignRequest,
    decode_eth_request,
    decode_eth_signature,
    decode_multi_accounts,
    decode_sol_request,
    decode_sol_signature,
)
from coldvault.transport.ur import UR

__all__ = [
    "DECODERS",
    "RegistryValue",
    "UnsupportedType",
    "decode_registry",
    "encode_account",
    "encode_eth_signature",
    "encode_hdkey",
    "encode_output",
    "encode_psbt",
    "encode_sol_signature",
]


class UnsupportedType(RegistryError):
    """The UR type string has no decoder here."""

    code = "ur-registry-unsupported"

    def __init__(self, ur_type: str) -> None:
        super().__init__(
            f"UR type '{ur_type}' is not supported by this appliance; supported types: "
            f"{', '.join(sorted(DECODERS))}."
        )
        self.ur_type = ur_type


# --------------------------------------------------------------------------- dispatch


RegistryValue = Union[  # noqa: UP007
    Bytes, PSBT, Seed, HDKey, ECKey, Keypath, Address, Output, Account,
    EthSignRequest, EthSignature, SolSignRequest, SolSignature, MultiAccounts,
]


def _decode_keypath(obj: Any, ur: UR) -> Keypath:
    return Keypath.from_cbor_value(obj, ur.type)


def _decode_output(obj: Any, ur: UR) -> Output:
    return decode_output_value(obj, ur.type)


DECODERS: dict[str, Callable[[Any, UR], Any]] = {
    "bytes": decode_bytes,
    "crypto-psbt": decode_psbt,
    "psbt": decode_psbt,
    "crypto-seed": decode_seed,
    "seed": decode_seed,
    "crypto-hdkey": lambda obj, ur: HDKey.from_cbor_value(obj, ur.type, ed25519_ok=True),
    "hdkey": lambda obj, ur: HDKey.from_cbor_value(obj, ur.type, ed25519_ok=True),
    "crypto-eckey": lambda obj, ur: ECKey.from_cbor_value(obj, ur.type),
    "eckey": lambda obj, ur: ECKey.from_cbor_value(obj, ur.type),
    "crypto-keypath": _decode_keypath,
    "keypath": _decode_keypath,
    "crypto-address": decode_address,
    "address": decode_address,
    "crypto-output": _decode_output,
    "crypto-account": decode_account,
    "eth-sign-request": decode_eth_request,
    "eth-signature": decode_eth_signature,
    "sol-sign-request": decode_sol_request,
    "sol-signature": decode_sol_signature,
    "crypto-multi-accounts": decode_multi_accounts,
}


def decode_registry(ur: UR, *, max_len: int = DEFAULT_MAX_MESSAGE_LEN) -> RegistryValue:
    """Decode ``ur`` into its typed value, chosen by ``ur.type`` (never by CBOR tag).

    Raises :class:`UnsupportedType`, :class:`MalformedCbor` or :class:`FieldError`.
    """
    decoder = DECODERS.get(ur.type)
    if decoder is None:
        raise UnsupportedType(ur.type)
    obj = loads_bounded(ur.cbor, ur.type, max_len)
    try:
        return decoder(obj, ur)  # type: ignore[no-any-return]
    except RegistryError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # Defensive: a structure the field checks did not anticipate.
        raise MalformedCbor(ur.type, f"unexpected structure ({type(exc).__name__})") from None


# --------------------------------------------------------------------------- encoders


def encode_psbt(psbt: bytes) -> UR:
    """``crypto-psbt`` UR for a PSBT."""
    return PSBT(bytes(psbt)).to_ur()


def encode_eth_signature(
    signature: bytes,
    request_id: uuid.UUID | None,
    origin: str | None = None,
    audit: tuple[int, bytes] | None = None,
) -> UR:
    if len(signature) < 65:
        raise ValueError("an eth-signature is r || s || v, at least 65 bytes")
    return EthSignature(bytes(signature), request_id, origin, audit).to_ur()


def encode_sol_signature(
    signature: bytes, request_id: uuid.UUID | None, audit: tuple[int, bytes] | None = None
) -> UR:
    if len(signature) != 64:
        raise ValueError("a Solana signature is 64 bytes")
    return SolSignature(bytes(signature), request_id, audit).to_ur()


def encode_output(output: Output) -> UR:
    return output.to_ur()


def encode_account(master_fingerprint: int, outputs: tuple[Output, ...]) -> UR:
    return Account(master_fingerprint, tuple(outputs)).to_ur()


def encode_hdkey(key: HDKey) -> UR:
    return key.to_ur()

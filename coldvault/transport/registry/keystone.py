"""Keystone UR registry values: Ethereum and Solana sign requests and signatures."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import cbor2

from coldvault.transport.registry.cbor import Fields, Tag, cbor_map
from coldvault.transport.registry.keys import HDKey, Keypath
from coldvault.transport.ur import UR

T = TypeVar("T")


class EthDataType(enum.IntEnum):
    """``data-type`` of an ``eth-sign-request``: what ``sign-data`` holds (the one definition)."""

    TRANSACTION = 1  # legacy RLP transaction (signed as EIP-155)
    TYPED_DATA = 2  # EIP-712 typed data, as JSON
    PERSONAL_MESSAGE = 3  # EIP-191 personal_sign
    TYPED_TRANSACTION = 4  # EIP-2718 typed transaction (the appliance signs EIP-1559 only)


class SolSignType(enum.IntEnum):
    """``type`` of a ``sol-sign-request`` (the one definition)."""

    TRANSACTION = 1  # a transaction message, as the signatures cover it
    MESSAGE = 2  # an arbitrary (off-chain) message


def _uuid_cbor(value: uuid.UUID | None) -> Any:
    return None if value is None else cbor2.CBORTag(Tag.UUID, value.bytes)


def _request_id(f: Fields) -> uuid.UUID | None:
    raw = f.tagged(1, Tag.UUID, untagged=True)
    if raw is None:
        return None
    if not isinstance(raw, bytes) or len(raw) != 16:
        raise f.err(1, "expected a 16-byte UUID")
    return uuid.UUID(bytes=raw)


def _path(f: Fields, key: int) -> Keypath:
    return Keypath.from_cbor_value(f.tagged(key, Tag.KEYPATH, True), f.ur_type,
                                   f"{f.what}.derivation-path")


def _keypath_cbor(path: Keypath) -> cbor2.CBORTag:
    return cbor2.CBORTag(Tag.KEYPATH, path.to_cbor_value())


def _enum(f: Fields, key: int, cls: type[T], required: bool = True) -> T | None:
    value = f.uint(key, required, limit=255)
    if value is None:
        return None
    try:
        return cls(value)  # type: ignore[call-arg]
    except ValueError:
        raise f.err(key, f"unknown value {value}") from None


@dataclass(frozen=True)
class EthSignRequest:
    """Keystone ``eth-sign-request``."""

    sign_data: bytes
    data_type: EthDataType
    derivation_path: Keypath
    chain_id: int | None = None
    request_id: uuid.UUID | None = None
    address: bytes | None = None
    origin: str | None = None

    def to_ur(self) -> UR:
        value = cbor_map(
            (1, _uuid_cbor(self.request_id)), (2, self.sign_data), (3, int(self.data_type)),
            (4, self.chain_id), (5, _keypath_cbor(self.derivation_path)), (6, self.address),
            (7, self.origin),
        )
        return UR("eth-sign-request", cbor2.dumps(value))


def decode_eth_request(obj: Any, ur: UR) -> EthSignRequest:
    f = Fields(obj, ur.type, "eth-sign-request", {
        1: "request-id", 2: "sign-data", 3: "data-type", 4: "chain-id",
        5: "derivation-path", 6: "address", 7: "origin"})
    sign_data = f.get(2, lambda v: isinstance(v, bytes) and len(v) > 0, "non-empty bytes", True)
    data_type = _enum(f, 3, EthDataType)
    chain_id = f.get(4, lambda v: type(v) is int and 0 < v < 2**63, "a positive chain id", False)
    return EthSignRequest(
        sign_data, data_type, _path(f, 5), chain_id, _request_id(f),  # type: ignore[arg-type]
        f.bytes_(6, False, (20,)), f.text(7),
    )


#: coldvault's extension key in ``eth-signature`` and ``sol-signature`` maps: the audit
#: trail's head the response follows, ``[sequence number, 32-byte entry hash]``
#: (docs/audit.md). Keystone's keys are 1..3; readers that do not know 100 skip it.
AUDIT_KEY = 100


def _audit_cbor(audit: tuple[int, bytes] | None) -> list[Any] | None:
    return None if audit is None else [audit[0], audit[1]]


def _is_audit(v: Any) -> bool:
    return (
        isinstance(v, list) and len(v) == 2 and type(v[0]) is int and 0 <= v[0] < 2**63
        and isinstance(v[1], bytes) and len(v[1]) == 32
    )


def _audit(f: Fields) -> tuple[int, bytes] | None:
    value = f.get(AUDIT_KEY, _is_audit, "[sequence number, 32-byte hash]", False)
    return None if value is None else (value[0], value[1])


@dataclass(frozen=True)
class EthSignature:
    """Keystone ``eth-signature``: r || s || v (65 bytes; v may be longer for EIP-155);
    ``audit``: the appliance's audit head (:data:`AUDIT_KEY`)."""

    signature: bytes
    request_id: uuid.UUID | None = None
    origin: str | None = None
    audit: tuple[int, bytes] | None = None

    def to_ur(self) -> UR:
        value = cbor_map((1, _uuid_cbor(self.request_id)), (2, self.signature), (3, self.origin),
                         (AUDIT_KEY, _audit_cbor(self.audit)))
        return UR("eth-signature", cbor2.dumps(value))


def decode_eth_signature(obj: Any, ur: UR) -> EthSignature:
    f = Fields(obj, ur.type, "eth-signature",
               {1: "request-id", 2: "signature", 3: "origin", AUDIT_KEY: "audit"})
    sig = f.get(2, lambda v: isinstance(v, bytes) and 65 <= len(v) <= 72, "65..72 bytes", True)
    return EthSignature(sig, _request_id(f), f.text(3), _audit(f))


@dataclass(frozen=True)
class SolSignRequest:
    """Keystone ``sol-sign-request``."""

    sign_data: bytes
    derivation_path: Keypath
    sign_type: SolSignType = SolSignType.TRANSACTION
    request_id: uuid.UUID | None = None
    address: bytes | None = None
    origin: str | None = None

    def to_ur(self) -> UR:
        value = cbor_map(
            (1, _uuid_cbor(self.request_id)), (2, self.sign_data),
            (3, _keypath_cbor(self.derivation_path)), (4, self.address), (5, self.origin),
            (6, int(self.sign_type)),
        )
        return UR("sol-sign-request", cbor2.dumps(value))


def decode_sol_request(obj: Any, ur: UR) -> SolSignRequest:
    f = Fields(obj, ur.type, "sol-sign-request", {
        1: "request-id", 2: "sign-data", 3: "derivation-path", 4: "address", 5: "origin",
        6: "type"})
    sign_data = f.get(2, lambda v: isinstance(v, bytes) and len(v) > 0, "non-empty bytes", True)
    return SolSignRequest(
        sign_data, _path(f, 3), _enum(f, 6, SolSignType),  # type: ignore[arg-type]
        _request_id(f), f.bytes_(4, False, (32,)), f.text(5),
    )


@dataclass(frozen=True)
class SolSignature:
    """Keystone ``sol-signature``: a 64-byte Ed25519 signature."""

    signature: bytes
    request_id: uuid.UUID | None = None
    audit: tuple[int, bytes] | None = None

    def to_ur(self) -> UR:
        value = cbor_map((1, _uuid_cbor(self.request_id)), (2, self.signature),
                         (AUDIT_KEY, _audit_cbor(self.audit)))
        return UR("sol-signature", cbor2.dumps(value))


def decode_sol_signature(obj: Any, ur: UR) -> SolSignature:
    f = Fields(obj, ur.type, "sol-signature", {1: "request-id", 2: "signature", AUDIT_KEY: "audit"})
    return SolSignature(f.bytes_(2, True, (64,)), _request_id(f), _audit(f))


@dataclass(frozen=True)
class MultiAccounts:
    """Keystone ``crypto-multi-accounts``: one seed's account keys for Ethereum and Solana
    coordinators ({1: master fingerprint, 2: [#6.303(crypto-hdkey)], 3: device,
    4: device id, 5: device version}).  Solana keys are bare 32-byte Ed25519 public keys
    (:attr:`HDKey.ed25519`), as Keystone writes and its wallets read them."""

    master_fingerprint: int
    keys: tuple[HDKey, ...]
    device: str | None = None
    device_id: str | None = None
    version: str | None = None

    def to_ur(self) -> UR:
        keys = [cbor2.CBORTag(Tag.HDKEY, k.to_cbor_value(v2=False)) for k in self.keys]
        value = cbor_map((1, self.master_fingerprint), (2, keys), (3, self.device),
                         (4, self.device_id), (5, self.version))
        return UR("crypto-multi-accounts", cbor2.dumps(value))


#: Most keys one ``crypto-multi-accounts`` may list.
MAX_MULTI_ACCOUNT_KEYS = 1000
_HDKEY_TAGS = (Tag.HDKEY, Tag.HDKEY + Tag.V2_OFFSET)


def decode_multi_accounts(obj: Any, ur: UR) -> MultiAccounts:
    f = Fields(obj, ur.type, "crypto-multi-accounts", {
        1: "master-fingerprint", 2: "keys", 3: "device", 4: "device-id", 5: "version"})
    fingerprint = f.uint(1, True, limit=0xFFFFFFFF)
    items = f.get(2, lambda v: isinstance(v, list) and 0 < len(v) <= MAX_MULTI_ACCOUNT_KEYS,
                  f"a list of 1..{MAX_MULTI_ACCOUNT_KEYS} keys", True)
    keys = []
    for i, item in enumerate(items):
        what = f"crypto-multi-accounts.keys[{i}]"
        if not (isinstance(item, cbor2.CBORTag) and item.tag in _HDKEY_TAGS):
            raise f.err(2, f"key {i} is not a tagged crypto-hdkey")
        keys.append(HDKey.from_cbor_value(item.value, ur.type, what, ed25519_ok=True))
    return MultiAccounts(fingerprint, tuple(keys), f.text(3), f.text(4), f.text(5))  # type: ignore[arg-type]

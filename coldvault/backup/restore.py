"""What a rebuilt seed must match, and disaster recovery into a fresh HSM token.

A drill compares the seed it rebuilt with what the appliance has registered:

* the **provisioning record** (``provisioning.json`` written by the provisioning ceremony:
  per account the master fingerprint, xpub and first addresses, and every pool key's path,
  ``CKA_ID`` and public key) -- :func:`expectations_from_provisioning`;
* the **wallet registry** (``[[wallet]]`` entries: master fingerprint, account path, and
  for Bitcoin the descriptor with our ``[fp/path]xpub``) -- :func:`expectations_from_wallets`.

:func:`compare_wallets` re-derives fingerprints, xpubs and ETH/SOL/BTC addresses and says
which match.  :func:`restore_into` imports the key pool into a *fresh* token (the keystore
seam; in the lab a new SoftHSM token) and signs a test digest with one key per account; each
signature is verified on the host against the **production** public key from the
provisioning record.  No funds move and nothing secret is returned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import coincurve
import nacl.exceptions
import nacl.signing
from bip_utils import Base58Decoder, Base58Encoder

from coldvault.backup.errors import ProvisioningRecordInvalid, RecoveredSeedMismatch
from coldvault.crypto.bip32 import HDKey, Network
from coldvault.crypto.descriptors import parse_key_origin
from coldvault.crypto.paths import parse_path, path_to_str
from coldvault.errors import Refused
from coldvault.jsonsafe import JsonRejected, loads
from coldvault.keys.keystore import KeyAlgorithm, Keystore
from coldvault.keys.pool import AccountSpec, Template, derive_pool, provision

MAX_PROVISIONING_BYTES = 64 * 1024 * 1024
MAX_ACCOUNTS = 64
_FP = re.compile(r"^[0-9a-f]{8}$")
_TEMPLATES = {t.value for t in Template}
_ORIGIN = re.compile(r"\[[0-9a-fA-F]{8}(?:/\d+[hH']?)*\][1-9A-HJ-NP-Za-km-z]{100,120}")


class FreshTokenNotEmpty(Refused):
    """Disaster recovery must go into an empty token."""

    code = "backup-restore-token-not-empty"

    def __init__(self, label: str, keys: int) -> None:
        super().__init__(
            f"The recovery token {label!r} already holds {keys} key(s); restore into a fresh, "
            "empty token so the result proves the backup alone."
        )
        self.label = label
        self.keys = keys


@dataclass(frozen=True)
class AccountExpectation:
    """One registered account: what its re-derivation must give."""

    name: str
    template: str
    network: str
    account: int
    client: str
    master_fingerprint: str
    account_path: str
    xpub: str | None = None
    first_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExpectedKey:
    """A production pool key (public): a restored key must verify against it."""

    wallet: str
    path: str
    key_id: bytes
    algorithm: KeyAlgorithm
    public_key: bytes


@dataclass(frozen=True)
class Expectations:
    master_fingerprint: str
    accounts: tuple[AccountExpectation, ...]
    pool_size: int = 0
    keys: tuple[ExpectedKey, ...] = ()


@dataclass(frozen=True)
class WalletCheck:
    """One account compared; ``None`` where the registered data has nothing to compare."""

    name: str
    fingerprint_ok: bool
    xpub_ok: bool | None
    addresses_ok: bool | None

    @property
    def ok(self) -> bool:
        return self.fingerprint_ok and self.xpub_ok is not False and self.addresses_ok is not False

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "ok": self.ok,
            "fingerprint_ok": self.fingerprint_ok,
            "xpub_ok": self.xpub_ok,
            "addresses_ok": self.addresses_ok,
        }


@dataclass(frozen=True)
class TestSignature:
    wallet: str
    key_label: str
    algorithm: str
    digest: str
    verified: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "wallet": self.wallet,
            "key": self.key_label,
            "algorithm": self.algorithm,
            "digest": self.digest,
            "verified_against_production_key": self.verified,
        }


@dataclass(frozen=True)
class RestoreResult:
    token_label: str
    token_serial: str
    keys_imported: int
    signatures: tuple[TestSignature, ...]
    keys_kept: bool

    @property
    def ok(self) -> bool:
        return bool(self.signatures) and all(s.verified for s in self.signatures)

    def to_dict(self) -> dict[str, object]:
        return {
            "token": self.token_label,
            "token_serial": self.token_serial,
            "keys_imported": self.keys_imported,
            "keys_kept": self.keys_kept,
            "ok": self.ok,
            "signatures": [s.to_dict() for s in self.signatures],
        }


# -- reading what is registered ---------------------------------------------------------------
def _field(obj: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProvisioningRecordInvalid(f"{where}{key}", "is missing or has the wrong type")
    return value


def expectations_from_provisioning(data: bytes) -> Expectations:
    """Parse ``provisioning.json`` (public) strictly; raise :class:`ProvisioningRecordInvalid`."""
    if len(data) > MAX_PROVISIONING_BYTES:
        raise ProvisioningRecordInvalid("document", "is too large")
    try:
        doc = loads(data, max_depth=8)
    except JsonRejected as exc:
        raise ProvisioningRecordInvalid("document", str(exc)) from None
    if not isinstance(doc, dict):
        raise ProvisioningRecordInvalid("document", "must be an object")
    fingerprint = _field(doc, "master_fingerprint", str, "")
    if not _FP.match(fingerprint):
        raise ProvisioningRecordInvalid("master_fingerprint", "must be 8 lower-case hex digits")
    raw_accounts = _field(doc, "accounts", list, "")
    if not 0 < len(raw_accounts) <= MAX_ACCOUNTS:
        raise ProvisioningRecordInvalid("accounts", f"must list 1..{MAX_ACCOUNTS} accounts")
    accounts = []
    for i, raw in enumerate(raw_accounts):
        where = f"accounts[{i}]."
        if not isinstance(raw, dict):
            raise ProvisioningRecordInvalid(f"accounts[{i}]", "must be an object")
        template = _field(raw, "template", str, where)
        if template not in {t.value for t in Template}:
            raise ProvisioningRecordInvalid(f"{where}template", f"{template!r} is unknown")
        addresses = _field(raw, "first_addresses", list, where)
        xpub = raw.get("xpub")
        if xpub is not None and not isinstance(xpub, str):
            raise ProvisioningRecordInvalid(f"{where}xpub", "must be a string or null")
        accounts.append(
            AccountExpectation(
                name=_field(raw, "name", str, where),
                template=template,
                network=_field(raw, "network", str, where),
                account=_field(raw, "account", int, where),
                client=_field(raw, "client", str, where),
                master_fingerprint=_field(raw, "master_fingerprint", str, where),
                account_path=_field(raw, "account_path", str, where),
                xpub=xpub,
                first_addresses=tuple(str(a) for a in addresses),
            )
        )
    keys = []
    for i, raw in enumerate(_field(doc, "keys", list, "")):
        where = f"keys[{i}]."
        if not isinstance(raw, dict):
            raise ProvisioningRecordInvalid(f"keys[{i}]", "must be an object")
        try:
            keys.append(
                ExpectedKey(
                    wallet=_field(raw, "wallet", str, where),
                    path=_field(raw, "path", str, where),
                    key_id=bytes.fromhex(_field(raw, "key_id", str, where)),
                    algorithm=KeyAlgorithm(_field(raw, "algorithm", str, where)),
                    public_key=bytes.fromhex(_field(raw, "public_key", str, where)),
                )
            )
        except ValueError:
            raise ProvisioningRecordInvalid(f"keys[{i}]", "has a malformed value") from None
    return Expectations(
        master_fingerprint=fingerprint,
        accounts=tuple(accounts),
        pool_size=_field(doc, "pool_size", int, ""),
        keys=tuple(keys),
    )


class RegisteredWallet(Protocol):
    """The parts of a wallet-registry entry a drill compares (``requests.wallets.Wallet``)."""

    @property
    def name(self) -> str: ...

    @property
    def template(self) -> str: ...

    @property
    def network(self) -> str: ...

    @property
    def client(self) -> str: ...

    @property
    def master_fingerprint(self) -> str: ...

    @property
    def account_path(self) -> str: ...

    @property
    def descriptor(self) -> str | None: ...


def expectations_from_wallets(
    wallets: Mapping[str, RegisteredWallet] | Sequence[RegisteredWallet], master_fingerprint: str
) -> Expectations:
    """The registry's wallets of the seed with ``master_fingerprint`` (others are skipped).

    A Bitcoin descriptor's ``[fp/path]xpub`` with our fingerprint and the wallet's account
    path is the xpub to compare; other chains compare the fingerprint only."""
    items = list(wallets.values()) if isinstance(wallets, Mapping) else list(wallets)
    accounts = []
    for wallet in items:
        if wallet.master_fingerprint.lower() != master_fingerprint:
            continue
        xpub = None
        for text in _ORIGIN.findall(wallet.descriptor or ""):
            origin = parse_key_origin(text)
            if origin.fingerprint.hex() == master_fingerprint and (
                path_to_str(origin.path) == path_to_str(parse_path(wallet.account_path))
            ):
                xpub = origin.xpub
        accounts.append(
            AccountExpectation(
                name=wallet.name,
                template=wallet.template,
                network=wallet.network,
                account=-1,
                client=wallet.client,
                master_fingerprint=wallet.master_fingerprint.lower(),
                account_path=wallet.account_path,
                xpub=xpub,
            )
        )
    return Expectations(master_fingerprint=master_fingerprint, accounts=tuple(accounts))


# -- comparing --------------------------------------------------------------------------------
def _xpub_at(master: HDKey, path: str, network: str) -> str:
    node = master.derive(parse_path(path))
    try:
        net = Network(network)
    except ValueError:
        net = Network.MAIN
    raw = node.xpub()
    if net is Network.MAIN:
        return raw
    body = Base58Decoder.CheckDecode(raw)
    return str(Base58Encoder.CheckEncode(net.versions[0] + body[4:]))


def compare_wallets(seed: bytes | bytearray, expected: Expectations) -> tuple[WalletCheck, ...]:
    """Re-derive every expected account from ``seed`` and compare (public results only)."""
    master = HDKey.from_seed(seed)
    fingerprint = master.fingerprint.hex()
    checks = []
    for account in expected.accounts:
        fp_ok = fingerprint == account.master_fingerprint == expected.master_fingerprint
        xpub_ok: bool | None = None
        addresses_ok: bool | None = None
        template = Template(account.template) if account.template in _TEMPLATES else None
        if account.xpub is not None and template is not Template.SOL:
            xpub_ok = _xpub_at(master, account.account_path, account.network) == account.xpub
        if account.first_addresses and template is not None and account.account >= 0:
            spec = AccountSpec(
                template,
                account=account.account,
                network=account.network,
                client=account.client,
                name=account.name,
            )
            count = len(account.first_addresses)
            exports, _ = derive_pool(seed, [spec], max(count, 1))
            derived = exports[0].first_addresses[:count]
            addresses_ok = derived == account.first_addresses
        checks.append(WalletCheck(account.name, fp_ok, xpub_ok, addresses_ok))
    return tuple(checks)


# -- disaster recovery ------------------------------------------------------------------------
def _specs(expected: Expectations) -> list[AccountSpec]:
    return [
        AccountSpec(
            Template(a.template),
            account=a.account,
            network=a.network,
            client=a.client,
            name=a.name,
        )
        for a in expected.accounts
    ]


def _verify(key: ExpectedKey, message: bytes, signature: bytes) -> bool:
    if key.algorithm is KeyAlgorithm.ED25519:
        try:
            nacl.signing.VerifyKey(key.public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return False
        return True
    try:
        return bool(coincurve.PublicKey(key.public_key).verify(signature, message, hasher=None))
    except ValueError:
        return False


def restore_into(
    keystore: Keystore,
    seed: bytes | bytearray,
    expected: Expectations,
    *,
    challenge: bytes,
    keep_keys: bool = False,
) -> RestoreResult:
    """Provision the key pool into ``keystore`` (a fresh, empty token) and prove it: one
    test signature per account over ``SHA-256("coldvault/drill/v1" || challenge)``, made by
    the token and verified against the production public key.  Unless ``keep_keys``, the
    imported keys are deleted again (a drill); keep them for real disaster recovery."""
    if not expected.keys or expected.pool_size < 1:
        raise ValueError("restoring needs the provisioning record (pool size and keys)")
    info: Any = keystore.token_info
    label, serial = str(getattr(info, "label", "")), str(getattr(info, "serial", ""))
    found = HDKey.from_seed(seed).fingerprint.hex()
    if found != expected.master_fingerprint:
        raise RecoveredSeedMismatch(expected.master_fingerprint, found)
    present = keystore.list_keys()
    if present:
        raise FreshTokenNotEmpty(label, len(present))
    digest = hashlib.sha256(b"coldvault/drill/v1" + challenge).digest()
    try:
        record = provision(keystore, seed, _specs(expected), expected.pool_size)
    except BaseException:
        if not keep_keys:  # the token was empty: whatever is on it now came from here
            for partial in keystore.list_keys():
                keystore.delete_key(partial.key_id)
        raise
    try:
        signatures = []
        for account in expected.accounts:
            key = next((k for k in expected.keys if k.wallet == account.name), None)
            if key is None:
                continue
            if key.algorithm is KeyAlgorithm.ED25519:
                signature = keystore.sign_ed25519(key.key_id, digest).raw
            else:
                signature = keystore.sign_ecdsa(key.key_id, digest).der
            signatures.append(
                TestSignature(
                    wallet=account.name,
                    key_label=f"{expected.master_fingerprint}/{key.path.removeprefix('m/')}",
                    algorithm=key.algorithm.value,
                    digest=digest.hex(),
                    verified=_verify(key, digest, signature),
                )
            )
    finally:
        if not keep_keys:
            for pool_key in record.keys:
                keystore.delete_key(pool_key.key_id)
    return RestoreResult(label, serial, record.imported, tuple(signatures), keep_keys)


__all__ = [
    "AccountExpectation",
    "ExpectedKey",
    "Expectations",
    "FreshTokenNotEmpty",
    "RegisteredWallet",
    "RestoreResult",
    "TestSignature",
    "WalletCheck",
    "compare_wallets",
    "expectations_from_provisioning",
    "expectations_from_wallets",
    "restore_into",
]

"""Key pools: derive per-path signing keys from a seed and import them into the HSM.

Wallet templates (``account`` = the account number ``a``, ``c`` = coin type):

=======================  ===================================  ==========  =============
template                 key paths                            algorithm   branches
=======================  ===================================  ==========  =============
``bip84``                m/84h/ch/ah/{0,1}/i (c = 0 main,     secp256k1   receive, change
                         1 test/regtest)
``bip48-wsh-sortedmulti`` m/48h/ch/ah/2h/{0,1}/i               secp256k1   receive, change
``bip44-eth``            m/44h/60h/ah/0/i                     secp256k1   receive
``sol``                  m/44h/501h/ih/0h (SLIP-10 ed25519)   ed25519     one key per i
=======================  ===================================  ==========  =============

``i`` runs over ``start .. pool_size - 1``.  Every key is imported into the HSM as a
sensitive, non-extractable object with ``CKA_ID``/``CKA_LABEL`` from
:func:`coldvault.keys.keystore.derived_key_id` / :func:`~coldvault.keys.keystore.derived_key_label`;
each private scalar is a ``bytearray`` wiped right after its import.  Everything this
module returns is public (paths, public keys, fingerprints, xpubs, descriptors).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import tomli_w
from bip_utils import Base58Decoder, Base58Encoder, EthAddrEncoder, SolAddrEncoder
from embit import ec as embit_ec
from embit import script as embit_script
from embit.networks import NETWORKS

from coldvault.crypto import slip10
from coldvault.crypto.bip32 import HDKey, Network
from coldvault.crypto.descriptors import KeyOrigin, wpkh_descriptor
from coldvault.crypto.memory import wipe
from coldvault.crypto.paths import HARDENED, path_to_str
from coldvault.errors import ColdvaultError, IntegrityError
from coldvault.keys.keystore import (
    KeyAdmin,
    KeyAlgorithm,
    KeyInfo,
    KeyNotFound,
    derived_key_id,
    derived_key_label,
)
from coldvault.transport import registry as ur_registry
from coldvault.transport.registry import bitcoin as ur_bitcoin
from coldvault.transport.registry import cbor as ur_cbor
from coldvault.transport.registry import keys as ur_keys
from coldvault.transport.registry import keystone as ur_keystone
from coldvault.transport.ur import encode_single

H = HARDENED
MAX_POOL_SIZE = 10_000
PREVIEW_ADDRESSES = 3
#: the largest EIP-155 chain id whose ``v`` still fits 64 bits
MAX_CHAIN_ID = (2**64 - 1) // 2 - 36
#: Solana clusters an account may be provisioned for
SOL_CLUSTERS = ("mainnet-beta", "devnet", "testnet")


class Template(enum.StrEnum):
    BIP84 = "bip84"
    BIP48_WSH = "bip48-wsh-sortedmulti"
    ETH = "bip44-eth"
    SOL = "sol"

    @property
    def chain(self) -> str:
        return {"bip44-eth": "ethereum", "sol": "solana"}.get(self.value, "bitcoin")

    @property
    def algorithm(self) -> KeyAlgorithm:
        return KeyAlgorithm.ED25519 if self is Template.SOL else KeyAlgorithm.SECP256K1

    @property
    def default_network(self) -> str:
        return {"bip44-eth": "1", "sol": "mainnet-beta"}.get(self.value, "main")


class PoolMismatch(IntegrityError):
    """A key already in the HSM, or just imported, has a public key other than derived."""

    code = "pool-mismatch"

    def __init__(self, label: str) -> None:
        super().__init__(
            f"The HSM key {label} does not match the seed derivation; stop the ceremony "
            "and check that the right seed and token are in use."
        )
        self.label = label


@dataclass(frozen=True)
class AccountSpec:
    """One account to provision. ``network``: main/test/regtest, an EVM chain id, a cluster."""

    template: Template
    account: int = 0
    network: str = ""
    client: str = "house"
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "template", Template(self.template))
        if not self.network:
            object.__setattr__(self, "network", self.template.default_network)
        if self.template.chain == "bitcoin":
            Network(self.network)  # ValueError for a bad network name (config mistake)
        elif self.template is Template.ETH and not (
            self.network.isdecimal() and 0 < int(self.network) <= MAX_CHAIN_ID
            and str(int(self.network)) == self.network
        ):
            raise ValueError(f"an Ethereum network is a chain id, not {self.network!r}")
        elif self.template is Template.SOL and self.network not in SOL_CLUSTERS:
            raise ValueError(f"a Solana network is one of {', '.join(SOL_CLUSTERS)}")
        if not 0 <= self.account < H:
            raise ValueError("account number out of range")
        if not self.name:
            object.__setattr__(
                self, "name", f"{self.client}-{self.template}-{self.network}-{self.account}"
            )

    @property
    def btc_network(self) -> Network:
        return Network(self.network)

    @property
    def account_path(self) -> tuple[int, ...]:
        a = self.account | H
        match self.template:
            case Template.BIP84:
                return (84 | H, self.btc_network.coin_type | H, a)
            case Template.BIP48_WSH:
                return (48 | H, self.btc_network.coin_type | H, a, 2 | H)
            case Template.ETH:
                return (44 | H, 60 | H, a)
            case Template.SOL:
                return (44 | H, 501 | H)
        raise AssertionError(self.template)

    def key_paths(self, pool_size: int, start: int = 0) -> list[tuple[int, ...]]:
        """Every key path of the pool (receive then change where a change branch exists)."""
        if not 0 <= start <= pool_size <= MAX_POOL_SIZE:
            raise ValueError(f"pool size must be 0..{MAX_POOL_SIZE} and start <= size")
        base = self.account_path
        if self.template is Template.SOL:
            return [base + (i | H, 0 | H) for i in range(start, pool_size)]
        branches = (0,) if self.template is Template.ETH else (0, 1)
        return [base + (b, i) for b in branches for i in range(start, pool_size)]


@dataclass(frozen=True)
class PoolKey:
    """Public description of one pool key (what the HSM should hold)."""

    path: tuple[int, ...]
    key_id: bytes
    label: str
    algorithm: KeyAlgorithm
    #: 33-byte compressed SEC1 (secp256k1) or 32 bytes (Ed25519), as KeyInfo has it
    public_key: bytes
    #: master fingerprint of the seed
    fingerprint: bytes
    wallet: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "path": path_to_str(self.path),
            "key_id": self.key_id.hex(),
            "label": self.label,
            "algorithm": str(self.algorithm),
            "public_key": self.public_key.hex(),
            "master_fingerprint": self.fingerprint.hex(),
            "wallet": self.wallet,
        }


@dataclass(frozen=True)
class AccountExport:
    """Public export of one account: xpub with origin, descriptor, first addresses."""

    spec: AccountSpec
    master_fingerprint: bytes
    pool_size: int
    #: ``[fp/path]xpub`` for the BIP-32 templates, None for Solana
    key_origin: KeyOrigin | None
    #: ``wpkh(...)`` for bip84; None otherwise (multisig needs the other cosigners)
    descriptor: str | None
    first_addresses: tuple[str, ...] = ()
    #: the derivation path of each of ``first_addresses``
    address_paths: tuple[str, ...] = ()
    #: the public keys of the first receive keys (Solana's multi-account export lists them)
    preview_keys: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def account_path(self) -> str:
        return path_to_str(self.spec.account_path)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.spec.name,
            "client": self.spec.client,
            "chain": self.spec.template.chain,
            "network": self.spec.network,
            "template": str(self.spec.template),
            "account": self.spec.account,
            "master_fingerprint": self.master_fingerprint.hex(),
            "account_path": self.account_path,
            "xpub": self.key_origin.xpub if self.key_origin else None,
            "key_origin": str(self.key_origin) if self.key_origin else None,
            "descriptor": self.descriptor,
            "first_addresses": list(self.first_addresses),
            "addresses": [
                {"address": a, "path": p}
                for a, p in zip(self.first_addresses, self.address_paths, strict=True)
            ],
            "pool_size": self.pool_size,
        }

    def wallet_entry(self, descriptor: str | None = None) -> dict[str, object]:
        """A ``[[wallet]]`` table for the registry (see :mod:`coldvault.requests.wallets`).

        ``descriptor`` overrides the account's own (a multisig account passes the
        ``wsh(sortedmulti(...))`` built from every cosigner).
        """
        entry: dict[str, object] = {
            "name": self.spec.name,
            "client": self.spec.client,
            "chain": self.spec.template.chain,
            "network": self.spec.network,
            "template": str(self.spec.template),
            "master_fingerprint": self.master_fingerprint.hex(),
            "account_path": self.account_path,
            "max_index": self.pool_size - 1,
        }
        if descriptor or self.descriptor:
            entry["descriptor"] = descriptor or self.descriptor
        return entry

    def cosigner(self) -> dict[str, str]:
        """Cosigner export for a multisig coordinator (bip48 template)."""
        if self.spec.template is not Template.BIP48_WSH or self.key_origin is None:
            raise ValueError("cosigner exports exist for the bip48 template only")
        return {
            "xfp": self.master_fingerprint.hex(),
            "path": self.account_path,
            "xpub": self.key_origin.xpub,
            "key": f"{self.key_origin}",
            "script_type": "p2wsh",
        }


@dataclass(frozen=True)
class ProvisioningRecord:
    """Public result of a provisioning (or pool-extension) run."""

    master_fingerprint: bytes
    pool_size: int
    accounts: tuple[AccountExport, ...]
    keys: tuple[PoolKey, ...]
    imported: int = 0
    already_present: int = 0
    token: str = field(default="")

    def to_dict(self) -> dict[str, object]:
        return {
            "master_fingerprint": self.master_fingerprint.hex(),
            "pool_size": self.pool_size,
            "token": self.token,
            "imported": self.imported,
            "already_present": self.already_present,
            "accounts": [a.to_dict() for a in self.accounts],
            "keys": [k.to_dict() for k in self.keys],
        }

    def wallet_registry_toml(self) -> str:
        return wallet_registry_toml(self.accounts)


def wallet_registry_toml(accounts: Sequence[AccountExport]) -> str:
    """TOML text with one ``[[wallet]]`` per account, loadable by ``load_wallets``."""
    return str(tomli_w.dumps({"wallet": [a.wallet_entry() for a in accounts]}))


# -- derivation -----------------------------------------------------------------------------
def _preview(spec: AccountSpec, keys: Sequence[PoolKey]) -> list[PoolKey]:
    """The first receive keys, whose addresses the exports show."""
    receive = [k for k in keys if spec.template is Template.SOL or k.path[-2] == 0]
    return receive[:PREVIEW_ADDRESSES]


def _addresses(spec: AccountSpec, keys: Sequence[PoolKey]) -> list[str]:
    receive = _preview(spec, keys)
    match spec.template:
        case Template.BIP84:
            net = NETWORKS[spec.network]
            return [
                embit_script.p2wpkh(embit_ec.PublicKey.parse(k.public_key)).address(net)
                for k in receive
            ]
        case Template.ETH:
            return [str(EthAddrEncoder.EncodeKey(k.public_key)) for k in receive]
        case Template.SOL:
            return [str(SolAddrEncoder.EncodeKey(k.public_key)) for k in receive]
    return []


def _account_node(master: HDKey, spec: AccountSpec) -> HDKey | None:
    return None if spec.template is Template.SOL else master.derive(spec.account_path)


def _each_key(
    seed: bytes | bytearray, spec: AccountSpec, pool_size: int, start: int, account: HDKey | None
) -> Iterator[tuple[tuple[int, ...], bytearray, bytes]]:
    """Yield (path, private scalar, public key) one at a time; the caller wipes the scalar."""
    if account is None:
        for path in spec.key_paths(pool_size, start):
            key = slip10.derive(slip10.Curve.ED25519, seed, path)
            yield path, key.private_key, key.raw_public_key
        return
    branches: dict[int, HDKey] = {}
    for path in spec.key_paths(pool_size, start):
        branch = branches.setdefault(path[-2], account.derive([path[-2]]))
        child = branch.derive([path[-1]])
        yield path, child.private_key(), child.public_key


def _serialise_xpub(account: HDKey, network: Network) -> str:
    """The public node with the version bytes of ``network`` (xpub or tpub; no SLIP-132)."""
    raw = Base58Decoder.CheckDecode(account.xpub())
    return str(Base58Encoder.CheckEncode(network.versions[0] + raw[4:]))


def _export(
    spec: AccountSpec, fp: bytes, account: HDKey | None, keys: list[PoolKey], pool_size: int
) -> AccountExport:
    origin = descriptor = None
    if account is not None:
        net = spec.btc_network if spec.template.chain == "bitcoin" else Network.MAIN
        origin = KeyOrigin(fp, spec.account_path, _serialise_xpub(account, net))
        if spec.template is Template.BIP84:
            descriptor = wpkh_descriptor(origin)
    addresses = tuple(_addresses(spec, keys))
    return AccountExport(
        spec=spec,
        master_fingerprint=fp,
        pool_size=pool_size,
        key_origin=origin,
        descriptor=descriptor,
        first_addresses=addresses,
        address_paths=tuple(path_to_str(k.path) for k in _preview(spec, keys))[: len(addresses)],
        preview_keys=tuple(k.public_key for k in _preview(spec, keys)),
    )


def derive_pool(
    seed: bytes | bytearray,
    specs: Sequence[AccountSpec],
    pool_size: int,
    *,
    start: int = 0,
    on_key: Callable[[PoolKey, bytearray], None] | None = None,
) -> tuple[list[AccountExport], list[PoolKey]]:
    """Derive every account's export and pool keys (public).

    ``on_key(pool_key, private_scalar)`` is called for each key while its scalar exists
    (used by :func:`provision` to import it); the scalar is wiped right after the call.
    """
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError("account names must be unique")
    master = HDKey.from_seed(seed)
    fp = master.fingerprint
    exports: list[AccountExport] = []
    keys: list[PoolKey] = []
    for spec in specs:
        account = _account_node(master, spec)
        account_keys: list[PoolKey] = []
        for path, scalar, public in _each_key(seed, spec, pool_size, start, account):
            try:
                key = PoolKey(
                    path=path,
                    key_id=derived_key_id(fp, path),
                    label=derived_key_label(fp, path),
                    algorithm=spec.template.algorithm,
                    public_key=public,
                    fingerprint=fp,
                    wallet=spec.name,
                )
                if on_key is not None:
                    on_key(key, scalar)
            finally:
                wipe(scalar)
            account_keys.append(key)
        keys.extend(account_keys)
        exports.append(_export(spec, fp, account, account_keys, pool_size))
    return exports, keys


def provision(
    keystore: KeyAdmin,
    seed: bytes | bytearray,
    specs: Sequence[AccountSpec],
    pool_size: int,
    *,
    start: int = 0,
    progress: Callable[[int, int], None] | None = None,
    imported: list[PoolKey] | None = None,
) -> ProvisioningRecord:
    """Import the pool into ``keystore``; keys already present must match (then skipped).

    ``imported`` collects each key this run put on the token, the moment it is there, so
    that a caller can undo an interrupted run with :func:`roll_back` (keys that were
    already present are never listed)."""
    existing = {k.key_id: k for k in keystore.list_keys()}
    total = sum(len(s.key_paths(pool_size, start)) for s in specs)
    counters = {"imported": 0, "present": 0, "done": 0}

    def import_one(key: PoolKey, scalar: bytearray) -> None:
        have = existing.get(key.key_id)
        if have is not None:
            if have.public_key != key.public_key or have.algorithm != key.algorithm:
                raise PoolMismatch(key.label)
            counters["present"] += 1
        else:
            if imported is not None:  # listed first: an interrupt inside the import
                imported.append(key)  # may leave the key on the token
            try:
                info = keystore.import_private_key(key.algorithm, scalar, key.key_id, key.label)
            except ColdvaultError:
                if imported is not None:  # refused: nothing of this run is on the token
                    imported.pop()
                raise
            if info.public_key != key.public_key:
                raise PoolMismatch(key.label)
            counters["imported"] += 1
        counters["done"] += 1
        if progress is not None:
            progress(counters["done"], total)

    exports, keys = derive_pool(seed, specs, pool_size, start=start, on_key=import_one)
    return ProvisioningRecord(
        master_fingerprint=HDKey.from_seed(seed).fingerprint,
        pool_size=pool_size,
        accounts=tuple(exports),
        keys=tuple(keys),
        imported=counters["imported"],
        already_present=counters["present"],
        token=keystore.token_info.label,
    )


def pool_seeds(keys: Sequence[KeyInfo]) -> dict[str, int]:
    """Master fingerprint (hex) -> number of its derived keys among ``keys`` (the
    appliance's own keys and anything not following the derived-key scheme are left out)."""
    seeds: dict[str, int] = {}
    for key in keys:
        kid = key.key_id
        if kid[:1] == b"K" and len(kid) > 5 and (len(kid) - 5) % 4 == 0:
            fp = kid[1:5].hex()
            seeds[fp] = seeds.get(fp, 0) + 1
    return seeds


def roll_back(keystore: KeyAdmin, keys: Sequence[PoolKey]) -> list[str]:
    """Delete ``keys`` (what an interrupted :func:`provision` imported) from the token,
    newest first; returns the labels of any still there (``[]``: all gone).

    A second Ctrl-C while this runs does not stop it: the deletions are few and each one
    left undone would be a key of a discarded run."""
    left: list[str] = []
    for key in reversed(keys):
        for _attempt in range(3):
            try:
                keystore.delete_key(key.key_id)
                break
            except KeyNotFound:  # the interrupt came before the key was made
                break
            except KeyboardInterrupt:
                continue
            except ColdvaultError:
                left.append(key.label)
                break
        else:
            left.append(key.label)
    return left


# -- UR exports (BCR-2020-010 crypto-output, BCR-2020-015 crypto-account) -------------------
def _ur_output(export: AccountExport) -> ur_bitcoin.Output | None:
    origin = export.key_origin
    if origin is None or export.spec.template.chain != "bitcoin":
        return None
    keypath = ur_keys.Keypath.from_path(
        path_to_str(origin.path), int.from_bytes(origin.fingerprint, "big")
    )
    hdkey = ur_keys.HDKey.from_base58(origin.xpub, origin=keypath)
    if export.spec.template is Template.BIP84:
        return ur_bitcoin.Output((ur_cbor.ScriptKind.WPKH,), hdkey)
    return ur_bitcoin.Output((ur_cbor.ScriptKind.WSH, ur_cbor.ScriptKind.COSIGNER), hdkey)


def ur_output(export: AccountExport) -> str | None:
    """``ur:crypto-output/...`` of a Bitcoin account (``wpkh`` or ``wsh(cosigner)``)."""
    output = _ur_output(export)
    return None if output is None else encode_single(ur_registry.encode_output(output))


def ur_account(exports: Sequence[AccountExport]) -> str | None:
    """``ur:crypto-account/...`` with every Bitcoin account of one seed (None if none)."""
    outputs = [o for o in (_ur_output(e) for e in exports) if o is not None]
    if not outputs:
        return None
    fp = int.from_bytes(exports[0].master_fingerprint, "big")
    return encode_single(ur_registry.encode_account(fp, tuple(outputs)))


def _ur_account_keys(export: AccountExport) -> list[ur_keys.HDKey]:
    fp = int.from_bytes(export.master_fingerprint, "big")
    match export.spec.template:
        case Template.ETH if export.key_origin is not None:
            origin = ur_keys.Keypath.from_path(export.account_path, fp)
            key = ur_keys.HDKey.from_base58(export.key_origin.xpub, origin=origin)
            return [replace(key, note="account.standard")]
        case Template.SOL:
            return [
                ur_keys.HDKey(key_data=public, origin=ur_keys.Keypath.from_path(path, fp))
                for public, path in zip(export.preview_keys, export.address_paths, strict=True)
            ]
    return []


def ur_multi_accounts(exports: Sequence[AccountExport]) -> str | None:
    """Keystone's ``ur:crypto-multi-accounts/...`` with the Ethereum account keys (BIP-44
    account xpub, note ``account.standard``) and Solana keys (Ed25519, one per exported
    address, each with its derivation path) of one seed (None if it has neither)."""
    keys = [k for e in exports for k in _ur_account_keys(e)]
    if not keys:
        return None
    fp = int.from_bytes(exports[0].master_fingerprint, "big")
    return encode_single(ur_keystone.MultiAccounts(fp, tuple(keys), "coldvault").to_ur())


def ur_wallet_account(export: AccountExport) -> str | None:
    """The one-account QR a wallet's Keystone reader takes (None for Bitcoin accounts):

    * Ethereum: ``ur:crypto-hdkey`` of the BIP-44 account xpub, note ``account.standard``
      (what MetaMask's Keystone keyring reads: source fingerprint, path, xpub);
    * Solana: ``ur:crypto-multi-accounts`` with this account's keys only (Solflare's
      Keystone keyring takes every key of a multi-accounts QR as a Solana account, so a
      mixed Ethereum and Solana QR would show the Ethereum key as a Solana address).
    """
    keys = _ur_account_keys(export)
    if not keys:
        return None
    if export.spec.template is Template.ETH:
        return encode_single(keys[0].to_ur())
    fp = int.from_bytes(export.master_fingerprint, "big")
    return encode_single(ur_keystone.MultiAccounts(fp, tuple(keys), "coldvault").to_ur())


def verify_pool(keystore: KeyAdmin, keys: Sequence[PoolKey]) -> list[str]:
    """Labels of pool keys missing from the HSM or with another public key ([] = all fine)."""
    have = {k.key_id: k for k in keystore.list_keys()}
    return [
        k.label for k in keys if k.key_id not in have or have[k.key_id].public_key != k.public_key
    ]


__all__ = [
    "AccountExport",
    "AccountSpec",
    "PoolKey",
    "PoolMismatch",
    "ProvisioningRecord",
    "Template",
    "derive_pool",
    "pool_seeds",
    "provision",
    "roll_back",
    "ur_account",
    "ur_multi_accounts",
    "ur_output",
    "ur_wallet_account",
    "verify_pool",
    "wallet_registry_toml",
]

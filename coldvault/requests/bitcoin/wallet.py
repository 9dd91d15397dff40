"""Script derivation for registered Bitcoin wallets (the proof behind inputs and change).

A registered wallet's output descriptor (trusted configuration, changed only with an admin
quorum) is the single source of truth for which scripts belong to it. Anything a PSBT claims
-- "this input is ours", "this output is change" -- is accepted only after the script is
re-derived here from the descriptor at the claimed ``<branch>/<index>`` and compared
byte for byte.

Supported descriptors (with key origins and a ``<0;1>/*`` multipath on every key):
``pkh(KEY)``, ``wpkh(KEY)``, ``sh(wpkh(KEY))``, ``wsh(sortedmulti(M,KEY,...))``,
``sh(wsh(sortedmulti(M,KEY,...)))`` (``multi`` too). ``tr(...)`` is refused: PKCS#11 has no
BIP-340 Schnorr mechanism.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from embit import script
from embit.descriptor import Descriptor
from embit.descriptor.errors import DescriptorError
from embit.descriptor.miniscript import Sortedmulti
from embit.ec import PublicKey

from coldvault.crypto.bip32 import HDKey, public_child
from coldvault.crypto.hashes import hash160
from coldvault.crypto.paths import HARDENED
from coldvault.errors import ConfigError, Refused
from coldvault.requests.base import Chain
from coldvault.requests.wallets import Wallet

#: Branches a change/receive path may use below the account: 0 receive, 1 change.
BRANCHES = (0, 1)


class TaprootRefused(Refused):
    """Taproot spends need BIP-340 Schnorr signatures, which no PKCS#11 HSM key can make."""

    code = "taproot-refused"
    REASON = "PKCS#11 has no BIP-340 Schnorr mechanism"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is taproot, which the appliance cannot sign: {self.REASON}, so an HSM key"
            " cannot make the signature (and keys never leave the HSM to sign in software)."
        )
        self.reason = self.REASON


class WalletDescriptorError(ConfigError):
    """A registered Bitcoin wallet's descriptor is missing, unparsable or unsupported."""

    code = "wallet-descriptor"

    def __init__(self, wallet: str, problem: str) -> None:
        super().__init__(f"Registered wallet {wallet!r} has an unusable descriptor: {problem}.")
        self.wallet = wallet


class ScriptType(enum.StrEnum):
    P2PKH = "p2pkh"
    P2WPKH = "p2wpkh"
    P2SH_P2WPKH = "p2sh-p2wpkh"
    P2WSH = "p2wsh"
    P2SH_P2WSH = "p2sh-p2wsh"


@dataclass(frozen=True)
class Derived:
    """Scripts and our key at one ``<branch>/<index>`` of a wallet."""

    branch: int
    index: int
    script_pubkey: bytes
    redeem_script: bytes | None
    witness_script: bytes | None
    our_pubkey: bytes
    our_path: tuple[int, ...]


@dataclass
class WalletScripts:
    """Descriptor-backed script derivation for one registered Bitcoin wallet, with a cache.

    The descriptor is parsed and checked by embit once; each ``<branch>/<index>`` then costs
    one public child derivation per key from the key's cached ``<branch>`` node
    (:func:`~coldvault.crypto.bip32.public_child`: HMAC-SHA512 and one libsecp256k1
    tweak), and the scripts are built from those keys as the descriptor says
    (``tests/requests/test_wallet_scripts.py`` checks them against embit's own derivation)."""

    wallet: Wallet
    fingerprint: bytes = field(init=False)
    account: tuple[int, ...] = field(init=False)
    script_type: ScriptType = field(init=False)
    _descriptor: Descriptor = field(init=False, repr=False)
    _cache: dict[tuple[int, int], Derived] = field(default_factory=dict, init=False, repr=False)
    #: every key's account-level node, in descriptor order, and where ours is among them
    _accounts: list[HDKey] = field(default_factory=list, init=False, repr=False)
    _ours: int = field(default=0, init=False, repr=False)
    #: every key's ``<branch>`` node as (public key, chain code), in descriptor order
    _branches: dict[int, list[tuple[bytes, bytes]]] = field(
        default_factory=dict, init=False, repr=False
    )
    #: multisig: (threshold, sorted keys?)
    _multi: tuple[int, bool] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        w = self.wallet
        if w.chain is not Chain.BITCOIN:
            raise ValueError(f"wallet {w.name!r} is not a Bitcoin wallet")
        if not w.descriptor:
            raise WalletDescriptorError(w.name, "it has no descriptor")
        text = w.descriptor.split("#", 1)[0].strip()
        if text.startswith("tr("):
            raise TaprootRefused(f"registered wallet {w.name!r}")
        try:
            self.fingerprint = bytes.fromhex(w.master_fingerprint)
            desc = Descriptor.from_string(text)
        except (ValueError, DescriptorError) as exc:
            raise WalletDescriptorError(w.name, str(exc).rstrip(".")) from exc
        self.account = w.account
        if len(self.fingerprint) != 4:
            raise WalletDescriptorError(w.name, "the master fingerprint is not 4 bytes")
        self._descriptor = desc
        self.script_type = self._classify(desc)
        ours = [k for k in desc.keys if k.origin and k.origin.fingerprint == self.fingerprint]
        if len(ours) != 1:
            raise WalletDescriptorError(
                w.name, f"it has {len(ours)} keys with our fingerprint, not 1"
            )
        if tuple(ours[0].origin.derivation) != self.account:
            raise WalletDescriptorError(w.name, "our key's origin path differs from account_path")
        for k in desc.keys:
            steps = k.allowed_derivation.indexes if k.allowed_derivation else None
            if steps != [list(BRANCHES), None]:
                raise WalletDescriptorError(w.name, "every key must end in /<0;1>/*")
        if not 0 <= w.max_index < HARDENED:
            raise WalletDescriptorError(w.name, "max_index is out of range")
        self._ours = desc.keys.index(ours[0])
        self._accounts = [HDKey.from_extended_key(k.key.to_base58()) for k in desc.keys]
        if desc.miniscript is not None:  # (sorted)multi, as _classify checked
            self._multi = (desc.miniscript.args[0].num, isinstance(desc.miniscript, Sortedmulti))

    def _classify(self, d: Descriptor) -> ScriptType:
        name = self.wallet.name
        if d.is_taproot:
            raise TaprootRefused(f"registered wallet {name!r}")
        if d.miniscript is not None:
            if not d.is_basic_multisig:
                raise WalletDescriptorError(name, "only (sorted)multi scripts are supported")
            if d.wsh and d.sh:
                return ScriptType.P2SH_P2WSH
            if d.wsh:
                return ScriptType.P2WSH
            raise WalletDescriptorError(name, "bare or legacy P2SH multisig is not supported")
        if d.key is not None:
            if d.wpkh and d.sh:
                return ScriptType.P2SH_P2WPKH
            if d.wpkh:
                return ScriptType.P2WPKH
            if not d.sh:
                return ScriptType.P2PKH
        raise WalletDescriptorError(name, "unsupported descriptor type")

    def locate(self, path: tuple[int, ...]) -> tuple[int, int] | None:
        """``(branch, index)`` when ``path`` is ``account/<branch>/<index>``; else None."""
        n = len(self.account)
        if len(path) != n + 2 or path[:n] != self.account:
            return None
        branch, index = path[n], path[n + 1]
        if branch not in BRANCHES or index & HARDENED:
            return None
        return branch, index

    def under_account(self, path: tuple[int, ...]) -> bool:
        return path[: len(self.account)] == self.account

    def derive(self, branch: int, index: int) -> Derived:
        """Scripts at ``<branch>/<index>``; the caller bounds ``index`` by ``max_index``."""
        if branch not in BRANCHES or not 0 <= index < HARDENED:
            raise ValueError("branch/index out of range")
        hit = self._cache.get((branch, index))
        if hit is not None:
            return hit
        pubs = [public_child(key, chain, index)[0] for key, chain in self._branch(branch)]
        redeem = witness = None
        if self._multi is None:  # the key is compressed SEC1 (public_child writes no other)
            key_hash = hash160(pubs[0])
            if self.script_type is ScriptType.P2PKH:
                # DUP HASH160 <20> EQUALVERIFY CHECKSIG
                spk = b"\x76\xa9\x14" + key_hash + b"\x88\xac"
            else:
                spk = b"\x00\x14" + key_hash  # 0 <20>
            if self.script_type is ScriptType.P2SH_P2WPKH:
                redeem, spk = spk, _p2sh(spk)
        else:
            threshold, sorted_keys = self._multi
            ordered = sorted(pubs) if sorted_keys else pubs
            ws = script.multisig(threshold, [PublicKey.parse(p) for p in ordered])
            witness, spk = ws.data, script.p2wsh(ws).data
            if self.script_type is ScriptType.P2SH_P2WSH:
                redeem, spk = spk, _p2sh(spk)
        derived = Derived(
            branch=branch,
            index=index,
            script_pubkey=spk,
            redeem_script=redeem,
            witness_script=witness,
            our_pubkey=pubs[self._ours],
            our_path=self.account + (branch, index),
        )
        self._cache[(branch, index)] = derived
        return derived

    def _branch(self, branch: int) -> list[tuple[bytes, bytes]]:
        nodes = self._branches.get(branch)
        if nodes is None:
            nodes = self._branches[branch] = [
                (child.public_key, child.chain_code)
                for child in (node.derive((branch,)) for node in self._accounts)
            ]
        return nodes


def _p2sh(redeem: bytes) -> bytes:
    """HASH160 <20> EQUAL: the P2SH output script of ``redeem``."""
    return b"\xa9\x14" + hash160(redeem) + b"\x87"

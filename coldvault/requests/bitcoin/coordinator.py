"""Multisig wallets from coordinators: what a coordinator (Sparrow, Specter, Nunchuk, Caravan,
a Coldcard) hands over to register a P2WSH ``sortedmulti`` wallet, read and checked.

Accepted (docs/wallets.md, "Registering a multisig wallet from a coordinator"):

* a BIP-380 descriptor ``wsh(sortedmulti(M,[fp/path]xpub/<0;1>/*,...))#checksum`` (``/0/*``
  and ``/**`` too); the checksum is required and must be right, as Bitcoin Core's
  ``importdescriptors`` requires it: every coordinator exports it, and a descriptor without
  one was typed or edited by hand, with nothing to catch a changed threshold or path;
* a Coldcard-style multisig text file (``Name:``, ``Policy: M of N``, ``Derivation:``,
  ``Format: P2WSH``, one ``XFP: xpub`` line per cosigner, ``Derivation:`` lines may precede
  a key);
* a BSMS (BIP-129) descriptor record: ``BSMS 1.0``, the descriptor, the path restrictions,
  the first address (which must be the descriptor's first receive address);
* a ``crypto-output`` UR (BCR-2020-010) from a QR code; BBQr and plain QR carry any of the
  texts above.

:func:`read_multisig` turns any of them into a :class:`MultisigSetup` (threshold, every
cosigner's fingerprint, path and xpub, the network, the canonical descriptor, the first
addresses).  :func:`check_own_key` proves, against the HSM, that one cosigner is this
appliance's key at the expected BIP-48 path: the HSM must hold the key the cosigner's xpub
derives at ``0/0``.  Nothing here writes the registry; :func:`registry_with` returns the
new registry text the admin quorum then approves (``approve-document --kind wallets``).
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tomli_w
from embit import bip32 as embit_bip32
from embit.descriptor import Descriptor
from embit.descriptor.checksum import add_checksum
from embit.networks import NETWORKS

from coldvault.crypto.bip32 import Network, check_extended_key
from coldvault.crypto.descriptors import (
    MAX_COSIGNERS,
    InvalidCosigner,
    KeyOrigin,
    sortedmulti_descriptor,
)
from coldvault.crypto.errors import CryptoInputError
from coldvault.crypto.paths import HARDENED, InvalidPath, parse_path, path_to_str
from coldvault.errors import InputError, IntegrityError
from coldvault.keys.keystore import KeyInfo, derived_key_id
from coldvault.requests.wallets import parse_wallets
from coldvault.transport.registry import RegistryError, decode_registry
from coldvault.transport.registry.bitcoin import Output
from coldvault.transport.ur import UR

MAX_TEXT = 16 * 1024
PREVIEW = 3
_FP = re.compile(r"^[0-9a-fA-F]{8}$")


class Source(enum.StrEnum):
    DESCRIPTOR = "descriptor"
    COLDCARD = "coldcard"
    BSMS = "bsms"
    CRYPTO_OUTPUT = "crypto-output"


class CoordinatorWalletInvalid(InputError):
    """A coordinator's wallet file or QR payload is malformed or not a supported wallet."""

    code = "coordinator-wallet-invalid"

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"The {source} could not be registered: {reason}.")
        self.source = source
        self.reason = reason


class NotACosigner(InputError):
    """None of the wallet's cosigners is this appliance's key at the expected path."""

    code = "not-a-cosigner"

    def __init__(self, reason: str) -> None:
        super().__init__(f"This appliance is not a cosigner of the wallet: {reason}.")
        self.reason = reason


class CosignerKeyMismatch(IntegrityError):
    """A cosigner claims this appliance's fingerprint and path but its key is not the HSM's."""

    code = "cosigner-key-mismatch"

    def __init__(self, fingerprint: str, path: str) -> None:
        super().__init__(
            f"The cosigner [{fingerprint}/{path}] claims to be this appliance, but its xpub does "
            "not derive the key the HSM holds there; the wallet file was altered or made for "
            "another seed. Do not register it."
        )
        self.fingerprint = fingerprint
        self.path = path


@dataclass(frozen=True)
class MultisigSetup:
    """A P2WSH ``sortedmulti`` wallet as a coordinator described it."""

    threshold: int
    cosigners: tuple[KeyOrigin, ...]
    network: Network
    source: Source
    name: str = ""

    @property
    def descriptor(self) -> str:
        """The canonical ``wsh(sortedmulti(M,...<0;1>/*))#checksum``."""
        return sortedmulti_descriptor(self.threshold, self.cosigners, self.network)

    @property
    def policy(self) -> str:
        return f"{self.threshold} of {len(self.cosigners)}"

    def first_addresses(self, count: int = PREVIEW) -> list[tuple[str, str]]:
        """``(relative path, address)`` of the first receive addresses (embit derives them)."""
        desc = Descriptor.from_string(self.descriptor.split("#")[0])
        net = NETWORKS[self.network.value]
        return [
            (f"0/{i}", desc.derive(i, branch_index=0).address(net)) for i in range(count)
        ]

    def rows(self) -> list[tuple[str, str]]:
        """What the admins are shown: policy, every cosigner, the first addresses."""
        rows = [("policy", f"{self.policy} (P2WSH sortedmulti)"), ("network", self.network.value)]
        for i, c in enumerate(self.cosigners, start=1):
            rows.append((f"cosigner {i}", f"{c.fingerprint.hex()} {path_to_str(c.path)}"))
            rows.append((f"cosigner {i} xpub", c.xpub))
        rows += [(f"address {p}", a) for p, a in self.first_addresses()]
        return rows


# --------------------------------------------------------------------------- reading
def read_multisig(data: bytes | str, *, ur_type: str = "") -> MultisigSetup:
    """Any accepted coordinator format (``ur_type`` ``crypto-output``: the UR's CBOR)."""
    if ur_type in ("crypto-output", "output"):
        return _from_crypto_output(data if isinstance(data, bytes) else data.encode(), ur_type)
    if isinstance(data, bytes):
        if len(data) > MAX_TEXT:
            raise CoordinatorWalletInvalid("wallet file", f"it is larger than {MAX_TEXT} bytes")
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CoordinatorWalletInvalid("wallet file", "it is not UTF-8 text") from exc
    text = data.strip().lstrip("\ufeff")
    if len(text) > MAX_TEXT:
        raise CoordinatorWalletInvalid("wallet file", f"it is longer than {MAX_TEXT} characters")
    if text.startswith("BSMS"):
        return _from_bsms(text)
    first = text.split("\n", 1)[0].strip()
    if re.match(r"^(sh|wsh|wpkh|pkh|tr|sortedmulti|multi)\(", first):
        if "\n" in text:
            raise CoordinatorWalletInvalid("descriptor", "it spans more than one line")
        if not text.partition("#")[2]:
            raise CoordinatorWalletInvalid(
                "descriptor",
                "it has no #checksum; export it from the coordinator with its checksum "
                "(a descriptor typed or edited by hand is not registered)",
            )
        return from_descriptor(text, Source.DESCRIPTOR)
    if re.search(r"(?im)^\s*(policy|format|name|derivation)\s*:", text):
        return _from_coldcard(text)
    raise CoordinatorWalletInvalid(
        "wallet file",
        "it is neither a descriptor, a Coldcard multisig file nor a BSMS record",
    )


def from_descriptor(text: str, source: Source = Source.DESCRIPTOR, name: str = "") -> MultisigSetup:
    what = str(source)
    text = text.strip()
    body, _, checksum = text.partition("#")
    if checksum and add_checksum(body) != text:
        raise CoordinatorWalletInvalid(what, "its descriptor checksum is wrong")
    try:
        desc = Descriptor.from_string(body)
    except Exception as exc:  # noqa: BLE001 - embit raises many types on malformed text
        raise CoordinatorWalletInvalid(
            what, f"the descriptor does not parse ({exc.__class__.__name__})"
        ) from None
    if desc.sh or not desc.wsh or desc.taproot or not desc.is_basic_multisig:
        raise CoordinatorWalletInvalid(
            what, "only P2WSH multisig wallets, wsh(sortedmulti(...)), can be registered"
        )
    if not desc.is_sorted:
        raise CoordinatorWalletInvalid(
            what, "wsh(multi(...)) keeps the key order; only sortedmulti can be registered"
        )
    threshold = int(desc.miniscript.args[0].num)
    cosigners = []
    for i, key in enumerate(desc.keys, start=1):
        if key.origin is None:
            raise CoordinatorWalletInvalid(what, f"cosigner {i} has no [fingerprint/path] origin")
        derivation = str(key.allowed_derivation or "")
        if derivation not in ("/<0;1>/*", "/{0,1}/*", "/**", "/0/*", "/1/*"):
            raise CoordinatorWalletInvalid(
                what, f"cosigner {i} derives {derivation or 'no children'}, not /<0;1>/*"
            )
        cosigners.append(_origin(what, i, key.origin.fingerprint.hex(),
                                 path_to_str(key.origin.derivation), key.key.to_base58()))
    return _setup(what, threshold, cosigners, source, name)


def _origin(what: str, i: int, fingerprint: str, path: str, xpub: str) -> KeyOrigin:
    if not _FP.match(fingerprint):
        raise CoordinatorWalletInvalid(
            what, f"cosigner {i} fingerprint {fingerprint!r} is not 8 hex digits"
        )
    try:
        steps = parse_path(path)
        fields = check_extended_key(xpub)
    except (InvalidPath, CryptoInputError) as exc:
        raise CoordinatorWalletInvalid(what, f"cosigner {i}: {exc.message.rstrip('.')}") from None
    if fields.is_private:
        raise CoordinatorWalletInvalid(what, f"cosigner {i} is a private key; never share one")
    if fields.depth != len(steps):
        raise CoordinatorWalletInvalid(
            what, f"cosigner {i}'s xpub depth {fields.depth} does not match its path {path}"
        )
    return KeyOrigin(bytes.fromhex(fingerprint), steps, xpub)


def _setup(what: str, threshold: int, cosigners: Sequence[KeyOrigin], source: Source,
           name: str) -> MultisigSetup:  # fmt: skip
    if not 2 <= len(cosigners) <= MAX_COSIGNERS:
        raise CoordinatorWalletInvalid(what, f"it has {len(cosigners)} cosigners, not 2..15")
    if not 1 <= threshold <= len(cosigners):
        raise CoordinatorWalletInvalid(
            what, f"its threshold {threshold} is not between 1 and {len(cosigners)}"
        )
    networks = {check_extended_key(c.xpub).network for c in cosigners}
    if len(networks) != 1:
        raise CoordinatorWalletInvalid(what, "its cosigners mix mainnet and testnet keys")
    setup = MultisigSetup(threshold, tuple(cosigners), networks.pop(), source, name)
    try:
        setup.descriptor  # noqa: B018 - duplicate keys and networks are refused here
    except InvalidCosigner as exc:
        raise CoordinatorWalletInvalid(what, exc.message.rstrip(".")) from None
    return setup


def _from_bsms(text: str) -> MultisigSetup:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) != 4 or lines[0] != "BSMS 1.0":
        raise CoordinatorWalletInvalid(
            "BSMS record", "it must be 4 lines: BSMS 1.0, descriptor, path restrictions, address"
        )
    setup = from_descriptor(lines[1], Source.BSMS)
    if lines[2] not in ("/0/*,/1/*", "No path restrictions"):
        raise CoordinatorWalletInvalid(
            "BSMS record", f"path restrictions {lines[2]!r} are not /0/*,/1/*"
        )
    first = setup.first_addresses(1)[0][1]
    if lines[3] != first:
        raise CoordinatorWalletInvalid(
            "BSMS record",
            f"its first address {lines[3]} is not the descriptor's first address {first}",
        )
    return setup


def _from_coldcard(text: str) -> MultisigSetup:
    what = "Coldcard multisig file"
    name, policy, fmt, derivation = "", "", "P2WSH", ""
    keys: list[KeyOrigin] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        label, sep, value = (part.strip() for part in line.partition(":"))
        if not sep:
            raise CoordinatorWalletInvalid(what, f"line {number} is not 'label: value'")
        match label.lower():
            case "name":
                name = value
            case "policy":
                policy = value
            case "format":
                fmt = value.upper()
            case "derivation":
                derivation = value
            case _ if _FP.match(label):
                if not derivation:
                    raise CoordinatorWalletInvalid(what, f"key {label} has no Derivation line")
                keys.append(_origin(what, len(keys) + 1, label.lower(), derivation, value))
            case _:
                raise CoordinatorWalletInvalid(what, f"line {number} has unknown label {label!r}")
    if fmt != "P2WSH":
        raise CoordinatorWalletInvalid(what, f"format {fmt} is not P2WSH")
    m = re.match(r"^(\d+)\s*(?:of|/)\s*(\d+)$", policy)
    if m is None:
        raise CoordinatorWalletInvalid(what, "its Policy line is not 'M of N'")
    if int(m.group(2)) != len(keys):
        raise CoordinatorWalletInvalid(
            what, f"its policy names {m.group(2)} cosigners but it lists {len(keys)}"
        )
    return _setup(what, int(m.group(1)), keys, Source.COLDCARD, name)


def _from_crypto_output(cbor: bytes, ur_type: str) -> MultisigSetup:
    try:
        value = decode_registry(UR(ur_type, cbor))
    except RegistryError as exc:
        raise CoordinatorWalletInvalid("crypto-output", exc.message.rstrip(".")) from None
    if not isinstance(value, Output):
        raise CoordinatorWalletInvalid("crypto-output", "it is not an output descriptor")
    try:
        text = value.to_descriptor()
    except ValueError as exc:
        raise CoordinatorWalletInvalid("crypto-output", str(exc)) from None
    return from_descriptor(text, Source.CRYPTO_OUTPUT)


# --------------------------------------------------------------------------- our key
def expected_account(network: Network, account: int = 0) -> tuple[int, ...]:
    """This appliance's BIP-48 P2WSH account path: ``m/48h/{0|1}h/{account}h/2h``."""
    return (48 | HARDENED, network.coin_type | HARDENED, account | HARDENED, 2 | HARDENED)


def check_own_key(
    setup: MultisigSetup,
    *,
    master_fingerprint: bytes,
    lookup_key: Callable[[bytes], KeyInfo | None],
    account: int = 0,
) -> KeyOrigin:
    """The cosigner that is this appliance, proven by the HSM; or the exact refusal."""
    fp = master_fingerprint.hex()
    ours = [c for c in setup.cosigners if c.fingerprint == master_fingerprint]
    if not ours:
        listed = ", ".join(c.fingerprint.hex() for c in setup.cosigners)
        raise NotACosigner(f"no cosigner has this appliance's fingerprint {fp} (it lists {listed})")
    if len(ours) > 1:
        raise NotACosigner(f"fingerprint {fp} appears {len(ours)} times")
    (origin,) = ours
    want = expected_account(setup.network, account)
    if origin.path != want:
        raise NotACosigner(
            f"the cosigner {fp} is at {path_to_str(origin.path)}, not at the expected "
            f"{path_to_str(want)}"
        )
    child = embit_bip32.HDKey.from_string(origin.xpub).derive([0, 0]).key.sec()
    held = lookup_key(derived_key_id(master_fingerprint, want + (0, 0)))
    if held is None:
        raise NotACosigner(
            f"the HSM holds no key at {path_to_str(want + (0, 0))}; provision the "
            "bip48-wsh-sortedmulti account first"
        )
    if held.public_key != child:
        raise CosignerKeyMismatch(fp, path_to_str(origin.path))
    return origin


# --------------------------------------------------------------------------- registry
def registry_with(
    registry: bytes, setup: MultisigSetup, *, name: str, client: str, master_fingerprint: bytes,
    account: int = 0, max_index: int = 99, network: str | None = None,
) -> bytes:  # fmt: skip
    """The wallet registry ``registry`` plus this wallet as ``[[wallet]] name``.  An entry of
    that name without a descriptor (a bip48 account as provisioning proposed it) is
    replaced; one with a descriptor is refused (register under a new name)."""
    current = parse_wallets(registry)  # checks the registry as it stands
    entries: list[dict[str, Any]] = tomllib.loads(registry.decode("utf-8")).get("wallet", [])
    old = current.get(name)
    if old is not None and old.descriptor:
        raise CoordinatorWalletInvalid(
            "registration", f"wallet {name} is already registered with a descriptor"
        )
    entries = [e for e in entries if e.get("name") != name]
    entries.append({
        "name": name,
        "client": client,
        "chain": "bitcoin",
        "network": network or setup.network.value,
        "template": "bip48-wsh-sortedmulti",
        "master_fingerprint": master_fingerprint.hex(),
        "account_path": path_to_str(expected_account(setup.network, account)),
        "descriptor": setup.descriptor,
        "max_index": max_index,
    })  # fmt: skip
    text = tomli_w.dumps({"wallet": entries}).encode()
    parse_wallets(text)  # the result loads as the appliance will load it
    return text


__all__ = [
    "CoordinatorWalletInvalid",
    "CosignerKeyMismatch",
    "MultisigSetup",
    "NotACosigner",
    "Source",
    "check_own_key",
    "expected_account",
    "from_descriptor",
    "read_multisig",
    "registry_with",
]

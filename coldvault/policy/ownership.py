"""Ownership proofs for whitelisted withdrawal addresses.

Before an address joins a client's whitelist, the client proves it controls the address by
signing a challenge message with it. This module checks such a proof, offline:

* Bitcoin: BIP-137 compact signatures (65 bytes, base64; the "Signed Message" format of
  Bitcoin Core, Electrum, Trezor, Coldcard) for P2PKH, P2SH-P2WPKH and P2WPKH, and BIP-322
  "simple" and "full" signatures (:mod:`coldvault.policy.bip322`) for every standard
  address type: P2PKH, P2SH (multisig), P2WPKH, P2SH-P2WPKH, P2WSH (multisig, time locks),
  P2SH-P2WSH and P2TR (key path and tapscript).
* Ethereum: EIP-191 ``personal_sign`` of text, or EIP-712 ``eth_signTypedData_v4`` when the
  message is typed-data JSON (65 bytes ``r || s || v``, hex), address checked against the
  recovered key; a mixed-case address must carry a valid EIP-55 checksum.
* Solana: Ed25519 over the UTF-8 message, base58 address (the public key); the signature
  as base58, base64, hex or raw bytes.

:func:`verify_ownership` returns the proof's format when the proof holds and raises
:class:`OwnershipProofInvalid` (with ``reason``) otherwise. :func:`check_address_proof`
is the operator's check (``coldvault whitelist verify``): the address decides the chain,
and a proof that does not hold is a :class:`ProofNotValid` refusal. :func:`challenge_message`
is the text a client is asked to sign.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass

import coincurve
import nacl.exceptions
import nacl.signing
from embit import base58, bech32

from coldvault.crypto.hashes import hash160, keccak256, sha256d
from coldvault.crypto.secp256k1 import LOW_S_MAX, is_scalar
from coldvault.errors import AuthError, ColdvaultError, InputError, Refused
from coldvault.policy.bip322 import FULL, decode_base64, split_prefix, verify_bip322
from coldvault.requests.base import Chain
from coldvault.requests.bitcoin.tx import compact_size
from coldvault.requests.ethereum.eip712 import parse_typed_data
from coldvault.requests.ethereum.tx import checksum_address, eth_address

MAX_MESSAGE = 4096
MAX_SIGNATURE = 8192
BITCOIN_MAGIC = b"Bitcoin Signed Message:\n"
SEGWIT_HRPS = ("bc", "tb", "bcrt")
_ETH_ADDRESS = re.compile(r"^0[xX][0-9a-fA-F]{40}$")


class OwnershipProofInvalid(AuthError):
    """An ownership proof does not prove control of the address.

    ``reason`` is one of ``malformed-address``, ``malformed-message``,
    ``malformed-signature``, ``unsupported``, ``address-mismatch``, ``bad-signature``.
    """

    code = "ownership-proof"

    def __init__(self, message: str, *, chain: str, address: str, reason: str) -> None:
        super().__init__(message)
        self.chain = chain
        self.address = address
        self.reason = reason


_Fail = Callable[[str, str], OwnershipProofInvalid]

#: Reasons that mean the proof itself fails (the address and message were understood).
PROOF_REASONS = frozenset({"malformed-signature", "unsupported", "address-mismatch",
                           "bad-signature"})  # fmt: skip


class ProofNotValid(Refused):
    """A client's proof does not prove control of the address (``reason`` says why)."""

    code = "ownership-proof-not-valid"

    def __init__(self, cause: OwnershipProofInvalid) -> None:
        super().__init__(
            f"The proof does not prove control of {cause.address} ({cause.reason}): {cause.message}"
        )
        self.chain = cause.chain
        self.address = cause.address
        self.reason = cause.reason
        self.valid = False


class ChallengeInvalid(InputError):
    """The challenge's fields do not make one line of text a wallet can sign."""

    code = "ownership-challenge"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The challenge fields must be single-line text, {limit} bytes in all at most."
        )


@dataclass(frozen=True)
class ProofCheck:
    """A proof that holds: which chain the address is on and the proof's format."""

    chain: Chain
    address: str
    proof_format: str


def check_address(chain: Chain | str, address: str) -> None:
    """Raise :class:`OwnershipProofInvalid` (``malformed-address``) unless ``address`` is a
    well-formed address of ``chain`` (checksum, length, version, EIP-55 case)."""
    chain = Chain(chain)

    def fail(reason: str, text: str) -> OwnershipProofInvalid:
        return OwnershipProofInvalid(text, chain=chain.value, address=address[:100], reason=reason)

    if chain is Chain.BITCOIN:
        _script_pubkey(address, fail)
    elif chain is Chain.ETHEREUM:
        _eth_address(address, fail)
    else:
        _solana_key(address, fail)


def chain_of_address(address: str) -> Chain:
    """The chain an address belongs to, from its form alone; ``OwnershipProofInvalid``
    (``malformed-address``) when no chain recognises it."""
    text = address.strip()
    if _ETH_ADDRESS.match(text):
        return Chain.ETHEREUM
    lower = text.lower()
    hrp = lower.rsplit("1", 1)[0] if "1" in lower else ""
    if hrp in SEGWIT_HRPS and bech32.decode(hrp, text)[0] is not None:
        return Chain.BITCOIN
    try:
        raw = base58.decode(text) if 25 <= len(text) <= 44 else b""
    except ValueError:
        raw = b""
    if len(raw) == 25 and sha256d(raw[:21])[:4] == raw[21:]:
        return Chain.BITCOIN
    if len(raw) == 32:
        return Chain.SOLANA
    if hrp in SEGWIT_HRPS:
        return Chain.BITCOIN  # a bech32 address with a bad checksum: verify_ownership says so
    raise OwnershipProofInvalid(
        "The address is not a Bitcoin, Ethereum or Solana address.",
        chain="", address=text[:100], reason="malformed-address",
    )  # fmt: skip


def check_address_proof(address: str, message: str, signature: str) -> ProofCheck:
    """The operator's check of a client's proof; the address decides the chain and format.

    Raises :class:`ProofNotValid` (a refusal) when the proof does not hold, and
    :class:`OwnershipProofInvalid` when the address or message cannot be read at all."""
    address = address.strip()
    chain = chain_of_address(address)
    try:
        proof_format = verify_ownership(chain, address, message, signature)
    except OwnershipProofInvalid as exc:
        if exc.reason in PROOF_REASONS:
            raise ProofNotValid(exc) from exc
        raise
    return ProofCheck(chain, address, proof_format)


def challenge_message(*, client: str, wallet: str, address: str, nonce: str, issued: str) -> str:
    """The one-line text a client signs to prove control of an address.

    ``nonce`` (random, from the caller) makes it fresh; ``issued`` is the UTC time in ISO
    form. Empty fields are left out."""
    parts = [("client", client), ("wallet", wallet), ("address", address),
             ("nonce", nonce), ("issued", issued)]  # fmt: skip
    fields = ", ".join(f"{name} {value.strip()}" for name, value in parts if value.strip())
    text = f"coldvault ownership proof: {fields}"
    if len(text.encode()) > MAX_MESSAGE or any(ord(ch) < 0x20 for ch in text):
        raise ChallengeInvalid(MAX_MESSAGE)
    return text


def verify_ownership(chain: Chain | str, address: str, message: str, signature: str | bytes) -> str:
    """Raise :class:`OwnershipProofInvalid` unless ``signature`` proves control of ``address``.

    Returns the proof's format: ``bip137``, ``bip322-simple``, ``bip322-full``, ``eip191``,
    ``eip712`` or ``ed25519``."""
    chain = Chain(chain)
    shown = address if len(address) <= 100 else address[:100] + "..."

    def fail(reason: str, text: str) -> OwnershipProofInvalid:
        return OwnershipProofInvalid(text, chain=chain.value, address=shown, reason=reason)

    try:
        data = message.encode("utf-8")
    except (AttributeError, UnicodeEncodeError):
        data = None
    if data is None or len(data) > MAX_MESSAGE:
        raise fail("malformed-message", f"The message must be text of at most {MAX_MESSAGE} bytes.")
    if len(signature) > MAX_SIGNATURE:
        raise fail("malformed-signature", "The signature is too long.")
    if chain is Chain.BITCOIN:
        return _verify_bitcoin(address, data, signature, fail)
    if chain is Chain.ETHEREUM:
        return _verify_ethereum(address, data, signature, fail)
    _verify_solana(address, data, signature, fail)
    return "ed25519"


# --- Bitcoin ------------------------------------------------------------------------------


def _script_pubkey(address: str, fail: _Fail) -> bytes:
    """The output script of a mainnet/testnet/regtest Bitcoin address."""
    if len(address) > 90:
        raise fail("malformed-address", "The Bitcoin address is too long.")
    lower = address.lower()
    hrp = lower.rsplit("1", 1)[0] if "1" in lower else ""
    if hrp in SEGWIT_HRPS:
        ver, prog = bech32.decode(hrp, address)
        if ver is None or prog is None:
            raise fail("malformed-address", "The Bitcoin address has a bad bech32 checksum.")
        if ver == 0 and len(prog) not in (20, 32):
            raise fail("malformed-address", "The segwit v0 program has an invalid length.")
        if ver != 0 and (ver != 1 or len(prog) != 32):
            raise fail(
                "unsupported", f"Segwit v{ver} addresses of {len(prog)} bytes cannot be proven."
            )
        return bytes([0 if ver == 0 else 0x50 + ver, len(prog), *prog])
    try:
        data = base58.decode_check(address)
    except ValueError as exc:
        raise fail("malformed-address", "The Bitcoin address is not valid base58check.") from exc
    if len(data) != 21:
        raise fail("malformed-address", "The Bitcoin address has an invalid length.")
    if data[0] in (0x00, 0x6F):
        return b"\x76\xa9\x14" + data[1:] + b"\x88\xac"
    if data[0] in (0x05, 0xC4):
        return b"\xa9\x14" + data[1:] + b"\x87"
    raise fail("malformed-address", "The Bitcoin address has an unknown version byte.")


def _verify_bitcoin(address: str, message: bytes, signature: str | bytes, fail: _Fail) -> str:
    spk = _script_pubkey(address, fail)
    if isinstance(signature, bytes):
        variant, raw = None, signature
    else:
        variant, body = split_prefix(signature.strip())
        raw = decode_base64(body, fail)
    if not raw:
        raise fail("malformed-signature", "The signature is empty.")
    if variant is None and len(raw) == 65 and 27 <= raw[0] <= 42:
        _verify_bip137(spk, message, raw, fail)
        return "bip137"
    verify_bip322(spk, message, variant, raw, fail)
    return "bip322-full" if variant == FULL else "bip322-simple"


def _verify_bip137(spk: bytes, message: bytes, raw: bytes, fail: _Fail) -> None:
    header = raw[0]
    if not 27 <= header <= 42:
        raise fail("malformed-signature", f"BIP-137 header byte {header} is out of range.")
    recid = (header - 27) & 3
    kind = (header - 27) >> 2  # 0 P2PKH uncompressed, 1 compressed, 2 P2SH-P2WPKH, 3 P2WPKH
    digest = sha256d(
        compact_size(len(BITCOIN_MAGIC)) + BITCOIN_MAGIC + compact_size(len(message)) + message
    )
    r = int.from_bytes(raw[1:33], "big")
    s = int.from_bytes(raw[33:], "big")
    if not (is_scalar(r) and is_scalar(s)):
        raise fail("malformed-signature", "The signature's r or s is out of range.")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            raw[1:] + bytes([recid]), digest, hasher=None
        )
    except ValueError as exc:
        raise fail("bad-signature", "No public key can be recovered from the signature.") from exc
    key = pub.format(compressed=kind != 0)
    h = hash160(key)
    p2pkh = b"\x76\xa9\x14" + h + b"\x88\xac"
    p2wpkh = b"\x00\x14" + h
    p2sh_p2wpkh = b"\xa9\x14" + hash160(p2wpkh) + b"\x87"
    allowed = {
        0: (p2pkh,),
        # Electrum and Bitcoin Core sign with the "compressed" header for any single-key type
        1: (p2pkh, p2wpkh, p2sh_p2wpkh),
        2: (p2sh_p2wpkh,),
        3: (p2wpkh,),
    }[kind]
    if spk not in allowed:
        raise fail(
            "address-mismatch", "The signature was made by a key that does not control the address."
        )


# --- Ethereum -----------------------------------------------------------------------------


def _eth_address(address: str, fail: _Fail) -> bytes:
    if not _ETH_ADDRESS.match(address):
        raise fail("malformed-address", "An Ethereum address is 0x followed by 40 hex digits.")
    body = address[2:]
    wanted = bytes.fromhex(body)
    if body != body.lower() and body != body.upper() and checksum_address(wanted) != "0x" + body:
        raise fail("malformed-address", "The Ethereum address has an invalid EIP-55 checksum.")
    return wanted


def _verify_ethereum(address: str, message: bytes, signature: str | bytes, fail: _Fail) -> str:
    wanted = _eth_address(address, fail)
    if isinstance(signature, str):
        text = signature.strip().removeprefix("0x").removeprefix("0X")
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise fail("malformed-signature", "The signature is not hex.") from exc
    else:
        raw = signature
    if len(raw) != 65:
        raise fail("malformed-signature", "An Ethereum signature is 65 bytes (r, s, v).")
    v = raw[64]
    recid = v - 27 if v in (27, 28) else v if v in (0, 1) else None
    if recid is None:
        raise fail("malformed-signature", f"The signature's v value {v} is not 27/28 or 0/1.")
    s = int.from_bytes(raw[32:64], "big")
    if not (is_scalar(s) and s <= LOW_S_MAX and is_scalar(int.from_bytes(raw[:32], "big"))):
        raise fail("malformed-signature", "The signature's r or s is out of range (or high-S).")
    digest = _eth_digest(message, fail)
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            raw[:64] + bytes([recid]), digest, hasher=None
        )
    except ValueError as exc:
        raise fail("bad-signature", "No public key can be recovered from the signature.") from exc
    if eth_address(pub.format()) != wanted:
        raise fail("address-mismatch", "The signature was made by a different address.")
    return "eip712" if _is_typed_data(message) else "eip191"


def _is_typed_data(message: bytes) -> bool:
    return message.lstrip().startswith(b"{")


def _eth_digest(message: bytes, fail: _Fail) -> bytes:
    """EIP-712 typed data (a JSON object) is signed by its digest; text by EIP-191."""
    if _is_typed_data(message):
        try:
            return parse_typed_data(message).digest
        except ColdvaultError as exc:
            detail = exc.message
            raise fail("malformed-message", f"The EIP-712 message is invalid: {detail}") from exc
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


# --- Solana -------------------------------------------------------------------------------


def _solana_key(address: str, fail: _Fail) -> bytes:
    try:
        pub = base58.decode(address) if 32 <= len(address) <= 44 else b""
    except ValueError:
        pub = b""
    if len(pub) != 32 or base58.encode(pub) != address:
        raise fail("malformed-address", "A Solana address is a base58 32-byte public key.")
    return bytes(pub)


def _verify_solana(address: str, message: bytes, signature: str | bytes, fail: _Fail) -> None:
    pub = _solana_key(address, fail)
    raw = _solana_signature(signature)
    if raw is None:
        seen = signature.strip()[:1] if isinstance(signature, str) else ""
        hint = (" It looks like JSON: encode the signature's 64 bytes as base58 or base64 "
                "instead." if seen in ("[", "{") else "")
        raise fail("malformed-signature",
                   "A Solana signature is 64 bytes, encoded as base58, base64 (standard "
                   f"alphabet, padded) or hex; this one decodes as none of them.{hint}")
    try:
        nacl.signing.VerifyKey(pub).verify(message, raw)
    except nacl.exceptions.BadSignatureError as exc:
        raise fail(
            "bad-signature", "The Ed25519 signature does not verify for this address."
        ) from exc
    except (nacl.exceptions.ValueError, nacl.exceptions.RuntimeError, TypeError) as exc:
        raise fail("malformed-address", "The Solana address is not a valid Ed25519 key.") from exc


def _solana_signature(signature: str | bytes) -> bytes | None:
    if isinstance(signature, bytes):
        return signature if len(signature) == 64 else None
    text = signature.strip()
    decoders = (
        lambda t: base58.decode(t) if 80 <= len(t) <= 90 else b"",
        lambda t: base64.b64decode(t, validate=True),
        lambda t: bytes.fromhex(t.removeprefix("0x")),
    )
    for decode in decoders:
        try:
            raw = decode(text)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 64:
            return bytes(raw)
    return None

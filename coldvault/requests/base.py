"""Value types shared by every request kind, policy, quorum and the audit trail."""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from coldvault.keys.keystore import KeyAlgorithm, Signature


class Chain(enum.StrEnum):
    BITCOIN = "bitcoin"
    ETHEREUM = "ethereum"
    SOLANA = "solana"


class MovementKind(enum.StrEnum):
    EXTERNAL = "external"  # value leaves the wallet: checked against whitelist and limits
    CHANGE = "change"  # value returns to the same wallet, proven by re-derivation
    CONTRACT_CALL = "contract-call"  # value/calldata to a contract (Ethereum)


@dataclass(frozen=True)
class Movement:
    """One flow of value. ``amount`` is in base units (sat, wei, lamports)."""

    kind: MovementKind
    asset: str  # "BTC", "ETH", "SOL"
    amount: int
    destination: str  # address as the chain writes it
    note: str = ""

    def __post_init__(self) -> None:
        if type(self.amount) is not int or self.amount < 0:
            raise ValueError("a movement's amount is a non-negative integer of base units")


@dataclass(frozen=True)
class Review:
    """Everything the operator is shown and the policy decides on. Nothing is signed that
    is not described here."""

    chain: Chain
    network: str  # "main", "test", "regtest", or an EVM chain id as string, "mainnet-beta"
    kind: str  # "psbt", "eth-transaction", "eth-personal-message", "eth-typed-data", ...
    wallet: str  # registered wallet name
    client: str  # client (segregated account) that owns the wallet
    movements: tuple[Movement, ...]
    fee: int | None  # base units; None when not applicable (messages)
    fee_rate: float | None = None  # sat/vB for Bitcoin, None elsewhere
    details: tuple[tuple[str, str], ...] = ()  # extra labelled lines (nonce, chain id, ...)
    warnings: tuple[str, ...] = ()
    #: sha256 of the exact request bytes as received: binds approvals to this request.
    request_digest: bytes = b""

    @property
    def external(self) -> tuple[Movement, ...]:
        return tuple(m for m in self.movements if m.kind is not MovementKind.CHANGE)

    @property
    def total_external(self) -> int:
        return sum(m.amount for m in self.external)

    @property
    def fingerprint(self) -> str:
        """Short request fingerprint shown to operator and approvers, e.g. ``"3F2A-9C01-77BE"``."""
        return request_fingerprint(self.request_digest)


def request_fingerprint(request_digest: bytes) -> str:
    """The short fingerprint of the request whose bytes have this SHA-256 (as the review
    shows it)."""
    h = hashlib.sha256(b"coldvault/request-fingerprint\x00" + request_digest).hexdigest()
    return "-".join(h[i : i + 4] for i in range(0, 12, 4)).upper()


@dataclass(frozen=True)
class SignJob:
    """One signature the HSM must make."""

    key_id: bytes
    algorithm: KeyAlgorithm
    #: secp256k1: the 32-byte digest; Ed25519: the full message.
    payload: bytes
    purpose: str  # e.g. "input 3", "transaction", "message"


@dataclass(frozen=True)
class AuditStamp:
    """The audit trail's position a signed response follows: the sequence number and hash
    of the request's ``signing`` entry. Carried inside the response bytes (docs/audit.md),
    so a coordinator can check the trail's continuity from the responses alone."""

    seq: int
    head: bytes  # the entry's SHA-256, 32 bytes

    def __post_init__(self) -> None:
        if isinstance(self.seq, bool) or not 0 <= self.seq < 2**63:
            raise ValueError("an audit sequence number is an integer 0..2**63-1")
        if len(self.head) != 32:
            raise ValueError("an audit head is a 32-byte SHA-256")


class Finisher(Protocol):
    """``finish(signatures, audit=stamp)``: verify each signature and build the response."""

    def __call__(
        self, signatures: Sequence[Signature], /, *, audit: AuditStamp | None = None
    ) -> bytes: ...


@dataclass(frozen=True)
class PreparedRequest:
    """A parsed, checked request ready for policy, approvals and signing."""

    review: Review
    jobs: tuple[SignJob, ...]
    #: Given one signature per job, in job order (an ``EcdsaSignature`` for a secp256k1 job,
    #: an ``Ed25519Signature`` for an Ed25519 job), verify each against our key and build
    #: the response payload bytes, carrying ``audit`` (the trail's head) when given.
    finish: Finisher = field(repr=False, compare=False)
    #: UR type of the response ("crypto-psbt", "eth-signature", "sol-signature").
    response_type: str = ""

"""M-of-N approvals by smart-card holders, bound to one request and single-use.

For every request session the appliance builds an :class:`ApprovalToken` (canonical bytes,
domain-separated, see docs/quorum.md); each approver's OpenPGP card signs those bytes
(PSO:CDS: Ed25519 cards sign the token itself, ECDSA cards sign ``SHA-256(token)``, which is
what :func:`coldvault.cards.signatures.card_input` returns). An :class:`ApprovalSession` checks each
``(card_serial, signature)`` against the roster and counts distinct holders; the card loop
(:mod:`coldvault.quorum.collect`) fills it one card at a time.

The one pre-PIN check is :meth:`Tally.precheck` (and :meth:`ApprovalSession.precheck`, which
adds the token's expiry and replay): an unknown card, a revoked card, a card of the wrong
role, a card the caller excludes and a second card of a holder already counted are refused
before anybody types a PIN.  :meth:`Tally.add` repeats those checks after the signature.

Only ``approver`` cards approve requests. ``admin`` cards approve configuration changes
(roster, policy, wallet registry: :mod:`coldvault.quorum.documents`) and nothing else, and
``backup-custodian`` cards approve nothing: separation of duties, so that no configuration
quorum can also move funds on its own.

Approvals are single-use: :meth:`ApprovalSession.consume` records each approval id (and the
token id) in a :class:`ReplayGuard` (the ledger) once the request is signed; an approval id is
``SHA-256(domain || SHA-256(token) || card serial)``, never the signature bytes, so
re-encoding an ECDSA signature (S -> n-S) cannot make a consumed approval look new.

The errors are in :mod:`coldvault.quorum.errors`.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import cbor2

from coldvault.cards.signatures import verify_card_signature
from coldvault.quorum.errors import (
    ApprovalExpired,
    ApprovalForOtherRequest,
    ApprovalReplayed,
    BadApprovalSignature,
    CardRevoked,
    DuplicateHolder,
    GroupNotNeeded,
    GroupsNotMet,
    MalformedToken,
    ThresholdNotMet,
    UnknownCard,
    WrongRole,
)
from coldvault.quorum.groups import NO_GROUPS, GroupQuota, GroupRequirement, describe
from coldvault.quorum.roster import CardHolder, Role, Roster
from coldvault.requests.base import Review

if TYPE_CHECKING:
    from coldvault.cards.openpgp import OpenPgpSession

__all__ = [
    "APPROVAL_ID_PREFIX",
    "DEFAULT_TTL_SECONDS",
    "MAX_TOKEN_BYTES",
    "NONCE_BYTES",
    "TOKEN_ID_PREFIX",
    "TOKEN_PREFIX",
    "Approval",
    "ApprovalSession",
    "ApprovalToken",
    "MemoryReplayGuard",
    "ReplayGuard",
    "Tally",
    "check_holder",
]

TOKEN_PREFIX = b"coldvault/approval-token/v1\x00"
APPROVAL_ID_PREFIX = b"coldvault/approval-id/v1\x00"
TOKEN_ID_PREFIX = b"coldvault/token-id/v1\x00"
MAX_TOKEN_BYTES = 1024
DEFAULT_TTL_SECONDS = 15 * 60
NONCE_BYTES = 16


# --------------------------------------------------------------------------- token
@dataclass(frozen=True)
class ApprovalToken:
    """What an approver's card signs. Field order in the bytes is fixed by canonical CBOR."""

    request_digest: bytes  # Review.request_digest (32 bytes)
    request_fingerprint: str  # Review.fingerprint, as shown on screen
    wallet: str
    client: str
    policy_version: int
    roster_version: int
    appliance_id: str
    session_nonce: bytes  # random, one per request session
    issued_at: int  # unix seconds, UTC
    expires_at: int
    required_approvals: int
    #: approvals required from named approver groups (written only when there are any)
    required_groups: GroupRequirement = GroupRequirement()

    @classmethod
    def for_review(
        cls,
        review: Review,
        *,
        policy_version: int,
        roster: Roster,
        required_approvals: int,
        required_groups: GroupRequirement = NO_GROUPS,
        now: int | None = None,
        ttl: int = DEFAULT_TTL_SECONDS,
        nonce: bytes | None = None,
    ) -> ApprovalToken:
        if len(review.request_digest) != 32:
            raise ValueError("review.request_digest must be the 32-byte SHA-256 of the request")
        issued = int(time.time()) if now is None else now
        return cls(
            request_digest=review.request_digest,
            request_fingerprint=review.fingerprint,
            wallet=review.wallet,
            client=review.client,
            policy_version=policy_version,
            roster_version=roster.version,
            appliance_id=roster.appliance_id,
            session_nonce=os.urandom(NONCE_BYTES) if nonce is None else nonce,
            issued_at=issued,
            expires_at=issued + ttl,
            required_approvals=required_approvals,
            required_groups=required_groups,
        )

    def _map(self) -> dict[str, Any]:
        groups = {"g": self.required_groups.as_dict()} if self.required_groups else {}
        return {
            **groups,
            "v": 1,
            "digest": self.request_digest,
            "fpr": self.request_fingerprint,
            "wallet": self.wallet,
            "client": self.client,
            "policy": self.policy_version,
            "roster": self.roster_version,
            "appliance": self.appliance_id,
            "nonce": self.session_nonce,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "m": self.required_approvals,
        }

    def to_bytes(self) -> bytes:
        data = TOKEN_PREFIX + cbor2.dumps(self._map(), canonical=True)
        if len(data) > MAX_TOKEN_BYTES:
            raise ValueError(f"approval token exceeds {MAX_TOKEN_BYTES} bytes; shorten names")
        return data

    @property
    def token_id(self) -> bytes:
        return hashlib.sha256(TOKEN_ID_PREFIX + self.to_bytes()).digest()

    def approval_id(self, card_serial: str) -> bytes:
        body = hashlib.sha256(self.to_bytes()).digest() + card_serial.encode()
        return hashlib.sha256(APPROVAL_ID_PREFIX + body).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> ApprovalToken:
        """Parse token bytes (untrusted); raise :class:`MalformedToken`."""
        if len(data) > MAX_TOKEN_BYTES or not data.startswith(TOKEN_PREFIX):
            raise MalformedToken("wrong prefix or too long")
        try:
            obj = cbor2.loads(data[len(TOKEN_PREFIX) :])
        except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
            raise MalformedToken(f"CBOR does not decode ({exc.__class__.__name__})") from exc
        expect = {
            "v": int, "digest": bytes, "fpr": str, "wallet": str, "client": str, "policy": int,
            "roster": int, "appliance": str, "nonce": bytes, "iat": int, "exp": int, "m": int,
        }  # fmt: skip
        if not isinstance(obj, dict) or set(obj) - {"g"} != set(expect) or obj["v"] != 1:
            raise MalformedToken("unexpected fields or version")
        for key, typ in expect.items():
            if not isinstance(obj[key], typ) or isinstance(obj[key], bool):
                raise MalformedToken(f"field {key} has the wrong type")
        token = cls(
            obj["digest"], obj["fpr"], obj["wallet"], obj["client"], obj["policy"], obj["roster"],
            obj["appliance"], obj["nonce"], obj["iat"], obj["exp"], obj["m"],
            _token_groups(obj.get("g", {})),
        )  # fmt: skip
        if token.to_bytes() != data:
            raise MalformedToken("not in canonical form")
        return token


def _token_groups(value: object) -> GroupRequirement:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in value.items()
    ):
        raise MalformedToken("field g is not a map of group names to counts")
    try:
        return GroupRequirement.of(value)
    except ValueError as exc:
        raise MalformedToken(f"field g: {exc}") from exc


# --------------------------------------------------------------------------- counting
@dataclass(frozen=True)
class Approval:
    card_serial: str
    holder: str
    site: str
    signature: bytes = field(repr=False)
    approval_id: bytes = field(repr=False, default=b"")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, for the audit trail's ``approval`` entry."""
        return {
            "card_serial": self.card_serial,
            "holder": self.holder,
            "site": self.site,
            "signature": self.signature.hex(),
            "approval_id": self.approval_id.hex(),
        }


def check_holder(roster: Roster, card_serial: str, role: Role | None) -> CardHolder:
    """The roster entry of an active card of ``role`` (None: any role), or the exact error."""
    holder = roster.holder(card_serial)
    if holder is None:
        raise UnknownCard(card_serial, roster.version)
    if not holder.active:
        raise CardRevoked(card_serial, holder.holder, roster.version)
    if role is not None and holder.role is not role:
        raise WrongRole(card_serial, holder.holder, holder.role.value, role.value)
    return holder


class Tally:
    """Distinct-holder counting of card signatures over fixed bytes (requests, configuration
    documents, ceremony approvals and witnesses).

    ``role``: the role whose active cards count (None: any active card, e.g. witnesses).
    ``exclude``: called with each holder before the card is counted (and, through
    :meth:`precheck`, before its PIN is asked); it raises a :class:`QuorumError` to refuse
    the card, e.g. the card a roster change revokes."""

    def __init__(
        self,
        roster: Roster,
        role: Role | None,
        data: bytes,
        threshold: int,
        *,
        exclude: Callable[[CardHolder], None] | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.roster, self.role, self.data, self.threshold = roster, role, data, threshold
        self.exclude = exclude
        self._by_holder: dict[str, Approval] = {}

    def _eligible(self, card_serial: str) -> CardHolder:
        holder = check_holder(self.roster, card_serial, self.role)
        if self.exclude is not None:
            self.exclude(holder)
        return holder

    def _refuse_counted(self, card_serial: str, holder: CardHolder) -> None:
        counted = self._by_holder.get(holder.holder_id)
        if counted is not None:
            raise DuplicateHolder(card_serial, holder.holder, counted.card_serial)

    def precheck(self, card_serial: str, card: OpenPgpSession | None = None) -> CardHolder:
        """Could this card count?  Raise, before its holder types a PIN, the exact error for
        an unknown card, a revoked card, a card of the wrong role, a card ``exclude`` refuses
        and a card whose holder is already counted.  (``card``, the opened card, is not
        needed: the roster says whose it is.)"""
        holder = self._eligible(card_serial)
        self._refuse_counted(card_serial, holder)
        return holder

    def add(self, card_serial: str, signature: bytes, *, approval_id: bytes = b"") -> Approval:
        """Verify one card's signature over :attr:`data` and count its holder, or raise the
        exact :class:`QuorumError` (the :meth:`precheck` errors, or
        :class:`BadApprovalSignature`)."""
        holder = self._eligible(card_serial)
        if not verify_card_signature(holder.algorithm, holder.public_key, self.data, signature):
            raise BadApprovalSignature(card_serial, holder.holder)
        self._refuse_counted(card_serial, holder)
        approval = Approval(card_serial, holder.holder, holder.site, signature, approval_id)
        self._by_holder[holder.holder_id] = approval
        return approval

    @property
    def approvals(self) -> tuple[Approval, ...]:
        return tuple(self._by_holder.values())

    @property
    def count(self) -> int:
        return len(self._by_holder)

    @property
    def still_needed(self) -> str:
        """Approver groups still short (a plain tally has none)."""
        return ""

    @property
    def satisfied(self) -> bool:
        return self.count >= self.threshold


# --------------------------------------------------------------------------- replay guard
class ReplayGuard(Protocol):
    """Durable record of consumed approvals (the ledger implements it)."""

    def is_consumed(self, approval_id: bytes) -> bool: ...

    def consume(self, approval_ids: Sequence[bytes], *, request_digest: bytes) -> None:
        """Record all ids atomically; raise :class:`ApprovalReplayed` if any was recorded."""
        ...


class MemoryReplayGuard:
    """In-memory :class:`ReplayGuard` for tests and ceremonies that keep no ledger."""

    def __init__(self) -> None:
        self._ids: set[bytes] = set()

    def is_consumed(self, approval_id: bytes) -> bool:
        return approval_id in self._ids

    def consume(self, approval_ids: Sequence[bytes], *, request_digest: bytes) -> None:
        if any(i in self._ids for i in approval_ids):
            raise ApprovalReplayed("", request_digest.hex()[:16])
        self._ids.update(approval_ids)


# --------------------------------------------------------------------------- session
class ApprovalSession:
    """Collects approvals for one token. ``now`` is a clock returning unix seconds."""

    def __init__(
        self,
        roster: Roster,
        token: ApprovalToken,
        threshold: int | None = None,
        *,
        guard: ReplayGuard | None = None,
        now: Callable[[], int] = lambda: int(time.time()),
        recent_tokens: Collection[bytes] = (),
    ) -> None:
        if token.roster_version != roster.version or token.appliance_id != roster.appliance_id:
            raise ValueError("the token was built for another roster version or appliance")
        need = token.required_approvals if threshold is None else threshold
        if need < token.required_approvals:
            raise ValueError("threshold is below what the token states")
        need = max(need, token.required_groups.total)
        self.roster, self.token, self.guard, self._now = roster, token, guard, now
        self.token_bytes = token.to_bytes()
        self.groups = GroupQuota(token.required_groups, need)
        self._tally = Tally(
            roster, Role.APPROVER, self.token_bytes, need, exclude=self._check_group
        )
        self._recent = tuple(t for t in recent_tokens if t != self.token_bytes)
        self._consumed = False

    @property
    def data(self) -> bytes:
        """What every approver's card signs: the token bytes."""
        return self.token_bytes

    @property
    def threshold(self) -> int:
        return self._tally.threshold

    @property
    def approvals(self) -> tuple[Approval, ...]:
        return self._tally.approvals

    @property
    def satisfied(self) -> bool:
        return self._tally.satisfied and not self.still_needed and not self.expired

    def _counted(self) -> list[CardHolder]:
        holders = (self.roster.holder(a.card_serial) for a in self._tally.approvals)
        return [h for h in holders if h is not None]

    @property
    def still_needed(self) -> str:
        """The approver groups still short, e.g. ``1 from compliance`` (``""``: none)."""
        return describe(self.groups.still_needed(self._counted()))

    def _check_group(self, holder: CardHolder) -> None:
        counted = self._counted()
        if any(h.holder_id == holder.holder_id for h in counted):
            return  # the duplicate-holder check names this case
        if not self.groups.can_count(counted, holder):
            raise GroupNotNeeded(holder.serial, holder.holder, holder.groups, self.still_needed)

    @property
    def expired(self) -> bool:
        return self._now() >= self.token.expires_at

    def _check_open(self, card_serial: str) -> None:
        now = self._now()
        if now >= self.token.expires_at:
            raise ApprovalExpired(self.token.request_fingerprint, self.token.expires_at, now)
        replayed = self._consumed
        if self.guard is not None:
            replayed = replayed or self.guard.is_consumed(self.token.token_id)
            replayed = replayed or self.guard.is_consumed(self.token.approval_id(card_serial))
        if replayed:
            raise ApprovalReplayed(card_serial, self.token.request_fingerprint)

    def precheck(self, card_serial: str, card: OpenPgpSession | None = None) -> CardHolder:
        """Could this card's approval count?  Raise before the PIN is asked: the token
        expired (:class:`ApprovalExpired`) or was used (:class:`ApprovalReplayed`), then
        :meth:`Tally.precheck` (unknown, revoked, not an approver, holder already counted)."""
        self._check_open(card_serial)
        return self._tally.precheck(card_serial)

    def add(
        self, card_serial: str, signature: bytes, *, signed_token: bytes | None = None
    ) -> Approval:
        """Verify and count one approval; raise the specific :class:`QuorumError` otherwise.

        ``signed_token``: the bytes the card was actually given, if the front end knows them;
        used only to tell "approval for another request" from "bad signature"."""
        self._check_open(card_serial)
        if signed_token is not None and signed_token != self.token_bytes:
            self._raise_if_other(card_serial, signature, (signed_token,))
        try:
            return self._tally.add(
                card_serial, signature, approval_id=self.token.approval_id(card_serial)
            )
        except BadApprovalSignature:
            self._raise_if_other(card_serial, signature, self._recent)
            raise

    def _raise_if_other(
        self, card_serial: str, signature: bytes, candidates: Iterable[bytes]
    ) -> None:
        holder = self.roster.holder(card_serial)
        if holder is None:
            return
        for other in candidates:
            if verify_card_signature(holder.algorithm, holder.public_key, other, signature):
                try:
                    fpr = ApprovalToken.from_bytes(other).request_fingerprint
                except MalformedToken:
                    fpr = "(unreadable token)"
                raise ApprovalForOtherRequest(card_serial, self.token.request_fingerprint, fpr)

    def require_satisfied(self) -> tuple[Approval, ...]:
        """Return the approvals, or raise :class:`ApprovalExpired` / :class:`ThresholdNotMet`."""
        now = self._now()
        if now >= self.token.expires_at:
            raise ApprovalExpired(self.token.request_fingerprint, self.token.expires_at, now)
        if not self._tally.satisfied:
            raise ThresholdNotMet(
                f"Request {self.token.request_fingerprint}", self._tally.count, self.threshold
            )
        if self.still_needed:
            raise GroupsNotMet(f"Request {self.token.request_fingerprint}", self.still_needed)
        return self.approvals

    def consume(self) -> tuple[Approval, ...]:
        """Mark the token and its approvals used (call before signing; persists via the guard)."""
        approvals = self.require_satisfied()
        if self._consumed:
            raise ApprovalReplayed("", self.token.request_fingerprint)
        ids = [self.token.token_id] + [a.approval_id for a in approvals]
        if self.guard is not None:
            self.guard.consume(ids, request_digest=self.token.request_digest)
        self._consumed = True
        return approvals

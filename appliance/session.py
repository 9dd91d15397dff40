"""One request, from an assembled QR payload to response frames.

This is where a QR frame becomes a signature. The order is fixed and every step is audited
(durably, fsync'd) *before* the next one acts:

1. ``request-received``  the exact bytes' SHA-256, format and type
2. prepare               parse + structural safety checks (coldvault.requests.dispatch)
3. ``review`` / ``decision``  what the operator sees and what the policy decided
4. operator confirmation
5. approvals             M-of-N cards sign the approval token (``approval`` / ``approval-refused``)
6. ``signing``           approvals consumed (single use) and recorded, then the HSM signs
7. ``signature``         the response stored (pending, fsync'd), then this entry (request and
                         response digests, the audit head at signing), then the response
                         committed and the ledger updated; response frames returned

Any refusal is recorded (``refusal``) with the specific error and re-raised for the front end.
A request whose response is stored (it was signed) is never signed again: it is re-shown
(``reshown``) from the store (coldvault.records.responses). A failure after the ``signature``
entry is :class:`SignedNotShown`, never "nothing was signed".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from appliance.states import State, StateMachine
from coldvault.errors import Cancelled, ColdvaultError, QuorumError, Unfinished
from coldvault.keys.keystore import KeyInfo, Signer, held_key
from coldvault.policy import Decision, Policy
from coldvault.quorum.approvals import Approval, ApprovalSession, ApprovalToken, ReplayGuard
from coldvault.quorum.roster import Roster
from coldvault.records.audit import review_fields
from coldvault.records.responses import ResponseStore, StoredResponse
from coldvault.requests.base import AuditStamp, PreparedRequest, Review
from coldvault.requests.dispatch import prepare_request
from coldvault.requests.wallets import Wallet
from coldvault.transport.formats import Received
from coldvault.transport.reply import FrameStream, reply_to


class AuditSink(Protocol):
    def append(self, event: str, fields: Mapping[str, object]) -> object: ...


class LedgerSink(Protocol):
    """What the session needs from the ledger (coldvault.records.ledger.Ledger)."""

    def day_totals(self, wallet: str) -> dict[str, int]: ...

    def record_received(self, review: Review) -> None: ...

    def mark_approved(
        self, request_digest: bytes, approvals: Sequence[Approval], *, required: int,
        policy_version: int,
    ) -> None: ...

    def mark_signed(self, request_digest: bytes) -> None: ...

    def mark_refused(self, request_digest: bytes, reason: str) -> None: ...

    def status(self, request_digest: bytes) -> str | None: ...


class Ui(Protocol):
    """The operator console (appliance/console.py); scripted front ends implement it too."""

    def show_review(self, review: Review, decision: Decision) -> None: ...

    def confirm(self, question: str) -> bool: ...

    def info(self, text: str) -> None: ...

    def warn(self, text: str) -> None: ...


class ApprovalCollector(Protocol):
    """Drives the cards at the console until the approval session is satisfied."""

    def collect(
        self,
        approvals: ApprovalSession,
        *,
        on_approved: Callable[[str, str], None],
        on_refused: Callable[[str, ColdvaultError], None],
    ) -> None: ...


class RequestFailed(ColdvaultError):
    """An unexpected failure while handling a request: refused, audited, nothing signed."""

    code = "internal"

    def __init__(self, kind: str) -> None:
        super().__init__(
            f"The request could not be handled ({kind}); it was refused and nothing was signed. "
            "The audit trail records the refusal; engineering should investigate."
        )
        self.kind = kind


class SignedNotShown(Unfinished):
    """The request WAS signed and its response stored, but it could not be shown: not bad
    input and not a refusal (exit 3); presenting the request again re-shows the response."""

    code = "signed-not-shown"

    def __init__(self, fingerprint: str, kind: str) -> None:
        super().__init__(
            f"Request {fingerprint} WAS signed and its response is stored, but showing it "
            f"failed ({kind}). Present the same request again to re-show the stored response; "
            "it will not be signed twice."
        )
        self.fingerprint = fingerprint
        self.kind = kind


@dataclass
class SessionResult:
    review: Review
    decision: Decision | None  # None: a stored response re-shown, no new decision
    approvals: tuple[str, ...]
    response: bytes
    response_type: str
    frames: FrameStream
    #: the audit trail's head when the request was signed (its ``signing`` entry)
    audit_seq: int = -1
    audit_head: str = ""
    reshown: bool = False


def _no_checkpoint(point: str) -> None:
    """Production: nothing. Crash tests replace :attr:`SigningSession.checkpoint`."""


class SigningSession:
    """Everything one request needs; front ends build it once and call :meth:`process`."""

    def __init__(
        self,
        *,
        keystore: Signer,
        wallets: Mapping[str, Wallet],
        policy: Policy,
        roster: Roster,
        audit: AuditSink,
        ledger: LedgerSink,
        replay_guard: ReplayGuard,
        collector: ApprovalCollector,
        ui: Ui,
        approval_ttl: int = 900,
        fragment_len: int | None = None,
        day_totals: Callable[[str], dict[str, int]] | None = None,
        responses: ResponseStore | None = None,
    ) -> None:
        self.keystore, self.wallets, self.policy, self.roster = keystore, wallets, policy, roster
        self.audit, self.ledger, self.guard = audit, ledger, replay_guard
        self.collector, self.ui = collector, ui
        self.approval_ttl, self.fragment_len = approval_ttl, fragment_len
        self.machine = StateMachine()
        #: per-day totals for the limits; the appliance passes the verified trail's
        #: (coldvault.records.reconcile.TrailTotals), never the ledger's alone
        self.day_totals = day_totals or ledger.day_totals
        self.responses = responses
        #: called with the name of each durable step (crash tests kill the process there)
        self.checkpoint: Callable[[str], None] = _no_checkpoint

    # -- helpers -----------------------------------------------------------------------
    def _lookup_key(self, key_id: bytes) -> KeyInfo | None:
        """``None`` only when the HSM does not hold the key; an HSM failure propagates and
        refuses the request as what it is (never as "the HSM holds no key")."""
        return held_key(self.keystore, key_id)

    # -- the flow ----------------------------------------------------------------------
    def process(self, received: Received) -> SessionResult:
        """Run one assembled request to its response frames, or raise the refusal."""
        machine = self.machine
        if machine.state is State.IDLE:
            machine.to(State.RECEIVING)
        digest = hashlib.sha256(received.payload).digest()
        review: Review | None = None
        signed = False
        try:
            self.audit.append(
                "request-received",
                {
                    "sha256": digest.hex(),
                    "format": str(received.format),
                    "ur_type": received.ur_type,
                    "bytes": len(received.payload),
                },
            )
            prepared = prepare_request(
                received, wallets=self.wallets, lookup_key=self._lookup_key, request_digest=digest
            )
            stored = self.responses.get(digest.hex()) if self.responses else None
            if stored is not None:
                return self._reshow(received, prepared, stored)
            self.ledger.record_received(prepared.review)  # refuses a request already signed
            self.checkpoint("received")
            review = prepared.review
            machine.to(State.REVIEW)
            decision = self.policy.evaluate(review, day_total=self.day_totals(review.wallet))
            self.audit.append("review", review_fields(review))
            self.audit.append("decision", decision.to_dict())
            self.ui.show_review(review, decision)
            decision.enforce()
            groups = decision.required_groups
            of_groups = f" ({groups})" if groups else ""
            if not self.ui.confirm(
                f"Collect {decision.required_approvals} approvals{of_groups} for request "
                f"{review.fingerprint}?"
            ):
                raise Cancelled("The operator declined the request at review; nothing was signed.")

            machine.to(State.COLLECTING_APPROVALS)
            token = ApprovalToken.for_review(
                review,
                policy_version=self.policy.version,
                roster=self.roster,
                required_approvals=decision.required_approvals,
                required_groups=decision.required_groups,
                ttl=self.approval_ttl,
            )
            approvals = ApprovalSession(self.roster, token, guard=self.guard)
            self.audit.append(
                "approval-token",
                {"fingerprint": review.fingerprint, "token_id": token.token_id.hex(),
                 "required": decision.required_approvals,
                 "required_groups": decision.required_groups.as_dict(),
                 "expires_at": token.expires_at,
                 "roster_version": self.roster.version, "policy_version": self.policy.version},
            )

            def approved(serial: str, holder: str) -> None:
                self.audit.append(
                    "approval", {"fingerprint": review.fingerprint if review else "",
                                 "card": serial, "holder": holder}
                )

            def refused(serial: str, err: ColdvaultError) -> None:
                self.audit.append(
                    "approval-refused",
                    {"fingerprint": review.fingerprint if review else "", "card": serial,
                     **_error_fields(err)},
                )

            self.collector.collect(approvals, on_approved=approved, on_refused=refused)
            used = approvals.consume()  # single use, persisted in the ledger before signing
            self.ledger.mark_approved(
                digest, used, required=decision.required_approvals,
                policy_version=self.policy.version,
            )
            self.checkpoint("approved")

            machine.to(State.SIGNING)
            signing = self.audit.append(
                "signing",
                {
                    "fingerprint": review.fingerprint,
                    "approvals": [a.card_serial for a in used],
                    "keys": [job.key_id.hex() for job in prepared.jobs],
                    "purposes": [job.purpose for job in prepared.jobs],
                },
            )
            self.checkpoint("signing-audited")
            signatures = self.keystore.sign_all(prepared.jobs)
            self.checkpoint("hsm-signed")
            seq, head = int(getattr(signing, "seq", -1)), str(getattr(signing, "hash", ""))
            # the response carries the audit head it follows (docs/audit.md)
            response = prepared.finish(signatures, audit=_stamp(seq, head))
            stored = StoredResponse(digest.hex(), prepared.response_type, response, seq, head)
            if self.responses is not None:
                self.responses.put_pending(stored)
                self.checkpoint("response-pending")
            self.audit.append(
                "signature",
                {
                    "fingerprint": review.fingerprint,
                    "sha256": digest.hex(),
                    "response_type": prepared.response_type,
                    "response_sha256": stored.sha256,
                    "signatures": len(signatures),
                    "audit_seq": stored.audit_seq,
                    "audit_head": stored.audit_head,
                },
            )
            signed = True
            self.checkpoint("signature-audited")
            if self.responses is not None:
                self.responses.commit(digest.hex())
                self.checkpoint("response-committed")
            self.ledger.mark_signed(digest)
            self.checkpoint("ledger-signed")
            frames = reply_to(
                received, response, ur_type=prepared.response_type,
                max_fragment_len=self.fragment_len,
            )
            machine.to(State.SHOWING_RESPONSE)
            return SessionResult(
                review=review,
                decision=decision,
                approvals=tuple(a.card_serial for a in used),
                response=response,
                response_type=prepared.response_type,
                frames=frames,
                audit_seq=stored.audit_seq,
                audit_head=stored.audit_head,
            )
        except ColdvaultError as err:
            if signed:
                raise self._not_shown(err, digest, review) from err
            self._refuse(err, digest, review)
            raise
        except (KeyboardInterrupt, EOFError) as exc:
            if signed:
                raise self._not_shown(exc, digest, review) from exc
            cancelled = Cancelled("The operator cancelled the request; nothing was signed.")
            self._refuse(cancelled, digest, review)
            raise cancelled from exc
        except Exception as exc:  # noqa: BLE001 - a bug must refuse the request, not crash
            if signed:
                raise self._not_shown(exc, digest, review) from exc
            failed = RequestFailed(type(exc).__name__)
            self._refuse(failed, digest, review)
            raise failed from exc

    def _not_shown(
        self, exc: BaseException, digest: bytes, review: Review | None
    ) -> SignedNotShown:
        """After the ``signature`` entry nothing may say "nothing was signed"."""
        kind = exc.code if isinstance(exc, ColdvaultError) else type(exc).__name__
        self.audit.append("response", {"shown": False, "sha256": digest.hex(), "error": kind})
        self.machine.reset()
        return SignedNotShown(review.fingerprint if review else digest.hex()[:16], kind)

    def _reshow(
        self, received: Received, prepared: PreparedRequest, stored: StoredResponse
    ) -> SessionResult:
        """A request already signed: its stored response again, never a second signature."""
        review = prepared.review
        self.audit.append(
            "reshown",
            {"fingerprint": review.fingerprint, "sha256": stored.digest,
             "response_sha256": stored.sha256, "audit_seq": stored.audit_seq,
             "audit_head": stored.audit_head},
        )
        frames = reply_to(
            received, stored.response, ur_type=stored.response_type,
            max_fragment_len=self.fragment_len,
        )
        self.machine.to(State.SHOWING_RESPONSE)
        return SessionResult(
            review=review, decision=None, approvals=(), response=stored.response,
            response_type=stored.response_type, frames=frames, audit_seq=stored.audit_seq,
            audit_head=stored.audit_head, reshown=True,
        )

    def _refuse(self, err: ColdvaultError, digest: bytes, review: Review | None) -> None:
        self.audit.append(
            "refusal",
            {"fingerprint": review.fingerprint if review else "", "sha256": digest.hex(),
             "state": self.machine.state.value, **_error_fields(err)},
        )
        if review is not None and self.ledger.status(digest) in ("received", "approved"):
            self.ledger.mark_refused(digest, f"{err.code}: {err.message}")
        self.machine.reset()

    def done(self) -> None:
        """The response was shown (or the operator moved on): back to idle."""
        self.audit.append("response", {"shown": True})
        self.machine.reset()


def _stamp(seq: int, head: str) -> AuditStamp | None:
    """The audit head a response carries (None only for an audit double without one)."""
    try:
        return AuditStamp(seq, bytes.fromhex(head))
    except ValueError:
        return None


def _error_fields(err: ColdvaultError) -> dict[str, object]:
    data = err.to_dict()
    return {"error": data.get("error"), "reason": err.message,
            **({"rule": data["rule"]} if "rule" in data else {}),
            **({"quorum": True} if isinstance(err, QuorumError) else {})}

"""The one card-approval loop: one card at a time until enough distinct holders have signed.

Everything that collects card signatures goes through :func:`collect_signatures`:

* the appliance's request approvals (an :class:`~coldvault.quorum.approvals.ApprovalSession`:
  approver cards sign the approval token);
* the ceremonies' admin approvals of documents and ceremonies (a
  :class:`~coldvault.quorum.approvals.Tally` of admin cards);
* ceremony transcript witnesses (:func:`collect_witness`: any active roster card, or without a
  roster any card on its own key, :class:`UnlistedCards`).

The loop knows no terminal and no card library.  It talks to people through an
:class:`ApprovalUi` (every prompt is a method, so a console, a pexpect-driven terminal or a
scripted test can answer it) and gets cards from a :class:`~coldvault.cards.access.CardAccess`
(``coldvault.backends.pcsc.PcscCardAccess``, or the virtual card in-process).

One card's turn:

1. ``ui.ask_for_card``; ``cards.wait_for_card()`` returns the reader; ``cards.open`` selects
   the card's OpenPGP application, and its ``card_id`` names it.
2. The pre-PIN check.  Nothing is asked of the holder until it passes:

   * an emulated (test) card unless ``allow_emulated``: :class:`EmulatedCardRefused`;
   * ``quorum.precheck``: an unknown card, a revoked card, a card of the wrong role, a card
     the caller excludes, a second card of a holder who already signed (and, for requests,
     an expired or already used token).

3. ``ui.show_card``, ``ui.ask_pin``; VERIFY PW1 (81, good for one signature); PSO:CDS over
   :func:`~coldvault.cards.signatures.card_input` of ``quorum.data``; ``quorum.add`` verifies
   the signature over the data and counts the holder.
4. ``ui.show_approval`` or ``ui.show_refusal`` (the card is still in the reader, so its holder
   sees why); the card is closed (reset); ``ui.ask_to_remove_card``;
   ``cards.wait_for_removal``.

A refusal of one card (any :class:`QuorumError`, :class:`AuthError` or :class:`HardwareError`
raised while the card is in hand: wrong PIN, card pulled mid-signature, unknown card...) is
shown and the next card is asked for, up to ``max_attempts`` cards in all
(:class:`CardAttemptsExhausted`).  Everything else ends the loop: an insertion or removal
wait that timed out or lost its reader, the approval window closing
(:class:`ApprovalExpired`, raised once the card is out of the reader), any other error.

The operator cancels by making a UI method or a wait raise
:class:`~coldvault.errors.Cancelled`, ``KeyboardInterrupt`` (Ctrl-C) or ``EOFError``
(console closed): the card in hand is closed and :class:`Cancelled` is raised; nothing is
returned and nothing was signed on the caller's behalf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from coldvault.cards.access import CardAccess
from coldvault.cards.errors import EmulatedCardRefused
from coldvault.cards.openpgp import OpenPgpSession, Pw
from coldvault.cards.signatures import card_input, verify_card_signature
from coldvault.errors import AuthError, Cancelled, ColdvaultError, HardwareError, QuorumError
from coldvault.quorum.approvals import Approval, Tally
from coldvault.quorum.errors import (
    ApprovalExpired,
    BadApprovalSignature,
    CardAttemptsExhausted,
    CardKeyUnusable,
    DuplicateHolder,
)
from coldvault.quorum.roster import CardHolder, Roster, normalise_holder

#: Cards offered (counted or refused) before the loop gives up.
MAX_ATTEMPTS = 10
#: The role recorded for a witness whose card is in no roster.
UNLISTED_ROLE = "witness"


class Signatory(Protocol):
    """Whose card passed the pre-PIN check, and how it signs (a roster
    :class:`~coldvault.quorum.roster.CardHolder`, or an :class:`UnlistedCard`)."""

    @property
    def serial(self) -> str: ...

    @property
    def holder(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def site(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    @property
    def public_key(self) -> bytes: ...


class Quorum(Protocol):
    """What the loop fills: a :class:`~coldvault.quorum.approvals.Tally`, an
    :class:`~coldvault.quorum.approvals.ApprovalSession` or :class:`UnlistedCards`."""

    @property
    def data(self) -> bytes:
        """The bytes every card signs (through :func:`card_input`)."""
        ...

    @property
    def threshold(self) -> int: ...

    @property
    def approvals(self) -> tuple[Approval, ...]: ...

    @property
    def satisfied(self) -> bool: ...

    @property
    def still_needed(self) -> str:
        """Approver groups still short, in words (``""``: none or not applicable)."""
        ...

    def precheck(self, card_serial: str, card: OpenPgpSession) -> Signatory:
        """Raise the exact error, before any PIN, for a card that could not count."""
        ...

    def add(self, card_serial: str, signature: bytes) -> Approval:
        """Verify the card's signature over :attr:`data` and count it, or raise."""
        ...


class ApprovalUi(Protocol):
    """The person at the reader.  Each method is one prompt or one message."""

    def ask_for_card(self, number: int, threshold: int) -> None:
        """Ask for the next card: signature ``number`` of the ``threshold`` needed."""
        ...

    def show_card(self, who: Signatory, *, emulated: bool) -> None:
        """The card passed the pre-PIN check: say whose it is and what it signs."""
        ...

    def ask_pin(self, who: Signatory) -> str:
        """The holder's card PIN, read hidden.  Never stored, logged or echoed."""
        ...

    def show_refusal(self, card_serial: str, error: ColdvaultError) -> None:
        """This card does not count, and why (``card_serial`` is ``""`` if it was unreadable)."""
        ...

    def show_approval(self, approval: Approval, count: int, threshold: int) -> None:
        """This card's signature counted: ``count`` of ``threshold``."""
        ...

    def ask_to_remove_card(self) -> None:
        """The card's turn is over: take it out of the reader."""
        ...


def collect_signatures(
    quorum: Quorum,
    ui: ApprovalUi,
    cards: CardAccess,
    *,
    what: str,
    allow_emulated: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[Approval, ...]:
    """Collect card signatures over ``quorum.data`` until ``quorum`` is satisfied; return its
    approvals in signing order.  ``what`` names the collection in errors ("the approvals for
    request 0CB6-098C-78C2").  See the module docstring for the whole contract."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempts = 0
    try:
        while not quorum.satisfied:
            if attempts >= max_attempts:
                raise CardAttemptsExhausted(
                    what, have=len(quorum.approvals), need=quorum.threshold,
                    missing=quorum.still_needed,
                )  # fmt: skip
            attempts += 1
            ui.ask_for_card(len(quorum.approvals) + 1, quorum.threshold)
            reader = cards.wait_for_card()
            final = _one_card(quorum, ui, cards, reader, allow_emulated=allow_emulated)
            ui.ask_to_remove_card()
            cards.wait_for_removal(reader)
            if final is not None:
                raise final
    except (KeyboardInterrupt, EOFError) as exc:
        raise Cancelled(f"Collecting {what} was cancelled; nothing was signed.") from exc
    return quorum.approvals


def _one_card(
    quorum: Quorum, ui: ApprovalUi, cards: CardAccess, reader: str, *, allow_emulated: bool
) -> ColdvaultError | None:
    """One card's turn up to its removal.  Returns the error that ends the whole collection
    once the card is out of the reader (the approval window closed), else None."""
    serial = ""
    try:
        with cards.open(reader) as card:
            serial = card.card_id
            emulated = cards.is_emulated(card)
            if emulated and not allow_emulated:
                raise EmulatedCardRefused(serial)
            who = quorum.precheck(serial, card)
            ui.show_card(who, emulated=emulated)
            pin = ui.ask_pin(who)
            try:
                card.verify_pin(pin, Pw.SIGN)
            finally:
                del pin
            signature = card.sign(card_input(who.algorithm, quorum.data))
            approval = quorum.add(serial, signature)
    except (QuorumError, AuthError, HardwareError) as err:
        ui.show_refusal(serial, err)
        return err if isinstance(err, ApprovalExpired) else None  # no later card could count
    ui.show_approval(approval, len(quorum.approvals), quorum.threshold)
    return None


# --------------------------------------------------------------------------- witnesses
@dataclass(frozen=True)
class UnlistedCard:
    """A card in no roster, trusted for the key and name it reports itself."""

    serial: str
    holder: str
    algorithm: str
    public_key: bytes = field(repr=False)
    role: str = UNLISTED_ROLE
    site: str = ""


class UnlistedCards:
    """Counts signatures of cards that are in no roster (ceremony witnesses when the ceremony
    has no roster): each card is checked against the public key it reports, and a card or a
    cardholder name counts once, here and among ``earlier`` signatories."""

    def __init__(self, data: bytes, threshold: int = 1, *, earlier: Sequence[Signatory] = ()):
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.data, self.threshold = data, threshold
        self._earlier = tuple(earlier)
        self._cards: dict[str, UnlistedCard] = {}
        self._approvals: list[Approval] = []

    def card(self, card_serial: str) -> UnlistedCard:
        """The card a :meth:`precheck` described."""
        return self._cards[card_serial]

    def precheck(self, card_serial: str, card: OpenPgpSession) -> UnlistedCard:
        algorithm = card.algorithm()
        if algorithm is None:
            raise CardKeyUnusable(card_serial)
        who = UnlistedCard(
            card_serial, card.cardholder_name() or f"card {card_serial}", algorithm.value,
            card.public_key(),
        )  # fmt: skip
        counted = [*self._earlier, *(self._cards[a.card_serial] for a in self._approvals)]
        for other in counted:
            if other.serial == card_serial or (
                normalise_holder(other.holder) == normalise_holder(who.holder)
            ):
                raise DuplicateHolder(card_serial, who.holder, other.serial)
        self._cards[card_serial] = who
        return who

    def add(self, card_serial: str, signature: bytes) -> Approval:
        who = self._cards.get(card_serial)
        if who is None:
            raise ValueError(f"card {card_serial} was not prechecked")
        if not verify_card_signature(who.algorithm, who.public_key, self.data, signature):
            raise BadApprovalSignature(card_serial, who.holder)
        approval = Approval(card_serial, who.holder, who.site, signature)
        self._approvals.append(approval)
        return approval

    @property
    def approvals(self) -> tuple[Approval, ...]:
        return tuple(self._approvals)

    @property
    def satisfied(self) -> bool:
        return len(self._approvals) >= self.threshold

    @property
    def still_needed(self) -> str:
        return ""


def collect_witness(
    ui: ApprovalUi,
    cards: CardAccess,
    message: bytes,
    *,
    roster: Roster | None,
    earlier: Sequence[Signatory] = (),
    what: str,
    allow_emulated: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> tuple[Signatory, Approval]:
    """One more witness signs ``message`` (a transcript's close message): any active card of
    ``roster`` whose holder is not among ``earlier`` witnesses, or, without a roster, any card
    on its own key (:class:`UnlistedCards`).  Returns who signed and the approval."""
    if roster is None:
        unlisted = UnlistedCards(message, earlier=earlier)
        (approval,) = collect_signatures(
            unlisted, ui, cards, what=what, allow_emulated=allow_emulated,
            max_attempts=max_attempts,
        )  # fmt: skip
        return unlisted.card(approval.card_serial), approval
    witnessed = {normalise_holder(s.holder): s.serial for s in earlier}

    def not_twice(holder: CardHolder) -> None:
        if holder.holder_id in witnessed:
            raise DuplicateHolder(holder.serial, holder.holder, witnessed[holder.holder_id])

    tally = Tally(roster, None, message, 1, exclude=not_twice)
    (approval,) = collect_signatures(
        tally, ui, cards, what=what, allow_emulated=allow_emulated, max_attempts=max_attempts
    )
    holder = roster.holder(approval.card_serial)
    if holder is None:  # counted, so listed
        raise ValueError("a counted card is missing from the roster")
    return holder, approval

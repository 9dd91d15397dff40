"""The signing-session scenario table, run two ways (tests/session/test_in_process.py and
tests/session/test_cli.py) against the same kind of world (tests/session/world.py).

A scenario names the request the coordinator sends, what the operator answers at review,
which cards are presented for approval (in order; when the script ends, nobody inserts a
card any more), and what must come out: the error code (``None``: signed), the documented
exit status (coldvault.errors: 0 done, 1 refused or cancelled, 2 bad input or a missing
device), the audit events of the request, and the ledger status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from coldvault.errors import EXIT_BAD_INPUT, EXIT_DONE, EXIT_REFUSED

#: the appliance's approval loop gives up after this many card presentations
MAX_ATTEMPTS = 10


class Request(StrEnum):
    WHITELISTED = "whitelisted"  # pays the whitelisted counterparty, with change
    STRANGER = "stranger"  # pays an address that is on no whitelist
    TAPROOT = "taproot"  # a whitelisted payment whose input carries taproot fields
    GARBAGE = "garbage"  # a crypto-psbt UR whose bytes are not a PSBT


class Card(StrEnum):
    ALICE = "alice"  # approver C0DE0001, right PIN
    BOB = "bob"  # approver C0DE0002, right PIN
    OUTSIDER = "outsider"  # an OpenPGP card that is on no roster


@dataclass(frozen=True)
class Scenario:
    name: str
    request: Request
    #: the operator's answer when asked to collect approvals (None: never asked)
    approve: bool | None
    cards: tuple[Card, ...]
    error: str | None
    exit: int
    #: audit events of this request, in order, from request-received on
    events: tuple[str, ...]
    #: the ledger's status of the request afterwards (None: never recorded)
    ledger: str | None
    rule: str | None = None

    def __str__(self) -> str:
        return self.name


_RECEIVED = ("request-received",)
_REVIEWED = (*_RECEIVED, "review", "decision")
_COLLECTING = (*_REVIEWED, "approval-token")
_SIGNED_TAIL = ("signing", "signature")

SCENARIOS = (
    Scenario(
        "sign", Request.WHITELISTED, True, (Card.ALICE, Card.BOB), None, EXIT_DONE,
        (*_COLLECTING, "approval", "approval", *_SIGNED_TAIL), "signed",
    ),
    Scenario(
        "policy", Request.STRANGER, None, (), "policy-destination-whitelisted", EXIT_REFUSED,
        (*_REVIEWED, "refusal"), "refused", rule="destination-whitelisted",
    ),
    Scenario(
        "quorum-short", Request.WHITELISTED, True,
        (Card.ALICE, *[Card.OUTSIDER] * (MAX_ATTEMPTS - 1)), "card-attempts", EXIT_REFUSED,
        (*_COLLECTING, "approval", *["approval-refused"] * (MAX_ATTEMPTS - 1), "refusal"),
        "refused",
    ),
    Scenario(
        "unknown-card", Request.WHITELISTED, True, (Card.OUTSIDER, Card.ALICE, Card.BOB), None,
        EXIT_DONE,
        (*_COLLECTING, "approval-refused", "approval", "approval", *_SIGNED_TAIL), "signed",
    ),
    Scenario(
        "bad-input", Request.GARBAGE, None, (), "psbt-truncated", EXIT_BAD_INPUT,
        (*_RECEIVED, "refusal"),
        None,
    ),
    Scenario(
        "taproot", Request.TAPROOT, None, (), "taproot-refused", EXIT_REFUSED,
        (*_RECEIVED, "refusal"), None,
    ),
    Scenario(
        "operator-cancel", Request.WHITELISTED, False, (), "cancelled", EXIT_REFUSED,
        (*_REVIEWED, "refusal"), "refused",
    ),
    Scenario(
        "approval-timeout", Request.WHITELISTED, True, (Card.ALICE,), "card-timeout",
        EXIT_BAD_INPUT, (*_COLLECTING, "approval", "refusal"), "refused",
    ),
)

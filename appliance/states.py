"""The appliance's state machine: which state may follow which, and the audit names."""

from __future__ import annotations

import enum

from coldvault.errors import ColdvaultError, InputError


class State(enum.StrEnum):
    IDLE = "idle"
    RECEIVING = "receiving"
    REVIEW = "review"
    COLLECTING_APPROVALS = "collecting-approvals"
    SIGNING = "signing"
    SHOWING_RESPONSE = "showing-response"


#: Allowed transitions. Every waiting state may also go back to IDLE (cancel, timeout, error).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.RECEIVING}),
    # a request already signed goes straight to re-showing its stored response
    State.RECEIVING: frozenset({State.REVIEW, State.SHOWING_RESPONSE, State.IDLE}),
    State.REVIEW: frozenset({State.COLLECTING_APPROVALS, State.IDLE}),
    State.COLLECTING_APPROVALS: frozenset({State.SIGNING, State.IDLE}),
    State.SIGNING: frozenset({State.SHOWING_RESPONSE, State.IDLE}),
    State.SHOWING_RESPONSE: frozenset({State.IDLE}),
}


class TimedOut(ColdvaultError):
    """A waiting state timed out; nothing was signed."""

    code = "timeout"

    def __init__(self, state: State, seconds: float) -> None:
        super().__init__(
            f"Timed out after {seconds:.0f} s while {state.value}; nothing was signed."
        )
        self.state = state.value
        self.seconds = seconds


class InputEnded(InputError):
    """The input (a scanner's stream, a set of image files) ended before a whole request
    arrived; nothing was signed."""

    code = "input-ended"

    def __init__(self, parts_received: int, parts_expected: int) -> None:
        got = f" ({parts_received} of {parts_expected} parts arrived)" if parts_received else ""
        super().__init__(
            f"The input ended before a complete request arrived{got}; nothing was signed."
        )
        self.parts_received = parts_received
        self.parts_expected = parts_expected


class StateMachine:
    """Tracks the current state and refuses transitions the table does not allow."""

    def __init__(self) -> None:
        self.state = State.IDLE
        self.history: list[State] = [State.IDLE]

    def to(self, new: State) -> None:
        if new not in TRANSITIONS[self.state]:
            raise ValueError(f"illegal transition {self.state.value} -> {new.value}")
        self.state = new
        self.history.append(new)

    def reset(self) -> None:
        if self.state is not State.IDLE:
            self.state = State.IDLE
            self.history.append(State.IDLE)

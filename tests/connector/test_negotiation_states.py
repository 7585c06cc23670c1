"""The contract negotiation state machine is exactly the DSP 2025-1 diagram, for both roles."""

from __future__ import annotations

import itertools

import pytest

from connector.negotiation import STATES, TERMINATED, allowed_events, next_state
from connector.protocol.errors import InvalidTransition

# (state before, event, sender) -> state after: every arrow of the spec's state machine
SPEC = {
    (None, "request", "consumer"): "REQUESTED",
    (None, "offer", "provider"): "OFFERED",
    ("REQUESTED", "offer", "provider"): "OFFERED",
    ("REQUESTED", "agree", "provider"): "AGREED",
    ("REQUESTED", "terminate", "consumer"): TERMINATED,
    ("REQUESTED", "terminate", "provider"): TERMINATED,
    ("OFFERED", "request", "consumer"): "REQUESTED",
    ("OFFERED", "accept", "consumer"): "ACCEPTED",
    ("OFFERED", "terminate", "consumer"): TERMINATED,
    ("OFFERED", "terminate", "provider"): TERMINATED,
    ("ACCEPTED", "agree", "provider"): "AGREED",
    ("ACCEPTED", "terminate", "provider"): TERMINATED,
    ("AGREED", "verify", "consumer"): "VERIFIED",
    ("AGREED", "terminate", "consumer"): TERMINATED,
    ("VERIFIED", "finalize", "provider"): "FINALIZED",
    ("VERIFIED", "terminate", "provider"): TERMINATED,
}
EVENTS = ("request", "offer", "accept", "agree", "verify", "finalize", "terminate")


@pytest.mark.parametrize(("state", "event", "sender"),
                         list(itertools.product((None, *STATES), EVENTS, ("consumer", "provider"))))
def test_every_transition_is_allowed_exactly_when_the_spec_draws_it(state: str | None, event: str,
                                                                    sender: str) -> None:
    expected = SPEC.get((state, event, sender))
    if expected is None:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, event, sender)  # type: ignore[arg-type]
        assert info.value.status == 400
        assert set(info.value.allowed) == set(allowed_events(state, sender))  # type: ignore[arg-type]
    else:
        assert next_state(state, event, sender) == expected  # type: ignore[arg-type]


def test_final_states_allow_nothing() -> None:
    for state in ("FINALIZED", "TERMINATED"):
        assert allowed_events(state, "consumer") == () == allowed_events(state, "provider")
    with pytest.raises(InvalidTransition, match="the negotiation is over"):
        next_state("FINALIZED", "terminate", "provider")

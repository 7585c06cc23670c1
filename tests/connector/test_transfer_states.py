"""The transfer process state machine is exactly the DSP 2025-1 diagram, for both roles."""

from __future__ import annotations

import itertools

import pytest

from connector.protocol.errors import InvalidTransition
from connector.transfer import STATES, allowed_events, next_state

SPEC = {
    (None, "request", "consumer"): "REQUESTED",
    ("REQUESTED", "start", "provider"): "STARTED",
    ("REQUESTED", "terminate", "provider"): "TERMINATED",
    ("REQUESTED", "terminate", "consumer"): "TERMINATED",
}
for who in ("provider", "consumer"):
    SPEC.update({("STARTED", "complete", who): "COMPLETED", ("STARTED", "suspend", who): "SUSPENDED",
                 ("STARTED", "terminate", who): "TERMINATED", ("SUSPENDED", "start", who): "STARTED",
                 ("SUSPENDED", "terminate", who): "TERMINATED"})
EVENTS = ("request", "start", "complete", "suspend", "terminate")


@pytest.mark.parametrize(("state", "event", "sender"),
                         list(itertools.product((None, *STATES), EVENTS, ("consumer", "provider"))))
def test_every_transition_is_allowed_exactly_when_the_spec_draws_it(state: str | None, event: str,
                                                                    sender: str) -> None:
    expected = SPEC.get((state, event, sender))
    if expected is None:
        with pytest.raises(InvalidTransition):
            next_state(state, event, sender)  # type: ignore[arg-type]
    else:
        assert next_state(state, event, sender) == expected  # type: ignore[arg-type]


def test_only_the_provider_starts_a_requested_transfer() -> None:
    assert allowed_events("REQUESTED", "consumer") == ("terminate",)
    assert set(allowed_events("REQUESTED", "provider")) == {"start", "terminate"}

"""Log lines are JSON when not on a terminal and carry the correlation id of the process they belong to."""

from __future__ import annotations

import io
import json
import logging

from connector.logs import JsonFormatter, _ContextFilter, correlation, current_correlation_id


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ContextFilter())
    logger = logging.getLogger("pactum.test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_correlation_id_and_extra_fields() -> None:
    logger, stream = capture()
    with correlation("neg-123"):
        logger.info("offer accepted", extra={"negotiation": "urn:uuid:1", "state": "ACCEPTED"})
    logger.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "offer accepted"
    assert first["correlation_id"] == "neg-123"
    assert (first["negotiation"], first["state"]) == ("urn:uuid:1", "ACCEPTED")
    assert "correlation_id" not in second


def test_correlation_scopes_nest_and_restore() -> None:
    with correlation("outer"):
        with correlation("inner"):
            assert current_correlation_id() == "inner"
        assert current_correlation_id() == "outer"
    assert current_correlation_id() is None

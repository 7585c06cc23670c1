"""The demo reads N from the offer it received: ``count lteq N`` / ``lt N`` in any permission, nested ``and``."""

from __future__ import annotations

from typing import Any

import pytest

from connector.demo.offer_terms import use_limit


def _offer(*constraints: Any) -> dict[str, Any]:
    return {"@type": "Offer", "permission": [{"action": "use", "constraint": list(constraints)}]}


def _count(operator: str, value: Any) -> dict[str, Any]:
    return {"leftOperand": "odrl:count", "operator": operator, "rightOperand": value}


@pytest.mark.parametrize("offer, expected", [
    (_offer(_count("lteq", {"@value": "1000", "@type": "http://www.w3.org/2001/XMLSchema#integer"})), 1000),
    (_offer(_count("lt", 5)), 4),
    (_offer({"leftOperand": "http://www.w3.org/ns/odrl/2/count", "operator": {"@id": "odrl:lteq"},
             "rightOperand": "7"}), 7),
    (_offer({"and": [_count("lteq", 3), {"leftOperand": "purpose", "operator": "eq", "rightOperand": "x"}]}), 3),
    (_offer(_count("lteq", 9), _count("lteq", 4)), 4),
    (_offer({"leftOperand": "purpose", "operator": "eq", "rightOperand": "x"}), None),
    (_offer({"or": [_count("lteq", 3), _count("lteq", 8)]}), None),  # neither bound binds on its own
    (_offer(_count("gteq", 3)), None),
    (_offer(_count("lteq", "many")), None),
    ({"@type": "Offer"}, None),
])
def test_use_limit(offer: dict[str, Any], expected: int | None) -> None:
    assert use_limit(offer) == expected

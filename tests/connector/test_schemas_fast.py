"""The compiled (jsonschema-rs) DSP schema check gives the same verdict as the python ``jsonschema`` one.

WHY: ``validate_message`` trusts the compiled validator's "valid" and only asks the python validator (for
its error text) when a message is invalid, so the two must agree on every message. The corpus is every
packaged example, every DSP message written in the tests (read from their source), and systematic mutations
of each: a field removed, a value of another JSON type, an extra level of nesting, another ``@type``.
"""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from jsonschema import Draft201909Validator

from connector.protocol.errors import MessageInvalid
from connector.protocol.jsonld import DSP_CONTEXT
from connector.protocol.schemas import (
    MESSAGE_SCHEMAS,
    _plain_json,
    _validator,
    fast_registry,
    fast_validator,
    refuse_retrieval,
    validate_message,
)

TESTS = Path(__file__).resolve().parents[1]
EXAMPLES = resources.files("connector.resources") / "dsp"
PLACEHOLDER = "urn:test:placeholder"


def packaged_examples() -> list[dict[str, Any]]:
    out = []
    for area in ("catalog", "common", "negotiation", "transfer"):
        for entry in (EXAMPLES / area / "example").iterdir():
            doc = json.loads(entry.read_text("utf-8"))
            if isinstance(doc, dict) and doc.get("@type") in MESSAGE_SCHEMAS:
                out.append(doc)
    return out


def _literal(node: ast.AST) -> Any:
    """A test's literal as JSON; names and calls become a placeholder string (DSP_CONTEXT its real value)."""
    if isinstance(node, ast.Constant):
        return node.value if node.value is None or isinstance(node.value, str | int | float | bool) else PLACEHOLDER
    if isinstance(node, ast.Dict):
        out: dict[str, Any] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # ``**spread``: its keys are unknown here
                continue
            name = _literal(key)
            out[name if isinstance(name, str) else PLACEHOLDER] = _literal(value)
        return out
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item) for item in node.elts]
    if isinstance(node, ast.Name) and node.id == "DSP_CONTEXT":
        return DSP_CONTEXT
    return PLACEHOLDER


def messages_in_tests() -> list[dict[str, Any]]:
    """Every dict literal with a DSP message ``@type`` and every ``dsp("Type", ...)`` call in tests/."""
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Dict):
                doc = _literal(node)
                if doc.get("@type") in MESSAGE_SCHEMAS:
                    found.append(doc)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dsp"
                  and node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in MESSAGE_SCHEMAS):
                doc = {"@context": [DSP_CONTEXT], "@type": node.args[0].value}
                doc.update({kw.arg: _literal(kw.value) for kw in node.keywords if kw.arg})
                found.append(doc)
    return found


def corpus() -> list[dict[str, Any]]:
    unique: dict[str, dict[str, Any]] = {}
    for doc in packaged_examples() + messages_in_tests():
        unique.setdefault(json.dumps(doc, sort_keys=True), doc)
    return list(unique.values())


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``node`` (dict keys and list indexes)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _replaced(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    _at(out, path[:-1])[path[-1]] = value
    return out


def _removed(doc: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    del _at(out, path[:-1])[path[-1]]
    return out


def mutations(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Invalid (and some still valid) neighbours of ``doc``."""
    for path in _paths(doc):
        original = _at(doc, path)
        yield _removed(doc, path)
        for value in (None, 0, 2.5, True, "text", [], {}, [original], {"nested": original}):
            if value != original or type(value) is not type(original):
                yield _replaced(doc, path, value)
    for other in ("Offer", "ContractRequestMessage", "TransferProcess", "Catalog", "Nope"):
        yield {**doc, "@type": other}
    yield {**doc, "@context": ["https://example.org/other-context.jsonld"]}
    yield {**doc, "unexpected": {"deeply": [{"nested": 1}]}}


CORPUS = corpus()


def _verdicts(message: dict[str, Any], message_type: str) -> tuple[bool, bool]:
    return fast_validator(message_type).is_valid(message), _validator(message_type).is_valid(message)


def test_the_corpus_covers_every_negotiation_message() -> None:
    valid = {doc["@type"] for doc in CORPUS if _validator(doc["@type"]).is_valid(doc)}
    assert {"ContractRequestMessage", "ContractAgreementMessage", "ContractAgreementVerificationMessage",
            "ContractNegotiationEventMessage", "ContractNegotiation", "TransferRequestMessage"} <= valid
    assert len(CORPUS) > 60


@pytest.mark.parametrize("message_type", sorted({doc["@type"] for doc in CORPUS}))
def test_same_verdict_on_every_message_and_its_mutations(message_type: str) -> None:
    checked = invalid = 0
    for doc in (d for d in CORPUS if d["@type"] == message_type):
        for candidate in (doc, *mutations(doc)):
            fast, reference = _verdicts(candidate, message_type)
            assert fast == reference, json.dumps(candidate)
            checked += 1
            invalid += not reference
    assert invalid > 0 and checked > 10


def test_every_packaged_example_is_valid_for_both() -> None:
    for doc in packaged_examples():
        assert _verdicts(doc, doc["@type"]) == (True, True)


def test_invalid_message_keeps_the_python_reason() -> None:
    message = {"@context": [DSP_CONTEXT], "@type": "ContractAgreementVerificationMessage", "providerPid": "p"}
    with pytest.raises(MessageInvalid) as info:
        validate_message(message, "ContractAgreementVerificationMessage")
    assert str(info.value) == ("ContractAgreementVerificationMessage does not match the DSP schema: "
                               "'consumerPid' is a required property at (root) (schema allOf/0/required)")


def test_values_that_are_not_plain_json_are_judged_by_the_python_validator() -> None:
    # jsonschema-rs would read the tuple as an array; the python validator (the reference) does not
    message = {"@context": (DSP_CONTEXT,), "@type": "ContractAgreementVerificationMessage",
               "providerPid": "p", "consumerPid": "c"}
    assert fast_validator("ContractAgreementVerificationMessage").is_valid(message)
    assert not _validator("ContractAgreementVerificationMessage").is_valid(message)
    with pytest.raises(MessageInvalid):
        validate_message(message, "ContractAgreementVerificationMessage")
    keyed = {"@context": [DSP_CONTEXT], "@type": "ContractNegotiationEventMessage", "providerPid": "p",
             "consumerPid": "c", "eventType": "ACCEPTED", 7: "int key"}
    assert validate_message(keyed, "ContractNegotiationEventMessage") is keyed


def test_no_schema_is_ever_fetched() -> None:
    with pytest.raises(MessageInvalid, match="refusing to fetch"):
        refuse_retrieval("https://evil.example/schema.json")
    with pytest.raises((jsonschema_rs.ReferencingError, jsonschema_rs.ValidationError), match="refusing to fetch"):
        jsonschema_rs.Draft201909Validator({"$ref": "https://evil.example/schema.json"}, registry=fast_registry(),
                                           retriever=refuse_retrieval)


@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_numbers_beyond_json_are_judged_by_the_python_validator(number: float) -> None:
    # jsonschema-rs calls NaN and the infinities no number (so "not a number" would hold for them); json.loads
    # ("NaN") gives one, the python validator (the reference) takes it for a number: never the compiled verdict
    assert not jsonschema_rs.Draft201909Validator({"type": "number"}).is_valid(number)
    assert Draft201909Validator({"type": "number"}).is_valid(number)
    message = {"@context": [DSP_CONTEXT], "@type": "ContractNegotiationEventMessage", "providerPid": "p",
               "consumerPid": "c", "eventType": "ACCEPTED", "extra": [number]}
    assert not _plain_json(message)
    assert validate_message(message, "ContractNegotiationEventMessage") is message
    with pytest.raises(MessageInvalid, match="providerPid"):
        validate_message({**message, "providerPid": number}, "ContractNegotiationEventMessage")

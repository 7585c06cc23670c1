"""DSP messages: the official schemas (with the repaired references), pinned-context JSON-LD, limits."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from pyld import jsonld

from connector.protocol.errors import MessageInvalid
from connector.protocol.jsonld import DSP_CONTEXT, document_loader, json_depth, normalise
from connector.protocol.processing import check_callback
from connector.protocol.schemas import MESSAGE_SCHEMAS, registry, validate_message

EXAMPLES = resources.files("connector.resources") / "dsp"


def examples() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for area in ("catalog", "negotiation", "transfer"):
        for entry in (EXAMPLES / area / "example").iterdir():
            out.append((f"{area}/{entry.name}", json.loads(entry.read_text("utf-8"))))
    return out


@pytest.mark.parametrize(("name", "message"), examples(), ids=[n for n, _ in examples()])
def test_every_official_example_is_valid(name: str, message: dict[str, Any]) -> None:
    assert validate_message(message, message["@type"]) is message


def test_transfer_schema_references_are_repaired() -> None:
    contents = registry().get_or_retrieve(
        "https://w3id.org/dspace/2025/1/transfer/transfer-termination-message-schema.json").value.contents
    assert "#definitions/" not in json.dumps(contents)
    bad = {"@context": [DSP_CONTEXT], "@type": "TransferTerminationMessage", "providerPid": "p", "consumerPid": "c",
           "reason": "not a list"}
    with pytest.raises(MessageInvalid, match="reason"):
        validate_message(bad, "TransferTerminationMessage")


def test_schema_errors_name_the_path() -> None:
    message = {"@context": [DSP_CONTEXT], "@type": "ContractRequestMessage", "consumerPid": "c",
               "callbackAddress": "https://x", "offer": {"@type": "Offer", "@id": "o", "permission": "use"}}
    with pytest.raises(MessageInvalid) as info:
        validate_message(message, "ContractRequestMessage")
    assert "offer" in str(info.value) and "schema" in str(info.value)


def test_unknown_and_mismatched_types() -> None:
    with pytest.raises(MessageInvalid) as info:
        validate_message({"@type": "Nope"}, "Nope")
    assert info.value.code == "unknown_type"
    with pytest.raises(MessageInvalid) as info:
        validate_message({"@type": "TransferStartMessage"}, "TransferCompletionMessage")
    assert info.value.code == "unexpected_type"
    assert set(MESSAGE_SCHEMAS) >= {"ContractRequestMessage", "TransferRequestMessage", "CatalogRequestMessage"}


def test_plain_json_without_context_is_taken_as_compact() -> None:
    message = normalise({"@type": "CatalogRequestMessage"})
    assert message == {"@context": [DSP_CONTEXT], "@type": "CatalogRequestMessage"}
    validate_message(message, "CatalogRequestMessage")


def test_expanded_json_ld_is_compacted_with_pinned_contexts_only() -> None:
    original = json.loads((EXAMPLES / "negotiation" / "example" / "contract-request-message_initial.json")
                          .read_text("utf-8"))
    expanded = jsonld.expand(original, {"documentLoader": document_loader})
    assert normalise(expanded) == original


def test_unpinned_context_is_refused_without_fetching() -> None:
    with pytest.raises(MessageInvalid) as info:
        normalise({"@context": "https://evil.example/context.jsonld", "@type": "CatalogRequestMessage"})
    assert info.value.code == "context_not_pinned"


def test_depth_is_measured_without_recursion() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    assert json_depth(deep, 32) == 33
    assert json_depth({"a": [1, {"b": 2}]}, 32) == 4


@pytest.mark.parametrize("address", ["file:///etc/passwd", "ftp://x", "/relative", "http://user:pw@host", 42])
def test_callback_must_be_an_absolute_http_url(address: Any) -> None:
    with pytest.raises(MessageInvalid) as info:
        check_callback(address)
    assert info.value.code == "callback_invalid"


def test_callback_accepts_http_and_https() -> None:
    assert check_callback("https://consumer.example/cb/") == "https://consumer.example/cb"

"""Every negotiation message reads the same in any JSON-LD form: compact, expanded, or with IRIs for terms.

WHY: a ContractAgreementMessage whose properties were written as IRIs (expanded, or ``dspace:agreement``
with the DSP context) used to be taken as already compact, and its agreement was then simply missing.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest
from cachetools import LRUCache
from pyld import jsonld
from pyld.context_resolver import ContextResolver  # type: ignore[import-untyped]

from connector.protocol.jsonld import DSP_CONTEXT, document_loader, is_compact_dsp, normalise
from connector.protocol.schemas import validate_message

DSPACE = "https://w3id.org/dspace/2025/1/"
ODRL = "http://www.w3.org/ns/odrl/2/"
EXAMPLES = resources.files("connector.resources") / "dsp" / "negotiation" / "example"
MESSAGES = sorted(e.name for e in EXAMPLES.iterdir() if "message" in e.name)


def _example(name: str) -> dict[str, Any]:
    message: dict[str, Any] = json.loads((EXAMPLES / name).read_text("utf-8"))

    # the official examples use bare left operands ("dateTime"), which are relative IRIs under the DSP
    # context; an absolute one keeps this test about the message forms, not about IRI resolution
    def absolute(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("leftOperand"), str) and ":" not in node["leftOperand"]:
                node["leftOperand"] = "https://example.com/operand/" + node["leftOperand"]
            for value in node.values():
                absolute(value)
        elif isinstance(node, list):
            for value in node:
                absolute(value)

    absolute(message)
    return message


def _expanded(message: dict[str, Any]) -> list[dict[str, Any]]:
    """What a correct sender expands to. A context cache of its own: with pyld's shared cache, once another
    DSP message was processed, the agreement's type-scoped context is mixed up and pyld itself drops the
    agreement while expanding (a sender-side pyld pitfall; :func:`normalise` never uses the shared cache)."""
    options = {"documentLoader": document_loader, "contextResolver": ContextResolver(LRUCache(maxsize=64),
                                                                                     document_loader)}
    expanded: list[dict[str, Any]] = jsonld.expand(copy.deepcopy(message), options)
    return expanded


def _prefixed(node: Any) -> Any:
    """The expanded form written with ``dspace:``/``odrl:`` compact IRIs, under the DSP context."""
    if isinstance(node, list):
        return [_prefixed(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        short = key.replace(DSPACE, "dspace:").replace(ODRL, "odrl:")
        if key == "@type":
            value = [t.replace(DSPACE, "dspace:").replace(ODRL, "odrl:") for t in value]
        out[short] = _prefixed(value)
    return out


def _forms(message: dict[str, Any]) -> dict[str, Any]:
    expanded = _expanded(message)
    return {
        "expanded array": expanded,
        "expanded object": expanded[0],
        "expanded with the DSP context": {"@context": [DSP_CONTEXT], **expanded[0]},
        "dspace:/odrl: IRIs with the DSP context": {"@context": [DSP_CONTEXT], **_prefixed(expanded[0])},
        "dspace:/odrl: IRIs as plain JSON": _prefixed(expanded[0]),
    }


@pytest.mark.parametrize("name", MESSAGES)
def test_every_form_of_every_negotiation_message_reads_as_the_compact_one(name: str) -> None:
    compact = _example(name)
    assert is_compact_dsp(compact) and normalise(copy.deepcopy(compact)) == compact
    for form, document in _forms(compact).items():
        read = normalise(copy.deepcopy(document))
        assert read == compact, f"{form}: {json.dumps(read)[:400]}"
        assert validate_message(read, str(read["@type"])) is read


def test_an_expanded_agreement_message_keeps_its_agreement() -> None:
    compact = _example("contract-agreement-message.json")
    for form, document in _forms(compact).items():
        read = normalise(copy.deepcopy(document))
        assert read["agreement"]["@id"] == compact["agreement"]["@id"], form
        assert read["agreement"]["permission"] == compact["agreement"]["permission"], form
        assert read["agreement"]["assignee"] == compact["agreement"]["assignee"], form


def test_the_shared_pyld_cache_does_not_reach_normalise() -> None:
    """Messages processed before with pyld's shared cache leave the next reading of an agreement intact."""
    request = _example("contract-request-message_initial.json")
    jsonld.expand(copy.deepcopy(request), {"documentLoader": document_loader})  # fills pyld's shared cache
    compact = _example("contract-agreement-message-full.json")
    for document in _forms(compact).values():
        assert normalise(copy.deepcopy(document))["agreement"] == compact["agreement"]


def test_compact_messages_with_extension_iris_stay_on_the_fast_path() -> None:
    message = {"@context": [DSP_CONTEXT], "@type": "TransferRequestMessage", "consumerPid": "c",
               "agreementId": "a", "format": "HttpData-PULL", "callbackAddress": "https://c.example/cb",
               "https://w3id.org/pactum/ns/purpose": "research"}
    assert is_compact_dsp(message)
    assert normalise(message) is message


def test_iris_the_context_has_no_term_for_stay_on_the_fast_path() -> None:
    """``odrl:conflict`` (library policies) is what compaction itself writes: the message is already compact."""
    message = _example("contract-agreement-message.json")
    message["agreement"]["odrl:conflict"] = {"@id": "odrl:prohibit"}
    message["agreement"]["target"] = "part-traceability"  # a relative id, kept as written
    assert is_compact_dsp(message) and normalise(message) is message
    message["agreement"]["odrl:permission"] = message["agreement"].pop("permission")
    assert not is_compact_dsp(message)
    read = normalise(copy.deepcopy(message))
    assert read["agreement"]["permission"] and read["agreement"]["target"] == "part-traceability"
    assert read["agreement"]["odrl:conflict"] == {"@id": "odrl:prohibit"}

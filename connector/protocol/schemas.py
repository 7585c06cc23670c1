"""The official DSP 2025-1 JSON Schemas, loaded from the package and used for every message in and out.

Three transfer schemas reference ``...transfer-schema.json#definitions/X`` where the JSON pointer form
``#/definitions/X`` is meant; :func:`_repair` fixes that on load (the files stay byte-identical to upstream).

WHY two validators over the same repaired schemas: the compiled ``jsonschema_rs`` check decides whether a
message is valid (a few microseconds instead of about a millisecond per message with the pure-python
``jsonschema``, which ran for every message in and out); only a message it finds invalid is checked again by
``jsonschema`` so that the error reason (``best_match``, path, schema path) reads exactly as before.
``tests/connector/test_schemas_fast.py`` proves the two give the same verdicts. Neither ever fetches a schema:
every DSP schema is registered under its ``$id`` and any other reference is refused.
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft201909Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT201909

from connector.protocol.errors import MessageInvalid

SCHEMA_BASE = "https://w3id.org/dspace/2025/1/"

# message @type -> schema file (relative to resources/dsp)
MESSAGE_SCHEMAS: dict[str, str] = {
    "CatalogRequestMessage": "catalog/catalog-request-message-schema.json",
    "DatasetRequestMessage": "catalog/dataset-request-message-schema.json",
    "Catalog": "catalog/catalog-schema.json",
    "Dataset": "catalog/dataset-schema.json",
    "CatalogError": "catalog/catalog-error-schema.json",
    "ContractRequestMessage": "negotiation/contract-request-message-schema.json",
    "ContractOfferMessage": "negotiation/contract-offer-message-schema.json",
    "ContractAgreementMessage": "negotiation/contract-agreement-message-schema.json",
    "ContractAgreementVerificationMessage": "negotiation/contract-agreement-verification-message-schema.json",
    "ContractNegotiationEventMessage": "negotiation/contract-negotiation-event-message-schema.json",
    "ContractNegotiationTerminationMessage": "negotiation/contract-negotiation-termination-message-schema.json",
    "ContractNegotiation": "negotiation/contract-negotiation-schema.json",
    "ContractNegotiationError": "negotiation/contract-negotiation-error-schema.json",
    "TransferRequestMessage": "transfer/transfer-request-message-schema.json",
    "TransferStartMessage": "transfer/transfer-start-message-schema.json",
    "TransferSuspensionMessage": "transfer/transfer-suspension-message-schema.json",
    "TransferCompletionMessage": "transfer/transfer-completion-message-schema.json",
    "TransferTerminationMessage": "transfer/transfer-termination-message-schema.json",
    "TransferProcess": "transfer/transfer-process-schema.json",
    "TransferError": "transfer/transfer-error-schema.json",
    "VersionResponse": "common/protocol-version-schema.json",
}


def _repair(node: Any) -> Any:
    """Turn ``#definitions/X`` into the JSON pointer ``#/definitions/X`` everywhere in a schema."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and "#definitions/" in value:
                value = value.replace("#definitions/", "#/definitions/")
            out[key] = _repair(value)
        return out
    if isinstance(node, list):
        return [_repair(v) for v in node]
    return node


def _schema_files() -> dict[str, dict[str, Any]]:
    root = resources.files("connector.resources") / "dsp"
    out: dict[str, dict[str, Any]] = {}
    for area in ("catalog", "common", "negotiation", "transfer"):
        for entry in (root / area).iterdir():
            if entry.name.endswith("-schema.json"):
                out[f"{area}/{entry.name}"] = _repair(json.loads(entry.read_text("utf-8")))
    return out


@cache
def registry() -> Registry[Any]:
    """Every DSP schema under its ``$id`` so cross-file references resolve offline."""
    reg: Registry[Any] = Registry()
    for relative, schema in _schema_files().items():
        resource = Resource.from_contents(schema, default_specification=DRAFT201909)
        reg = reg.with_resource(schema.get("$id", SCHEMA_BASE + relative), resource)
    return reg.crawl()


@cache
def _validator(message_type: str) -> Draft201909Validator:
    relative = MESSAGE_SCHEMAS[message_type]
    schema = registry().get_or_retrieve(SCHEMA_BASE + relative).value.contents
    return Draft201909Validator(schema, registry=registry())


def refuse_retrieval(uri: str) -> Any:
    """The retriever of the compiled validators: a DSP schema never needs a document from elsewhere."""
    raise MessageInvalid(f"the DSP schemas refer to {uri}, which is not a packaged DSP schema; "
                         f"refusing to fetch it", code="schema_reference_unknown")


@cache
def fast_registry() -> jsonschema_rs.Registry:
    """The repaired DSP schemas under their ``$id`` for the compiled validators (offline, like :func:`registry`)."""
    resources = [(schema.get("$id", SCHEMA_BASE + relative), schema) for relative, schema in _schema_files().items()]
    return jsonschema_rs.Registry(resources, draft=jsonschema_rs.Draft201909, retriever=refuse_retrieval)


@cache
def fast_validator(message_type: str) -> jsonschema_rs.Draft201909Validator:
    """The compiled check for ``message_type``; ``format`` stays an annotation, as in the python validator."""
    relative = MESSAGE_SCHEMAS[message_type]
    schema = registry().get_or_retrieve(SCHEMA_BASE + relative).value.contents
    return jsonschema_rs.Draft201909Validator(schema, registry=fast_registry(), retriever=refuse_retrieval,
                                              validate_formats=False)


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_json(value: Any) -> bool:
    """True when ``value`` holds nothing but dicts, lists and JSON scalars of exactly those types.

    WHY: the compiled validator reads a tuple as an array, rejects types it cannot convert and calls NaN and
    infinities no number at all, where the python validator has its own view (a tuple is not an array, NaN
    is a number; ``json.loads`` accepts ``NaN`` and ``1e400``); so anything but plain JSON with finite numbers
    is left to the python validator alone.
    """
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif kind not in _JSON_SCALARS or (kind is float and not math.isfinite(node)):
            return False
    return True


def _fast_verdict(message: dict[str, Any], message_type: str) -> bool:
    """Whether the compiled validator accepts ``message``; False whenever it cannot judge it."""
    if not _plain_json(message):
        return False
    try:
        return fast_validator(message_type).is_valid(message)
    except ValueError:  # e.g. a non-string key: let the python validator have its say
        return False


def _path(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    schema_path = "/".join(str(p) for p in error.absolute_schema_path)
    return f"at {where} (schema {schema_path})"


def validate_message(message: Any, message_type: str) -> dict[str, Any]:
    """Check ``message`` against the schema of ``message_type``; MessageInvalid naming the path otherwise."""
    if message_type not in MESSAGE_SCHEMAS:
        raise MessageInvalid(f"unknown DSP message type {message_type!r}", code="unknown_type")
    if not isinstance(message, dict):
        raise MessageInvalid(f"a {message_type} must be a JSON object")
    actual = message.get("@type")
    if actual != message_type:
        raise MessageInvalid(f"expected @type {message_type!r}, got {actual!r}", code="unexpected_type")
    if _fast_verdict(message, message_type):
        return message
    errors = list(_validator(message_type).iter_errors(message))
    if errors:
        error = best_match(errors)
        assert error is not None
        raise MessageInvalid(f"{message_type} does not match the DSP schema: {error.message} {_path(error)}")
    return message

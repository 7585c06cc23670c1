"""DCP message validation against the bundled schemas, and scope parsing in all three alias forms."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from identity.dcp.errors import MessageInvalid
from identity.dcp.schemas import DCP_CONTEXT, validate_message, validate_presentation_definition
from identity.dcp.scopes import Scope, ScopeError, granted, parse_scope, type_scope

EXAMPLES = resources.files("identity").joinpath("resources/dcp")


def _example(path: str) -> dict:
    return json.loads(EXAMPLES.joinpath(path).read_text("utf-8"))


@pytest.mark.parametrize("path", [
    "presentation/example/presentation-query-message.json",
    "presentation/example/presentation-query-message-w-presentation-definition.json",
    "presentation/example/presentation-response-message.json",
    "presentation/example/presentation-response-message-w-presentation-submission.json",
    "issuance/example/credential-message.json",
    "issuance/example/credential-message-rejected.json",
    "issuance/example/credential-request-message.json",
    "issuance/example/credential-status.json",
    "issuance/example/credential-offer-message.json",
    "issuance/example/issuer-metadata.json",
])
def test_spec_examples_validate(path: str) -> None:
    message = _example(path)
    assert validate_message(message, message["type"]) is message


@pytest.mark.parametrize("message,fragment", [
    ({"@context": ["https://example.com"], "type": "PresentationQueryMessage", "scope": ["a"]}, "@context"),
    ({"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage"}, "(root)"),
    ({"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage", "scope": []}, "scope"),
    ({"@context": [DCP_CONTEXT], "type": "PresentationQueryMessage", "presentationDefinition": {"id": "x"}},
     "presentationDefinition"),
])
def test_bad_query_messages_rejected(message: dict, fragment: str) -> None:
    with pytest.raises(MessageInvalid) as err:
        validate_message(message, "PresentationQueryMessage")
    assert fragment in str(err.value)
    assert err.value.code == "schema_violation"


def test_wrong_type_and_non_object() -> None:
    with pytest.raises(MessageInvalid) as err:
        validate_message({"@context": [DCP_CONTEXT], "type": "Other", "holderPid": "h", "credentials": []},
                         "CredentialRequestMessage")
    assert err.value.code == "wrong_message_type"
    with pytest.raises(MessageInvalid):
        validate_message(["not", "an", "object"], "CredentialStatus")


def test_credential_payload_must_be_string() -> None:
    message = _example("issuance/example/credential-message.json")
    message["credentials"][0]["payload"] = {"an": "object"}
    with pytest.raises(MessageInvalid):
        validate_message(message, "CredentialMessage")


def test_presentation_definition_shape() -> None:
    pd = _example("presentation/example/presentation-query-message-w-presentation-definition.json")
    validate_presentation_definition(pd["presentationDefinition"])
    with pytest.raises(MessageInvalid):
        validate_presentation_definition({"id": "x", "input_descriptors": [{"id": "a", "format": {"nope": {}}}]})


@pytest.mark.parametrize("text", [
    "org.eclipse.dspace.dcp.vc.type:MembershipCredential:read",
    "org.eclipse.edc.vc.type:MembershipCredential:read",
    "org.eclipse.tractusx.vc.type:MembershipCredential:read",
    "org.eclipse.dspace.dcp.vc.type:MembershipCredential",
])
def test_all_scope_forms_parse_alike(text: str) -> None:
    assert parse_scope(text) == Scope("type", "MembershipCredential", "read")


def test_scope_ids_operations_and_rendering() -> None:
    assert parse_scope("org.eclipse.dspace.dcp.vc.id:8247b87d:read") == Scope("id", "8247b87d", "read")
    assert type_scope("BpnCredential", form="tractusx") == "org.eclipse.tractusx.vc.type:BpnCredential:read"
    assert type_scope("X", "write", "edc") == "org.eclipse.edc.vc.type:X:write"
    write_all = parse_scope("org.eclipse.edc.vc.type:X:all")
    assert granted(Scope("type", "X", "write"), [write_all])
    assert not granted(Scope("type", "X", "write"), [Scope("type", "X", "read")])
    assert not granted(Scope("type", "Y", "read"), [Scope("type", "X", "read")])


@pytest.mark.parametrize(
    "text", ["", "presentation1", "org.eclipse.dspace.dcp.vc.type:", "org.eclipse.edc.vc.type:X:delete"]
)
def test_bad_scopes(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)

"""Parsing DSP policies once: agreements of one offer share a parse, and nothing about the result changes."""

from __future__ import annotations

import uuid
from typing import Any

from connector.policy_gate import DSP_CONTEXT, ODRL_PROFILE_CONTEXT, parse_document, parse_offer, policy_hash
from policies import parse_policy, policies_equal

OFFER: dict[str, Any] = {
    "@type": "Agreement", "target": "asset-1", "assigner": "did:web:provider.example",
    "assignee": "did:web:consumer.example",
    "permission": [{"action": "use", "constraint": [
        {"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}]}],
}


def _agreement(**extra: Any) -> dict[str, Any]:
    return {**OFFER, "@id": f"urn:uuid:{uuid.uuid4()}", "timestamp": "2026-11-23T10:00:00Z", **extra}


def _direct(document: dict[str, Any]) -> Any:
    """What the engine reads without any cache (the reference)."""
    return parse_policy({"@context": [DSP_CONTEXT, ODRL_PROFILE_CONTEXT], **document}, format="json-ld")


def test_every_agreement_keeps_its_own_uid_and_reads_like_a_direct_parse() -> None:
    first, second = _agreement(), _agreement(timestamp="2026-11-24T11:30:00Z")
    a, b = parse_offer(first), parse_offer(second)
    assert (a.uid, b.uid) == (first["@id"], second["@id"])
    for document, parsed in ((first, a), (second, b)):
        reference = _direct(document)
        assert parsed.uid == reference.uid and parsed.type == reference.type == "Agreement"
        assert parsed.rules == reference.rules and parsed.part_of == reference.part_of
        assert policy_hash(parsed) == policy_hash(reference)
    assert a.rules is b.rules  # one parse shared by both agreements


def test_a_different_assignee_is_a_different_policy() -> None:
    ours = parse_offer(_agreement())
    theirs = parse_offer(_agreement(assignee="did:web:someone-else.example"))
    assert not policies_equal(ours, theirs)
    assert {p.iri for r in theirs.rules for p in r.assignees} == {"did:web:someone-else.example"}


def test_a_uid_used_elsewhere_in_the_document_is_parsed_as_written() -> None:
    document = _agreement()
    document["target"] = document["@id"]  # the uid is also the target: no placeholder may stand in for it
    parsed = parse_offer(document)
    assert {t.iri for r in parsed.rules for t in r.targets} == {document["@id"]}
    assert parsed.rules == _direct(document).rules


def test_other_uids_are_not_templated_but_still_cached() -> None:
    document = {**OFFER, "@id": "offer-1:asset-1:abc"}
    assert parse_offer(document) is parse_offer(dict(document))
    assert parse_offer(document).uid == _direct(document).uid


def test_the_template_does_not_leak_into_reports() -> None:
    document = _agreement()
    parsed = parse_offer(document)
    assert "00000000-0000-4000-8000-000000000000" not in repr(parsed)
    assert parsed._cache.keys() <= {"canonical_hash"}


def test_a_document_with_its_own_context_parses_once() -> None:
    document = {"@context": [DSP_CONTEXT, ODRL_PROFILE_CONTEXT], **OFFER, "@id": "urn:example:offer"}
    assert parse_document(document) is parse_document(dict(document))
    assert parse_document(document).rules == _direct({k: v for k, v in document.items() if k != "@context"}).rules


def test_agreements_of_one_offer_come_with_the_hash_of_their_shared_parse() -> None:
    """The canonical hash is computed once per template, and it is the hash a direct parse gives."""
    for document in (_agreement(), _agreement(timestamp="2026-12-01T00:00:00Z")):
        parsed = parse_offer(document)
        assert parsed._cache.get("canonical_hash") == policy_hash(_direct(document))
    other = _agreement(assignee="did:web:someone-else.example")  # another template: its own hash
    assert parse_offer(other)._cache["canonical_hash"] == policy_hash(_direct(other)) != policy_hash(
        _direct(_agreement()))


def test_a_uid_inside_the_timestamp_is_not_templated() -> None:
    """The uid may occur nowhere but in @id, the dropped timestamp included: such a document parses as written."""
    document = _agreement()
    document["timestamp"] = f"2026-11-23T10:00:00Z {document['@id']}"
    parsed = parse_offer(document)
    assert parsed.uid == document["@id"] and parsed.rules == _direct(document).rules
    assert parsed.rules is not parse_offer(_agreement()).rules  # not the shared parse of the template

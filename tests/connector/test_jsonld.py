"""connector.jsonld: EDC default vocabulary, pinned contexts only, compaction back to EDC's shape."""

from __future__ import annotations

import pytest

from connector import jsonld
from connector.jsonld import EDC, JsonLdError


def test_bare_terms_expand_into_the_edc_namespace() -> None:
    node = jsonld.expand_one({"@id": "asset-1", "properties": {"name": "Brakes"}})
    assert node["@id"] == "asset-1"  # relative ids stay as they are (EDC ids are plain strings)
    props = node[EDC + "properties"][0]
    assert props[EDC + "name"] == [{"@value": "Brakes"}]


def test_every_spelling_of_a_term_means_the_same_iri() -> None:
    bare = jsonld.expand_one({"@id": "x", "name": "n"})
    prefixed = jsonld.expand_one({"@id": "x", "edc:name": "n"})
    full = jsonld.expand_one({"@id": "x", EDC + "name": "n"})
    assert bare == prefixed == full


def test_a_client_vocab_wins_over_the_default() -> None:
    node = jsonld.expand_one({"@context": {"@vocab": "https://example.org/v#"}, "@id": "x", "name": "n"})
    assert "https://example.org/v#name" in node
    assert EDC + "name" not in node


def test_pinned_contexts_from_all_three_packages_are_served_offline() -> None:
    dsp = jsonld.expand_one({"@context": jsonld.DSP_CONTEXT_URL, "@type": "CatalogRequestMessage", "filter": []},
                            default_vocab=None)
    assert dsp["@type"] == ["https://w3id.org/dspace/2025/1/CatalogRequestMessage"]
    assert "@context" in jsonld.pinned_context("https://www.w3.org/ns/credentials/v2")  # identity's copy
    assert "@context" in jsonld.pinned_context("http://www.w3.org/ns/odrl.jsonld")


def test_an_unpinned_context_is_refused_without_fetching() -> None:
    with pytest.raises(JsonLdError) as info:
        jsonld.expand({"@context": "https://attacker.example/ctx.jsonld", "@id": "x", "name": "n"})
    assert info.value.code == "jsonld_context_unknown"
    assert "attacker.example" in str(info.value)


@pytest.mark.parametrize("document", [
    {"@context": 5, "name": "x"},
    {"@context": {"name": {"@id": 7}}, "name": "x"},
    {"@id": ["a", "b"], "name": "x"},
])
def test_invalid_json_ld_is_a_clear_error(document: dict[str, object]) -> None:
    with pytest.raises(JsonLdError) as info:
        jsonld.expand(document)
    assert info.value.status == 400
    assert str(info.value).startswith("invalid JSON-LD")


def test_expand_one_refuses_several_top_level_nodes() -> None:
    with pytest.raises(JsonLdError, match="found 2"):
        jsonld.expand_one({"@graph": [{"@id": "a", "name": "x"}, {"@id": "b", "name": "y"}]})


def test_compaction_gives_edc_short_names_and_prefixes() -> None:
    doc = {"@id": "a", "@type": EDC + "Asset", EDC + "name": "n", "http://purl.org/dc/terms/title": "t",
           "http://www.w3.org/ns/odrl/2/target": {"@id": "x"}}
    out = jsonld.compact(doc)
    assert out["@context"] == jsonld.EDC_CONTEXT
    assert out["@id"] == "a" and out["@type"] == "Asset" and out["name"] == "n"
    assert out["dct:title"] == "t"
    assert out["odrl:target"] == {"@id": "x"}


def test_iri_helpers_round_trip() -> None:
    for short in ("name", "dct:title", "odrl:permission", "https://example.org/x"):
        assert jsonld.compact_iri(jsonld.expand_iri(short)) == short


def test_plain_unwraps_values_lists_and_nodes() -> None:
    node = jsonld.expand_one({"@id": "x", "tags": ["a", "b"], "n": 3, "ref": {"@id": "urn:y"},
                              "nested": {"inner": True}})
    assert sorted(jsonld.properties_of(node)[EDC + "tags"]) == ["a", "b"]
    assert jsonld.first(node, EDC + "n") == 3
    assert jsonld.first(node, EDC + "ref") == "urn:y"
    assert jsonld.first(node, EDC + "nested") == {EDC + "inner": True}
    with pytest.raises(JsonLdError, match="one value"):
        jsonld.string(node, EDC + "tags", what="a tag")
    with pytest.raises(JsonLdError, match="'missing' is required"):
        jsonld.string(node, EDC + "missing", what="x", required=True)


def test_our_processing_leaves_pyld_shared_context_cache_alone() -> None:
    """Regression: compacting a policy that names the DSP ODRL profile broke later DSP compactions elsewhere."""
    import json
    from importlib import resources

    from pyld import jsonld as pyld

    from policies import parse_policy, policy_to_jsonld

    pyld._resolved_context_cache.clear()
    policy = parse_policy("@prefix odrl: <http://www.w3.org/ns/odrl/2/> .\n"
                          "<urn:t> a odrl:Set ; odrl:permission [ odrl:action odrl:use ] .", format="turtle")
    doc = policy_to_jsonld(policy)
    assert set(doc["@context"]) == {jsonld.DSP_CONTEXT_URL, "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"}
    jsonld.compact({"@id": "p", EDC + "policy": doc})
    jsonld.expand(doc, default_vocab=None)
    example = resources.files("connector.resources") / "dsp" / "negotiation" / "example"
    message = json.loads((example / "contract-request-message_initial.json").read_text("utf-8"))
    options = {"documentLoader": jsonld.document_loader}
    expanded = pyld.expand(message, options)
    again = pyld.compact(expanded, {"@context": [jsonld.DSP_CONTEXT_URL]}, options)  # the shared cache
    assert again["@type"] in ("ContractRequestMessage", "dspace:ContractRequestMessage")

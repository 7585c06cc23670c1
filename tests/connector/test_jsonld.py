"""connector.jsonld: EDC default vocabulary, pinned contexts only, compaction back to EDC's shape."""

from __future__ import annotations

import ast
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


# ---- the fast expansion equals pyld's -----------------------------------------------------------------------

TESTS_ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "placeholder-value"
PINNED = [jsonld.ODRL_CONTEXT_URL, jsonld.DSP_CONTEXT_URL, "https://w3id.org/dspace/2025/1/odrl-profile.jsonld",
          "https://w3id.org/edc/dspace/v0.0.1"]


class _Literals:
    """Turns a test's dict literal into JSON: module constants, ``jsonld.X`` and ``A + B`` of strings resolved."""

    def __init__(self, tree: ast.Module) -> None:
        self.names: dict[str, Any] = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").startswith("tests."):
                source = TESTS_ROOT.parent / (str(stmt.module).replace(".", "/") + ".py")
                if source.is_file():
                    imported = _Literals(ast.parse(source.read_text("utf-8"))).names
                    self.names.update({a.asname or a.name: imported[a.name] for a in stmt.names if a.name in imported})
            elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self.names[stmt.targets[0].id] = self.value(stmt.value)
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
                self.names[stmt.target.id] = self.value(stmt.value)

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str | int | float | bool | None) else PLACEHOLDER
        if isinstance(node, ast.Dict):
            out: dict[str, Any] = {}
            for key, value in zip(node.keys, node.values, strict=True):
                if key is None:
                    spread = self.value(value)
                    out.update(spread if isinstance(spread, dict) else {})
                    continue
                name = self.value(key)
                out[name if isinstance(name, str) else PLACEHOLDER] = self.value(value)
            return out
        if isinstance(node, ast.List | ast.Tuple):
            return [self.value(item) for item in node.elts if not isinstance(item, ast.Starred)]
        if isinstance(node, ast.Name):
            return copy.deepcopy(self.names.get(node.id, PLACEHOLDER))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "jsonld":
            found = getattr(jsonld, node.attr, PLACEHOLDER)
            return copy.deepcopy(found) if isinstance(found, str | dict) else PLACEHOLDER
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.value(node.left), self.value(node.right)
            return left + right if isinstance(left, str) and isinstance(right, str) else PLACEHOLDER
        return PLACEHOLDER


def management_bodies() -> list[dict[str, Any]]:
    """Every dict literal sent as ``json=`` in tests/ (management and protocol calls alike), and every literal
    with an ``@context`` or an EDC management ``@type``."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(TESTS_ROOT.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        literals = _Literals(tree)
        for node in ast.walk(tree):
            candidates: list[ast.AST] = []
            if isinstance(node, ast.Call):
                candidates += [kw.value for kw in node.keywords if kw.arg == "json" and isinstance(kw.value, ast.Dict)]
            if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value in ("@context", "@type")
                                                  for k in node.keys):
                candidates.append(node)
            for candidate in candidates:
                doc = literals.value(candidate)
                if isinstance(doc, dict):
                    found.setdefault(json.dumps(doc, sort_keys=True), doc)
    return list(found.values())


def _rename(node: Any, rename: Callable[[str], str]) -> Any:
    if isinstance(node, list):
        return [_rename(item, rename) for item in node]
    if isinstance(node, dict):
        return {(k if k.startswith("@") or ":" in k else rename(k)): _rename(v, rename) for k, v in node.items()}
    return node


def _with_context(doc: dict[str, Any], context: Any) -> dict[str, Any]:
    own = doc.get("@context")
    return {**doc, "@context": [context, *([] if own is None else own if isinstance(own, list) else [own])]}


def variants(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The body as written, prefixed (``edc:x``), expanded (full IRIs), and under other and mixed contexts."""
    return [
        doc,
        _rename(doc, lambda k: "edc:" + k),
        _rename(doc, lambda k: EDC + k),
        _with_context(doc, {"edc": EDC, "ex": "https://example.org/ns#"}),
        _with_context(doc, {"@vocab": "https://example.org/v#"}),
        _with_context(doc, jsonld.ODRL_CONTEXT_URL),
        _with_context(doc, {"@language": "en", "name": {"@id": EDC + "name", "@type": "@id"}}),
        _with_context(doc, {"limit": {"@id": EDC + "limit", "@type": "http://www.w3.org/2001/XMLSchema#int"}}),
        {**doc, "nested": {"@context": {"@vocab": "https://example.org/inner#"}, "inner": doc.get("@id", "v")}},
    ]


def _outcome(run: Callable[[], Any]) -> Any:
    """The result, or the error's class, code and message: equal outcomes mean equal behaviour."""
    try:
        return json.dumps(run())
    except JsonLdError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc))


def _assert_same_as_pyld(document: Any, default_vocab: str | None = EDC) -> bool:
    """Our expansion equals pyld's (result and key order, or error); True when the fast path answered."""
    given = jsonld.with_default_vocab(document, default_vocab) if default_vocab and isinstance(document, dict) \
        else document
    reference = _outcome(lambda: jsonld.pyld_expand(given))
    assert _outcome(lambda: jsonld.expand(document, default_vocab=default_vocab)) == reference, document
    fast = jsonld._fast_expand(given) is not None
    if fast:  # once more from the cached contexts and memoised terms
        assert _outcome(lambda: jsonld.expand(document, default_vocab=default_vocab)) == reference, document
    return fast


BODIES = management_bodies()


MANAGEMENT_TYPES = {"QuerySpec", "ContractRequest", "TransferRequest", "Asset", "PolicyDefinition",
                    "ContractDefinition", "DatasetRequest", "CatalogRequest"}
MANAGEMENT_KEYS = {"filterExpression", "dataAddress", "assetsSelector", "policy", "counterPartyAddress", "contractId",
                   "properties", "offset", "limit"}


def is_management_body(body: dict[str, Any]) -> bool:
    return body.get("@type") in MANAGEMENT_TYPES or bool(MANAGEMENT_KEYS & set(body))


def test_the_corpus_holds_the_common_management_requests() -> None:
    types = {str(body.get("@type")) for body in BODIES}
    assert {"QuerySpec", "ContractRequest", "TransferRequest", "PolicyDefinition", "DatasetRequest"} <= types
    assert any("assetsSelector" in body for body in BODIES)  # contract definitions
    assert any("dataAddress" in body for body in BODIES)  # assets
    assert sum(map(is_management_body, BODIES)) > 40 and len(BODIES) > 200


def test_every_management_body_and_its_variants_expand_exactly_as_pyld() -> None:
    fast = total = 0
    for body in filter(is_management_body, BODIES):
        for variant in variants(body):
            fast += _assert_same_as_pyld(variant)
            total += 1
    assert fast > total * 0.9  # and they did take the fast path


def test_every_other_document_in_the_tests_expands_exactly_as_pyld() -> None:
    for body in BODIES:
        if not is_management_body(body):
            _assert_same_as_pyld(body)


def test_documents_given_without_a_default_vocabulary_expand_exactly_as_pyld() -> None:
    for body in BODIES[:30]:
        _assert_same_as_pyld(body, default_vocab=None)
        _assert_same_as_pyld(_with_context(body, jsonld.DSP_CONTEXT_URL), default_vocab=None)


def test_the_bench_and_e2e_requests_take_the_fast_path() -> None:
    ids = [f"negotiation-{i}" for i in range(50)]
    query = {"@context": {"@vocab": EDC}, "@type": "QuerySpec", "limit": 50,
             "filterExpression": [{"operandLeft": "id", "operator": "in", "operandRight": ids}]}
    offer = {"@id": "offer-1", "@type": "odrl:Offer", "odrl:permission": {"odrl:action": {"@id": "odrl:use"}},
             "odrl:prohibition": [], "odrl:obligation": []}
    request = {"@context": {"@vocab": EDC}, "@type": "ContractRequest", "counterPartyAddress": "http://p/dsp",
               "counterPartyId": "did:web:p", "protocol": "dataspace-protocol-http:2025-1",
               "policy": {**offer, "target": "asset-1", "assigner": "did:web:p"}}
    for document in (query, request):
        assert _assert_same_as_pyld(document)
    node = jsonld.expand_one(query)
    assert [v["@value"] for v in node[EDC + "filterExpression"][0][EDC + "operandRight"]] == ids


@pytest.mark.parametrize("document", [
    {"@context": 5, "name": "x"},
    {"@context": {"name": {"@id": 7}}, "name": "x"},
    {"@id": ["a", "b"], "name": "x"},
    {"@id": "a", "@type": 5},
    {"@id": "a", "@type": None},
    {"@id": "a", "id": "b", "@context": {"id": "@id"}},
    {"name": {"@value": {"x": 1}}},
    {"name": {"@value": "x", "@type": "not an iri", "@language": "en"}},
    {"@context": "https://attacker.example/ctx.jsonld", "name": "n"},
    {"nested": {"@context": {"@propagate": "yes"}, "x": 1}},
    {"@context": {"@version": 1.0}, "name": "x"},
])
def test_errors_are_exactly_pyld_errors(document: dict[str, Any]) -> None:
    _assert_same_as_pyld(document)


_COMMON_KEYS = st.sampled_from(["name", "edc:name", EDC + "name", "odrl:action", "action", "target", "@id", "@type",
                                "http://example.org/p", "dct:title", "unknown:thing", "type", "id", "list", "",
                                "@value"])
_RARE_KEYS = st.sampled_from(["@value", "@list", "@set", "@language", "@graph", "@reverse", "@included", "@foo",
                              "_:b0", "@nest", "@index"])
_KEYS = st.one_of(_COMMON_KEYS, _COMMON_KEYS, _COMMON_KEYS, _COMMON_KEYS, _COMMON_KEYS, _RARE_KEYS)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=16),
                     st.sampled_from(["x", "odrl:use", "use", "http://example.org/o", "_:b1", "@id", "en", ""]))
_CONTEXTS = st.sampled_from([
    None, {"@vocab": "https://example.org/v#"}, {"edc": EDC}, jsonld.ODRL_CONTEXT_URL, jsonld.DSP_CONTEXT_URL,
    {"type": "@type", "id": "@id"}, {"list": {"@id": EDC + "list", "@container": "@list"}},
    {"action": {"@id": "http://www.w3.org/ns/odrl/2/action", "@type": "@vocab"}}, {"@language": "de"},
    [jsonld.ODRL_CONTEXT_URL, {"target": {"@type": "@id", "@id": "http://www.w3.org/ns/odrl/2/target"}}],
    {"name": None}, {"@base": "https://base.example/"}, {"@propagate": False, "x": EDC + "x"},
])
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.tuples(_CONTEXTS, st.dictionaries(_KEYS, inner, max_size=4)).map(
        lambda pair: pair[1] if pair[0] is None else {"@context": pair[0], **pair[1]})), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_CONTEXTS, st.dictionaries(_KEYS, _VALUES, max_size=5)))
def test_generated_documents_expand_exactly_as_pyld(pair: tuple[Any, dict[str, Any]]) -> None:
    context, body = pair
    _assert_same_as_pyld(body if context is None else {"@context": context, **body})


_SIMPLE_CONTEXTS = st.sampled_from([
    None, {"@vocab": "https://example.org/v#"}, {"edc": EDC}, {"xsd": "http://www.w3.org/2001/XMLSchema#"},
    jsonld.ODRL_CONTEXT_URL, {"type": "@type", "id": "@id"},
    {"action": {"@id": "http://www.w3.org/ns/odrl/2/action", "@type": "@vocab"}}, {"@language": "de"},
    {"target": {"@id": "http://www.w3.org/ns/odrl/2/target", "@type": "@id"}, "@direction": "rtl"},
    {"name": {"@id": EDC + "name", "@language": None}, "@language": "fr"},
    {"list": {"@id": EDC + "list", "@type": "http://www.w3.org/2001/XMLSchema#int", "@container": "@set"}},
    {"name": None}, {"@base": "https://base.example/"},
])
_LITERAL_OBJECTS = st.fixed_dictionaries(
    {"@value": st.one_of(_SCALARS, st.lists(st.integers(), max_size=1))},
    optional={"@type": st.one_of(st.sampled_from(["xsd:dateTime", "http://www.w3.org/2001/XMLSchema#int", "name",
                                                  "_:b", "@json", "@id", "odrl:x", "not an iri"]),
                                 st.lists(st.just("xsd:int"), max_size=2), st.none()),
              "@language": st.just("en"), "@id": st.just("x")})
_SIMPLE_VALUES = st.recursive(
    st.one_of(_SCALARS, st.sampled_from(["odrl:use", "edc:x", "name", "https://example.org/z"]), _LITERAL_OBJECTS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(_SIMPLE_CONTEXTS, st.dictionaries(_COMMON_KEYS, inner, max_size=4)).map(
            lambda pair: pair[1] if pair[0] is None else {"@context": pair[0], **pair[1]})), max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_SIMPLE_CONTEXTS, st.dictionaries(_COMMON_KEYS, _SIMPLE_VALUES, max_size=6)))
def test_generated_management_like_documents_expand_exactly_as_pyld(pair: tuple[Any, dict[str, Any]]) -> None:
    context, body = pair
    _assert_same_as_pyld(body if context is None else {"@context": context, **body})


def test_a_context_changed_in_place_is_a_new_cache_entry() -> None:
    """Invalidation: the cache key is the context's JSON text at each call, never the object passed."""
    context: dict[str, Any] = {"@vocab": "https://example.org/first#"}
    document = {"@context": context, "@id": "x", "name": "n"}
    assert "https://example.org/first#name" in jsonld.expand_one(document, default_vocab=None)
    context["@vocab"] = "https://example.org/second#"
    assert "https://example.org/second#name" in jsonld.expand_one(document, default_vocab=None)
    context["name"] = {"@id": "https://example.org/third#n", "@type": "@id"}
    assert jsonld.expand_one(document, default_vocab=None)["https://example.org/third#n"] == [{"@id": "n"}]


def test_a_nested_context_is_cached_per_parent_chain() -> None:
    """The same nested context under different outer contexts is a different active context."""
    inner = {"@context": {"ex": "https://example.org/ex#"}, "ex:a": 1, "b": 2}
    first = jsonld.expand_one({"@context": {"@vocab": "https://one.example/"}, "@id": "x", "p": inner},
                              default_vocab=None)
    second = jsonld.expand_one({"@context": {"@vocab": "https://two.example/"}, "@id": "x", "p": inner},
                               default_vocab=None)
    assert "https://one.example/b" in first["https://one.example/p"][0]
    assert "https://two.example/b" in second["https://two.example/p"][0]


def test_the_context_cache_is_bounded() -> None:
    for i in range(jsonld._MAX_CONTEXTS + 20):
        jsonld.expand({"@context": {"@vocab": f"https://example.org/{i}#"}, "@id": "x", "name": "n"})
    assert len(jsonld._CONTEXTS) <= jsonld._MAX_CONTEXTS


def test_a_context_that_is_not_plain_json_is_left_to_pyld() -> None:
    """A non-string key would serialise like a string one; such a context never reaches the cache."""
    string_key = {"@context": {"1": "https://example.org/one#"}, "@id": "x", "1:a": "v"}
    int_key = {"@context": {1: "https://example.org/one#"}, "@id": "x", "1:a": "v"}
    assert _assert_same_as_pyld(string_key)
    assert not _assert_same_as_pyld(int_key)

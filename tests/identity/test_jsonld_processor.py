"""The processed-context memo must never change a canonical form: compare against stock pyld, cold and warm."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyld import jsonld

from identity.credentials.data_integrity import DataIntegrityError, canonicalize_rdfc
from identity.jsonld import document_loader
from identity.jsonld_processor import OfflineProcessor, memo_size

VECTORS = Path(__file__).parents[1] / "data" / "vectors"
V2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"
OPTIONS = {"algorithm": "URDNA2015", "format": "application/n-quads", "documentLoader": document_loader,
           "base": None}


def _stock(document: dict[str, Any]) -> str:
    """Reference: a plain pyld processor, no memo."""
    result = jsonld.JsonLdProcessor().normalize(copy.deepcopy(document), dict(OPTIONS))
    assert isinstance(result, str)
    return result


def _credential(subject: dict[str, Any], types: list[str] | None = None) -> dict[str, Any]:
    return {
        "@context": [V2, EXAMPLES],
        "id": "urn:uuid:58172aac-d8ba-11ed-83dd-0b3aef56cc33",
        "type": ["VerifiableCredential", *(types or ["AlumniCredential"])],
        "issuer": "did:example:issuer",
        "validFrom": "2023-01-01T00:00:00Z",
        "credentialSubject": subject,
    }


def _vector_documents() -> list[dict[str, Any]]:
    eddsa = VECTORS / "w3c-vc-di-eddsa/TestVectors"
    paths = [eddsa / "unsigned.json", *sorted((eddsa / "eddsa-rdfc-2022").glob("*.json")),
             *sorted((eddsa / "Ed25519Signature2020").glob("*.json")),
             VECTORS / "generated-here/out-eddsa-rdfc-2022.json",
             VECTORS / "generated-here/out-didkit-ed25519signature2018.json"]
    return [json.loads(path.read_text()) for path in paths]


def test_vector_documents_canonicalize_as_stock_pyld_cold_and_warm() -> None:
    docs = _vector_documents()
    assert docs
    expected = [_stock(d) for d in docs]
    for _ in range(3):  # the first round fills the memo, the next ones read from it
        for doc, want in zip(docs, expected, strict=True):
            assert canonicalize_rdfc(doc) == want
    assert memo_size() > 0


def test_documents_sharing_contexts_do_not_leak_into_each_other() -> None:
    # alternate documents whose type-scoped contexts differ, so any wrong memo hit would change a quad
    di_proof = {"@context": [V2], "type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022",
                "created": "2023-02-24T23:36:38Z", "verificationMethod": "did:example:issuer#k",
                "proofPurpose": "assertionMethod"}
    docs = [_credential({"id": "did:example:a", "alumniOf": "School"}), di_proof,
            _credential({"id": "did:example:b", "name": "B"}, ["ExampleDegreeCredential"]),
            {"@context": [V2], "type": ["VerifiablePresentation"], "holder": "did:example:h"}]
    expected = [_stock(d) for d in docs]
    for _ in range(3):
        for doc, want in zip(docs, expected, strict=True):
            assert canonicalize_rdfc(doc) == want


def test_inline_context_edited_in_place_is_processed_again() -> None:
    inline = {"score": "https://example.org/score"}
    doc = {"@context": [V2, inline], "id": "urn:x", "score": "1"}
    first = canonicalize_rdfc(doc)
    assert "<https://example.org/score>" in first
    inline["score"] = "https://example.org/other"  # same dict object, new meaning
    second = canonicalize_rdfc(doc)
    assert "<https://example.org/other>" in second and second == _stock(doc)


def test_safe_mode_still_refuses_undefined_terms_with_a_warm_memo() -> None:
    doc = {"@context": ["https://www.w3.org/2018/credentials/v1"], "type": ["VerifiableCredential"],
           "issuer": "did:x:y", "issuanceDate": "2020-01-01T00:00:00Z", "credentialSubject": {"id": "did:x:z"}}
    for _ in range(2):
        canonicalize_rdfc(doc)
        with pytest.raises(DataIntegrityError, match="notDefinedAnywhere"):
            canonicalize_rdfc({**doc, "notDefinedAnywhere": 1})


def test_invalid_context_errors_are_not_memoised() -> None:
    bad = {"@context": [V2, {"id": "https://example.org/redefined-id"}], "id": "urn:x"}
    for _ in range(2):  # VC 2.0 protects "id": redefining it must fail every time, not only the first
        with pytest.raises(DataIntegrityError):
            canonicalize_rdfc(bad)


def test_memo_only_serves_the_pinned_loader() -> None:
    seen: list[str] = []

    def counting_loader(url: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
        seen.append(url)
        return document_loader(url, options)

    doc = _credential({"id": "did:example:a", "alumniOf": "School"})
    out = OfflineProcessor().normalize(copy.deepcopy(doc), {**OPTIONS, "documentLoader": counting_loader})
    assert out == _stock(doc)


@settings(max_examples=25, deadline=None)
@given(name=st.text(min_size=0, max_size=12), subject_id=st.sampled_from(["did:example:a", "urn:uuid:1", None]),
       degree=st.booleans())
def test_random_credentials_match_stock_pyld(name: str, subject_id: str | None, degree: bool) -> None:
    subject: dict[str, Any] = {"name": name}
    if subject_id:
        subject["id"] = subject_id
    if degree:
        subject["degree"] = {"type": "ExampleBachelorDegree", "name": name}
    doc = _credential(subject, ["ExampleDegreeCredential"] if degree else None)
    assert canonicalize_rdfc(doc) == _stock(doc)


def test_memo_stays_bounded_under_many_distinct_inline_contexts() -> None:
    from identity import jsonld_processor

    for i in range(jsonld_processor._MEMO_MAX + 20):
        canonicalize_rdfc({"@context": [V2, {f"t{i}": f"https://example.org/{i}"}], "id": "urn:x", f"t{i}": "v"})
    assert memo_size() <= jsonld_processor._MEMO_MAX
    huge = {f"term{i}": f"https://example.org/vocab/{i}" for i in range(2000)}
    before = memo_size()
    doc = {"@context": [V2, huge], "id": "urn:x", "term7": "v"}
    assert canonicalize_rdfc(doc) == _stock(doc)
    assert memo_size() == before  # the huge inline context is processed but not kept

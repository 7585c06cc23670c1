"""A DSP message that takes the expand/compact path keeps relative ids as written (regression: the library
policies' ``odrl:conflict`` key sent agreements that way, and the asset id ``part-traceability`` came back as
``http://example.org/base/part-traceability``, so the consumer refused the agreement)."""

from __future__ import annotations

from connector.protocol.jsonld import DSP_CONTEXT, is_compact_dsp, normalise


def test_relative_target_survives_normalisation() -> None:
    message = {
        "@context": [DSP_CONTEXT], "@type": "ContractAgreementMessage", "providerPid": "urn:uuid:p",
        "consumerPid": "urn:uuid:c",
        "agreement": {"@id": "urn:uuid:a", "@type": "Agreement", "target": "part-traceability",
                      "assigner": "did:web:supplier", "assignee": "did:web:manufacturer",
                      "timestamp": "2026-01-01T00:00:00Z", "odrl:permission": [{"action": "use"}],
                      "odrl:conflict": {"@id": "odrl:prohibit"}},
    }
    assert not is_compact_dsp(message)  # odrl:permission (the context has a term for it) sends it through expansion
    agreement = normalise(message)["agreement"]
    assert agreement["target"] == "part-traceability"
    assert agreement["assigner"] == "did:web:supplier"

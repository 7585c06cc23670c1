"""Request-body descriptions for the OpenAPI document (the handlers read JSON-LD themselves).

WHY separate: handlers parse bodies as JSON-LD (any spelling of a term is accepted), which FastAPI cannot
infer; these schemas and examples tell API users the EDC shapes without constraining what is accepted.
"""

from __future__ import annotations

from typing import Any

EDC_VOCAB = {"@vocab": "https://w3id.org/edc/v0.0.1/ns/"}

CRITERION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operandLeft": {"type": "string"},
        "operator": {"type": "string", "enum": ["=", "!=", "<", ">", "<=", ">=", "in", "like", "ilike"]},
        "operandRight": {},
    },
    "required": ["operandLeft", "operator", "operandRight"],
}

QUERY_SPEC_BODY: dict[str, Any] = {
    "schema": {
        "type": "object",
        "properties": {
            "@type": {"const": "QuerySpec"},
            "offset": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
            "sortField": {"type": "string"},
            "sortOrder": {"type": "string", "enum": ["ASC", "DESC"]},
            "filterExpression": {"type": "array", "items": CRITERION},
        },
    },
    "example": {"@context": EDC_VOCAB, "@type": "QuerySpec", "offset": 0, "limit": 10, "sortField": "id",
                "sortOrder": "ASC",
                "filterExpression": [{"operandLeft": "dataClass", "operator": "=", "operandRight": "general"}]},
}

ASSET_BODY: dict[str, Any] = {
    "schema": {
        "type": "object",
        "properties": {
            "@id": {"type": "string"},
            "properties": {"type": "object", "description": "public properties; dataClass (general|important|"
                                                            "core), category and jurisdiction feed the policies"},
            "privateProperties": {"type": "object"},
            "dataAddress": {"type": "object", "properties": {"type": {"enum": ["HttpData", "File", "Inline"]}},
                            "required": ["type"]},
        },
        "required": ["@id", "dataAddress"],
    },
    "example": {
        "@context": EDC_VOCAB, "@id": "brake-wear-2026",
        "properties": {"name": "Brake wear measurements", "contenttype": "text/csv", "dataClass": "important",
                       "category": "quality", "jurisdiction": "DE"},
        "dataAddress": {"type": "File", "source": "supplier-files", "path": "brake-wear.csv"},
    },
}

POLICY_DEFINITION_BODY: dict[str, Any] = {
    "schema": {"type": "object", "properties": {"@id": {"type": "string"}, "policy": {"type": "object"}},
               "required": ["@id", "policy"]},
    "example": {
        "@context": EDC_VOCAB, "@id": "members-only", "@type": "PolicyDefinition",
        "policy": {"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set",
                   "permission": [{"action": "use", "constraint": [
                       {"leftOperand": "purpose", "operator": "eq", "rightOperand": "quality-analysis"}]}]},
    },
}

CONTRACT_DEFINITION_BODY: dict[str, Any] = {
    "schema": {"type": "object", "properties": {
        "@id": {"type": "string"}, "accessPolicyId": {"type": "string"}, "contractPolicyId": {"type": "string"},
        "assetsSelector": {"type": "array", "items": CRITERION}, "approval": {"enum": ["auto", "manual"]}},
        "required": ["@id", "accessPolicyId", "contractPolicyId"]},
    "example": {"@context": EDC_VOCAB, "@id": "quality-data", "accessPolicyId": "members-only",
                "contractPolicyId": "members-only", "approval": "auto",
                "assetsSelector": [{"operandLeft": "category", "operator": "=", "operandRight": "quality"}]},
}

CATALOG_REQUEST_BODY: dict[str, Any] = {
    "schema": {"type": "object", "properties": {
        "counterPartyAddress": {"type": "string"}, "counterPartyId": {"type": "string"},
        "protocol": {"type": "string"}, "querySpec": QUERY_SPEC_BODY["schema"]},
        "required": ["counterPartyAddress"]},
    "example": {"@context": EDC_VOCAB, "@type": "CatalogRequest", "counterPartyAddress": "http://127.0.0.1:8181",
                "protocol": "dataspace-protocol-http:2025-1", "querySpec": {"offset": 0, "limit": 50}},
}

DATASET_REQUEST_BODY: dict[str, Any] = {
    "schema": {"type": "object", "properties": {
        "@id": {"type": "string"}, "counterPartyAddress": {"type": "string"}, "counterPartyId": {"type": "string"},
        "protocol": {"type": "string"}}, "required": ["@id", "counterPartyAddress"]},
    "example": {"@context": EDC_VOCAB, "@type": "DatasetRequest", "@id": "brake-wear-2026",
                "counterPartyAddress": "http://127.0.0.1:8181", "protocol": "dataspace-protocol-http:2025-1"},
}


def json_body(body: dict[str, Any], *, turtle: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON (and optionally Turtle) request body."""
    content: dict[str, Any] = {"application/json": body}
    if turtle:
        content["text/turtle"] = {"schema": {"type": "string"}}
    return {"requestBody": {"required": True, "content": content}}

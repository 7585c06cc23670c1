"""Eclipse Dataspace Protocol 2025-1: messages, schema validation, JSON-LD handling, HTTP routers and client."""

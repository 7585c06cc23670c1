"""The ``[tls]`` section shared by the connector's and the authority's configuration files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TlsFiles(BaseModel):
    """Serve https with ``cert_file``/``key_file``; trust ``ca_file`` (the data space's CA) when calling out.

    All three are optional and independent of each other, except that a certificate needs its key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cert_file: str | None = Field(default=None, description="PEM server certificate (chain) to serve https with")
    key_file: str | None = Field(default=None, description="PEM private key of cert_file")
    ca_file: str | None = Field(default=None, description="PEM CA certificate trusted in addition to the public "
                                "CAs for every outgoing https call (DID resolution, DSP, DCP, data, status lists)")

    @model_validator(mode="after")
    def _pair(self) -> TlsFiles:
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("give both cert_file and key_file (or neither)")
        return self

    @property
    def serves_https(self) -> bool:
        return bool(self.cert_file)

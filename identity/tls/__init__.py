"""TLS for a data space without a public CA: a small data-space CA, server certificates per host, and the one
place every outgoing HTTP client takes its certificate-verification setting from.

WHY: did:web (and DSP, DCP) require https. Inside a private network (docker compose, a lab) the parties have
names no public CA will certify, so the data space runs its own CA; every party serves its certificate and
trusts that CA in addition to the usual public ones.
"""

from identity.tls.certs import CertificateSet, ensure_certificates
from identity.tls.errors import TlsError
from identity.tls.verify import check_server_files, client_verify

__all__ = ["CertificateSet", "TlsError", "check_server_files", "client_verify", "ensure_certificates"]

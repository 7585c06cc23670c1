"""The certificate-verification setting for every outgoing httpx client (connector, authority, CLI, demo).

``client_verify(None)`` is ``True``: httpx's default (the public CAs). With a data-space CA file it is an
``ssl.SSLContext`` that trusts the public CAs AND that CA, so a party inside a private network can still
reach public https endpoints. Contexts are cached per file: building one reads the whole CA bundle.
"""

from __future__ import annotations

import os
import ssl
from functools import lru_cache
from pathlib import Path

import httpx

from identity.tls.errors import TlsError


def client_verify(ca_file: str | os.PathLike[str] | None) -> ssl.SSLContext | bool:
    """What to pass as httpx's ``verify=``: True without ``ca_file``, else a context that also trusts it."""
    if ca_file is None or str(ca_file) == "":
        return True
    path = Path(ca_file).resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise TlsError(f"tls.ca_file = {str(ca_file)!r}: cannot read it ({exc.strerror or exc})",
                       code="tls_ca_unreadable") from None
    return _context(str(path), stamp)


@lru_cache(maxsize=16)
def _context(path: str, _stamp: int) -> ssl.SSLContext:
    context = httpx.create_ssl_context()  # exactly httpx's default trust (certifi, SSL_CERT_FILE) ...
    try:
        context.load_verify_locations(cafile=path)  # ... plus the data space's CA
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"tls.ca_file = {path!r} is not a PEM CA certificate: {exc}",
                       code="tls_ca_invalid") from None
    return context


def check_server_files(cert_file: str | None, key_file: str | None) -> None:
    """Load the certificate and key as a server would, so a wrong path is a clear error at start-up instead of
    a server that silently fails to bind."""
    if not cert_file:
        return
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        raise TlsError(f"tls.cert_file/key_file: {exc.filename or cert_file} does not exist",
                       code="tls_cert_unreadable") from None
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(f"tls.cert_file = {cert_file!r}, key_file = {key_file!r}: not a usable certificate and "
                       f"key ({exc})", code="tls_cert_invalid") from None

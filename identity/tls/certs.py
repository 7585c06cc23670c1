"""A data-space CA and one server certificate per host name, written to a folder; running it again changes nothing.

Layout of the folder (PEM files; private keys readable by the owner only)::

    ca.pem  ca-key.pem            the data space's CA (trusted by every party through tls.ca_file)
    <name>.pem  <name>-key.pem    the server certificate (leaf, then the CA) and key for host <name>

WHY idempotent: the docker-compose ``certs`` service runs on every ``up``; parties that already trust the CA
must keep trusting it, so an existing CA is reused, and a server certificate is only re-issued when it is
missing, not signed by this CA, lacks one of the wanted names or is about to expire.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from identity.tls.errors import TlsError

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 397  # the longest validity browsers accept for a server certificate
RENEW_BEFORE = dt.timedelta(days=30)
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(frozen=True)
class ServerCertificate:
    """One host's certificate and key files, and whether this run (re)issued them."""

    name: str
    cert_file: Path
    key_file: Path
    issued: bool


@dataclass(frozen=True)
class CertificateSet:
    """What :func:`ensure_certificates` left in the folder."""

    folder: Path
    ca_file: Path
    ca_created: bool
    servers: dict[str, ServerCertificate] = field(default_factory=dict)


def _san_entries(names: Iterable[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name.strip("[]"))))
            continue
        except ValueError:
            pass
        if not _DNS_NAME.match(name):
            raise TlsError(f"{name!r} is neither a host name nor an IP address", code="tls_name_invalid")
        entries.append(x509.DNSName(name.lower()))
    return entries


def _file_name(name: str) -> str:
    """``supplier`` -> ``supplier``; an IP or odd characters become a safe file name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise TlsError(f"cannot write {path}: {exc.strerror or exc}", code="tls_write_failed") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"cannot read {path}: {exc.strerror or exc}", code="tls_read_failed") from None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(_read(folder / CA_FILE))
        key = serialization.load_pem_private_key(_read(folder / CA_KEY_FILE), password=None)
    except ValueError as exc:
        raise TlsError(f"the CA in {folder} is not readable PEM ({exc}); remove {CA_FILE} and {CA_KEY_FILE} "
                       "to create a new one (every party must then trust the new CA)", code="tls_ca_invalid") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise TlsError(f"{folder / CA_KEY_FILE} is not the key of {folder / CA_FILE}", code="tls_ca_invalid")
    return cert, key


def _new_ca(common_name: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _issue(name: str, sans: list[x509.GeneralName], ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
           now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _still_good(cert_file: Path, key_file: Path, ca: x509.Certificate, sans: list[x509.GeneralName],
                now: dt.datetime) -> bool:
    """An existing certificate is kept when it is this CA's, covers every wanted name and is not expiring."""
    if not cert_file.is_file() or not key_file.is_file():
        return False
    try:
        cert = x509.load_pem_x509_certificates(cert_file.read_bytes())[0]
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca)
        present = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        return False
    return set(sans) <= present and cert.not_valid_after_utc - RENEW_BEFORE > now


def ensure_certificates(folder: str | os.PathLike[str], names: Sequence[str], *, also: Sequence[str] = (),
                        ca_name: str = "Pactum data space CA", now: dt.datetime | None = None) -> CertificateSet:
    """Create (or keep) the CA in ``folder`` and a server certificate for each of ``names``.

    Each certificate's subject alternative names are its own name plus every entry of ``also`` (host names
    or IP addresses every party may also be reached at, e.g. ``localhost`` for published ports).
    """
    if not names:
        raise TlsError("name at least one host to issue a server certificate for", code="tls_name_missing")
    now = now or dt.datetime.now(dt.UTC)
    base = Path(folder)
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TlsError(f"cannot create {base}: {exc.strerror or exc}", code="tls_write_failed") from None
    ca_created = not (base / CA_FILE).exists()
    if ca_created:
        if (base / CA_KEY_FILE).exists():
            raise TlsError(f"{base / CA_KEY_FILE} exists without {CA_FILE}; remove it or restore the CA",
                           code="tls_ca_invalid")
        ca, ca_key = _new_ca(ca_name, now)
        _write(base / CA_KEY_FILE, _key_pem(ca_key), private=True)
        _write(base / CA_FILE, ca.public_bytes(serialization.Encoding.PEM))
    else:
        ca, ca_key = _load_ca(base)
    if ca.not_valid_after_utc - RENEW_BEFORE <= now:
        raise TlsError(f"the CA in {base} expires on {ca.not_valid_after_utc:%Y-%m-%d}; create a new one "
                       f"(remove {CA_FILE} and {CA_KEY_FILE}) and let every party trust it", code="tls_ca_expiring")
    servers: dict[str, ServerCertificate] = {}
    for name in dict.fromkeys(names):
        sans = _san_entries([name, *also])
        cert_file, key_file = base / f"{_file_name(name)}.pem", base / f"{_file_name(name)}-key.pem"
        issued = not _still_good(cert_file, key_file, ca, sans, now)
        if issued:
            cert, key = _issue(name, sans, ca, ca_key, now)
            _write(key_file, _key_pem(key), private=True)
            chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
            _write(cert_file, chain)
        servers[name] = ServerCertificate(name, cert_file, key_file, issued)
    return CertificateSet(base, base / CA_FILE, ca_created, servers)

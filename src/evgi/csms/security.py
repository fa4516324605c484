"""TLS of the OCPP endpoint: security profile 2 (server certificate, then HTTP basic auth) and
profile 3 (mutual TLS with a station certificate from the CSMS root CA)."""

from __future__ import annotations

import secrets
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evgi.pnc import CertificateAuthority, CertificateError, IssuedCertificate, common_name

# The TLS 1.2 suites the OCPP security whitepaper names for an EC server key (TLS 1.3 keeps
# OpenSSL's defaults, which are all acceptable).
_TLS12_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"


def server_ssl_context(
    authority: CertificateAuthority,
    require_client_certificate: bool,
    host_names: Sequence[str] = (),
) -> ssl.SSLContext:
    """The CSMS side of TLS 1.2+, with a fresh server certificate from `authority` for
    localhost, 127.0.0.1 and `host_names`.

    With `require_client_certificate` (profile 3) a station must present a certificate that
    chains to `authority`; TLS alone neither ties it to the station id nor sees revocations,
    so call `check_station_certificate` once the handshake is done.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(_TLS12_CIPHERS)
    _load_identity(context, authority.issue_server_certificate(host_names))
    if require_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=authority.certificate_pem)
    return context


def station_ssl_context(
    csms_root: x509.Certificate, identity: IssuedCertificate | None = None
) -> ssl.SSLContext:
    """A charging station's side: TLS 1.2+, trusting only the CSMS root and checking the host
    name; under profile 3 it presents `identity` (its certificate and key)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(
        cadata=csms_root.public_bytes(serialization.Encoding.PEM).decode()
    )
    if identity is not None:
        _load_identity(context, identity)
    return context


def check_station_certificate(
    peer_der: bytes, station_id: str, authority: CertificateAuthority
) -> None:
    """Profile 3, after the handshake: the client certificate (DER, as
    `SSLObject.getpeercert(binary_form=True)` gives it) must be issued by `authority`, valid
    now, not revoked, and name `station_id` as its CN (OCPP security whitepaper)."""
    try:
        certificate = x509.load_der_x509_certificate(peer_der)
    except ValueError as exc:
        raise CertificateError(
            f"the client certificate of station {station_id!r} is not readable X.509: {exc}"
        ) from exc
    authority.verify(certificate)
    named = common_name(certificate.subject)
    if named != station_id:
        raise CertificateError(
            f"the client certificate is for station {named!r} (CN), "
            f"but the connection is for station {station_id!r}"
        )


def _load_identity(context: ssl.SSLContext, identity: IssuedCertificate) -> None:
    """`ssl` reads keys only from files: write the chain and the key, encrypted with a one-time
    password, into a private temporary folder that is gone when this returns."""
    password = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="evgi-tls-") as folder:
        chain_path, key_path = identity.write(Path(folder), "identity", password)
        context.load_cert_chain(chain_path, key_path, password)

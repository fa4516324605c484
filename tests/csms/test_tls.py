"""TLS of the OCPP endpoint, over real handshakes on loopback: profile 2 (server certificate)
and profile 3 (mutual TLS), with every way a station certificate can be wrong refused clearly."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from evgi.config import Settings
from evgi.csms.security import check_station_certificate, server_ssl_context, station_ssl_context
from evgi.pnc import (
    CertificateAuthority,
    CertificateError,
    IssuedCertificate,
    csms_authority,
    subject_name,
)

STATION = "CS-0001"
WELCOME = b"welcome\n"


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return csms_authority(Settings(data_dir=tmp_path, cpo_name="Example CPO"))


@pytest.fixture
def other_authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "other", subject_name("Other root", "Other"))


@dataclass
class Handshake:
    """Both ends of one TLS connection: what each refused, and what the server agreed."""

    server_error: str | None = None
    client_error: str | None = None
    version: str | None = None
    cipher: str | None = None
    peer_certificate: bytes | None = None
    reply: bytes = b""

    @property
    def ok(self) -> bool:
        return self.server_error is None and self.client_error is None and self.reply == WELCOME


def _connect(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    *,
    authority: CertificateAuthority | None = None,
    server_hostname: str = "localhost",
) -> Handshake:
    """Open a TLS server on 127.0.0.1 and connect a client to it. With `authority` the server
    checks the station certificate after the handshake, as the OCPP server does."""
    return asyncio.run(
        asyncio.wait_for(
            _session(server_context, client_context, authority, server_hostname), timeout=20
        )
    )


async def _session(
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    authority: CertificateAuthority | None,
    server_hostname: str,
) -> Handshake:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Queue[asyncio.Transport] = asyncio.Queue()
    result = Handshake()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()  # the ClientHello is for the TLS layer started below
            accepted.put_nowait(transport)

    async def serve() -> None:
        raw = await accepted.get()
        try:
            tls = await loop.start_tls(raw, raw.get_protocol(), server_context, server_side=True)
        except (ssl.SSLError, ConnectionError) as exc:
            result.server_error = str(exc) or repr(exc)
            raw.close()
            return
        assert tls is not None
        session: ssl.SSLObject = tls.get_extra_info("ssl_object")
        cipher = session.cipher()
        result.version, result.cipher = session.version(), cipher[0] if cipher else None
        result.peer_certificate = session.getpeercert(binary_form=True)
        try:
            if authority is not None:
                assert result.peer_certificate is not None
                check_station_certificate(result.peer_certificate, STATION, authority)
            tls.write(WELCOME)
        except CertificateError as exc:
            result.server_error = exc.message
        finally:
            tls.close()

    async def connect() -> None:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_context, server_hostname=server_hostname
            )
        except (ssl.SSLError, ConnectionError) as exc:
            result.client_error = str(exc) or repr(exc)
            return
        try:
            result.reply = await reader.read()
        except (ssl.SSLError, ConnectionError) as exc:
            result.client_error = str(exc) or repr(exc)
        finally:
            writer.close()

    server = await loop.create_server(Accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.gather(serve(), connect())
    return result


def _station_context(
    authority: CertificateAuthority,
    identity: IssuedCertificate | None,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
) -> ssl.SSLContext:
    context = station_ssl_context(authority.certificate, identity)
    context.maximum_version = maximum
    return context


@pytest.mark.parametrize(
    ("maximum", "version"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
)
def test_profile_2_server_certificate_only(
    authority: CertificateAuthority, maximum: ssl.TLSVersion, version: str
) -> None:
    server = server_ssl_context(authority, False, ["csms.example.test"])
    for name in ("localhost", "csms.example.test"):
        handshake = _connect(
            server, _station_context(authority, None, maximum), server_hostname=name
        )
        assert handshake.ok, handshake
        assert handshake.version == version
        assert handshake.peer_certificate is None  # the station logs in with basic auth
    if version == "TLSv1.2":
        assert handshake.cipher in (
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-ECDSA-AES256-GCM-SHA384",
        )


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_profile_2_refuses_tls_1_1(authority: CertificateAuthority) -> None:
    client = _station_context(authority, None, ssl.TLSVersion.TLSv1_1)
    client.minimum_version = ssl.TLSVersion.TLSv1
    client.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer TLS 1.1 at all
    handshake = _connect(server_ssl_context(authority, False), client)
    assert not handshake.ok
    assert handshake.server_error is not None
    assert "unsupported protocol" in handshake.server_error


def test_station_refuses_a_server_it_does_not_trust(
    authority: CertificateAuthority, other_authority: CertificateAuthority
) -> None:
    server = server_ssl_context(authority, False)
    foreign = _connect(server, _station_context(other_authority, None))
    assert foreign.client_error is not None
    assert "certificate verify failed: self-signed certificate in certificate chain" in (
        foreign.client_error
    )
    wrong_name = _connect(
        server, _station_context(authority, None), server_hostname="csms.elsewhere.test"
    )
    assert wrong_name.client_error is not None
    assert "Hostname mismatch" in wrong_name.client_error


def test_profile_3_with_a_valid_station_certificate(authority: CertificateAuthority) -> None:
    identity = authority.issue_station_certificate(STATION)
    handshake = _connect(
        server_ssl_context(authority, True),
        _station_context(authority, identity),
        authority=authority,
    )
    assert handshake.ok, handshake
    assert handshake.peer_certificate is not None
    peer = x509.load_der_x509_certificate(handshake.peer_certificate)
    assert peer == identity.certificate


def test_profile_3_with_a_certificate_signed_from_the_station_csr(
    authority: CertificateAuthority,
) -> None:
    """SignCertificate → CertificateSigned: the key never leaves the station."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name(STATION, "Example CPO"))
        .sign(key, hashes.SHA256())
    )
    chain = authority.sign_station_csr(csr.public_bytes(serialization.Encoding.PEM), STATION)
    leaf, issuer = x509.load_pem_x509_certificates(chain.encode())
    identity = IssuedCertificate(leaf, issuer, key)
    handshake = _connect(
        server_ssl_context(authority, True),
        _station_context(authority, identity),
        authority=authority,
    )
    assert handshake.ok, handshake


def _expired(authority: CertificateAuthority) -> IssuedCertificate:
    now = datetime.now(UTC)
    return authority.issue_station_certificate(
        STATION, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )


def _not_yet_valid(authority: CertificateAuthority) -> IssuedCertificate:
    return authority.issue_station_certificate(
        STATION, not_before=datetime.now(UTC) + timedelta(days=1)
    )


@pytest.mark.parametrize(
    ("make", "handshake_error", "check_error"),
    [
        (
            "wrong_ca",
            "certificate verify failed: self-signed certificate in certificate chain",
            "'CS-0001' was not issued by this CA",
        ),
        ("expired", "certificate verify failed: certificate has expired", "'CS-0001' expired at"),
        (
            "not_yet_valid",
            "certificate verify failed: certificate is not yet valid",
            "'CS-0001' is not valid before",
        ),
    ],
)
def test_profile_3_refuses_a_certificate_tls_can_judge(
    authority: CertificateAuthority,
    other_authority: CertificateAuthority,
    make: str,
    handshake_error: str,
    check_error: str,
) -> None:
    identity = {
        "wrong_ca": lambda: other_authority.issue_station_certificate(STATION),
        "expired": lambda: _expired(authority),
        "not_yet_valid": lambda: _not_yet_valid(authority),
    }[make]()
    handshake = _connect(
        server_ssl_context(authority, True),
        _station_context(authority, identity),
        authority=authority,
    )
    assert not handshake.ok
    assert handshake.server_error is not None
    assert handshake_error in handshake.server_error
    # The same certificate met outside a handshake gets the check's own reason.
    der = identity.certificate.public_bytes(serialization.Encoding.DER)
    with pytest.raises(CertificateError, match=check_error):
        check_station_certificate(der, STATION, authority)


def test_profile_3_refuses_a_station_without_a_certificate(
    authority: CertificateAuthority,
) -> None:
    handshake = _connect(
        server_ssl_context(authority, True),
        _station_context(authority, None),
        authority=authority,
    )
    assert not handshake.ok
    assert handshake.server_error is not None
    assert "peer did not return a certificate" in handshake.server_error


def test_profile_3_refuses_a_revoked_certificate(authority: CertificateAuthority) -> None:
    identity = authority.issue_station_certificate(STATION)
    authority.revoke(identity.certificate.serial_number, x509.ReasonFlags.key_compromise)
    handshake = _connect(
        server_ssl_context(authority, True),
        _station_context(authority, identity),
        authority=authority,
    )
    assert not handshake.ok
    assert handshake.server_error is not None
    assert "'CS-0001'" in handshake.server_error
    assert "was revoked at" in handshake.server_error and "keyCompromise" in handshake.server_error


def test_profile_3_refuses_the_certificate_of_another_station(
    authority: CertificateAuthority,
) -> None:
    handshake = _connect(
        server_ssl_context(authority, True),
        _station_context(authority, authority.issue_station_certificate("CS-0002")),
        authority=authority,
    )
    assert not handshake.ok
    assert handshake.server_error == (
        "the client certificate is for station 'CS-0002' (CN), "
        "but the connection is for station 'CS-0001'"
    )


def test_unreadable_client_certificate_is_refused(authority: CertificateAuthority) -> None:
    with pytest.raises(CertificateError, match=r"of station 'CS-0001' is not readable X\.509"):
        check_station_certificate(b"\x30\x00", STATION, authority)

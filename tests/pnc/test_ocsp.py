"""The OCSP responder and CRLs under /pki, over real HTTP: good, revoked and unknown answers,
nonces, delegated and CA signers, refusals in OCSP's own terms, and OpenSSL's OCSP client
against a running `evgi serve`. Each test runs against the FastAPI routes and against the front
`evgi serve` answers OCSP with, which must answer the same."""

from __future__ import annotations

import base64
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from evgi.api import create_app
from evgi.app import open_platform
from evgi.config import Settings
from evgi.pnc import (
    CertificateStatus,
    Hierarchies,
    LeafRole,
    OcspClient,
    OcspError,
    iso15118_name,
)
from evgi.pnc.hierarchy import LEAF_PROFILES
from evgi.service import front, http_in_background
from tests.cli_runner import run_evgi
from tests.service_runner import running_service

MO = "mo-t-mo-2"
EMAID = "DEABC123456789"


@pytest.fixture(params=["routes", "front"])
def pki_server(
    request: pytest.FixtureRequest, pki_settings: Settings, hierarchies: Hierarchies
) -> Iterator[str]:
    """The /pki routes on the port the AIA and CRL URLs point at: FastAPI's alone, or behind
    the front `evgi serve` runs."""
    platform = open_platform(pki_settings)
    app = create_app(platform)
    try:
        served = front(app) if request.param == "front" else app
        with http_in_background(served, port=pki_settings.http_port) as url:
            yield url
    finally:
        platform.close()


def _request(certificate: x509.Certificate, issuer: x509.Certificate, nonce: bytes) -> bytes:
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA1())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )


def _ask(url: str, body: bytes) -> ocsp.OCSPResponse:
    reply = httpx.post(url, content=body, headers={"content-type": "application/ocsp-request"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.content)


def test_good_revoked_unknown(hierarchies: Hierarchies, pki_server: str) -> None:
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    issuer = issued.sub_cas[0]
    url = hierarchies.urls(MO).ocsp
    assert url == f"{pki_server}/pki/ocsp/{MO}"

    answer = _ask(url, _request(issued.certificate, issuer, b"nonce-1"))
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"nonce-1"
    # A sub-CA answers through its delegated signer, which the response carries.
    (signer,) = answer.certificates
    signer.verify_directly_issued_by(issuer)
    purposes = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(purposes) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    signer.extensions.get_extension_for_class(x509.OCSPNoCheck)

    hierarchies.revoke(MO, issued.certificate.serial_number, x509.ReasonFlags.key_compromise)
    answer = _ask(url, _request(issued.certificate, issuer, b"nonce-2"))
    assert answer.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason is x509.ReasonFlags.key_compromise

    stray = hierarchies.authority(MO).issue(
        iso15118_name(EMAID, "Test", "MO"), LEAF_PROFILES[LeafRole.CONTRACT]
    )
    answer = _ask(url, _request(stray.certificate, issuer, b"nonce-3"))
    assert answer.certificate_status is ocsp.OCSPCertStatus.UNKNOWN

    # The client checks signature, nonce and freshness the same way.
    client = OcspClient()
    try:
        assert client.status(issued.certificate, issuer).status is CertificateStatus.REVOKED
        assert client.status(issued.sub_cas[1], issued.root).status is CertificateStatus.GOOD
    finally:
        client.close()


def test_root_signs_its_own_answers(hierarchies: Hierarchies, pki_server: str) -> None:
    path = hierarchies.path("mo-t-mo-1")
    answer = _ask(hierarchies.urls("mo-t").ocsp, _request(path[0], path[1], b"n"))
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.certificates == []
    assert answer.responder_key_hash == (
        x509.SubjectKeyIdentifier.from_public_key(path[1].public_key()).digest
    )


def test_ed448_and_p521_answers(hierarchies: Hierarchies, pki_server: str) -> None:
    client = OcspClient()
    try:
        for issuer, name in (("oem-ed448-oem-2", "WMIV1234567890ABC"), ("mo-p521-mo-2", EMAID)):
            issued = hierarchies.issue(issuer, name)
            answer = client.status(issued.certificate, issued.sub_cas[0])
            assert answer.status is CertificateStatus.GOOD
    finally:
        client.close()


def test_refusals_in_ocsp_terms(hierarchies: Hierarchies, pki_server: str) -> None:
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    request = _request(issued.certificate, issued.sub_cas[0], b"n")
    malformed = _ask(f"{pki_server}/pki/ocsp/{MO}", b"\x30\x03garbage")
    assert malformed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    nowhere = _ask(f"{pki_server}/pki/ocsp/no-such-ca", request)
    assert nowhere.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # Asking one CA about another CA's certificate: not authoritative.
    other = _ask(f"{pki_server}/pki/ocsp/oem-t-oem-2", request)
    assert other.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    wrong_type = httpx.post(f"{pki_server}/pki/ocsp/{MO}", content=request)
    assert wrong_type.status_code == 415
    # The GET form (RFC 6960 A.1.1) answers the same request.
    encoded = base64.b64encode(request).decode().replace("/", "%2F").replace("+", "%2B")
    reply = httpx.get(f"{pki_server}/pki/ocsp/{MO}/{encoded}")
    assert ocsp.load_der_ocsp_response(reply.content).certificate_status is (
        ocsp.OCSPCertStatus.GOOD
    )
    garbage = httpx.get(f"{pki_server}/pki/ocsp/{MO}/not-base64!")
    assert ocsp.load_der_ocsp_response(garbage.content).response_status is (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    # Nothing refused changed what is stored.
    assert hierarchies.store.certificate(MO, issued.certificate.serial_number) is not None


def test_crl_lists_revocations(hierarchies: Hierarchies, pki_server: str) -> None:
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    kept = hierarchies.issue_contract("DEABC987654321", mo=MO)
    url = hierarchies.urls(MO).crl
    empty = x509.load_der_x509_crl(httpx.get(url).content)
    assert len(empty) == 0
    hierarchies.revoke(MO, issued.certificate.serial_number, x509.ReasonFlags.superseded)
    reply = httpx.get(url)
    assert reply.headers["content-type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(reply.content)
    assert crl.is_signature_valid(issued.sub_cas[0].public_key())  # type: ignore[arg-type]
    assert crl.issuer == issued.sub_cas[0].subject
    entry = crl.get_revoked_certificate_by_serial_number(issued.certificate.serial_number)
    assert entry is not None and entry.revocation_date_utc <= datetime.now(UTC)
    assert crl.get_revoked_certificate_by_serial_number(kept.certificate.serial_number) is None
    assert httpx.get(f"{pki_server}/pki/crl/no-such-ca.crl").status_code == 404
    pem = httpx.get(f"{pki_server}/pki/ca/{MO}.pem")
    assert x509.load_pem_x509_certificate(pem.content) == issued.sub_cas[0]


@pytest.mark.slow
def test_openssl_ocsp_against_evgi_serve(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not on PATH")
    assert run_evgi(tmp_path, "pki", "init").returncode == 0
    issued = run_evgi(tmp_path, "pki", "issue", "contract", EMAID, "--out", "certs")
    assert issued.returncode == 0, issued.stderr
    leaf, sub2, sub1 = x509.load_pem_x509_certificates(
        (tmp_path / "certs" / f"{EMAID}.pem").read_bytes()
    )
    pki = tmp_path / "evgi-data" / "pki"
    files = {"leaf.pem": leaf, "sub2.pem": sub2, "sub1.pem": sub1}
    for name, certificate in files.items():
        (tmp_path / name).write_bytes(certificate.public_bytes(serialization.Encoding.PEM))

    def ask(base: str, ca: str, cert: str, issuer: str, responder: Path) -> str:
        result = subprocess.run(
            [
                openssl, "ocsp", "-issuer", issuer, "-cert", cert,
                "-url", f"{base}/pki/ocsp/{ca}", "-resp_text", "-VAfile", str(responder),
            ],
            cwd=tmp_path, capture_output=True, text=True, check=False, timeout=30,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Response verify OK" in result.stderr + result.stdout
        return result.stdout

    with running_service(tmp_path) as base:
        signer = pki / "mo-a-mo-2" / "ocsp-signer" / "ca.pem"
        out = ask(base, "mo-a-mo-2", "leaf.pem", "sub2.pem", signer)
        assert "leaf.pem: good" in out
        out = ask(base, "mo-a", "sub1.pem", str(pki / "mo-a" / "ca.pem"), pki / "mo-a" / "ca.pem")
        assert "sub1.pem: good" in out
        revoked = run_evgi(tmp_path, "pki", "revoke", f"{leaf.serial_number:x}")
        assert revoked.returncode == 0, revoked.stderr
        out = ask(base, "mo-a-mo-2", "leaf.pem", "sub2.pem", signer)
        assert "leaf.pem: revoked" in out


def test_client_reconnects_and_refuses_what_is_not_an_answer(
    hierarchies: Hierarchies, pki_server: str
) -> None:
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    client = OcspClient(timeout=5)
    try:
        assert client.status(issued.certificate, issued.sub_cas[0]).status is (
            CertificateStatus.GOOD
        )
        # The kept-alive connection is gone (as when the responder drops an idle one): the next
        # question opens a new one.
        client.close()
        assert client.status(issued.sub_cas[0], issued.sub_cas[1]).status is (
            CertificateStatus.GOOD
        )
    finally:
        client.close()


class _NotOcsp(http.server.BaseHTTPRequestHandler):
    """Answers every GET under /missing/ with a 404, and any other with a 200 whose body is not
    an OCSP response."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"not an OCSP response"
        self.send_response(404 if self.path.startswith("/missing/") else 200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _naming_responder(url: str) -> x509.Certificate:
    """A self-signed certificate whose AIA names `url` as its OCSP responder."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "stub")])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
                    )
                ]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )


def test_client_refuses_http_errors_and_non_answers() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotOcsp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    client = OcspClient(timeout=5)
    try:
        for where, message in (("missing", "HTTP 404"), ("garbage", "no OCSP answer")):
            certificate = _naming_responder(f"{base}/{where}")
            with pytest.raises(OcspError, match=message):
                client.status(certificate, certificate)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()

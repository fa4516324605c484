"""The OCSP responder and CRLs under /pki, over real HTTP: good, revoked and unknown answers,
nonces, delegated and CA signers, refusals in OCSP's own terms, revocations by another process
in the very next answer, and OpenSSL's OCSP client against a running `evgi serve`. Each test
runs against the FastAPI routes and against the front `evgi serve` answers OCSP with, which must
answer the same. The client reads answers however an HTTP responder frames them."""

from __future__ import annotations

import base64
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

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
    OcspResponder,
    iso15118_name,
)
from evgi.pnc.hierarchy import LEAF_PROFILES
from evgi.pnc.ocsp import verify_signature
from evgi.service import front, http_in_background
from evgi.storage import open_database
from evgi.storage.pki import CertificateRecord, PkiStore
from tests.cli_runner import run_evgi
from tests.pnc.conftest import SMALL_ECOSYSTEM
from tests.service_runner import free_port, running_service

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


def _naming_responder(url: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate whose AIA names `url` as its OCSP responder, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "stub")])
    now = datetime.now(UTC)
    certificate = (
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
    return certificate, key


def test_client_refuses_http_errors_and_non_answers() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotOcsp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    client = OcspClient(timeout=5)
    try:
        for where, message in (("missing", "HTTP 404"), ("garbage", "no OCSP answer")):
            certificate, _ = _naming_responder(f"{base}/{where}")
            with pytest.raises(OcspError, match=message):
                client.status(certificate, certificate)
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("ca", "algorithm"),
    [
        (MO, hashes.SHA1()),
        (MO, hashes.SHA256()),
        ("mo-t", hashes.SHA256()),
        ("oem-ed448-oem-2", hashes.SHA256()),
        ("mo-p521-mo-2", hashes.SHA512()),
    ],
)
def test_answers_are_those_the_library_builds(
    hierarchies: Hierarchies, ca: str, algorithm: hashes.HashAlgorithm
) -> None:
    """An answer assembled from the parts made once is, byte for byte, the one `cryptography`'s
    builder makes for the same request in the same second, good, revoked or unknown; only the
    signature differs, ECDSA's being randomized (Ed448's is not: there the whole answer is)."""
    issuer = hierarchies.get(ca).certificate
    if ca == "mo-t":
        certificate = hierarchies.get("mo-t-mo-1").certificate
    else:
        name = "WMIV1234567890ABC" if ca.startswith("oem") else EMAID
        certificate = hierarchies.issue(ca, name).certificate
    stray = hierarchies.authority(ca).issue(
        iso15118_name(EMAID, "Test", "MO"), LEAF_PROFILES[LeafRole.CONTRACT]
    )
    signer = hierarchies.ocsp_signer(ca)
    responder = OcspResponder(hierarchies)
    try:
        for subject, revoke in (
            (certificate, False),
            (certificate, True),
            (stray.certificate, False),
        ):
            if revoke:
                hierarchies.revoke(ca, subject.serial_number, x509.ReasonFlags.superseded)
            record = hierarchies.store.certificate(ca, subject.serial_number)
            nonce = f"nonce-{subject.serial_number}-{revoke}".encode()[:32]
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(subject, issuer, algorithm)
                .add_extension(x509.OCSPNonce(nonce), critical=False)
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            for _ in range(3):  # the builder stamps producedAt itself: retry across a second
                ours = ocsp.load_der_ocsp_response(responder.respond(ca, request))
                status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
                if record is not None and record.revoked_at is not None:
                    status, revoked_at = ocsp.OCSPCertStatus.REVOKED, record.revoked_at
                    reason = x509.ReasonFlags(record.reason or "unspecified")
                elif record is not None:
                    status = ocsp.OCSPCertStatus.GOOD
                builder = (
                    ocsp.OCSPResponseBuilder()
                    .add_response(
                        cert=subject,
                        issuer=issuer,
                        algorithm=algorithm,
                        cert_status=status,
                        this_update=ours.this_update_utc,
                        next_update=ours.next_update_utc,
                        revocation_time=revoked_at,
                        revocation_reason=reason,
                    )
                    .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
                    .add_extension(x509.OCSPNonce(nonce), critical=False)
                )
                if signer.certificate != issuer:
                    builder = builder.certificates([signer.certificate])
                theirs = signer.sign_ocsp(builder)
                if theirs.produced_at_utc == ours.produced_at_utc:
                    break
            assert ours.certificate_status is status
            assert ours.tbs_response_bytes == theirs.tbs_response_bytes
            assert ours.signature_algorithm_oid == theirs.signature_algorithm_oid
            assert ours.certificates == theirs.certificates
            verify_signature(
                signer.certificate.public_key(),
                ours.signature,
                ours.tbs_response_bytes,
                ours.signature_hash_algorithm,
            )
            if ca.startswith("oem-ed448"):
                assert ours.public_bytes(serialization.Encoding.DER) == theirs.public_bytes(
                    serialization.Encoding.DER
                )
    finally:
        responder.close()


def test_the_next_answer_shows_what_another_process_committed(
    hierarchies: Hierarchies, pki_settings: Settings, pki_server: str
) -> None:
    """The responder keeps each status it read until anything commits to the database: a
    revocation by `evgi pki revoke` in another process, or a certificate recorded through
    another connection, shows in the very next answer, never a kept one."""
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    issuer = issued.sub_cas[0]
    unrecorded = hierarchies.authority(MO).issue(
        iso15118_name("DEABC987654321", "Test", "MO"), LEAF_PROFILES[LeafRole.CONTRACT]
    )
    client = OcspClient()
    other = open_database(pki_settings.db_url)
    try:
        for _ in range(2):
            assert client.status(issued.certificate, issuer).status is CertificateStatus.GOOD
            assert client.status(unrecorded.certificate, issuer).status is (
                CertificateStatus.UNKNOWN
            )

        serial = f"{issued.certificate.serial_number:x}"
        folder = pki_settings.data_dir.parent
        revoked = run_evgi(
            folder, "--data-dir", str(pki_settings.data_dir), "pki", "revoke", serial
        )
        assert revoked.returncode == 0, revoked.stderr
        answer = client.status(issued.certificate, issuer)
        assert answer.status is CertificateStatus.REVOKED and answer.revoked_at is not None

        certificate = unrecorded.certificate
        PkiStore(other).record(
            CertificateRecord(
                issuer=MO,
                serial=certificate.serial_number,
                role=LeafRole.CONTRACT.value,
                common_name="DEABC987654321",
                not_after=certificate.not_valid_after_utc,
                issued_at=datetime.now(UTC),
                der=certificate.public_bytes(serialization.Encoding.DER),
            )
        )
        assert client.status(certificate, issuer).status is CertificateStatus.GOOD
    finally:
        client.close()
        other.dispose()


class _Framed(http.server.BaseHTTPRequestHandler):
    """An OCSP responder for `certificate` (self-signed with `key`) under /{framing}/: its answers
    in chunks (chunked), on HTTP/1.0 without a length (eof), or with a length and the connection
    closed after each (close)."""

    protocol_version = "HTTP/1.1"
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def do_GET(self) -> None:
        framing, _, encoded = self.path.strip("/").partition("/")
        request = ocsp.load_der_ocsp_request(base64.b64decode(unquote(encoded)))
        now = datetime.now(UTC)
        body = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now + timedelta(hours=1),
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.certificate)
            .add_extension(
                request.extensions.get_extension_for_class(x509.OCSPNonce).value, critical=False
            )
            .sign(self.key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        if framing == "eof":
            self.protocol_version = "HTTP/1.0"
        self.send_response(200)
        self.send_header("content-type", "application/ocsp-response")
        if framing == "chunked":
            self.send_header("transfer-encoding", "chunked")
        elif framing == "close":
            self.send_header("content-length", str(len(body)))
            self.send_header("connection", "close")
        self.end_headers()
        if framing == "chunked":
            half = len(body) // 2
            for chunk in (body[:half], body[half:], b""):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            self.wfile.write(body)
        if framing == "eof":
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_client_reads_answers_however_they_are_framed() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Framed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    client = OcspClient(timeout=5)
    try:
        for framing in ("chunked", "eof", "close"):
            certificate, key = _naming_responder(f"{base}/{framing}")
            _Framed.certificate, _Framed.key = certificate, key
            for _ in range(3):  # over the kept connection, or a new one where it was closed
                answer = client.status(certificate, certificate)
                assert answer.status is CertificateStatus.GOOD
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_revocation_through_another_connection_shows_on_each_backend(
    db_url: str, tmp_path: Path
) -> None:
    """On SQLite (statuses kept between commits) and PostgreSQL (read for every answer) alike,
    the answer after another connection revoked a certificate says revoked."""
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, http_port=free_port())
    engine = open_database(settings.db_url)
    other = open_database(settings.db_url)
    hierarchies = Hierarchies(settings, engine)
    hierarchies.init(SMALL_ECOSYSTEM[1:2])
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    responder = OcspResponder(hierarchies)

    def asked() -> ocsp.OCSPCertStatus:
        request = _request(issued.certificate, issued.sub_cas[0], b"n")
        return ocsp.load_der_ocsp_response(responder.respond(MO, request)).certificate_status

    try:
        assert asked() is ocsp.OCSPCertStatus.GOOD
        assert asked() is ocsp.OCSPCertStatus.GOOD  # on SQLite, the status kept
        serial = issued.certificate.serial_number
        assert PkiStore(other).revoke(MO, serial, "keyCompromise", datetime.now(UTC)) is not None
        assert asked() is ocsp.OCSPCertStatus.REVOKED
    finally:
        responder.close()
        other.dispose()
        engine.dispose()

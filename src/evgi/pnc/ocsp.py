"""OCSP (RFC 6960) for the CAs of the ISO 15118 hierarchies: the responder `evgi serve` runs
under /pki/ocsp/{ca}, and the client the chain validator asks it with.

A root answers for its sub-CA 1 itself; a sub-CA's answers are signed by its delegated OCSP
signer (a certificate it issued with the OCSPSigning purpose and id-pkix-ocsp-nocheck), which
the response carries so any client can check it. Every answer is built from the database at the
moment of asking, so a revocation shows in the next answer. What never changes is worked out
once: issuer hashes, a delegated signer's certification, the responder a certificate names.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.client
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from evgi.core.errors import NotFoundError
from evgi.pnc.authority import CertificateError
from evgi.pnc.hierarchy import Hierarchies

# How long a "good" answer may be relied on before asking again.
_NEXT_UPDATE = timedelta(hours=1)
# An answer about one certificate is well under 2 KB; anything far larger is not one.
MAX_RESPONSE_BYTES = 64 * 1024
# Base64's three characters that are not URL-safe, percent-encoded (RFC 6960 A.1).
_URL_ENCODED = str.maketrans({"+": "%2B", "/": "%2F", "=": "%3D"})
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"


class OcspError(CertificateError):
    """No usable OCSP answer: unreachable responder, refused request or a bad signature."""

    code = "ocsp_unavailable"


class CertificateStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OcspAnswer:
    status: CertificateStatus
    revoked_at: datetime | None = None


class OcspResponder:
    """Answers OCSP requests about the certificates each CA of `hierarchies` issued."""

    def __init__(self, hierarchies: Hierarchies) -> None:
        self.hierarchies = hierarchies

    def respond(self, ca: str, request_der: bytes) -> bytes:
        """The DER response to a DER request sent to CA `ca`'s URL: signed good, revoked or
        unknown, or an unsigned malformedRequest / unauthorized refusal."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return _refusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            authority = self.hierarchies.get(ca)
        except NotFoundError:
            return _refusal(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        expected = issuer_hashes(authority.certificate, algorithm.name)
        if expected != (request.issuer_name_hash, request.issuer_key_hash):
            # RFC 6960 2.3: this responder is not authoritative for the CA the request names.
            return _refusal(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        record = self.hierarchies.store.certificate(ca, serial)
        now = datetime.now(UTC)
        status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        if record is not None and record.revoked_at is not None:
            status, revoked_at = ocsp.OCSPCertStatus.REVOKED, record.revoked_at
            reason = x509.ReasonFlags(record.reason or "unspecified")
        elif record is not None:
            status = ocsp.OCSPCertStatus.GOOD
        signer = self.hierarchies.ocsp_signer(ca)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=serial,
                algorithm=algorithm,
                cert_status=status,
                this_update=now,
                next_update=now + _NEXT_UPDATE,
                revocation_time=revoked_at,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        )
        if signer.certificate != authority.certificate:
            builder = builder.certificates([signer.certificate])
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce)
            builder = builder.add_extension(nonce.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        return signer.sign_ocsp(builder).public_bytes(serialization.Encoding.DER)


class OcspClient:
    """Asks the responder a certificate's AIA names, over kept-alive HTTP connections: one per
    responder and thread, so threads validating at the same time never wait on each other.

    The standard library's HTTP client: it costs a third of the CPU of a full-featured one per
    request, and an authorization makes one request per certificate of its chain.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def close(self) -> None:
        """Close every thread's connections; one used again afterwards reconnects."""
        with self._lock:
            connections = list(self._all)
        for connection in connections:
            connection.close()

    def status(self, certificate: x509.Certificate, issuer: x509.Certificate) -> OcspAnswer:
        """The signed, fresh status of `certificate`; OcspError when there is none."""
        urls = _ocsp_urls(certificate)
        if not urls:
            label = certificate.subject.rfc4514_string()
            raise OcspError(f"certificate {label} names no OCSP responder")
        nonce = secrets.token_bytes(16)
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, issuer, hashes.SHA256())
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        # The GET form (RFC 6960 A.1, RFC 5019): one small write, where a POST's separate
        # header and body writes wait on the peer's delayed ACK.
        encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
        try:
            response = ocsp.load_der_ocsp_response(self._get(urls[0], encoded))
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise OcspError(f"no OCSP answer from {urls[0]}: {exc}") from exc
        return _checked(response, certificate, issuer, nonce)

    def _get(self, url: str, encoded: str) -> bytes:
        """The body of a 200 answer to GET `url`/`encoded` (base64), on this thread's connection
        to the responder; a connection the responder closed while idle is reopened once."""
        connection, path = self._connection(url)
        for attempt in (1, 2):
            try:
                connection.request("GET", f"{path}/{encoded.translate(_URL_ENCODED)}")
                reply = connection.getresponse()
                body = reply.read(MAX_RESPONSE_BYTES + 1)
            except ConnectionError:
                connection.close()  # the next request reconnects
                if attempt == 2:
                    raise
                continue
            except (OSError, http.client.HTTPException):
                connection.close()  # a half-read answer leaves the connection unusable
                raise
            if not reply.isclosed():
                connection.close()  # an answer not read to its end
            if len(body) > MAX_RESPONSE_BYTES:
                raise ValueError(f"the answer is over {MAX_RESPONSE_BYTES} bytes")
            if reply.status != 200:
                raise http.client.HTTPException(f"HTTP {reply.status} {reply.reason}")
            return body
        raise AssertionError("unreachable")

    def _connection(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        """This thread's connection to the responder at `url`, and the URL's path."""
        scheme, netloc, path = _responder(url)
        connections: dict[tuple[str, str], http.client.HTTPConnection] | None = getattr(
            self._local, "connections", None
        )
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get((scheme, netloc))
        if connection is None:
            kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            connection = connections[(scheme, netloc)] = kind(netloc, timeout=self.timeout)
            with self._lock:
                self._all.append(connection)
        return connection, path


@functools.lru_cache(maxsize=256)
def _responder(url: str) -> tuple[str, str, str]:
    """Scheme, host[:port] and path (without a trailing slash) of a responder's URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an HTTP URL: {url}")
    return parts.scheme, parts.netloc, parts.path.rstrip("/")


@functools.lru_cache(maxsize=1024)
def _ocsp_urls(certificate: x509.Certificate) -> tuple[str, ...]:
    """The OCSP responders a certificate's AIA names."""
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return ()
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
        # An extension `cryptography` refuses (such as an explicit cA=FALSE): read leniently.
        der = certificate.public_bytes(serialization.Encoding.DER)
        return tuple(asn1_x509.Certificate.load(der).ocsp_urls)
    return tuple(
        description.access_location.value
        for description in access.value
        if description.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(description.access_location, x509.UniformResourceIdentifier)
    )


# A CA's hashes are asked for on every request and answer; there are few CAs.
@functools.lru_cache(maxsize=1024)
def issuer_hashes(issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
    """issuerNameHash and issuerKeyHash of CertID (RFC 6960 4.1.1) for `issuer`."""
    key = asn1_x509.Certificate.load(issuer.public_bytes(serialization.Encoding.DER)).public_key
    # The BIT STRING's value, without its leading count of unused bits.
    key_bits = key["public_key"].contents[1:]
    return (
        hashlib.new(algorithm, issuer.subject.public_bytes()).digest(),
        hashlib.new(algorithm, key_bits).digest(),
    )


@functools.lru_cache(maxsize=4096)
def signed_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether `parent`'s key signed `child`: a fact of the two certificates, kept once known."""
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_signature(
    public_key: object,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | None,
) -> None:
    """Check a signature by an EC, Ed448 or RSA key; InvalidSignature when it fails."""
    if isinstance(public_key, ed448.Ed448PublicKey):
        public_key.verify(signature, data)
    elif isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
        public_key.verify(signature, data, PKCS1v15(), algorithm)
    else:
        raise InvalidSignature(f"unsupported key {type(public_key).__name__}")


def _checked(
    response: ocsp.OCSPResponse,
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    nonce: bytes,
) -> OcspAnswer:
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"the OCSP responder refused: {response.response_status.name}")
    if response.serial_number != certificate.serial_number:
        raise OcspError("the OCSP answer is about another certificate")
    signer = _response_signer(response, issuer)
    try:
        verify_signature(
            signer.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        )
    except InvalidSignature as exc:
        raise OcspError("the OCSP answer's signature does not verify") from exc
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed != nonce:
        raise OcspError("the OCSP answer does not echo the request's nonce")
    now = datetime.now(UTC)
    if response.next_update_utc is not None and response.next_update_utc < now:
        raise OcspError("the OCSP answer is stale")
    if response.certificate_status is ocsp.OCSPCertStatus.REVOKED:
        return OcspAnswer(CertificateStatus.REVOKED, response.revocation_time_utc)
    if response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN:
        return OcspAnswer(CertificateStatus.UNKNOWN)
    return OcspAnswer(CertificateStatus.GOOD)


def _response_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> x509.Certificate:
    """The issuer itself, or a delegated signer the issuer certified for OCSP signing."""
    if _responder_is(response, issuer):
        return issuer
    for candidate in response.certificates:
        if not _responder_is(response, candidate):
            continue
        if not signed_by(candidate, issuer):
            raise OcspError("the OCSP signer is not certified by the issuing CA")
        if not _for_ocsp_signing(candidate):
            raise OcspError("the OCSP signer's certificate is not for OCSP signing")
        return candidate
    raise OcspError("the OCSP answer is signed by neither the CA nor a signer it certified")


@functools.lru_cache(maxsize=1024)
def _for_ocsp_signing(certificate: x509.Certificate) -> bool:
    try:
        purposes = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in purposes


def _responder_is(response: ocsp.OCSPResponse, certificate: x509.Certificate) -> bool:
    if response.responder_key_hash is not None:
        return response.responder_key_hash == issuer_hashes(certificate, "sha1")[1]
    return response.responder_name == certificate.subject


def _refusal(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )

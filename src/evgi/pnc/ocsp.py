"""OCSP (RFC 6960) for the CAs of the ISO 15118 hierarchies: the responder `evgi serve` runs
under /pki/ocsp/{ca}, and the client the chain validator asks it with.

A root answers for its sub-CA 1 itself; a sub-CA's answers are signed by its delegated OCSP
signer (a certificate it issued with the OCSPSigning purpose and id-pkix-ocsp-nocheck), which
the response carries so any client can check it. Every answer is signed afresh for its request
(its nonce, the time of asking) with the status the database has at that moment, so a
revocation shows in the next answer. What never changes is worked out once: issuer hashes, the
parts of a CA's answers other than status, time and nonce, a delegated signer's certification
and key, the responder a certificate names.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

import httptools
from asn1crypto import core as asn1_core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    OCSPExtensionOID,
)

from evgi.core.errors import NotFoundError
from evgi.pnc.authority import CertificateAuthority, CertificateError
from evgi.pnc.hierarchy import Hierarchies
from evgi.storage.data_version import DataVersion
from evgi.storage.pki import CertificateRecord

# How long a "good" answer may be relied on before asking again.
_NEXT_UPDATE = timedelta(hours=1)
# An answer about one certificate is well under 2 KB; anything far larger is not one.
MAX_RESPONSE_BYTES = 64 * 1024
# Base64's three characters that are not URL-safe, percent-encoded (RFC 6960 A.1).
_URL_ENCODED = str.maketrans({"+": "%2B", "/": "%2F", "=": "%3D"})
OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
# The statuses a responder keeps between commits; past this many it starts over.
MAX_KEPT_STATUSES = 100_000
_SHA256 = hashes.SHA256()
# DER tags of the few constructions an answer is assembled from (X.690 8.1.2).
_INTEGER, _BIT_STRING, _OCTET_STRING, _SEQUENCE = 0x02, 0x03, 0x04, 0x30
_EXPLICIT_0, _EXPLICIT_1 = 0xA0, 0xA1
_SUCCESSFUL = asn1_ocsp.OCSPResponseStatus("successful").dump()
_BASIC_RESPONSE = asn1_ocsp.ResponseType("basic_ocsp_response").dump()
_NONCE = asn1_core.ObjectIdentifier(OCSPExtensionOID.NONCE.dotted_string).dump()
_GOOD: bytes = asn1_ocsp.CertStatus(name="good", value=asn1_core.Null()).dump()
_UNKNOWN: bytes = asn1_ocsp.CertStatus(name="unknown", value=asn1_core.Null()).dump()


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
    next_update: datetime | None = None  # until when the answer may be relied on


class OcspResponder:
    """Answers OCSP requests about the certificates each CA of `hierarchies` issued.

    The status of each certificate asked about is kept until anything commits to the database
    (`DataVersion`: one memory read on SQLite, whichever process commits; on other databases
    every answer reads its status afresh), so a revocation shows in the very next answer.
    """

    def __init__(self, hierarchies: Hierarchies) -> None:
        self.hierarchies = hierarchies
        self._version = DataVersion(hierarchies.store.engine)
        self._lock = threading.Lock()
        self._statuses: dict[tuple[str, int], bytes] = {}
        self._forms: dict[tuple[str, str], _AnswerForm] = {}
        self._times = (0, b"", b"")

    def close(self) -> None:
        """Let go of the database connection that watches for commits."""
        self._version.close()

    def respond(self, ca: str, request_der: bytes) -> bytes:
        """The DER response to a DER request sent to CA `ca`'s URL: signed good, revoked or
        unknown, or an unsigned malformedRequest / unauthorized refusal."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
            hashes_asked = (request.issuer_name_hash, request.issuer_key_hash)
            nonce = _nonce(request.extensions)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return _refusal(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            authority = self.hierarchies.get(ca)
        except NotFoundError:
            return _refusal(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        if issuer_hashes(authority.certificate, algorithm.name) != hashes_asked:
            # RFC 6960 2.3: this responder is not authoritative for the CA the request names.
            return _refusal(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        form = self._form(ca, algorithm)
        produced_at, next_update = self._now()
        return form.answer(
            _der(_SEQUENCE, form.hash_algorithm, *map(_octets, hashes_asked), _integer(serial)),
            self._status(ca, serial),
            produced_at,
            next_update,
            nonce,
        )

    def _status(self, ca: str, serial: int) -> bytes:
        """The DER CertStatus of CA `ca`'s certificate `serial`, as the database has it now."""
        key = (ca, serial)
        with self._lock:
            if self._version.changed() or len(self._statuses) >= MAX_KEPT_STATUSES:
                self._statuses.clear()
            status = self._statuses.get(key)
            if status is None:
                status = _cert_status(self.hierarchies.store.certificate(ca, serial))
                self._statuses[key] = status
            return status

    def _form(self, ca: str, algorithm: hashes.HashAlgorithm) -> _AnswerForm:
        form = self._forms.get((ca, algorithm.name))
        if form is None:
            signer = self.hierarchies.ocsp_signer(ca)
            issuer = self.hierarchies.get(ca).certificate
            form = self._forms[(ca, algorithm.name)] = _AnswerForm.of(signer, issuer, algorithm)
        return form

    def _now(self) -> tuple[bytes, bytes]:
        """producedAt and thisUpdate (now, to the second), and nextUpdate, as DER."""
        second = int(time.time())
        if second != self._times[0]:
            now = datetime.fromtimestamp(second, UTC)
            self._times = (second, _time(now), _time(now + _NEXT_UPDATE))
        return self._times[1], self._times[2]


@dataclass(frozen=True)
class _AnswerForm:
    """What every answer of one CA to requests hashed one way shares, cut once from an answer
    the `cryptography` builder made (so the responder id, the algorithm identifiers and the
    certificates are the library's): an answer then costs its signature and a few bytes of
    DER, a quarter of what the builder spends on one."""

    signer: CertificateAuthority
    responder_id: bytes
    hash_algorithm: bytes
    signature_algorithm: bytes
    certificates: bytes

    @classmethod
    def of(
        cls, signer: CertificateAuthority, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm
    ) -> _AnswerForm:
        name_hash, key_hash = issuer_hashes(issuer, algorithm.name)
        now = datetime.now(UTC)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=1,
                algorithm=algorithm,
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=now,
                next_update=now,
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        )
        if signer.certificate != issuer:
            builder = builder.certificates([signer.certificate])
        made = signer.sign_ocsp(builder).public_bytes(serialization.Encoding.DER)
        basic = asn1_ocsp.OCSPResponse.load(made)["response_bytes"]["response"].parsed
        data = basic["tbs_response_data"]
        certificates = basic["certs"]
        return cls(
            signer,
            data["responder_id"].dump(),
            data["responses"][0]["cert_id"]["hash_algorithm"].dump(),
            basic["signature_algorithm"].dump(),
            b"" if isinstance(certificates, asn1_core.Void) else certificates.dump(),
        )

    def answer(
        self,
        cert_id: bytes,
        status: bytes,
        produced_at: bytes,
        next_update: bytes,
        nonce: bytes | None,
    ) -> bytes:
        """A signed, successful OCSPResponse (RFC 6960 4.2.1) with one SingleResponse, whose
        thisUpdate is `produced_at`, and the request's nonce if it sent one."""
        single = _der(_SEQUENCE, cert_id, status, produced_at, _der(_EXPLICIT_0, next_update))
        extensions = b""
        if nonce is not None:
            extension = _der(_SEQUENCE, _NONCE, _octets(_octets(nonce)))
            extensions = _der(_EXPLICIT_1, _der(_SEQUENCE, extension))
        data = _der(_SEQUENCE, self.responder_id, produced_at, _der(_SEQUENCE, single), extensions)
        signature = _der(_BIT_STRING, b"\x00", self.signer.sign(data))
        basic = _der(_SEQUENCE, data, self.signature_algorithm, signature, self.certificates)
        return _der(
            _SEQUENCE,
            _SUCCESSFUL,
            _der(_EXPLICIT_0, _der(_SEQUENCE, _BASIC_RESPONSE, _octets(basic))),
        )


def _cert_status(record: CertificateRecord | None) -> bytes:
    """CertStatus: unknown for a certificate never issued here, else good or revoked."""
    if record is None:
        return _UNKNOWN
    if record.revoked_at is None:
        return _GOOD
    revoked = {
        "revocation_time": record.revoked_at.replace(microsecond=0),
        "revocation_reason": x509.ReasonFlags(record.reason or "unspecified").name,
    }
    status: bytes = asn1_ocsp.CertStatus(name="revoked", value=revoked).dump()
    return status


def _nonce(extensions: x509.Extensions) -> bytes | None:
    try:
        return extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _time(moment: datetime) -> bytes:
    der: bytes = asn1_core.GeneralizedTime(moment).dump()
    return der


def _der(tag: int, *contents: bytes) -> bytes:
    """One DER TLV: `tag`, the definite length of `contents`, `contents`."""
    content = b"".join(contents)
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _octets(value: bytes) -> bytes:
    return _der(_OCTET_STRING, value)


def _integer(value: int) -> bytes:
    """An INTEGER in the fewest two's-complement octets."""
    size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
    return _der(_INTEGER, value.to_bytes(size, "big", signed=True))


class OcspClient:
    """Asks the responder a certificate's AIA names, over kept-alive HTTP connections: one per
    responder and thread, so threads validating at the same time never wait on each other.

    An authorization makes one request per certificate of its chain, so each costs little: the
    GET form (RFC 6960 A.1, RFC 5019) in one write, and the answer read by httptools' parser,
    at a third of the standard library client's CPU.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[_Connection] = []
        self._tls: ssl.SSLContext | None = None

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
        name_hash, key_hash = issuer_hashes(issuer, "sha256")
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(name_hash, key_hash, certificate.serial_number, _SHA256)
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        encoded = base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode()
        try:
            connection, path = self._connection(urls[0])
            body = connection.get(f"{path}/{encoded.translate(_URL_ENCODED)}")
            response = ocsp.load_der_ocsp_response(body)
        except (OSError, httptools.HttpParserError, ValueError) as exc:
            raise OcspError(f"no OCSP answer from {urls[0]}: {exc}") from exc
        return _checked(response, certificate, issuer, nonce)

    def _connection(self, url: str) -> tuple[_Connection, str]:
        """This thread's connection to the responder at `url`, and the URL's path."""
        scheme, netloc, path = _responder(url)
        connections: dict[tuple[str, str], _Connection] | None = getattr(
            self._local, "connections", None
        )
        if connections is None:
            connections = self._local.connections = {}
        connection = connections.get((scheme, netloc))
        if connection is None:
            tls = None
            if scheme == "https":
                tls = self._tls = self._tls or ssl.create_default_context()
            connection = connections[(scheme, netloc)] = _Connection(netloc, self.timeout, tls)
            with self._lock:
                self._all.append(connection)
        return connection, path


class _Connection:
    """One kept-alive HTTP/1.1 connection to a responder, opened on first use; one httptools
    parser reads its answers one after another, calling back here."""

    def __init__(self, netloc: str, timeout: float, tls: ssl.SSLContext | None) -> None:
        parts = urlsplit(f"//{netloc}")
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if tls is not None else 80)
        self.timeout = timeout
        self.tls = tls
        self._head = f"HTTP/1.1\r\nHost: {netloc}\r\n\r\n"
        self._socket: socket.socket | None = None
        self._parser: httptools.HttpResponseParser | None = None
        # The answer being read.
        self._body = bytearray()
        self._headed = self._framed = self._complete = self._keep_alive = False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = self._parser = None

    def get(self, target: str) -> bytes:
        """The body of a 200 answer to GET `target`."""
        request = f"GET {target} {self._head}".encode("ascii")
        kept = self._socket is not None
        try:
            return self._exchange(request)
        except ConnectionError:
            self.close()
            if not kept:
                raise
        except BaseException:
            self.close()  # a half-read answer leaves the connection unusable
            raise
        # The responder closed the kept-alive connection while it was idle: once more, anew.
        try:
            return self._exchange(request)
        except BaseException:
            self.close()
            raise

    def _exchange(self, request: bytes) -> bytes:
        if self._socket is None or self._parser is None:
            self._socket = self._open()
            self._parser = httptools.HttpResponseParser(self)
        sock, parser = self._socket, self._parser
        self._body = bytearray()
        self._headed = self._framed = self._complete = self._keep_alive = False
        sock.sendall(request)
        while not self._complete:
            data = sock.recv(65536)
            if not data:
                if self._framed or not self._headed:
                    raise ConnectionError("the responder closed the connection mid-answer")
                break  # an answer without a length ends where the connection does
            parser.feed_data(data)
            if len(self._body) > MAX_RESPONSE_BYTES:
                raise ValueError(f"the answer is over {MAX_RESPONSE_BYTES} bytes")
        status = parser.get_status_code()
        if not (self._complete and self._keep_alive):
            self.close()
        if status != 200:
            raise ValueError(f"HTTP {status}")
        return bytes(self._body)

    def _open(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is None:
            return sock
        try:
            return self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        assert self._parser is not None  # it is the one calling
        self._headed = True
        # Known only until the answer is complete, when the parser gets ready for the next.
        self._keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self._complete = True


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
    """Whether `parent` issued `child` (its name, and its key's signature): a fact of the two
    certificates, kept once known. The parent's key is read once, not once per child."""
    if der_names(child)[1] != der_names(parent)[0]:
        return False
    try:
        verify_signature(
            _public_key(parent),
            child.signature,
            child.tbs_certificate_bytes,
            child.signature_hash_algorithm,
        )
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _public_key(issuer: x509.Certificate) -> CertificatePublicKeyTypes:
    return issuer.public_key()


@functools.lru_cache(maxsize=4096)
def der_names(certificate: x509.Certificate) -> tuple[bytes, bytes]:
    """A certificate's subject and issuer, DER-encoded: names match when their encodings do
    (RFC 5280 7.1, as OpenSSL and `cryptography` compare them)."""
    return certificate.subject.public_bytes(), certificate.issuer.public_bytes()


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
    responder = response.responder_key_hash or response.responder_name
    certificates = tuple(c.public_bytes(serialization.Encoding.DER) for c in response.certificates)
    try:
        verify_signature(
            _signer_key(issuer, responder, certificates),
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
    return OcspAnswer(CertificateStatus.GOOD, next_update=response.next_update_utc)


# Answers about one CA's certificates come from the same signer: checked once, then known by
# the CA, the responder id and the certificates the answer carries.
@functools.lru_cache(maxsize=1024)
def _signer_key(
    issuer: x509.Certificate, responder: bytes | x509.Name, certificates: tuple[bytes, ...]
) -> CertificatePublicKeyTypes:
    """The key an answer naming `responder` must be signed with: the issuer's own, or that of
    a delegated signer among `certificates` the issuer certified for OCSP signing."""
    if _is_responder(responder, issuer):
        return issuer.public_key()
    for der in certificates:
        candidate = x509.load_der_x509_certificate(der)
        if not _is_responder(responder, candidate):
            continue
        if not signed_by(candidate, issuer):
            raise OcspError("the OCSP signer is not certified by the issuing CA")
        if not _for_ocsp_signing(candidate):
            raise OcspError("the OCSP signer's certificate is not for OCSP signing")
        return candidate.public_key()
    raise OcspError("the OCSP answer is signed by neither the CA nor a signer it certified")


@functools.lru_cache(maxsize=1024)
def _for_ocsp_signing(certificate: x509.Certificate) -> bool:
    try:
        purposes = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in purposes


def _is_responder(responder: bytes | x509.Name, certificate: x509.Certificate) -> bool:
    """Whether a ResponderID (a key hash, or a name) names `certificate`."""
    if isinstance(responder, bytes):
        return responder == issuer_hashes(certificate, "sha1")[1]
    return responder == certificate.subject


def _refusal(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )

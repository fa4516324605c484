"""Enrollment over Secure Transport (RFC 7030) for the CPO and MO lines of the hierarchies:
a PKCS#10 request in, the issued certificate out as a certs-only PKCS#7, both base64.

A request with basicConstraints cA=TRUE asks for a sub-CA 2 (an operator running its own
issuing CA under the line's sub-CA 1); any other gets an end-entity certificate.

The request's key picks the sub-CA 2 that signs: P-256 for ISO 15118-2, P-521 or Ed448 for
ISO 15118-20. The subject's CN is the end entity's identifier (an SECC id for a CPO, the eMAID
for the MO's contract certificates); the hierarchy gives every other attribute and extension.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from evgi.core.errors import NotFoundError, ValidationError
from evgi.pnc.authority import CertificateError, PublicKey, common_name
from evgi.pnc.hierarchy import CA_PROFILES, Branch, CaRole, Hierarchies, iso15118_name
from evgi.pnc.installation import KeyProfile, key_profile
from evgi.storage.pki import CertificateRecord

PKCS10_TYPE = "application/pkcs10"
PKCS7_TYPE = "application/pkcs7-mime"
CERTS_ONLY_TYPE = "application/pkcs7-mime; smime-type=certs-only"


class EstLabel(StrEnum):
    """The CA labels of /.well-known/est/<label>/ (RFC 7030 3.2.2): who enrolls where."""

    CPO = "cpo"
    MO = "mo"

    @property
    def branch(self) -> Branch:
        return Branch.CPO if self is EstLabel.CPO else Branch.MO


def read_csr(body: bytes) -> x509.CertificateSigningRequest:
    """A PKCS#10 request as EST sends it (base64 DER), or as PEM; its signature checked."""
    text = body.strip()
    try:
        if text.startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(text)
        else:
            csr = x509.load_der_x509_csr(base64.b64decode(b"".join(text.split()), validate=True))
    except (ValueError, binascii.Error) as exc:
        raise CertificateError(f"the body is not a base64 PKCS#10 request: {exc}") from exc
    if not csr.is_signature_valid:
        raise CertificateError("the request's signature does not verify with its own key")
    return csr


def certs_only(certificates: list[x509.Certificate]) -> bytes:
    """A degenerate certs-only PKCS#7 (RFC 7030 4.1.3), base64 with line breaks."""
    der = pkcs7.serialize_certificates(certificates, serialization.Encoding.DER)
    return base64.encodebytes(der)


def ca_certificates(hierarchies: Hierarchies, label: EstLabel) -> list[x509.Certificate]:
    """/cacerts: every CA of the label's line, with the roots above them."""
    found: dict[bytes, x509.Certificate] = {}
    for authority in hierarchies.authorities():
        if authority.branch is label.branch and authority.role is CaRole.SUB_CA_2:
            for certificate in hierarchies.path(authority.name):
                found.setdefault(certificate.fingerprint(hashes.SHA256()), certificate)
    if not found:
        raise NotFoundError(f"no {label.value} CA here: run `evgi pki init`")
    return list(found.values())


def enroll(
    hierarchies: Hierarchies, label: EstLabel, csr: x509.CertificateSigningRequest
) -> x509.Certificate:
    """/simpleenroll: a certificate for the request's CN and key: an end-entity one, or a
    sub-CA 2 when the request asks for cA=TRUE."""
    common = common_name(csr.subject)
    if common is None:
        raise CertificateError("the request must name exactly one CN")
    public_key = csr.public_key()
    if not isinstance(public_key, PublicKey):
        raise CertificateError(f"a {type(public_key).__name__} cannot be certified here")
    try:
        profile = key_profile(public_key)
    except ValidationError as exc:
        raise CertificateError(exc.message) from exc
    issuer = issuing_ca(hierarchies, label.branch, profile)
    if _requests_ca(csr):
        return _sub_ca(hierarchies, issuer, csr, common, public_key)
    return hierarchies.issue(issuer, common, public_key).certificate


def _requests_ca(csr: x509.CertificateSigningRequest) -> bool:
    try:
        return bool(csr.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _sub_ca(
    hierarchies: Hierarchies,
    sub_ca_2: str,
    csr: x509.CertificateSigningRequest,
    common: str,
    public_key: PublicKey,
) -> x509.Certificate:
    """A sub-CA 2 for an operator that runs its own (its key never leaves it), signed by the
    sub-CA 1 above the line's own sub-CA 2 and recorded so OCSP answers for it."""
    parent = hierarchies.get(sub_ca_2).parent
    assert parent is not None  # a sub-CA 2 always has its sub-CA 1
    organizations = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if len(organizations) != 1:
        raise CertificateError("a sub-CA request must name exactly one O (its operator)")
    subject = iso15118_name(common, str(organizations[0].value), Branch.V2G.domain_component)
    authority = hierarchies.authority(parent)
    certificate = authority.issue(subject, CA_PROFILES[CaRole.SUB_CA_2], public_key).certificate
    hierarchies.store.record(
        CertificateRecord(
            issuer=parent,
            serial=certificate.serial_number,
            role=CaRole.SUB_CA_2.value,
            common_name=common,
            not_after=certificate.not_valid_after_utc,
            issued_at=datetime.now(UTC),
            der=certificate.public_bytes(serialization.Encoding.DER),
        )
    )
    return certificate


def issuing_ca(hierarchies: Hierarchies, branch: Branch, profile: KeyProfile) -> str:
    """The sub-CA 2 of `branch` whose key is of `profile`: certificates of one profile are
    signed on that profile's curve."""
    for authority in hierarchies.authorities():
        if (
            authority.role is CaRole.SUB_CA_2
            and authority.branch is branch
            and authority.key_algorithm == profile.key_algorithm
        ):
            return authority.name
    raise NotFoundError(f"no {branch.value} sub-CA for {profile} keys: run `evgi pki init`")

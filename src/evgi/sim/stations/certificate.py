"""The station's own certificate: the key and CSR it makes, and the chain a CSMS signs for it."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class CertificateRefused(ValueError):
    pass


def signing_request(station_id: str, organization: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A fresh P-256 key and a PEM CSR naming the station, as OCPP's security profile 3 asks."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, station_id),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def accept_chain(
    pem: str, key: ec.EllipticCurvePrivateKey | None, now: datetime
) -> list[x509.Certificate]:
    """Parse a signed chain: it must answer a pending CSR (`key`), and its leaf carry that key
    and be valid now."""
    if key is None:
        raise CertificateRefused("the station asked for no certificate")
    try:
        chain = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateRefused(f"not a PEM certificate chain: {exc}") from exc
    leaf = chain[0]
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        raise CertificateRefused("the certificate is not valid now")
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = leaf.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise CertificateRefused("the certificate is not for the key of the pending CSR")
    return chain

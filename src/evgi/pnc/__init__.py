"""Plug & Charge PKI: certificate authorities, the certificates they issue and lenient reading of
the certificates real ISO 15118 hierarchies hand out."""

from evgi.pnc.authority import (
    CSMS_ROOT,
    CSMS_SERVER_PROFILE,
    ROOT_CA_PROFILE,
    STATION_PROFILE,
    CertificateAuthority,
    CertificateDetails,
    CertificateError,
    CertificateProfile,
    IssuedCertificate,
    PrivateKey,
    PublicKey,
    Revocation,
    common_name,
    csms_authority,
    load_certificate,
    subject_name,
)

__all__ = [
    "CSMS_ROOT",
    "CSMS_SERVER_PROFILE",
    "ROOT_CA_PROFILE",
    "STATION_PROFILE",
    "CertificateAuthority",
    "CertificateDetails",
    "CertificateError",
    "CertificateProfile",
    "IssuedCertificate",
    "PrivateKey",
    "PublicKey",
    "Revocation",
    "common_name",
    "csms_authority",
    "load_certificate",
    "subject_name",
]

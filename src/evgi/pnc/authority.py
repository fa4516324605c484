"""A small X.509 certificate authority: the CSMS root that signs server and station certificates.

Each authority keeps its key, its certificate and its revocation list in a folder of its own
(`data_dir/pki/<name>/`), so the ISO 15118 hierarchies (V2G root, CPO, MO and OEM sub-CAs) can
sit beside the CSMS root. Private keys are encrypted with the keystore password when one is set
(EVGI_KEYSTORE_PASSWORD). Without one they are stored unencrypted but readable by their owner
only (mode 0600): `evgi serve` and `evgi demo` must start unattended on a fresh machine, as the
keystore does, and a passphrase stored in the same configuration would guard nothing more than
the file's permissions already do.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from evgi.config import Settings
from evgi.core import certificates
from evgi.core.certificates import (
    CA_CERTIFICATE_FILE,
    CA_KEY_FILE,
    KEY_AGREEMENT_USAGES,
    KEY_USAGES,
    certificate_builder,
    certificate_pem,
    read_certificate_of,
    read_private_key,
    write_authority_files,
    write_file,
)
from evgi.core.errors import ConfigError, ValidationError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed448.Ed448PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed448.Ed448PublicKey

CSMS_ROOT = "csms-root"
_REVOKED_FILE = "revoked.json"
# A station whose clock runs a little behind still accepts a certificate issued just now.
_CLOCK_SKEW = timedelta(minutes=5)
_EC_CURVES = ("secp256r1", "secp384r1")
# Key algorithms a CA generates keys on: the OCPP whitepaper's P-256, and ISO 15118-20's P-521
# (with SHA-512) and Ed448.
KEY_ALGORITHMS: dict[str, ec.EllipticCurve | None] = {
    "secp256r1": ec.SECP256R1(),
    "secp384r1": ec.SECP384R1(),
    "secp521r1": ec.SECP521R1(),
    "ed448": None,
}
_MIN_RSA_BITS = 2048
# asn1crypto says non_repudiation where cryptography (and X.509 since 2000) says content_commitment.
_ASN1_KEY_USAGE = {"non_repudiation": "content_commitment"}


class CertificateError(ValidationError):
    """A certificate or signing request refused; the message names the check that failed."""

    code = "bad_certificate"


@dataclass(frozen=True)
class CertificateProfile:
    """The extensions and lifetime shared by every certificate of one kind."""

    key_usage: frozenset[str]
    validity: timedelta
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    ca: bool = False
    path_length: int | None = None
    # Present only in delegated OCSP signers: their own status is never asked (RFC 6960 4.2.2.2.1).
    ocsp_no_check: bool = False


ROOT_CA_PROFILE = CertificateProfile(
    frozenset({"key_cert_sign", "crl_sign"}), timedelta(days=20 * 365), ca=True
)
# 398 days: the longest lifetime TLS clients accept for a server certificate.
CSMS_SERVER_PROFILE = CertificateProfile(
    frozenset({"digital_signature", "key_agreement"}),
    timedelta(days=398),
    (ExtendedKeyUsageOID.SERVER_AUTH,),
)
# OCPP security whitepaper: a station certificate signs and agrees keys, for TLS client auth.
STATION_PROFILE = CertificateProfile(
    frozenset({"digital_signature", "key_agreement"}),
    timedelta(days=2 * 365),
    (ExtendedKeyUsageOID.CLIENT_AUTH,),
)


@dataclass(frozen=True)
class Revocation:
    serial_number: int
    revoked_at: datetime
    reason: x509.ReasonFlags


class Revocations(Protocol):
    """Where a CA keeps the serials it revoked: a file beside its key, or the platform database."""

    def revoke(self, serial_number: int, reason: x509.ReasonFlags) -> Revocation:
        """Revoke a serial; revoking it again keeps the first time and reason."""
        ...

    def revocation(self, serial_number: int) -> Revocation | None: ...


class RevocationFile:
    """`revoked.json` in the CA's folder, read on every call so a revocation made by another
    process counts at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def revoke(self, serial_number: int, reason: x509.ReasonFlags) -> Revocation:
        revocations = self._read()
        if serial_number not in revocations:
            revocations[serial_number] = Revocation(serial_number, _now(), reason)
            body = {
                f"{entry.serial_number:x}": {
                    "revoked_at": entry.revoked_at.isoformat(),
                    "reason": entry.reason.value,
                }
                for entry in revocations.values()
            }
            write_file(self.path, json.dumps(body, indent=2).encode(), 0o644)
        return revocations[serial_number]

    def revocation(self, serial_number: int) -> Revocation | None:
        return self._read().get(serial_number)

    def _read(self) -> dict[int, Revocation]:
        if not self.path.exists():
            return {}
        return {
            int(serial, 16): Revocation(
                int(serial, 16),
                datetime.fromisoformat(entry["revoked_at"]),
                x509.ReasonFlags(entry["reason"]),
            )
            for serial, entry in json.loads(self.path.read_text()).items()
        }


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate, the CA certificate that signed it and, when the CA made the key, its key.

    `private_key` is None for a certificate signed from a CSR: that key never leaves the station.
    """

    certificate: x509.Certificate
    issuer: x509.Certificate
    private_key: PrivateKey | None = None

    def chain_pem(self) -> str:
        """Leaf first, then the issuing CA: what CertificateSigned carries and TLS presents."""
        return certificate_pem(self.certificate) + certificate_pem(self.issuer)

    def write(self, directory: Path, name: str, passphrase: str = "") -> tuple[Path, Path]:
        """Write `name.pem` (the chain) and `name.key.pem` (owner-only, encrypted if a
        passphrase is given); return both paths."""
        return write_identity(directory, name, self.chain_pem(), self.private_key, passphrase)


def write_identity(
    directory: Path, name: str, chain_pem: str, private_key: PrivateKey | None, passphrase: str
) -> tuple[Path, Path]:
    """Write a certificate chain to `name.pem` and its key to `name.key.pem` (owner-only,
    encrypted if a passphrase is given); return both paths."""
    if private_key is None:
        raise ValidationError("this certificate was signed from a CSR: its key is not here")
    return certificates.write_identity(directory, name, chain_pem, private_key, passphrase)


@dataclass(frozen=True)
class CertificateDetails:
    """A certificate read leniently: names, dates, key and signature through `certificate`, and
    the extensions through asn1crypto where `cryptography` refuses them, as it does those of
    real V2G certificates that encode the default cA=FALSE (which DER forbids)."""

    certificate: x509.Certificate
    is_ca: bool
    path_length: int | None
    key_usage: frozenset[str]
    extended_key_usage: frozenset[x509.ObjectIdentifier]
    subject_key_identifier: bytes | None
    authority_key_identifier: bytes | None


def load_certificate(data: bytes) -> CertificateDetails:
    """Read one certificate, PEM or DER, as the certificates of real PKIs are encoded.

    The extensions are read by `cryptography` (a tenth of asn1crypto's cost: every contract
    authorization reads a new leaf), and by asn1crypto only where `cryptography` refuses them.
    """
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_certificate(data)
        )
        try:
            return _details(certificate, certificate.extensions)
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            pass
        parsed = asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
        usage = parsed.key_usage_value
        extended = parsed.extended_key_usage_value
        return CertificateDetails(
            certificate=certificate,
            is_ca=bool(parsed.ca),
            path_length=parsed.max_path_length,
            key_usage=frozenset(
                _ASN1_KEY_USAGE.get(name, name) for name in (usage.native if usage else ())
            ),
            extended_key_usage=frozenset(
                x509.ObjectIdentifier(oid.dotted) for oid in (extended or ())
            ),
            subject_key_identifier=parsed.key_identifier,
            authority_key_identifier=parsed.authority_key_identifier,
        )
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not a readable X.509 certificate: {exc}") from exc


# cryptography's KeyUsage refuses to read the keyAgreement-only usages without keyAgreement.
_KEY_USAGES = tuple(u for u in KEY_USAGES if u not in KEY_AGREEMENT_USAGES)
_Extension = TypeVar("_Extension", bound=x509.ExtensionType)


def _details(certificate: x509.Certificate, extensions: x509.Extensions) -> CertificateDetails:
    """The details `load_certificate` reads, from extensions `cryptography` could read."""

    def value(kind: type[_Extension]) -> _Extension | None:
        try:
            return extensions.get_extension_for_class(kind).value
        except x509.ExtensionNotFound:
            return None

    constraints = value(x509.BasicConstraints)
    usage = value(x509.KeyUsage)
    usages = _KEY_USAGES + (KEY_AGREEMENT_USAGES if usage and usage.key_agreement else ())
    identifier = value(x509.SubjectKeyIdentifier)
    authority = value(x509.AuthorityKeyIdentifier)
    is_ca = constraints is not None and constraints.ca
    return CertificateDetails(
        certificate=certificate,
        is_ca=is_ca,
        path_length=constraints.path_length if constraints is not None and is_ca else None,
        key_usage=frozenset(name for name in usages if usage and getattr(usage, name)),
        extended_key_usage=frozenset(value(x509.ExtendedKeyUsage) or ()),
        subject_key_identifier=None if identifier is None else identifier.digest,
        authority_key_identifier=None if authority is None else authority.key_identifier,
    )


def common_name(name: x509.Name) -> str | None:
    """The one CN of a name, or None when it has none or several."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if len(values) == 1 else None


def subject_name(common: str, organization: str) -> x509.Name:
    """O and CN: the subject the OCPP whitepaper asks of CSMS and station certificates."""
    if not 0 < len(common) <= 64:
        raise CertificateError(f"common name {common!r} must have 1 to 64 characters")
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


@dataclass(frozen=True)
class RevocationUrls:
    """Where relying parties ask about the certificates a CA issues: written into each one as
    the AIA's OCSP URL and the CRL distribution point."""

    ocsp: str
    crl: str


class CertificateAuthority:
    """A CA key and certificate kept in `directory`, with the serials it has revoked (in
    `revoked.json` beside the key unless another store is given)."""

    def __init__(
        self,
        directory: Path,
        private_key: PrivateKey,
        certificate: x509.Certificate,
        revocations: Revocations | None = None,
        urls: RevocationUrls | None = None,
    ):
        self.directory = directory
        self.certificate = certificate
        self.revocations = revocations or RevocationFile(directory / _REVOKED_FILE)
        self.urls = urls
        self._key = private_key

    @classmethod
    def create(
        cls,
        directory: Path,
        subject: x509.Name,
        passphrase: str = "",
        *,
        profile: CertificateProfile = ROOT_CA_PROFILE,
        key_algorithm: str = "secp256r1",
        parent: CertificateAuthority | None = None,
    ) -> CertificateAuthority:
        """A new CA written to `directory`: self-signed unless `parent` signs it (a sub-CA,
        whose certificate then carries the parent's revocation URLs)."""
        if (directory / CA_CERTIFICATE_FILE).exists():
            raise ConfigError(f"a CA already exists in {directory}")
        key = generate_key(key_algorithm)
        if parent is None:
            now = _now()
            certificate = _sign(
                subject,
                key.public_key(),
                profile,
                now - _CLOCK_SKEW,
                now + profile.validity,
                key,
                subject,
            )
        else:
            certificate = parent.issue(subject, profile, key.public_key()).certificate
        write_authority_files(directory, key, certificate, passphrase)
        return cls(directory, key, certificate)

    @classmethod
    def load(
        cls,
        directory: Path,
        passphrase: str = "",
        revocations: Revocations | None = None,
        urls: RevocationUrls | None = None,
    ) -> CertificateAuthority:
        key_path, certificate_path = directory / CA_KEY_FILE, directory / CA_CERTIFICATE_FILE
        if not key_path.exists() or not certificate_path.exists():
            raise ConfigError(f"no CA key and certificate in {directory}")
        key = read_private_key(key_path, passphrase, "CA")
        if not isinstance(key, PrivateKey):
            raise ConfigError(f"the CA key {key_path} is neither EC, Ed448 nor RSA")
        certificate = read_certificate_of(certificate_path, key, key_path)
        return cls(directory, key, certificate, revocations, urls)

    @classmethod
    def open(
        cls, directory: Path, subject: x509.Name, passphrase: str = ""
    ) -> CertificateAuthority:
        """Load the CA in `directory`, creating it on first use."""
        if (directory / CA_CERTIFICATE_FILE).exists():
            return cls.load(directory, passphrase)
        return cls.create(directory, subject, passphrase)

    @property
    def certificate_path(self) -> Path:
        return self.directory / CA_CERTIFICATE_FILE

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate)

    @property
    def organization(self) -> str:
        """The operator this CA belongs to: the O of every certificate it issues."""
        values = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if not values:
            raise ConfigError(f"the CA certificate {self.certificate_path} names no organization")
        return str(values[0].value)

    def issue(
        self,
        subject: x509.Name,
        profile: CertificateProfile,
        public_key: PublicKey | None = None,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        alt_names: Sequence[x509.GeneralName] = (),
        key_algorithm: str = "secp256r1",
    ) -> IssuedCertificate:
        """Sign a certificate for `public_key`, or for a new key on `key_algorithm` returned
        with it.

        The validity runs from now for the profile's lifetime unless given.
        """
        private_key = None
        if public_key is None:
            private_key = generate_key(key_algorithm)
            public_key = private_key.public_key()
        start = not_before or _now() - _CLOCK_SKEW
        end = not_after or start + profile.validity
        certificate = _sign(
            subject,
            public_key,
            profile,
            start,
            end,
            self._key,
            self.certificate.subject,
            alt_names,
            self.urls,
        )
        return IssuedCertificate(certificate, self.certificate, private_key)

    def sign_crl(
        self, builder: x509.CertificateRevocationListBuilder
    ) -> x509.CertificateRevocationList:
        """Sign a CRL with this CA's key, with the hash its key calls for."""
        return builder.sign(self._key, signature_hash(self._key))

    def sign_ocsp(self, builder: ocsp.OCSPResponseBuilder) -> ocsp.OCSPResponse:
        """Sign an OCSP response with this CA's key (the CA answers for itself)."""
        return builder.sign(self._key, signature_hash(self._key))

    def sign(self, data: bytes) -> bytes:
        """This CA's signature of `data`, as `sign_ocsp` and `sign_crl` make it: for a response
        assembled from parts made once, where a builder would redo all of them."""
        key, algorithm = self._key, signature_hash(self._key)
        if isinstance(key, ed448.Ed448PrivateKey):
            return key.sign(data)
        assert algorithm is not None  # only Ed448 hashes inside its signature
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(algorithm))
        return key.sign(data, PKCS1v15(), algorithm)

    def issue_server_certificate(self, host_names: Sequence[str] = ()) -> IssuedCertificate:
        """The CSMS's TLS certificate: localhost, 127.0.0.1 and `host_names` (DNS names or IPs)."""
        names = list(dict.fromkeys(("localhost", "127.0.0.1", *host_names)))
        return self.issue(
            subject_name(host_names[0] if host_names else "localhost", self.organization),
            CSMS_SERVER_PROFILE,
            alt_names=[_general_name(name) for name in names],
        )

    def issue_station_certificate(
        self,
        station_id: str,
        public_key: PublicKey | None = None,
        *,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> IssuedCertificate:
        """A charging station's client certificate: CN = station id, O = this CA's operator."""
        return self.issue(
            subject_name(station_id, self.organization),
            STATION_PROFILE,
            public_key,
            not_before=not_before,
            not_after=not_after,
        )

    def sign_station_csr(self, csr_pem: str | bytes, station_id: str) -> str:
        """SignCertificate for a ChargingStationCertificate: check the CSR, issue, and return
        the PEM chain for CertificateSigned. The subject is this CA's (CN = station id, O =
        operator), not copied from the request."""
        data = csr_pem.encode() if isinstance(csr_pem, str) else csr_pem
        try:
            csr = x509.load_pem_x509_csr(data)
        except ValueError as exc:
            raise CertificateError(f"the CSR is not a PEM PKCS#10 request: {exc}") from exc
        if not csr.is_signature_valid:
            raise CertificateError("the CSR's signature does not verify with its own public key")
        named = common_name(csr.subject)
        if named != station_id:
            raise CertificateError(
                f"the CSR names {named!r} as its CN, not the requesting station {station_id!r}"
            )
        key = _acceptable_key(csr.public_key())
        return self.issue_station_certificate(station_id, key).chain_pem()

    def verify(self, certificate: x509.Certificate) -> None:
        """Refuse a certificate this CA did not sign, outside its validity, or revoked."""
        label = common_name(certificate.subject) or certificate.subject.rfc4514_string()
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(
                f"certificate {label!r} was not issued by this CA "
                f"({self.certificate.subject.rfc4514_string()}); its issuer is "
                f"{certificate.issuer.rfc4514_string()}"
            ) from exc
        moment = _now()
        if moment < certificate.not_valid_before_utc:
            raise CertificateError(
                f"certificate {label!r} is not valid before "
                f"{certificate.not_valid_before_utc.isoformat()}"
            )
        if moment > certificate.not_valid_after_utc:
            raise CertificateError(
                f"certificate {label!r} expired at {certificate.not_valid_after_utc.isoformat()}"
            )
        revoked = self.revocation(certificate.serial_number)
        if revoked is not None:
            raise CertificateError(
                f"certificate {label!r} (serial {certificate.serial_number:x}) was revoked at "
                f"{revoked.revoked_at.isoformat()} ({revoked.reason.value})"
            )

    def revoke(
        self, serial_number: int, reason: x509.ReasonFlags = x509.ReasonFlags.unspecified
    ) -> Revocation:
        """Revoke a serial; revoking it again keeps the first time and reason."""
        return self.revocations.revoke(serial_number, reason)

    def revocation(self, serial_number: int) -> Revocation | None:
        return self.revocations.revocation(serial_number)


def csms_authority(settings: Settings) -> CertificateAuthority:
    """The CSMS root CA of these settings, created on first use in data_dir/pki/csms-root."""
    subject = subject_name(f"{settings.cpo_name} CSMS Root CA", settings.cpo_name)
    return CertificateAuthority.open(
        settings.pki_dir / CSMS_ROOT, subject, settings.keystore_password
    )


def generate_key(algorithm: str) -> PrivateKey:
    """A fresh key on one of KEY_ALGORITHMS."""
    if algorithm not in KEY_ALGORITHMS:
        raise CertificateError(
            f"key algorithm {algorithm!r} is not one of {', '.join(KEY_ALGORITHMS)}"
        )
    curve = KEY_ALGORITHMS[algorithm]
    return ed448.Ed448PrivateKey.generate() if curve is None else ec.generate_private_key(curve)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
    """SHA-256 for P-256 and RSA, SHA-384 for P-384, SHA-512 for P-521 (ISO 15118-20), and
    none for Ed448, which hashes inside the signature."""
    if isinstance(key, ed448.Ed448PrivateKey):
        return None
    size = key.curve.key_size if isinstance(key, ec.EllipticCurvePrivateKey) else 0
    if size == 521:
        return hashes.SHA512()
    if size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _acceptable_key(public_key: object) -> PublicKey:
    """EC P-256/P-384 or RSA of at least 2048 bits, as the OCPP security whitepaper allows."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in _EC_CURVES:
            raise CertificateError(
                f"the CSR's EC key is on {public_key.curve.name}; only P-256 and P-384 are accepted"
            )
        return public_key
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < _MIN_RSA_BITS:
            raise CertificateError(
                f"the CSR's RSA key has {public_key.key_size} bits; at least "
                f"{_MIN_RSA_BITS} are required"
            )
        return public_key
    raise CertificateError(
        f"the CSR's {type(public_key).__name__} is not accepted: use EC P-256/P-384 or RSA"
    )


def _sign(
    subject: x509.Name,
    public_key: PublicKey,
    profile: CertificateProfile,
    not_before: datetime,
    not_after: datetime,
    signer: PrivateKey,
    issuer: x509.Name,
    alt_names: Sequence[x509.GeneralName] = (),
    urls: RevocationUrls | None = None,
) -> x509.Certificate:
    builder = certificate_builder(
        subject,
        public_key,
        issuer,
        signer.public_key(),
        not_before,
        not_after,
        x509.BasicConstraints(ca=profile.ca, path_length=profile.path_length),
        profile.key_usage,
        profile.extended_key_usage,
        alt_names,
    )
    if profile.ocsp_no_check:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    elif urls is not None:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP,
                        x509.UniformResourceIdentifier(urls.ocsp),
                    )
                ]
            ),
            critical=False,
        ).add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        [x509.UniformResourceIdentifier(urls.crl)], None, None, None
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(signer, signature_hash(signer))


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        if not host or not host.isascii():
            raise ConfigError(
                f"host name {host!r} must be an IP address or an ASCII DNS name"
            ) from None
        return x509.DNSName(host)


def _now() -> datetime:
    return datetime.now(UTC)

"""The grid operator's own certificate authority for IEEE 2030.5: P-256 server and device
certificates, and the TLS contexts of the 2030.5 endpoint.

It is kept apart from the consumer layer's PKI on purpose: a device admitted to the grid
security layer holds a certificate only this authority issues, so a compromised CSMS or roaming
partner cannot mint grid credentials. Device certificates follow 2030.5 section 6.11: they do not
expire (notAfter 99991231235959Z), because a device lives longer than any lifetime one could pick.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from evgi.config import Settings
from evgi.core.certificates import (
    CA_CERTIFICATE_FILE,
    CA_KEY_FILE,
    certificate_builder,
    certificate_pem,
    read_certificate_of,
    read_private_key,
    write_authority_files,
    write_identity,
)
from evgi.core.errors import ConfigError, ValidationError

GRID_ROOT = "grid-root"
_CLOCK_SKEW = timedelta(minutes=5)
_ROOT_LIFETIME = timedelta(days=30 * 365)
_SERVER_LIFETIME = timedelta(days=398)
# RFC 5280 4.1.2.5: the GeneralizedTime that means "no well-defined expiration date".
_NO_EXPIRY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
# 2030.5 section 6.11: the one suite a client must offer; OpenSSL builds without CCM8 fall back
# to the AES-128-GCM suite on the same ECDHE-ECDSA key exchange.
CSIP_CIPHER = "ECDHE-ECDSA-AES128-CCM8"
FALLBACK_CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"
_CA_KEY_USAGE = frozenset({"key_cert_sign", "crl_sign"})
_DEVICE_KEY_USAGE = frozenset({"digital_signature", "key_agreement"})


@dataclass(frozen=True)
class GridCertificate:
    """A certificate issued by the grid authority, its issuer and the key made for it."""

    certificate: x509.Certificate
    issuer: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def write(self, directory: Path, name: str, passphrase: str = "") -> tuple[Path, Path]:
        """Write `name.pem` (certificate then issuer) and `name.key.pem` (owner-only)."""
        chain = certificate_pem(self.certificate) + certificate_pem(self.issuer)
        return write_identity(directory, name, chain, self.private_key, passphrase)


class GridAuthority:
    """A P-256 root kept in `directory`, signing the 2030.5 server's and devices' certificates."""

    def __init__(
        self, directory: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
    ) -> None:
        self.directory = directory
        self.certificate = certificate
        self._key = key

    @classmethod
    def open(cls, directory: Path, organization: str, passphrase: str = "") -> GridAuthority:
        """Load the authority in `directory`, creating it on first use."""
        key_path, certificate_path = directory / CA_KEY_FILE, directory / CA_CERTIFICATE_FILE
        if certificate_path.exists():
            key = read_private_key(key_path, passphrase, "grid CA")
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigError(f"the grid CA key {key_path} is not an EC key")
            return cls(directory, key, read_certificate_of(certificate_path, key, key_path))
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(f"{organization} IEEE 2030.5 Root CA", organization)
        now = datetime.now(UTC)
        certificate = _sign(
            subject, key.public_key(), key, subject, now - _CLOCK_SKEW, now + _ROOT_LIFETIME, True
        )
        write_authority_files(directory, key, certificate, passphrase)
        return cls(directory, key, certificate)

    @property
    def certificate_path(self) -> Path:
        return self.directory / CA_CERTIFICATE_FILE

    @property
    def certificate_pem(self) -> str:
        return certificate_pem(self.certificate)

    def issue_server_certificate(self, host_names: list[str]) -> GridCertificate:
        """The 2030.5 server's certificate for localhost, 127.0.0.1 and `host_names`."""
        names = list(dict.fromkeys(["localhost", "127.0.0.1", *host_names]))
        return self._issue(
            names[0] if not host_names else host_names[0],
            # clientAuth too: the server is a TLS client when it POSTs notifications.
            (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
            _SERVER_LIFETIME,
            [_general_name(name) for name in names],
        )

    def issue_device_certificate(self, name: str) -> GridCertificate:
        """A device's client certificate; its LFDI is the hash of the DER this returns."""
        # serverAuth too: a device serves the notifications it subscribed to.
        return self._issue(
            name, (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH), None, []
        )

    def _issue(
        self,
        name: str,
        usages: tuple[x509.ObjectIdentifier, ...],
        lifetime: timedelta | None,
        alt_names: list[x509.GeneralName],
    ) -> GridCertificate:
        if not 0 < len(name) <= 64:
            raise ValidationError(f"certificate name {name!r} must have 1 to 64 characters")
        key = ec.generate_private_key(ec.SECP256R1())
        organization = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        start = datetime.now(UTC) - _CLOCK_SKEW
        certificate = _sign(
            _name(name, str(organization[0].value) if organization else "evgi"),
            key.public_key(),
            self._key,
            self.certificate.subject,
            start,
            _NO_EXPIRY if lifetime is None else start + lifetime,
            False,
            usages,
            alt_names,
        )
        return GridCertificate(certificate, self.certificate, key)


def grid_authority(settings: Settings) -> GridAuthority:
    """The grid CA of these settings, created on first use in data_dir/pki/grid-root."""
    return GridAuthority.open(
        settings.pki_dir / GRID_ROOT, settings.cpo_name, settings.keystore_password
    )


def grid_ca_certificate_path(settings: Settings) -> Path:
    """Where the grid CA of these settings keeps its certificate (whether or not it exists:
    a device trusts that file, it never creates a CA)."""
    return settings.pki_dir / GRID_ROOT / CA_CERTIFICATE_FILE


def read_device_identity(chain: Path, key: Path, passphrase: str = "") -> GridCertificate:
    """A device's identity as `GridCertificate.write` left it: its certificate, then its
    issuer in `chain`, and the private key of the certificate in `key`."""
    private_key = read_private_key(key, passphrase, "device")
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"the device key {key} is not a P-256 key")
    try:
        certificate = read_certificate_of(chain, private_key, key)
        issuers = x509.load_pem_x509_certificates(chain.read_bytes())[1:]
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the device certificate chain {chain}: {exc}") from exc
    if not issuers:
        raise ConfigError(f"{chain} holds no issuer after the device certificate")
    return GridCertificate(certificate, issuers[0], private_key)


def server_ssl_context(authority: GridAuthority, host_names: list[str]) -> ssl.SSLContext:
    """TLS 1.2 with mutual authentication: a client must present a certificate of `authority`
    (2030.5 section 6.11 fixes TLS 1.2 and one cipher suite)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(f"{CSIP_CIPHER}:{FALLBACK_CIPHER}")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=authority.certificate_pem)
    load_identity(context, authority.issue_server_certificate(host_names))
    return context


def client_ssl_context(
    authority_pem: str, identity: GridCertificate, check_hostname: bool = True
) -> ssl.SSLContext:
    """The TLS client side of 2030.5 (a device, or the server POSTing a notification):
    TLS 1.2 offering the 2030.5 suite, trusting only the grid CA, presenting `identity`.
    A notification goes to whatever address a device gave, which its certificate need not
    name: that side authenticates by the CA chain alone (`check_hostname=False`)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(f"{CSIP_CIPHER}:{FALLBACK_CIPHER}")
    context.check_hostname = check_hostname
    context.load_verify_locations(cadata=authority_pem)
    load_identity(context, identity)
    return context


def notification_ssl_context(authority_pem: str, identity: GridCertificate) -> ssl.SSLContext:
    """A device's endpoint for 2030.5 Notifications: TLS 1.2 with its own certificate, taking
    only clients (the server) that present a certificate of the grid CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(f"{CSIP_CIPHER}:{FALLBACK_CIPHER}")
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=authority_pem)
    load_identity(context, identity)
    return context


def load_identity(context: ssl.SSLContext, identity: GridCertificate) -> None:
    """`ssl` reads keys only from files: write them into a private folder gone on return."""
    with tempfile.TemporaryDirectory(prefix="evgi-grid-tls-") as folder:
        chain, key = identity.write(Path(folder), "identity")
        context.load_cert_chain(chain, key)


def _sign(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    not_before: datetime,
    not_after: datetime,
    ca: bool,
    usages: tuple[x509.ObjectIdentifier, ...] = (),
    alt_names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    builder = certificate_builder(
        subject,
        public_key,
        issuer,
        signer.public_key(),
        not_before,
        not_after,
        x509.BasicConstraints(ca=ca, path_length=None),
        _CA_KEY_USAGE if ca else _DEVICE_KEY_USAGE,
        usages,
        alt_names or (),
    )
    return builder.sign(signer, hashes.SHA256())


def _name(common: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)

"""X.509 pieces every certificate authority of the platform shares: the extensions of a new
certificate, PEM encoding, and key files only their owner can read.

They sit in the kernel so the grid authority and the Plug & Charge PKI can use one copy without
the grid security layer depending on the consumer layer.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
)

from evgi.core.errors import ConfigError, ValidationError

# Where each certificate authority keeps its key and certificate, in a folder of its own.
CA_KEY_FILE = "ca.key.pem"
CA_CERTIFICATE_FILE = "ca.pem"
# encipherOnly and decipherOnly mean something only beside keyAgreement (RFC 5280 4.2.1.3).
KEY_AGREEMENT_USAGES = ("encipher_only", "decipher_only")
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    *KEY_AGREEMENT_USAGES,
)


def certificate_builder(
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPublicKeyTypes,
    not_before: datetime,
    not_after: datetime,
    basic_constraints: x509.BasicConstraints,
    key_usage: frozenset[str],
    extended_key_usage: Sequence[x509.ObjectIdentifier] = (),
    alt_names: Sequence[x509.GeneralName] = (),
) -> x509.CertificateBuilder:
    """The extensions every issued certificate carries, in one order, left unsigned so each
    authority adds its own and signs with the hash its key calls for."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(basic_constraints, critical=True)
        .add_extension(
            x509.KeyUsage(**{name: name in key_usage for name in KEY_USAGES}), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False
        )
    )
    if extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
        )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder


def certificate_pem(certificate: x509.Certificate) -> str:
    """PEM text, as chains and CA files are written."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def private_key_pem(key: CertificateIssuerPrivateKeyTypes, passphrase: str) -> bytes:
    """PKCS#8 PEM, encrypted when a passphrase is set."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def read_private_key(path: Path, passphrase: str, label: str) -> PrivateKeyTypes:
    """A PEM key; a missing file or wrong passphrase is a configuration error naming `label`."""
    try:
        return serialization.load_pem_private_key(path.read_bytes(), passphrase.encode() or None)
    except (OSError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"cannot read the {label} key {path} with the configured passphrase "
            f"(EVGI_KEYSTORE_PASSWORD): {exc}"
        ) from exc


def read_certificate_of(
    path: Path, key: CertificateIssuerPrivateKeyTypes, key_path: Path
) -> x509.Certificate:
    """The PEM certificate in `path`, refused unless it holds the public half of `key`."""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    if certificate.public_key() != key.public_key():
        raise ConfigError(f"{path} is not the certificate of {key_path}")
    return certificate


def write_authority_files(
    directory: Path,
    key: CertificateIssuerPrivateKeyTypes,
    certificate: x509.Certificate,
    passphrase: str,
) -> None:
    """A CA's key (owner-only, encrypted if a passphrase is given) and certificate, in a
    folder only its owner may enter."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_file(directory / CA_KEY_FILE, private_key_pem(key, passphrase), 0o600)
    write_file(directory / CA_CERTIFICATE_FILE, certificate_pem(certificate).encode(), 0o644)


def write_identity(
    directory: Path,
    name: str,
    chain_pem: str,
    private_key: CertificateIssuerPrivateKeyTypes,
    passphrase: str,
) -> tuple[Path, Path]:
    """Write a chain to `name.pem` and its key to `name.key.pem` (owner-only, encrypted if a
    passphrase is given); return both paths."""
    if not name or "/" in name or name in (".", ".."):
        raise ValidationError(f"{name!r} cannot name a certificate file")
    chain_path, key_path = directory / f"{name}.pem", directory / f"{name}.key.pem"
    write_file(key_path, private_key_pem(private_key, passphrase), 0o600)
    write_file(chain_path, chain_pem.encode(), 0o644)
    return chain_path, key_path


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write through a fresh temporary file with `mode`, so no reader sees half a file and a
    key is never readable by others, even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)

"""The CSMS root CA: persistence, the certificates it issues, CSR signing, revocation, and the
lenient reading of real ISO 15118 test certificates."""

from __future__ import annotations

import itertools
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from evgi.config import Settings
from evgi.core import ConfigError
from evgi.pnc import (
    CSMS_ROOT,
    CertificateAuthority,
    CertificateError,
    PrivateKey,
    csms_authority,
    load_certificate,
    subject_name,
)
from evgi.pnc.ocsp import verify_signature
from tests.cli_runner import run_evgi

QA_CERTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "iso15118-qa-certs"


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return csms_authority(Settings(data_dir=tmp_path, cpo_name="Example CPO"))


def _csr(common: str, key: PrivateKey) -> bytes:
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name(common, "Example CPO"))
        .sign(key, hashes.SHA256())
    )
    return request.public_bytes(serialization.Encoding.PEM)


def test_root_is_persisted_with_its_key_encrypted(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, keystore_password="s3cret", cpo_name="Example CPO")
    first = csms_authority(settings)
    folder = tmp_path / "pki" / CSMS_ROOT
    key_file = folder / "ca.key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in key_file.read_bytes()

    root = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    assert root == first.certificate
    assert root.subject == root.issuer
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.signature_hash_algorithm is not None
    assert root.signature_hash_algorithm.name == "sha256"
    root.verify_directly_issued_by(root)

    assert csms_authority(settings).certificate == root
    with pytest.raises(ConfigError, match="passphrase"):
        csms_authority(settings.model_copy(update={"keystore_password": "wrong"}))
    with pytest.raises(ConfigError, match="already exists"):
        CertificateAuthority.create(folder, root.subject)


def test_root_key_without_passphrase_is_owner_only(authority: CertificateAuthority) -> None:
    key_file = authority.directory / "ca.key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(authority.directory.stat().st_mode) == 0o700


def test_server_certificate(authority: CertificateAuthority) -> None:
    issued = authority.issue_server_certificate(["csms.example.test", "10.1.2.3"])
    chain = x509.load_pem_x509_certificates(issued.chain_pem().encode())
    assert chain == [issued.certificate, authority.certificate]
    server = chain[0]
    server.verify_directly_issued_by(authority.certificate)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "csms.example.test"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "10.1.2.3",
    ]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert server.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "csms.example.test"
    )
    key = issued.private_key
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_station_certificate_follows_the_ocpp_whitepaper(
    authority: CertificateAuthority,
) -> None:
    station = authority.issue_station_certificate("CS-0001").certificate
    assert station.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CS-0001"
    assert station.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Example CPO"
    )
    usage = station.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement
    assert not usage.key_cert_sign and not usage.key_encipherment
    extended = station.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(extended) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not station.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    authority.verify(station)
    with pytest.raises(CertificateError, match="1 to 64 characters"):
        authority.issue_station_certificate("")


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP384R1()),
        rsa.generate_private_key(65537, 2048),
    ],
    ids=["p256", "p384", "rsa2048"],
)
def test_csr_is_signed(authority: CertificateAuthority, key: PrivateKey) -> None:
    pem = authority.sign_station_csr(_csr("CS-0001", key).decode(), "CS-0001")
    leaf, issuer = x509.load_pem_x509_certificates(pem.encode())
    assert issuer == authority.certificate
    assert leaf.public_key() == key.public_key()
    assert leaf.subject == subject_name("CS-0001", "Example CPO")
    authority.verify(leaf)


def test_csr_for_another_station_is_refused(authority: CertificateAuthority) -> None:
    csr = _csr("CS-0002", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(CertificateError, match="names 'CS-0002' as its CN, not the requesting"):
        authority.sign_station_csr(csr, "CS-0001")


def test_csr_with_a_bad_signature_is_refused(authority: CertificateAuthority) -> None:
    request = x509.load_pem_x509_csr(_csr("CS-0001", ec.generate_private_key(ec.SECP256R1())))
    der = bytearray(request.public_bytes(serialization.Encoding.DER))
    signature = request.signature
    at = bytes(der).rindex(signature)
    der[at + 10] ^= 0x01  # a byte of the ECDSA signature's r
    forged = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CertificateError, match="signature does not verify"):
        authority.sign_station_csr(forged, "CS-0001")


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (rsa.generate_private_key(65537, 1024), "1024 bits; at least 2048"),
        (ec.generate_private_key(ec.SECP256K1()), "secp256k1; only P-256 and P-384"),
    ],
    ids=["rsa1024", "secp256k1"],
)
def test_csr_with_a_weak_key_is_refused(
    authority: CertificateAuthority, key: PrivateKey, reason: str
) -> None:
    with pytest.raises(CertificateError, match=reason):
        authority.sign_station_csr(_csr("CS-0001", key), "CS-0001")


def test_text_that_is_no_csr_is_refused(authority: CertificateAuthority) -> None:
    with pytest.raises(CertificateError, match="not a PEM PKCS#10 request"):
        authority.sign_station_csr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", "CS-0001")


def test_verify_names_the_failed_check(authority: CertificateAuthority, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    expired = authority.issue_station_certificate(
        "CS-0001", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    ).certificate
    with pytest.raises(CertificateError, match="'CS-0001' expired at"):
        authority.verify(expired)
    early = authority.issue_station_certificate(
        "CS-0001", not_before=now + timedelta(days=1)
    ).certificate
    with pytest.raises(CertificateError, match="'CS-0001' is not valid before"):
        authority.verify(early)
    other = CertificateAuthority.create(tmp_path / "other", subject_name("Other root", "Other"))
    foreign = other.issue_station_certificate("CS-0001").certificate
    with pytest.raises(CertificateError, match="not issued by this CA"):
        authority.verify(foreign)


def test_revocations_persist(authority: CertificateAuthority) -> None:
    station = authority.issue_station_certificate("CS-0001").certificate
    first = authority.revoke(station.serial_number, x509.ReasonFlags.key_compromise)
    assert authority.revoke(station.serial_number) == first
    reopened = CertificateAuthority.load(authority.directory)
    assert reopened.revocation(station.serial_number) == first
    with pytest.raises(CertificateError, match=r"was revoked at .* \(keyCompromise\)"):
        reopened.verify(station)
    assert reopened.revocation(station.serial_number + 1) is None


def test_lenient_loader_reads_every_iso15118_test_certificate() -> None:
    if not QA_CERTS.is_dir():
        pytest.skip(f"the shared ISO 15118 test certificates are not at {QA_CERTS}")
    read = {path.stem: load_certificate(path.read_bytes()) for path in QA_CERTS.glob("*.der")}
    assert len(read) == 27

    # cryptography alone refuses these extensions: they encode the default cA=FALSE.
    cps = read["CPS_2024.4_QA"]
    with pytest.raises(ValueError, match="BasicConstraints"):
        _ = cps.certificate.extensions
    assert not cps.is_ca and cps.path_length is None
    assert cps.key_usage == {"digital_signature"}
    assert read["DEICECOPNCCERT"].key_usage == {
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "key_agreement",
    }

    root = read["V2G_Root_CA_QA_G1"]
    assert root.is_ca and root.path_length is None
    assert root.extended_key_usage == {ExtendedKeyUsageOID.OCSP_SIGNING}
    assert read["Prov_Sub1_CA_QA_G1.1"].path_length == 1
    assert read["Prov_Sub2_CA_QA_G1.1.1"].path_length == 0

    # The chain root → Prov Sub1 → Prov Sub2 → CPS checks out on the leniently read leaf.
    chain = ["CPS_2022.2_QA", "Prov_Sub2_CA_QA_G1.1.1", "Prov_Sub1_CA_QA_G1.1", "V2G_Root_CA_QA_G1"]
    for child, parent in itertools.pairwise(chain):
        read[child].certificate.verify_directly_issued_by(read[parent].certificate)
        assert read[child].authority_key_identifier == read[parent].subject_key_identifier


def test_both_readers_of_extensions_agree() -> None:
    """`load_certificate` reads the extensions with `cryptography` where it can, and with
    asn1crypto where it refuses them: on every test certificate both can read, they agree."""
    if not QA_CERTS.is_dir():
        pytest.skip(f"the shared ISO 15118 test certificates are not at {QA_CERTS}")
    compared = 0
    for path in sorted(QA_CERTS.glob("*.der")):
        details = load_certificate(path.read_bytes())
        try:
            _ = details.certificate.extensions
        except ValueError:
            continue  # read by asn1crypto alone
        parsed = asn1_x509.Certificate.load(path.read_bytes())
        usage = parsed.key_usage_value
        assert details.is_ca == bool(parsed.ca)
        assert details.path_length == parsed.max_path_length
        assert details.key_usage == {
            "content_commitment" if name == "non_repudiation" else name
            for name in (usage.native if usage else ())
        }
        assert details.extended_key_usage == {
            x509.ObjectIdentifier(oid.dotted) for oid in parsed.extended_key_usage_value or ()
        }
        assert details.subject_key_identifier == parsed.key_identifier
        assert details.authority_key_identifier == parsed.authority_key_identifier
        compared += 1
    assert compared == 23


@pytest.mark.parametrize("key_algorithm", ["secp256r1", "secp521r1", "ed448"])
def test_signatures_are_made_as_the_certificates_are(tmp_path: Path, key_algorithm: str) -> None:
    """`sign` uses the hash the CA's key calls for, as its self-signed certificate does."""
    ca = CertificateAuthority.create(
        tmp_path / "ca", subject_name("Test CA", "Test"), key_algorithm=key_algorithm
    )
    signature = ca.sign(b"to be signed")
    algorithm = ca.certificate.signature_hash_algorithm
    verify_signature(ca.certificate.public_key(), signature, b"to be signed", algorithm)
    with pytest.raises(InvalidSignature):
        verify_signature(ca.certificate.public_key(), signature, b"something else", algorithm)


def test_lenient_loader_reads_pem_and_refuses_garbage(authority: CertificateAuthority) -> None:
    details = load_certificate(authority.certificate_pem.encode())
    assert details.certificate == authority.certificate and details.is_ca
    with pytest.raises(CertificateError, match=r"not a readable X\.509 certificate"):
        load_certificate(b"\x30\x03\x02\x01\x01")


def test_pki_commands(tmp_path: Path) -> None:
    created = run_evgi(tmp_path, "pki", "ca-init")
    assert created.returncode == 0, created.stderr
    root_path = tmp_path / "evgi-data" / "pki" / CSMS_ROOT / "ca.pem"
    root = x509.load_pem_x509_certificate(root_path.read_bytes())
    assert root.fingerprint(hashes.SHA256()).hex(":") in created.stdout

    station = run_evgi(tmp_path, "pki", "issue-station", "CS-0001", "--out", "certs")
    assert station.returncode == 0, station.stderr
    leaf, issuer = x509.load_pem_x509_certificates((tmp_path / "certs/CS-0001.pem").read_bytes())
    assert issuer == root
    leaf.verify_directly_issued_by(root)
    key = serialization.load_pem_private_key(
        (tmp_path / "certs/CS-0001.key.pem").read_bytes(), None
    )
    assert key.public_key() == leaf.public_key()

    server = run_evgi(
        tmp_path, "pki", "issue-server", "--host", "csms.example.test", "--out", "certs"
    )
    assert server.returncode == 0, server.stderr
    server_cert = x509.load_pem_x509_certificates(
        (tmp_path / "certs/csms-server.pem").read_bytes()
    )[0]
    names = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "csms.example.test" in names.get_values_for_type(x509.DNSName)

    refused = run_evgi(tmp_path, "pki", "issue-station", "x" * 65)
    assert refused.returncode == 2
    assert "1 to 64 characters" in refused.stderr

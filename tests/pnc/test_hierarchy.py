"""The ISO 15118 hierarchies: the profiles of each certificate, both ISO 15118 parts, storage on
each backend, OpenSSL's own verification of the issued chains, and the `evgi pki` commands."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from evgi.config import Settings
from evgi.core import NotFoundError, ValidationError
from evgi.pnc import (
    DEFAULT_ECOSYSTEM,
    CaRole,
    CertificateError,
    Hierarchies,
    Iso15118,
    IssuedChain,
    LeafRole,
)
from evgi.storage import open_database
from tests.cli_runner import run_evgi

OPENSSL = shutil.which("openssl")


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _dc(certificate: x509.Certificate) -> list[str]:
    return [
        str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)
    ]


def test_full_ecosystem_on_each_backend(db_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url, pki_base_url="http://pki.test")
    engine = open_database(db_url)
    try:
        hierarchies = Hierarchies(settings, engine)
        created = hierarchies.init()
        assert hierarchies.init() == []  # a second run creates nothing
        roots = [a for a in created if a.role is CaRole.ROOT]
        assert {r.name for r in roots} == {spec.name for spec in DEFAULT_ECOSYSTEM}
        assert len(created) == 38
        for authority in created:
            path = hierarchies.path(authority.name)
            assert len(path) == {"root": 1, "sub-ca-1": 2, "sub-ca-2": 3}[authority.role.value]
            assert _dc(authority.certificate) == ["V2G"]
            for child, parent in itertools.pairwise(path):
                child.verify_directly_issued_by(parent)
        # A new process over the same storage sees the same hierarchies.
        again = Hierarchies(settings, engine)
        assert [a.certificate for a in again.authorities()] == [
            a.certificate for a in hierarchies.authorities()
        ]
        issued = again.issue_contract("DEABC123456789")
        assert again.find(issued.certificate.serial_number).issuer == issued.issuer
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("role", "name", "domain", "usage"),
    [
        (LeafRole.SECC, "SECC-0001", "CPO", {"digital_signature", "key_agreement"}),
        (LeafRole.CPS, "Test CPS Leaf", "CPS", {"digital_signature"}),
        (
            LeafRole.CONTRACT,
            "DEABC123456789",
            "MO",
            {"digital_signature", "content_commitment", "key_agreement"},
        ),
        (LeafRole.PROVISIONING, "WMIV1234567890ABC", "OEM", {"digital_signature", "key_agreement"}),
    ],
)
def test_iso15118_2_profile(
    hierarchies: Hierarchies, role: LeafRole, name: str, domain: str, usage: set[str]
) -> None:
    issued = hierarchies.issue(hierarchies.default_issuer(role), name)
    leaf = issued.certificate
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
    assert _dc(leaf) == [domain]
    assert len(issued.sub_cas) == 2
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    key_usage = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert {
        n
        for n in ("digital_signature", "content_commitment", "key_agreement", "key_encipherment")
        if getattr(key_usage.value, n)
    } == usage
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.signature_hash_algorithm is not None
    assert leaf.signature_hash_algorithm.name == "sha256"
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_method for d in aia] == [AuthorityInformationAccessOID.OCSP]
    assert aia[0].access_location.value.endswith(f"/pki/ocsp/{issued.issuer}")
    ski = leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issued.sub_cas[0].extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert aki.key_identifier == issuer_ski.value.digest != ski.digest
    for certificate in issued.chain:
        assert len(_der(certificate)) <= 800
    sub2, sub1 = issued.sub_cas
    for sub, path_length in ((sub2, 0), (sub1, 1)):
        basic = sub.extensions.get_extension_for_class(x509.BasicConstraints)
        assert basic.critical and basic.value.ca and basic.value.path_length == path_length
        usage_of_ca = sub.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage_of_ca.critical and usage_of_ca.value.key_cert_sign
        assert usage_of_ca.value.crl_sign and not usage_of_ca.value.digital_signature
    _openssl_verifies(issued, hierarchies.settings.data_dir)


@pytest.mark.parametrize(
    ("issuer", "algorithm"), [("mo-p521-mo-2", "secp521r1"), ("oem-ed448-oem-2", "ed448")]
)
def test_iso15118_20_profile(hierarchies: Hierarchies, issuer: str, algorithm: str) -> None:
    name = "DEABC123456789" if issuer.startswith("mo") else "WMIV1234567890ABC"
    issued = hierarchies.issue(issuer, name)
    for certificate in [*issued.chain, issued.root]:
        assert len(_der(certificate)) <= 1600
        key = certificate.public_key()
        if algorithm == "ed448":
            assert isinstance(key, ed448.Ed448PublicKey)
            assert certificate.signature_hash_algorithm is None
        else:
            assert isinstance(key, ec.EllipticCurvePublicKey)
            assert key.curve.name == "secp521r1"
            assert certificate.signature_hash_algorithm is not None
            assert certificate.signature_hash_algorithm.name == "sha512"
    _openssl_verifies(issued, hierarchies.settings.data_dir)


def _openssl_verifies(issued: IssuedChain, folder: Path) -> None:
    """OpenSSL's own chain verification, as any relying party runs it."""
    if OPENSSL is None:
        pytest.skip("openssl is not on PATH")
    pem = {
        "root.pem": _pem([issued.root]),
        "subs.pem": _pem(list(issued.sub_cas)),
        "leaf.pem": _pem([issued.certificate]),
    }
    for name, text in pem.items():
        (folder / name).write_text(text)
    result = subprocess.run(
        [OPENSSL, "verify", "-CAfile", "root.pem", "-untrusted", "subs.pem", "leaf.pem"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "leaf.pem: OK" in result.stdout


def _pem(certificates: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def test_refusals(hierarchies: Hierarchies) -> None:
    with pytest.raises(ValidationError, match="eMAID 'not an emaid' does not match"):
        hierarchies.issue_contract("not an emaid")
    with pytest.raises(ValidationError, match="has check digit"):
        hierarchies.issue_contract("DEABC1234567890")
    with pytest.raises(ValidationError, match="PCID 'short' is not 17 or 18"):
        hierarchies.issue_provisioning("short")
    with pytest.raises(CertificateError, match="is a sub-ca-1: end-entity certificates come"):
        hierarchies.issue("mo-t-mo-1", "DEABC123456789")
    with pytest.raises(NotFoundError, match="no certificate authority 'nowhere'"):
        hierarchies.issue("nowhere", "DEABC123456789")
    with pytest.raises(NotFoundError, match="no cps sub-CA on iso15118-20"):
        hierarchies.default_issuer(LeafRole.CPS, Iso15118.PART_20)
    with pytest.raises(NotFoundError, match="no certificate with serial"):
        hierarchies.find(12345)
    # Nothing refused was stored.
    assert hierarchies.store.find(LeafRole.CONTRACT, "DEABC1234567890") == []


@pytest.mark.slow
def test_pki_commands(tmp_path: Path) -> None:
    created = run_evgi(tmp_path, "pki", "init")
    assert created.returncode == 0, created.stderr
    assert "mo-a-mo-2" in created.stdout and "v2g-ed448-cps-2" in created.stdout

    issued = run_evgi(tmp_path, "pki", "issue", "contract", "DEABC123456789", "--out", "certs")
    assert issued.returncode == 0, issued.stderr
    chain = x509.load_pem_x509_certificates((tmp_path / "certs/DEABC123456789.pem").read_bytes())
    assert len(chain) == 3
    serial = f"{chain[0].serial_number:x}"
    assert serial in issued.stdout

    shown = run_evgi(tmp_path, "pki", "show", serial)
    assert shown.returncode == 0, shown.stderr
    assert '"status": "good"' in shown.stdout and '"issuer": "mo-a-mo-2"' in shown.stdout

    revoked = run_evgi(tmp_path, "pki", "revoke", serial, "--reason", "keyCompromise")
    assert revoked.returncode == 0, revoked.stderr
    shown = run_evgi(tmp_path, "pki", "show", serial)
    assert '"status": "revoked"' in shown.stdout and '"reason": "keyCompromise"' in shown.stdout

    ca = run_evgi(tmp_path, "pki", "show", "mo-a-mo-2")
    assert ca.returncode == 0, ca.stderr
    assert '"crl": "http://127.0.0.1:8000/pki/crl/mo-a-mo-2.crl"' in ca.stdout

    bad = run_evgi(tmp_path, "pki", "revoke", serial, "--reason", "boredom")
    assert bad.returncode == 2 and "is not one of" in bad.stderr
    unknown = run_evgi(tmp_path, "pki", "show", "abc123")
    assert unknown.returncode == 2 and "no certificate with serial abc123" in unknown.stderr
    refused = run_evgi(tmp_path, "pki", "issue", "provisioning", "short")
    assert refused.returncode == 2 and "PCID 'short'" in refused.stderr

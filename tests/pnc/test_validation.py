"""Chain validation with OCPP's AuthorizeCertificateStatus: every refusal the ISO 15118 PKI
knows, with revocation asked over HTTP from the running OCSP responder."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evgi.config import Settings
from evgi.pnc import (
    AuthorizeCertificateStatus,
    CertificateAuthority,
    ChainValidator,
    Hierarchies,
    IssuedChain,
    LeafRole,
    OcspAnswer,
    OcspClient,
    iso15118_name,
)
from evgi.pnc.authority import common_name
from evgi.pnc.hierarchy import CA_PROFILES, LEAF_PROFILES, CaRole
from evgi.storage import open_database
from tests.cli_runner import run_evgi
from tests.pnc.conftest import SMALL_ECOSYSTEM

Status = AuthorizeCertificateStatus
MO = "mo-t-mo-2"
OEM = "oem-t-oem-2"
EMAID = "DEABC123456789"
PCID = "WMIV1234567890ABC"


@pytest.fixture
def ocsp() -> Iterator[OcspClient]:
    client = OcspClient(timeout=5)
    yield client
    client.close()


@pytest.fixture
def validator(hierarchies: Hierarchies, ocsp: OcspClient, pki_server: str) -> ChainValidator:
    return ChainValidator.of(hierarchies, ocsp)


def _unrecorded(
    hierarchies: Hierarchies,
    issuer: str,
    common: str,
    domain: str,
    role: LeafRole,
    alt_names: list[x509.GeneralName] | None = None,
) -> list[x509.Certificate]:
    """A leaf signed by `issuer` outside `Hierarchies.issue`, so none of its checks apply."""
    ca = hierarchies.authority(issuer)
    leaf = ca.issue(
        iso15118_name(common, "Test", domain), LEAF_PROFILES[role], alt_names=alt_names or ()
    ).certificate
    return [leaf, *hierarchies.path(issuer)[:-1]]


def test_accepted_on_both_profiles(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    for issued, role in (
        (hierarchies.issue_contract(EMAID, mo=MO), LeafRole.CONTRACT),
        (hierarchies.issue_provisioning(PCID, oem=OEM), LeafRole.PROVISIONING),
        (hierarchies.issue_secc("SECC-1"), LeafRole.SECC),
        (hierarchies.issue_cps("CPS leaf"), LeafRole.CPS),
        (hierarchies.issue("mo-p521-mo-2", EMAID), LeafRole.CONTRACT),
        (hierarchies.issue("oem-ed448-oem-2", PCID), LeafRole.PROVISIONING),
    ):
        verdict = validator.validate(role, issued.chain)
        assert verdict.status is Status.ACCEPTED, verdict.message
        assert verdict.accepted and verdict.reason == "accepted"
    ders = [c.public_bytes(serialization.Encoding.DER) for c in issued.chain]
    # DER works as well, and a chain that includes its root is accepted the same.
    assert validator.validate(LeafRole.PROVISIONING, [*ders]).identifier == PCID
    assert validator.validate(LeafRole.PROVISIONING, [*issued.chain, issued.root]).accepted


def test_expired_and_not_yet_valid(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    now = datetime.now(UTC)
    ca = hierarchies.authority(MO)
    subject = iso15118_name(EMAID, "Test", "MO")
    old = ca.issue(
        subject,
        LEAF_PROFILES[LeafRole.CONTRACT],
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    ).certificate
    early = ca.issue(
        subject, LEAF_PROFILES[LeafRole.CONTRACT], not_before=now + timedelta(days=1)
    ).certificate
    subs = hierarchies.path(MO)[:-1]
    verdict = validator.validate(LeafRole.CONTRACT, [old, *subs])
    assert (verdict.status, verdict.reason) == (Status.CERTIFICATE_EXPIRED, "expired")
    verdict = validator.validate(LeafRole.CONTRACT, [early, *subs])
    assert (verdict.status, verdict.reason) == (Status.CERTIFICATE_EXPIRED, "not_yet_valid")
    # The same chain at a moment inside its validity passes those checks.
    inside = validator.validate(LeafRole.CONTRACT, [early, *subs], now + timedelta(days=2))
    assert inside.reason != "not_yet_valid"


def test_revoked_via_ocsp(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    assert validator.validate(LeafRole.CONTRACT, issued.chain).accepted
    hierarchies.revoke(MO, issued.certificate.serial_number, x509.ReasonFlags.key_compromise)
    verdict = validator.validate(LeafRole.CONTRACT, issued.chain)
    assert (verdict.status, verdict.reason) == (Status.CERTIFICATE_REVOKED, "revoked")
    # Revoking a sub-CA refuses every chain beneath it.
    other = hierarchies.issue_provisioning(PCID, oem=OEM)
    sub2 = other.sub_cas[0]
    hierarchies.revoke("oem-t-oem-1", sub2.serial_number)
    verdict = validator.validate(LeafRole.PROVISIONING, other.chain)
    assert verdict.status is Status.CERTIFICATE_REVOKED
    assert "OEM Sub-CA 2" in verdict.message


def test_threads_share_a_validator_and_see_revocations_at_once(
    hierarchies: Hierarchies, validator: ChainValidator
) -> None:
    """One validator and client for several threads, each on its own kept-alive connection: a
    revocation shows in every thread's next check."""
    chains = [hierarchies.issue_contract(f"DEABC12345678{n}", mo=MO) for n in range(4)]

    def verdicts() -> list[Status]:
        with ThreadPoolExecutor(4) as pool:
            found = pool.map(lambda c: validator.validate(LeafRole.CONTRACT, c.chain), chains * 3)
            return [verdict.status for verdict in found]

    assert set(verdicts()) == {Status.ACCEPTED}
    hierarchies.revoke("mo-t-mo-1", chains[0].sub_cas[0].serial_number)
    assert set(verdicts()) == {Status.CERTIFICATE_REVOKED}


class _Asked:
    """The real OCSP client, noting the common name of every certificate it is asked about."""

    def __init__(self, client: OcspClient) -> None:
        self.client = client
        self.names: list[str] = []

    def status(self, certificate: x509.Certificate, issuer: x509.Certificate) -> OcspAnswer:
        self.names.append(common_name(certificate.subject) or "")
        return self.client.status(certificate, issuer)


def test_sub_ca_answers_are_kept_until_anything_is_revoked(
    hierarchies: Hierarchies, pki_settings: Settings, ocsp: OcspClient, pki_server: str
) -> None:
    """A sub-CA's good answer serves later chains, each leaf is asked about afresh; a
    revocation by `evgi pki revoke` in another process, even of an unrelated certificate,
    has the sub-CAs asked about again, and a revoked sub-CA refuses the very next chain."""
    asked = _Asked(ocsp)
    validator = ChainValidator.of(hierarchies, asked)
    emaids = [f"DEABC12345678{n}" for n in range(4)]
    chains = [hierarchies.issue_contract(emaid, mo=MO) for emaid in emaids]
    sub_cas = [common_name(sub_ca.subject) for sub_ca in chains[0].sub_cas]
    assert validator.validate(LeafRole.CONTRACT, chains[0].chain).accepted
    assert asked.names == [emaids[0], *sub_cas]
    asked.names.clear()
    assert validator.validate(LeafRole.CONTRACT, chains[1].chain).accepted
    assert asked.names == [emaids[1]]

    def revoke(serial: int) -> None:
        folder, data = pki_settings.data_dir.parent, str(pki_settings.data_dir)
        done = run_evgi(folder, "--data-dir", data, "pki", "revoke", f"{serial:x}")
        assert done.returncode == 0, done.stderr

    revoke(chains[3].certificate.serial_number)
    asked.names.clear()
    assert validator.validate(LeafRole.CONTRACT, chains[2].chain).accepted
    assert asked.names == [emaids[2], *sub_cas]

    revoke(chains[0].sub_cas[0].serial_number)
    verdict = validator.validate(LeafRole.CONTRACT, chains[1].chain)
    assert verdict.status is Status.CERTIFICATE_REVOKED
    assert "MO Sub-CA 2" in verdict.message


def test_without_a_revocation_count_every_certificate_is_asked_about(
    hierarchies: Hierarchies, ocsp: OcspClient, pki_server: str
) -> None:
    """A validator that cannot learn of revocations keeps no answer."""
    asked = _Asked(ocsp)
    validator = ChainValidator(hierarchies.roots(), revocation=asked)
    for n in range(2):
        issued = hierarchies.issue_contract(f"DEABC12345678{n}", mo=MO)
        assert validator.validate(LeafRole.CONTRACT, issued.chain).accepted
    assert len(asked.names) == 6


def test_no_answer_from_the_responder_is_a_chain_error(hierarchies: Hierarchies) -> None:
    """No server runs on the AIA's port: the status cannot be established."""
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    client = OcspClient(timeout=2)
    try:
        verdict = ChainValidator.of(hierarchies, client).validate(LeafRole.CONTRACT, issued.chain)
    finally:
        client.close()
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "revocation_unavailable")


def test_wrong_domain_component(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    chain = _unrecorded(hierarchies, MO, EMAID, "CPO", LeafRole.CONTRACT)
    verdict = validator.validate(LeafRole.CONTRACT, chain)
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "wrong_domain")
    secc = hierarchies.issue_secc("SECC-1")
    verdict = validator.validate(LeafRole.CONTRACT, secc.chain)
    assert verdict.reason == "wrong_domain" and "DC=CPO" in verdict.message


def test_chain_too_deep(
    hierarchies: Hierarchies, validator: ChainValidator, tmp_path: Path
) -> None:
    extra = CertificateAuthority.create(
        tmp_path / "third",
        iso15118_name("Third Sub-CA", "Test", "V2G"),
        profile=CA_PROFILES[CaRole.SUB_CA_2],
        parent=hierarchies.authority(MO),
    )
    leaf = extra.issue(iso15118_name(EMAID, "Test", "MO"), LEAF_PROFILES[LeafRole.CONTRACT])
    chain = [leaf.certificate, extra.certificate, *hierarchies.path(MO)[:-1]]
    verdict = validator.validate(LeafRole.CONTRACT, chain)
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "too_deep")
    # Trusting sub-CA 1 makes the chain short enough, but sub-CA 2 allows no sub-CA below it.
    verdict = validator.validate(LeafRole.CONTRACT, chain[:3])
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "unknown_root")
    verdict = ChainValidator([chain[3]]).validate(LeafRole.CONTRACT, chain[:3])
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "path_length")


def test_unknown_root(hierarchies: Hierarchies, validator: ChainValidator, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "foreign")
    engine = open_database(settings.db_url)
    try:
        foreign = Hierarchies(settings, engine)
        foreign.init(SMALL_ECOSYSTEM[1:2])
        issued = foreign.issue_contract(EMAID)
    finally:
        engine.dispose()
    verdict = validator.validate(LeafRole.CONTRACT, issued.chain)
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "unknown_root")


def test_oversize_certificate(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    names: list[x509.GeneralName] = [x509.DNSName(f"host{i}.example.test") for i in range(20)]
    chain = _unrecorded(hierarchies, MO, EMAID, "MO", LeafRole.CONTRACT, names)
    assert len(chain[0].public_bytes(serialization.Encoding.DER)) > 800
    verdict = validator.validate(LeafRole.CONTRACT, chain)
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "oversize")


def test_tampered_signature(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    issued = hierarchies.issue_contract(EMAID, mo=MO)
    der = bytearray(issued.certificate.public_bytes(serialization.Encoding.DER))
    at = bytes(der).rindex(issued.certificate.signature)
    der[at + 10] ^= 0x01
    verdict = validator.validate(LeafRole.CONTRACT, [bytes(der), *issued.sub_cas])
    assert (verdict.status, verdict.reason) == (Status.SIGNATURE_ERROR, "signature")


def test_malformed_identifiers(hierarchies: Hierarchies, validator: ChainValidator) -> None:
    chain = _unrecorded(hierarchies, MO, "NOT AN EMAID", "MO", LeafRole.CONTRACT)
    verdict = validator.validate(LeafRole.CONTRACT, chain)
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "malformed_emaid")
    chain = _unrecorded(hierarchies, OEM, "short", "OEM", LeafRole.PROVISIONING)
    verdict = validator.validate(LeafRole.PROVISIONING, chain)
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "malformed_pcid")


def test_unknown_pcid_and_cancelled_contract(
    hierarchies: Hierarchies, validator: ChainValidator
) -> None:
    chain = _unrecorded(hierarchies, OEM, PCID, "OEM", LeafRole.PROVISIONING)
    verdict = validator.validate(LeafRole.PROVISIONING, chain)
    # The responder does not know a certificate the OEM never recorded either; without
    # revocation checks the PCID lookup is what refuses it.
    assert verdict.status is Status.CERT_CHAIN_ERROR and verdict.reason == "revocation_unknown"
    offline = ChainValidator.of(hierarchies)
    verdict = offline.validate(LeafRole.PROVISIONING, chain)
    assert (verdict.status, verdict.reason) == (Status.NO_CERTIFICATE_AVAILABLE, "unknown_pcid")

    issued: IssuedChain = hierarchies.issue_contract(EMAID, mo=MO)
    assert validator.validate(LeafRole.CONTRACT, issued.chain).accepted
    hierarchies.cancel_contract(EMAID)
    verdict = validator.validate(LeafRole.CONTRACT, issued.chain)
    assert (verdict.status, verdict.reason) == (Status.CONTRACT_CANCELLED, "contract_cancelled")


def test_empty_and_unreadable(validator: ChainValidator) -> None:
    verdict = validator.validate(LeafRole.CONTRACT, [])
    assert verdict.status is Status.NO_CERTIFICATE_AVAILABLE
    verdict = validator.validate(LeafRole.CONTRACT, [b"\x30\x03\x02\x01\x01"])
    assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "unreadable")

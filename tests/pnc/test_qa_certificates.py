"""The real ISO 15118 test certificates (Hubject, GIREVE and OEM QA hierarchies): every one is
read, and every chain that the fixtures hold validates, at a moment inside its validity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from evgi.pnc import (
    AuthorizeCertificateStatus,
    CertificateDetails,
    ChainValidator,
    LeafRole,
    load_certificate,
)
from tests.pnc.conftest import QA_CERTS

Status = AuthorizeCertificateStatus
# What each end-entity certificate of the fixtures is.
LEAVES = {
    "CPS_2021.8_QA": LeafRole.CPS,
    "CPS_2022.2_QA": LeafRole.CPS,
    "CPS_2024.4_QA": LeafRole.CPS,
    "DEHUBCOPNCPROVCER": LeafRole.PROVISIONING,
    "huboemprovcqa0615": LeafRole.PROVISIONING,
    "hubUsEaTest000003": LeafRole.PROVISIONING,
    "hubUsEaTest000004": LeafRole.PROVISIONING,
    "DEICECOPNCCERT": LeafRole.CONTRACT,
    "EMP99CQAPAB004": LeafRole.CONTRACT,
    "EMP99CQATEST001": LeafRole.CONTRACT,
    "TUAABcAz2BK7JRa": LeafRole.CONTRACT,
}


@pytest.fixture(scope="module")
def certificates() -> dict[str, CertificateDetails]:
    if not QA_CERTS.is_dir():
        pytest.skip(f"the shared ISO 15118 test certificates are not at {QA_CERTS}")
    return {path.stem: load_certificate(path.read_bytes()) for path in QA_CERTS.glob("*.der")}


def _chain(
    leaf: CertificateDetails, certificates: dict[str, CertificateDetails]
) -> list[CertificateDetails]:
    """The leaf and every issuer the fixtures hold, up to a self-signed root if there is one."""
    chain = [leaf]
    while chain[-1].certificate.issuer != chain[-1].certificate.subject:
        parents = [
            c
            for c in certificates.values()
            if c.certificate.subject == chain[-1].certificate.issuer and c not in chain
        ]
        if not parents:
            break
        chain.append(parents[0])
    return chain


def test_every_chain_validates(certificates: dict[str, CertificateDetails]) -> None:
    assert set(LEAVES) <= set(certificates)
    complete = 0
    for name, role in LEAVES.items():
        chain = _chain(certificates[name], certificates)
        moment = max(c.certificate.not_valid_before_utc for c in chain) + timedelta(hours=1)
        assert moment < min(c.certificate.not_valid_after_utc for c in chain), name
        top = chain[-1].certificate
        if top.issuer == top.subject:
            complete += 1
            anchors = [top]
            presented = [c.certificate for c in chain[:-1]]
        elif len(chain) > 1:
            # The fixtures lack this root: trust the highest CA they hold.
            anchors = [top]
            presented = [c.certificate for c in chain[:-1]]
            verdict = ChainValidator([]).validate(role, presented, moment)
            assert verdict.status is Status.CERT_CHAIN_ERROR and verdict.reason == "unknown_root"
        else:
            # Nothing of its chain is here: only "unknown root" can be said of it.
            verdict = ChainValidator([]).validate(role, [top], moment)
            assert (verdict.status, verdict.reason) == (Status.CERT_CHAIN_ERROR, "unknown_root")
            continue
        verdict = ChainValidator(anchors).validate(role, presented, moment)
        assert verdict.status is Status.ACCEPTED, f"{name}: {verdict.message}"
        # Today the same chain is refused exactly when part of it has expired since.
        today = datetime.now(UTC)
        expired = any(c.certificate.not_valid_after_utc < today for c in chain)
        verdict = ChainValidator(anchors).validate(role, presented, today)
        assert verdict.accepted is not expired, f"{name}: {verdict.message}"
        if expired:
            assert verdict.status is Status.CERTIFICATE_EXPIRED
    assert complete >= 7


def test_every_certificate_reads_and_roots_are_self_signed(
    certificates: dict[str, CertificateDetails],
) -> None:
    assert len(certificates) == 27
    roots = [c for c in certificates.values() if c.certificate.issuer == c.certificate.subject]
    assert len(roots) == 3  # two Hubject V2G roots and an OEM root
    for root in roots:
        assert root.is_ca
        root.certificate.verify_directly_issued_by(root.certificate)
    # `cryptography` alone refuses this leaf's extensions (cA=FALSE encoded); the chain test
    # above validated it through the lenient read.
    with pytest.raises(ValueError, match="BasicConstraints"):
        _ = certificates["CPS_2024.4_QA"].certificate.extensions

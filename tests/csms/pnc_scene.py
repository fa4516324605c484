"""The Plug & Charge scene the CSMS tests share: a CSMS and `evgi serve`'s HTTP app on one
database, the ISO 15118 hierarchies built on it, and a vehicle whose OEM published it and whose
eMSP stored a contract for it in the pool."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evgi.api import create_app
from evgi.app import open_platform
from evgi.core import emaid_check_digit
from evgi.pnc import (
    Branch,
    CertificatePools,
    Hierarchies,
    Iso15118,
    IssuedChain,
    KeyProfile,
    PoolClient,
    PoolRole,
    RootSpec,
    generate_contract_key,
    seal_contract_key,
)
from evgi.service import http_in_background
from evgi.storage import open_database
from tests.csms.conftest import Harness
from tests.service_runner import free_port

ECOSYSTEM = (
    RootSpec("v2g-t", Branch.V2G, "Test V2G", Iso15118.PART_2, "secp256r1"),
    RootSpec("mo-t", Branch.MO, "Test MO", Iso15118.PART_2, "secp256r1"),
    RootSpec("oem-t", Branch.OEM, "Test OEM", Iso15118.PART_2, "secp256r1"),
)
MO = "mo-t-mo-2"
PCID = "WMIV2GPNCCSMS00017"
UNPUBLISHED_PCID = "WMIV2GPNCCSMS00099"


def emaid(body: str) -> str:
    return body + emaid_check_digit(body)


def pem(chain: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)


def der64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


CONTRACT_EMAID = emaid("DEPNCC0NTRACT1")


@dataclass
class Scene:
    harness: Harness
    hierarchies: Hierarchies
    pools: CertificatePools
    contract: IssuedChain  # the vehicle's contract, installed through the pool
    provisioning: IssuedChain
    oem: PoolClient  # the vehicle's OEM, which records its driver's choices


@contextmanager
def open_scene(tmp_path: Path, db_url: str) -> Iterator[Scene]:
    """A CSMS and `evgi serve`'s HTTP app on one database (each backend), the hierarchies built
    on it, and a vehicle whose OEM published it and whose eMSP stored a contract for it."""
    port = free_port()
    harness_db = open_database(db_url)
    harness = Harness(harness_db, tmp_path, http_port=port, database_url=db_url)
    hierarchies = Hierarchies(harness.settings, harness_db)
    hierarchies.init(ECOSYSTEM)
    platform = open_platform(harness.settings)
    pools = CertificatePools.open(harness.settings, harness_db)
    try:
        with http_in_background(create_app(platform), port=port):
            pools.adopt_hierarchies()
            oem, _ = pools.register_client("oem", PoolRole.OEM)
            emsp, _ = pools.register_client("emsp", PoolRole.EMSP)
            provisioning = hierarchies.issue_provisioning(PCID)
            pools.publish_provisioning(
                oem, PCID, [c.public_bytes(serialization.Encoding.DER) for c in provisioning.chain]
            )
            key = generate_contract_key(KeyProfile.ISO15118_2)
            contract = hierarchies.issue_contract(CONTRACT_EMAID, key.public_key())
            contract = IssuedChain(
                contract.issuer, contract.certificate, contract.sub_cas, contract.root, key
            )
            sealed = seal_contract_key(key, contract.certificate, provisioning.certificate)
            pools.store_contract(
                emsp,
                PCID,
                CONTRACT_EMAID,
                [c.public_bytes(serialization.Encoding.DER) for c in contract.chain],
                sealed,
                1,
            )
            yield Scene(harness, hierarchies, pools, contract, provisioning, oem)
    finally:
        pools.close()
        platform.close()
        harness_db.dispose()

"""The certificate pools under /opcp/v1 of a running `evgi serve`: roots and trust list, an
OEM's provisioning certificate, eMSPs' contracts with priority and the driver's consent, and
the CPO's CertificateInstallationReq answered with contract data the vehicle can install."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from evgi.core import emaid_check_digit
from evgi.pnc import (
    CertificateAuthority,
    CertificateInstallationResponse,
    CertificatePools,
    CertificateUpdateRequest,
    ChainRefused,
    ContractKey,
    ContractRenewal,
    EncryptedContractKey,
    InstallationError,
    InstalledContract,
    IssuedChain,
    KeyProfile,
    NoContract,
    PoolClient,
    PoolRole,
    generate_contract_key,
    install_contract,
    seal_contract_key,
    seal_contract_update,
    subject_name,
    update_contract,
)
from evgi.pnc.hierarchy import LEAF_PROFILES, LeafRole
from evgi.storage.pools import PoolStore
from tests.pnc.pool_scene import PoolScene, der64, pool_fixture  # noqa: F401 (the fixture)

QA_ROOT = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "fixtures"
    / "iso15118-qa-certs"
    / "V2G_Root_CA_QA_G1.der"
)
PCID = "WMIV2GPROVTEST0017"


def emaid(body: str) -> str:
    return body + emaid_check_digit(body)


EMAID_1, EMAID_2 = emaid("DEABCC0NTRACT1"), emaid("DEXYZC0NTRACT2")


class Vehicle:
    """The EV: a provisioning key only it holds, its certificate issued by the OEM's CA."""

    def __init__(self, scene: PoolScene, pcid: str, profile: KeyProfile) -> None:
        self.pcid = pcid
        self.key = generate_contract_key(profile)
        oem = {
            KeyProfile.ISO15118_2: "oem-a-oem-2",
            KeyProfile.ISO15118_20_SECP521R1: "oem-p521-oem-2",
            KeyProfile.ISO15118_20_ED448: "oem-ed448-oem-2",
        }[profile]
        self.issued: IssuedChain = scene.hierarchies.issue_provisioning(
            pcid, self.key.public_key(), oem=oem
        )

    @property
    def chain(self) -> list[str]:
        return [der64(c) for c in self.issued.chain]


def publish(scene: PoolScene, vehicle: Vehicle) -> Any:
    return scene.call(
        "PUT",
        f"/opcp/v1/provisioning-certificates/{vehicle.pcid}",
        "oem",
        json={"certificateChain": vehicle.chain},
    )


def contract_data(
    scene: PoolScene, pcid: str, contract_id: str, priority: int, mo: str = "mo-a-mo-2"
) -> dict[str, Any]:
    """The eMSP's side: fetch the vehicle's certificate, make and certify a contract key,
    seal it for the vehicle."""
    reply = scene.call("GET", f"/opcp/v1/provisioning-certificates/{pcid}", "emsp")
    assert reply.status_code == 200, reply.text
    provisioning = x509.load_der_x509_certificate(
        base64.b64decode(reply.json()["certificateChain"][0])
    )
    profile = KeyProfile(reply.json()["profile"])
    key: ContractKey = generate_contract_key(profile)
    issued = scene.hierarchies.issue_contract(contract_id, key.public_key(), mo=mo)
    sealed = seal_contract_key(key, issued.certificate, provisioning)
    return {
        "profile": profile.value,
        "contractSignatureCertChain": [der64(c) for c in issued.chain],
        "contractSignatureEncryptedPrivateKey": base64.b64encode(
            sealed.encrypted_private_key
        ).decode(),
        "dhPublicKey": base64.b64encode(sealed.dh_public_key).decode(),
        "priority": priority,
    }


def root_id(certificate: x509.Certificate) -> dict[str, Any]:
    return {
        "x509IssuerName": certificate.issuer.rfc4514_string(),
        "x509SerialNumber": certificate.serial_number,
    }


def add_roots(scene: PoolScene) -> None:
    for name, kind in (
        ("v2g-a", "V2G"),
        ("v2g-b", "V2G"),
        ("v2g-p521", "V2G"),
        ("v2g-ed448", "V2G"),
        ("mo-a", "MO"),
        ("mo-p521", "MO"),
        ("mo-ed448", "MO"),
        ("oem-a", "OEM"),
        ("oem-p521", "OEM"),
        ("oem-ed448", "OEM"),
    ):
        reply = scene.call(
            "PUT",
            "/opcp/v1/root-certificates",
            "operator",
            json={"certificate": der64(scene.root(name)), "type": kind},
        )
        assert reply.status_code == 201, reply.text


def install(
    scene: PoolScene, vehicle: Vehicle, roots: list[str], **request: Any
) -> tuple[Any, CertificateInstallationResponse | None]:
    reply = scene.call(
        "POST",
        "/opcp/v1/certificate-installation",
        "cpo",
        json={
            "oemProvisioningCert": vehicle.chain[0],
            "listOfRootCertificateIds": [root_id(scene.root(r)) for r in roots],
            **request,
        },
    )
    if reply.status_code != 200:
        return reply, None
    return reply, CertificateInstallationResponse.from_json(reply.json())


def test_contract_installation_through_the_pools(pool: PoolScene) -> None:
    scene = pool
    add_roots(scene)
    qa = scene.call(
        "PUT",
        "/opcp/v1/root-certificates",
        "operator",
        json={"certificate": base64.b64encode(QA_ROOT.read_bytes()).decode(), "type": "V2G"},
    )
    assert qa.status_code == 201, qa.text
    trusted = [scene.call("GET", "/opcp/v1/root-certificates?type=V2G", "cpo").json()]
    fingerprints = [r["fingerprint"] for r in trusted[0]]
    assert len(fingerprints) == 5
    reply = scene.call(
        "PUT", "/opcp/v1/trust-list", "operator", json={"fingerprints": fingerprints[:3]}
    )
    assert reply.status_code == 200, reply.text
    trust_list = scene.call("GET", "/opcp/v1/trust-list", "oem").json()["v2gRoots"]
    assert {r["fingerprint"] for r in trust_list} == set(fingerprints[:3])

    vehicle = Vehicle(scene, PCID, KeyProfile.ISO15118_2)
    reply = publish(scene, vehicle)
    assert reply.status_code == 200, reply.text
    assert reply.json()["pcid"] == PCID and reply.json()["oem"] == "oem"

    stored = scene.call(
        "PUT",
        f"/opcp/v1/contracts/{PCID}/{EMAID_1}",
        "emsp",
        json=contract_data(scene, PCID, EMAID_1, priority=1),
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["isDefault"]
    second = scene.call(
        "PUT",
        f"/opcp/v1/contracts/{PCID}/{EMAID_2}",
        "emsp-2",
        json=contract_data(scene, PCID, EMAID_2, priority=2),
    )
    assert second.status_code == 200, second.text
    listed = scene.call("GET", f"/opcp/v1/contracts/{PCID}", "oem").json()
    assert [(c["emaid"], c["isDefault"]) for c in listed] == [(EMAID_1, True), (EMAID_2, False)]

    # Highest priority first, and the vehicle installs what the CPS signed.
    v2g_roots = [scene.root("v2g-a"), scene.root("v2g-b")]
    reply, response = install(scene, vehicle, ["v2g-a", "v2g-b"])
    assert response is not None, reply.text
    installed = install_contract(response, vehicle.key, PCID, v2g_roots)
    assert installed.emaid == EMAID_1
    challenge = os.urandom(16)
    public = installed.chain[0].public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(
        installed.sign_challenge(challenge),
        challenge,
        ec.ECDSA(installed.chain[0].signature_hash_algorithm),  # type: ignore[arg-type]
    )

    # The driver chooses the second contract; the vehicle may still ask for one.
    consent = scene.call(
        "PUT", f"/opcp/v1/consents/{PCID}", "oem", json={"emaid": EMAID_2, "driver": "d-42"}
    )
    assert consent.status_code == 200, consent.text
    assert consent.json()["recordedBy"] == "oem"
    assert scene.call("GET", f"/opcp/v1/consents/{PCID}", "emsp").json()["driver"] == "d-42"
    _, response = install(scene, vehicle, ["v2g-a"])
    assert response is not None and response.emaid == EMAID_2
    _, response = install(scene, vehicle, ["v2g-a"], prioritizedEmaids=[EMAID_1])
    assert response is not None and response.emaid == EMAID_1

    # A vehicle that trusts none of the CPS's roots gets nothing it could not verify.
    reply, response = install(scene, vehicle, ["v2g-p521"])
    assert reply.status_code == 404 and reply.json()["detail"]["code"] == "no_contract"

    # ISO 15118-20 on secp521r1 and on Ed448 (X448): the pool signs with a CPS of that profile.
    for pcid, profile, name in (
        ("WMIV2GPROVTEST0025", KeyProfile.ISO15118_20_SECP521R1, "p521"),
        ("WMIV2GPROVTEST0026", KeyProfile.ISO15118_20_ED448, "ed448"),
    ):
        modern = Vehicle(scene, pcid, profile)
        assert publish(scene, modern).status_code == 200
        body = contract_data(scene, pcid, EMAID_1, priority=1, mo=f"mo-{name}-mo-2")
        stored = scene.call("PUT", f"/opcp/v1/contracts/{pcid}/{EMAID_1}", "emsp", json=body)
        assert stored.status_code == 200, stored.text
        reply, response = install(scene, modern, [f"v2g-{name}"])
        assert response is not None, reply.text
        assert response.sealed_key.profile is profile
        installed = install_contract(response, modern.key, pcid, [scene.root(f"v2g-{name}")])
        assert installed.emaid == EMAID_1


def test_refusals_name_the_problem_and_lose_nothing(pool: PoolScene, tmp_path: Path) -> None:
    scene = pool
    PCID = "WMIV2GPROVTEST0041"
    vehicle = Vehicle(scene, PCID, KeyProfile.ISO15118_2)
    assert publish(scene, vehicle).status_code == 200
    path = f"/opcp/v1/contracts/{PCID}/{EMAID_1}"
    assert scene.call("PUT", path, "emsp", json=contract_data(scene, PCID, EMAID_1, 1)).is_success

    def refused(reply: Any, status: int, code: str) -> None:
        assert reply.status_code == status, reply.text
        assert reply.json()["detail"]["code"] == code, reply.text

    provisioning = f"/opcp/v1/provisioning-certificates/{PCID}"
    reply = scene.call("GET", provisioning)
    refused(reply, 401, "unauthenticated")
    assert reply.headers["www-authenticate"].startswith("Bearer")
    reply = scene.http.get(
        f"{scene.base}{provisioning}", headers={"Authorization": "Bearer not-a-token"}
    )
    refused(reply, 401, "unauthenticated")
    refused(scene.call("GET", provisioning, "cpo"), 403, "wrong_role")
    refused(
        scene.call("PUT", provisioning, "emsp", json={"certificateChain": vehicle.chain}),
        403,
        "wrong_role",
    )
    refused(
        scene.call("POST", "/opcp/v1/clients", "oem", json={"name": "x", "role": "cpo"}),
        403,
        "wrong_role",
    )
    unknown = "/opcp/v1/provisioning-certificates/WMIV2GPROVTEST0099"
    refused(scene.call("GET", unknown, "emsp"), 404, "unknown_pcid")
    refused(
        scene.call("GET", "/opcp/v1/provisioning-certificates/short", "emsp"),
        400,
        "malformed_identifier",
    )
    refused(
        scene.call("PUT", provisioning, "oem", json={"certificateChain": ["***"]}),
        400,
        "invalid",
    )
    assert scene.call("PUT", provisioning, "oem", json={}).status_code == 422

    # A chain from a root the pool does not hold, and a revoked one (asked by OCSP).
    stranger = CertificateAuthority.create(
        tmp_path / "stranger", subject_name("Stranger Root", "Nobody")
    )
    foreign = stranger.issue(subject_name(PCID, "Nobody"), LEAF_PROFILES[LeafRole.PROVISIONING])
    reply = scene.call(
        "PUT", provisioning, "oem", json={"certificateChain": [der64(foreign.certificate)]}
    )
    refused(reply, 400, "chain_refused")
    assert "CertChainError" in reply.json()["detail"]["message"]
    revoked = Vehicle(scene, "WMIV2GPROVTEST0057", KeyProfile.ISO15118_2)
    scene.hierarchies.revoke(revoked.issued.issuer, revoked.issued.certificate.serial_number)
    reply = publish(scene, revoked)
    refused(reply, 400, "chain_refused")
    assert "CertificateRevoked" in reply.json()["detail"]["message"]

    # Contracts: unknown vehicle, eMAID mismatch or malformed, another eMSP's contract.
    body = contract_data(scene, PCID, EMAID_2, 2)
    refused(
        scene.call("PUT", f"/opcp/v1/contracts/WMIV2GPROVTEST0099/{EMAID_2}", "emsp", json=body),
        404,
        "unknown_pcid",
    )
    refused(scene.call("PUT", path, "emsp", json=body), 400, "bad_installation")
    refused(
        scene.call("PUT", f"/opcp/v1/contracts/{PCID}/DEABCC0NTRACT1Q", "emsp", json=body),
        400,
        "malformed_identifier",
    )
    refused(
        scene.call("PUT", path, "emsp-2", json=contract_data(scene, PCID, EMAID_1, 1)),
        403,
        "wrong_role",
    )
    refused(scene.call("DELETE", path, "emsp-2"), 403, "wrong_role")
    refused(
        scene.call(
            "PUT", f"/opcp/v1/consents/{PCID}", "oem", json={"emaid": EMAID_2, "driver": "d"}
        ),
        404,
        "no_contract",
    )

    # Installation: unknown vehicle, and a certificate that is not the one published.
    other = Vehicle(scene, "WMIV2GPROVTEST0099", KeyProfile.ISO15118_2)
    reply, _ = install(scene, other, [])
    refused(reply, 404, "unknown_pcid")
    impostor = Vehicle(scene, PCID, KeyProfile.ISO15118_2)
    reply, _ = install(scene, impostor, [])
    refused(reply, 400, "bad_installation")

    # Nothing stored was lost along the way.
    listed = scene.call("GET", f"/opcp/v1/contracts/{PCID}", "emsp").json()
    assert [c["emaid"] for c in listed] == [EMAID_1]
    assert scene.call("GET", provisioning, "emsp").json()["certificateChain"] == vehicle.chain
    _, response = install(scene, vehicle, [])
    assert response is not None and response.emaid == EMAID_1

    document = scene.http.get(f"{scene.base}/openapi.json").json()
    assert "/opcp/v1/certificate-installation" in document["paths"]
    assert "/.well-known/est/{label}/simpleenroll" in document["paths"]
    assert "base64" in document["info"]["description"] or "base64" in str(document)

    # Withdrawing takes the vehicle's contracts with it.
    assert scene.call("DELETE", path, "emsp").status_code == 204
    assert scene.call("GET", f"/opcp/v1/contracts/{PCID}", "emsp").json() == []
    assert scene.call("DELETE", provisioning, "oem").status_code == 204
    refused(scene.call("GET", provisioning, "emsp"), 404, "unknown_pcid")


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


class Emsp:
    """An eMSP storing contracts in the pools directly, as the routes do for it."""

    def __init__(self, pools: CertificatePools, client: PoolClient, vehicle: Vehicle) -> None:
        self.pools, self.client, self.vehicle = pools, client, vehicle

    def contract(self, emaid: str, priority: int, renews: IssuedChain | None = None) -> IssuedChain:
        """A new contract for the vehicle; as a renewal of `renews`, also sealed for its key."""
        key = generate_contract_key(KeyProfile.ISO15118_2)
        issued = self.pools.hierarchies.issue_contract(emaid, key.public_key())
        sealed = seal_contract_key(key, issued.certificate, self.vehicle.issued.certificate)
        renewal = None
        if renews is not None:
            update = seal_contract_update(key, issued.certificate, renews.certificate)
            renewal = ContractRenewal(der(renews.certificate), update)
        chain = [der(c) for c in issued.chain]
        pcid = self.vehicle.pcid
        self.pools.store_contract(self.client, pcid, emaid, chain, sealed, priority, renewal)
        return issued


def test_contract_update_and_several_contracts(pool: PoolScene) -> None:
    """CertificateUpdateReq answered with the successor an eMSP stored for exactly the
    contract the vehicle holds, sealed for that contract's key; MaximumContractCertificateChains
    answered with the vehicle's contracts in its order and a count of the rest."""
    scene = pool
    pools = CertificatePools(PoolStore(scene.hierarchies.store.engine), scene.hierarchies)
    try:
        pools.adopt_hierarchies()
        oem, _ = pools.register_client("oem-renewals", PoolRole.OEM)
        client, _ = pools.register_client("emsp-renewals", PoolRole.EMSP)
        pcid = "WMIV2GPROVTEST0061"
        vehicle = Vehicle(scene, pcid, KeyProfile.ISO15118_2)
        pools.publish_provisioning(oem, pcid, [der(c) for c in vehicle.issued.chain])
        emsp = Emsp(pools, client, vehicle)
        emaid_3 = emaid("DEXYZC0NTRACT3")
        first = emsp.contract(EMAID_1, 1)
        emsp.contract(EMAID_2, 2)
        emsp.contract(emaid_3, 3)
        provisioning = der(vehicle.issued.certificate)

        def chosen(maximum: int, wanted: list[str] | None = None) -> tuple[list[str], int]:
            selection = pools.certificate_installations(provisioning, (), wanted or (), maximum)
            return [c.emaid for c in selection.contracts], selection.remaining

        assert chosen(1) == ([EMAID_1], 2)
        assert chosen(2) == ([EMAID_1, EMAID_2], 1)
        assert chosen(8) == ([EMAID_1, EMAID_2, emaid_3], 0)
        assert chosen(2, [emaid_3]) == ([emaid_3, EMAID_1], 1)
        pools.record_consent(oem, pcid, EMAID_2, "driver-61")
        assert chosen(3, [emaid_3]) == ([emaid_3, EMAID_2, EMAID_1], 0)
        with pytest.raises(InstallationError, match="one contract or more"):
            chosen(0)

        roots = [scene.root("v2g-a")]
        response = pools.certificate_installation(provisioning, (), [EMAID_1])
        current = install_contract(response, vehicle.key, pcid, roots)
        assert current.chain[0] == first.certificate
        # No successor stored yet; then the eMSP renews the contract.
        with pytest.raises(NoContract, match="no eMSP stored a successor"):
            pools.certificate_update(current.update_request())
        renewed = emsp.contract(EMAID_1, 1, renews=first)
        request = CertificateUpdateRequest.from_json(current.update_request().to_json())
        updated = update_contract(pools.certificate_update(request), current, roots)
        assert updated.emaid == EMAID_1 and updated.chain[0] == renewed.certificate
        # A vehicle installing afresh gets the renewed contract, for its provisioning key.
        fresh = pools.certificate_installation(provisioning, (), [EMAID_1])
        assert install_contract(fresh, vehicle.key, pcid, roots).chain[0] == renewed.certificate

        # Refused: another key's signature, a chain naming another eMAID, the renewed
        # contract (no successor of its own), the old contract once revoked.
        stranger = InstalledContract(
            EMAID_1, current.chain, generate_contract_key(KeyProfile.ISO15118_2)
        )
        with pytest.raises(InstallationError, match="not signed with its contract key"):
            pools.certificate_update(stranger.update_request())
        misnamed = InstalledContract(EMAID_2, current.chain, current.private_key)
        with pytest.raises(InstallationError, match="names eMAID"):
            pools.certificate_update(misnamed.update_request())
        with pytest.raises(NoContract):
            pools.certificate_update(updated.update_request())
        scene.hierarchies.revoke(first.issuer, first.certificate.serial_number)
        with pytest.raises(ChainRefused, match="CertificateRevoked"):
            pools.certificate_update(current.update_request())

        # A renewal must keep the eMAID and replace another certificate; nothing is stored.
        before = [(c.emaid, c.signed_data) for c in pools.contracts(pcid)]
        with pytest.raises(InstallationError, match="keeps the eMAID"):
            emsp.contract(EMAID_2, 2, renews=renewed)
        key = generate_contract_key(KeyProfile.ISO15118_2)
        itself = scene.hierarchies.issue_contract(EMAID_1, key.public_key())
        sealed = seal_contract_key(key, itself.certificate, vehicle.issued.certificate)
        update = seal_contract_update(key, itself.certificate, itself.certificate)
        # A key sealed as ISO 15118-20 would renew nothing: -20 has no CertificateUpdate.
        p521 = generate_contract_key(KeyProfile.ISO15118_20_SECP521R1)
        twenty = scene.hierarchies.issue_contract(EMAID_1, p521.public_key())
        sealed_20 = EncryptedContractKey(KeyProfile.ISO15118_20_SECP521R1, bytes(82), bytes(133))
        for replaced, sealed_update, refusal in (
            (itself, update, "cannot succeed itself"),
            (twenty, sealed_20, "no contract update"),
        ):
            with pytest.raises(InstallationError, match=refusal):
                pools.store_contract(
                    client,
                    pcid,
                    EMAID_1,
                    [der(c) for c in itself.chain],
                    sealed,
                    1,
                    ContractRenewal(der(replaced.certificate), sealed_update),
                )
        assert [(c.emaid, c.signed_data) for c in pools.contracts(pcid)] == before
    finally:
        pools.close()

"""Contract renewals through /opcp/v1 of `evgi serve`'s HTTP app: an eMSP stores a renewed
contract with its CertificateUpdate data over HTTP, readers see the renewal as its own field
beside the contract's signed data, and a vehicle holding the old contract gets the new one
through a simulated station and the CSMS (Get15118EVCertificate, action Update)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from evgi.pnc import (
    OPERATOR_TOKEN_FILE,
    CertificateInstallationResponse,
    KeyProfile,
    generate_contract_key,
    install_contract,
    seal_contract_key,
    seal_contract_update,
)
from evgi.sim.stations.contract import ContractVehicle
from tests.csms.conftest import PASSWORD
from tests.csms.pnc_scene import CONTRACT_EMAID, PCID, Scene, der64, emaid, open_scene
from tests.csms.test_plug_and_charge_update import contract_vehicle, simulated

RENEWED_EMAID = emaid("DEPNCRENEWAL01")
PROFILE = KeyProfile.ISO15118_2.value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(name="pnc")
def pnc_fixture(tmp_path: Path, db_url: str) -> Iterator[Scene]:
    """The CSMS tests' Plug & Charge scene, whose HTTP app serves the pools, on each backend."""
    with open_scene(tmp_path, db_url) as opened:
        yield opened


@dataclass
class Opcp:
    """The pool's HTTP API as its clients reach it, each with the token the operator gave."""

    base: str
    http: httpx.Client
    tokens: dict[str, str]

    def call(self, method: str, path: str, client: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[client]}"}
        return self.http.request(method, f"{self.base}/opcp/v1{path}", headers=headers, **kwargs)

    def contracts(self, client: str) -> dict[str, Any]:
        reply = self.call("GET", f"/contracts/{PCID}", client)
        assert reply.status_code == 200, reply.text
        return {c["emaid"]: c for c in reply.json()}


@contextmanager
def opcp(scene: Scene) -> Iterator[Opcp]:
    """The scene's HTTP app, with an OEM and two eMSPs registered by the operator."""
    settings = scene.harness.settings
    operator = (settings.data_dir / OPERATOR_TOKEN_FILE).read_text().strip()
    with httpx.Client(timeout=30) as http:
        api = Opcp(f"http://127.0.0.1:{settings.http_port}", http, {"operator": operator})
        for name, role in (("oem-reader", "oem"), ("emsp-r", "emsp"), ("emsp-x", "emsp")):
            reply = api.call("POST", "/clients", "operator", json={"name": name, "role": role})
            assert reply.status_code == 201, reply.text
            api.tokens[name] = reply.json()["token"]
        yield api


@dataclass(frozen=True)
class Contract:
    """A contract the eMSP made for the scene's vehicle, and the body it PUTs for it."""

    certificate: x509.Certificate
    body: dict[str, Any]


def make_contract(scene: Scene, renews: x509.Certificate | None = None) -> Contract:
    """The eMSP's side: a new key and certificate for the eMAID, sealed for the vehicle's
    provisioning key and, for a renewal, for the key of the contract it renews."""
    key = generate_contract_key(KeyProfile.ISO15118_2)
    issued = scene.hierarchies.issue_contract(RENEWED_EMAID, key.public_key())
    sealed = seal_contract_key(key, issued.certificate, scene.provisioning.certificate)
    body: dict[str, Any] = {
        "profile": PROFILE,
        "contractSignatureCertChain": [der64(c) for c in issued.chain],
        "contractSignatureEncryptedPrivateKey": b64(sealed.encrypted_private_key),
        "dhPublicKey": b64(sealed.dh_public_key),
        "priority": 0,  # before the scene's own contract
    }
    if renews is not None:
        update = seal_contract_update(key, issued.certificate, renews)
        body["renewal"] = {
            "replaces": der64(renews),
            "contractSignatureEncryptedPrivateKey": b64(update.encrypted_private_key),
            "dhPublicKey": b64(update.dh_public_key),
        }
    return Contract(issued.certificate, body)


def test_renewal_stored_over_http_answers_the_vehicles_update(pnc: Scene) -> None:
    """The eMSP stores a contract, the vehicle installs it through a station; the eMSP
    stores its renewal over HTTP, and the vehicle's CertificateUpdateReq gets it, its key
    decrypted with the old contract's. Readers see the renewal apart from the signed data."""
    harness = pnc.harness
    harness.csms.add_station("PNCRENEW", PASSWORD)
    vehicle: ContractVehicle = contract_vehicle(pnc)
    path = f"/contracts/{PCID}/{RENEWED_EMAID}"
    with opcp(pnc) as api:
        first = make_contract(pnc)
        reply = api.call("PUT", path, "emsp-r", json=first.body)
        assert reply.status_code == 200, reply.text
        assert (
            reply.json()["renewal"] is None and "update" not in reply.json()["signedContractData"]
        )
        renewed = make_contract(pnc, renews=first.certificate)

        async def run() -> dict[str, Any]:
            async with harness.serve() as url:
                sim = simulated("2.0.1", "PNCRENEW", url)
                await sim.connect()
                try:
                    assert await sim.install_contract(vehicle) == "Accepted"
                    assert vehicle.contract is not None
                    assert vehicle.contract.chain[0] == first.certificate
                    assert await sim.update_contract(vehicle) == "Failed"  # none stored yet

                    stored = await asyncio.to_thread(
                        api.call, "PUT", path, "emsp-r", json=renewed.body
                    )
                    assert stored.status_code == 200, stored.text
                    assert await sim.update_contract(vehicle) == "Accepted"
                    assert vehicle.contract.chain[0] == renewed.certificate
                    assert vehicle.contract.private_key.public_key() == (
                        renewed.certificate.public_key()
                    )
                    assert not sim.schema_violations
                    return dict(stored.json())
                finally:
                    await sim.close()

        stored = asyncio.run(run())
        # The renewal is its own field; the signed data is the installation's alone.
        roots = pnc.hierarchies.roots()
        installation = stored["signedContractData"]
        assert set(installation) == {
            "profile",
            "contractSignatureCertChain",
            "contractSignatureEncryptedPrivateKey",
            "dhPublicKey",
            "emaid",
            "saProvisioningCertificateChain",
            "signature",
        }
        fresh = CertificateInstallationResponse.from_json(installation)
        provisioning_key = pnc.provisioning.private_key
        assert isinstance(provisioning_key, ec.EllipticCurvePrivateKey)
        assert install_contract(fresh, provisioning_key, PCID, roots).chain[0] == (
            renewed.certificate
        )
        renewal = stored["renewal"]
        assert set(renewal) == {"replacesFingerprint", "signedUpdateData"}
        assert (
            renewal["replacesFingerprint"] == first.certificate.fingerprint(hashes.SHA256()).hex()
        )
        update = CertificateInstallationResponse.from_json(renewal["signedUpdateData"])
        assert set(renewal["signedUpdateData"]) == set(installation)
        assert update.contract_chain[0] == renewed.certificate

        # An OEM and the eMSP read the same; the contract stored without one has no renewal.
        for reader in ("oem-reader", "emsp-r"):
            listed = api.contracts(reader)
            assert listed[RENEWED_EMAID] == stored
            assert listed[CONTRACT_EMAID]["renewal"] is None
            assert "update" not in listed[CONTRACT_EMAID]["signedContractData"]
        document = api.http.get(f"{api.base}/openapi.json").json()
        schemas = document["components"]["schemas"]
        assert "renewal" in schemas["ContractIn"]["properties"]
        assert "replaces" in schemas["ContractRenewalIn"]["properties"]
        assert "renewal" in schemas["ContractOut"]["properties"]
        # Stored again without one, the contract keeps no renewal.
        again = api.call("PUT", path, "emsp-r", json={**renewed.body, "renewal": None})
        assert again.status_code == 200 and again.json()["renewal"] is None


def test_renewal_refusals_name_the_problem_and_store_nothing(pnc: Scene) -> None:
    """A renewal of another eMAID, of the contract itself, for a key of another profile, not
    base64, not a certificate, incomplete, or by another eMSP: each refused as the route's
    other refusals are, and the contract stored before is kept as it was."""
    path = f"/contracts/{PCID}/{RENEWED_EMAID}"
    with opcp(pnc) as api:
        first = make_contract(pnc)
        assert api.call("PUT", path, "emsp-r", json=first.body).status_code == 200
        renewed = make_contract(pnc, renews=first.certificate)
        assert api.call("PUT", path, "emsp-r", json=renewed.body).status_code == 200
        before = api.contracts("emsp-r")
        assert before[RENEWED_EMAID]["renewal"] is not None

        successor = make_contract(pnc, renews=renewed.certificate)
        renewal = successor.body["renewal"]

        def refused(change: dict[str, Any], status: int, code: str, client: str = "emsp-r") -> str:
            body = {**successor.body, "renewal": {**renewal, **change}}
            reply = api.call("PUT", path, client, json=body)
            assert reply.status_code == status, reply.text
            if code:
                assert reply.json()["detail"]["code"] == code, reply.text
                return str(reply.json()["detail"]["message"])
            return ""

        other = pnc.contract.certificate  # the scene's own contract, another eMAID
        assert "keeps the eMAID" in refused({"replaces": der64(other)}, 400, "bad_installation")
        assert "cannot succeed itself" in refused(
            {"replaces": der64(successor.certificate)}, 400, "bad_installation"
        )
        p521 = generate_contract_key(KeyProfile.ISO15118_20_SECP521R1)
        foreign = pnc.hierarchies.issue_contract(RENEWED_EMAID, p521.public_key())
        assert "sealed for" in refused(
            {"replaces": der64(foreign.certificate)}, 400, "bad_installation"
        )
        assert "not base64" in refused({"replaces": "***"}, 400, "invalid")
        assert "not base64" in refused({"dhPublicKey": "not base64!"}, 400, "invalid")
        assert "X.509" in refused({"replaces": b64(b"\x00" * 8)}, 400, "bad_certificate")
        refused({"dhPublicKey": ""}, 422, "")
        refused({"replacesCertificate": der64(other)}, 422, "")
        incomplete = {**successor.body, "renewal": {"replaces": renewal["replaces"]}}
        assert api.call("PUT", path, "emsp-r", json=incomplete).status_code == 422
        refused({}, 403, "wrong_role", client="emsp-x")

        assert api.contracts("emsp-r") == before
        # The refusals lost nothing: the successor itself is still accepted.
        assert api.call("PUT", path, "emsp-r", json=successor.body).status_code == 200
        after = api.contracts("oem-reader")[RENEWED_EMAID]["renewal"]
        assert after["replacesFingerprint"] == (
            renewed.certificate.fingerprint(hashes.SHA256()).hex()
        )

"""Plug & Charge at the CSMS over real websockets, what OCPP 2.1 and ISO 15118 add to
installation: a vehicle updates its contract (Get15118EVCertificate, action Update) through
the simulated 2.0.1 and 1.6 stations and authorizes with the new one; a 2.1 EV asks for
several contracts (maximumContractCertificateChains) and learns how many remain; a 2.1 station
asks the status of a chain's certificates by OCSP or CRL (GetCertificateChainStatus)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ocpp.v21 import call as c21
from ocpp.v201 import call as c201

from evgi.core.clock import SimulatedClock
from evgi.csms.metering import parse_time
from evgi.csms.plug_and_charge import (
    CUSTOM_DATA_VENDOR,
    certificate_hash_data,
    decode_exi,
    encode_exi,
)
from evgi.pnc import (
    CertificateInstallationResponse,
    ContractKey,
    ContractRenewal,
    Hierarchies,
    InstalledContract,
    IssuedChain,
    KeyProfile,
    PoolRole,
    generate_contract_key,
    seal_contract_key,
    seal_contract_update,
)
from evgi.sim.stations import EvseSpec, Station, Vehicle, station_class
from evgi.sim.stations.contract import ContractVehicle
from tests.csms.clients import station
from tests.csms.conftest import PASSWORD
from tests.csms.pnc_scene import CONTRACT_EMAID, MO, PCID, Scene, der64, emaid
from tests.csms.test_plug_and_charge import Get15118EVCertificate, boot2x, responder
from tests.service_runner import free_port

ISO15118_2 = "urn:iso:15118:2:2013:MsgDef"
ISO15118_20 = "urn:iso:std:iso:15118:-20:CommonMessages"


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def renew(pnc: Scene, current: IssuedChain) -> IssuedChain:
    """The eMSP renews the scene's contract: a new key and certificate for the same eMAID,
    sealed for the vehicle's provisioning key and for the contract it replaces."""
    pools = pnc.pools
    emsp = next(c for c in pools.store.clients() if c.role == PoolRole.EMSP.value)
    key = generate_contract_key(KeyProfile.ISO15118_2)
    renewed = pnc.hierarchies.issue_contract(CONTRACT_EMAID, key.public_key())
    sealed = seal_contract_key(key, renewed.certificate, pnc.provisioning.certificate)
    update = seal_contract_update(key, renewed.certificate, current.certificate)
    pools.store_contract(
        emsp,
        PCID,
        CONTRACT_EMAID,
        [der(c) for c in renewed.chain],
        sealed,
        1,
        ContractRenewal(der(current.certificate), update),
    )
    return renewed


def contract_vehicle(pnc: Scene) -> ContractVehicle:
    key = pnc.provisioning.private_key
    assert isinstance(key, ContractKey)
    return ContractVehicle(key, pnc.provisioning.chain, pnc.hierarchies.roots())


def simulated(version: str, name: str, url: str) -> Station:
    return station_class(version)(
        name, url, password=PASSWORD, clock=SimulatedClock(), evses=[EvseSpec(22_000)]
    )


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
def test_vehicle_updates_its_contract_and_charges_on_the_new_one(
    scene: Scene,
    version: str,
) -> None:
    """M02 through a simulated station (1.6: the Plug & Charge DataTransfer): the vehicle's
    CertificateUpdateReq, signed with its contract key, gets the successor its eMSP stored,
    whose key only the current contract's key decrypts; it then authorizes with it."""
    harness = scene.harness
    name = f"PNCUPD{version.replace('.', '')}"
    harness.csms.add_station(name, PASSWORD)
    harness.csms.add_token(CONTRACT_EMAID, token_type="eMAID")
    vehicle = contract_vehicle(scene)

    async def run() -> None:
        async with harness.serve() as url:
            sim = simulated(version, name, url)
            await sim.connect()
            try:
                assert await sim.install_contract(vehicle) == "Accepted"
                assert vehicle.contract is not None
                assert vehicle.contract.chain[0] == scene.contract.certificate
                # Nothing to update to yet: Failed with the pool's reason, the contract kept.
                assert await sim.update_contract(vehicle) == "Failed"
                assert vehicle.contract.chain[0] == scene.contract.certificate

                renewed = await asyncio.to_thread(renew, scene, scene.contract)
                assert await sim.update_contract(vehicle) == "Accepted"
                assert vehicle.contract.chain[0] == renewed.certificate
                assert vehicle.contract.private_key.public_key() == (
                    renewed.certificate.public_key()
                )
                battery = Vehicle.at_soc(60_000, 40, 11_000)
                certificate_status, status, session = await sim.run_contract_session(
                    vehicle, timedelta(minutes=20), battery
                )
                assert (certificate_status, status) == ("Accepted", "Accepted")
                assert session is not None and session.energy_wh > 0
                assert not sim.schema_violations
            finally:
                await sim.close()

    asyncio.run(run())


def test_v201_update_refusals_name_the_problem(scene: Scene) -> None:
    """A request that is no update request, one signed by another key, one for a contract
    the MO revoked: each Failed with its reason."""
    harness, hierarchies = scene.harness, scene.hierarchies
    harness.csms.add_station("PNCUPDX", PASSWORD)
    renew(scene, scene.contract)
    key = scene.contract.private_key
    assert isinstance(key, ContractKey)
    chain = tuple(scene.contract.chain)
    holder = InstalledContract(CONTRACT_EMAID, chain, key)
    forged = InstalledContract(CONTRACT_EMAID, chain, generate_contract_key(KeyProfile.ISO15118_2))
    good = encode_exi(holder.update_request().to_json())

    def update(exi: str) -> c201.Get15118EVCertificate:
        return c201.Get15118EVCertificate(
            iso15118_schema_version=ISO15118_2, action="Update", exi_request=exi
        )

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNCUPDX", "ocpp2.0.1", PASSWORD) as cp,
        ):
            await boot2x(cp)

            async def refused(exi: str) -> str:
                answer = await cp.call(update(exi))
                assert answer.status == "Failed" and answer.exi_response == ""
                return str(answer.status_info["reason_code"])

            assert await refused("bm90IGV4aQ==") == "InvalidEXI"
            installation = {"oemProvisioningCert": der64(scene.provisioning.certificate)}
            assert await refused(encode_exi(installation)) == "BadInstallation"
            assert await refused(encode_exi(forged.update_request().to_json())) == (
                "BadInstallation"
            )
            assert (await cp.call(update(good))).status == "Accepted"
            hierarchies.revoke(MO, scene.contract.certificate.serial_number)
            assert await refused(good) == "ChainRefused"

    asyncio.run(run())


def test_v21_several_contracts_and_the_remaining_count(scene: Scene) -> None:
    """2.1's maximumContractCertificateChains: the vehicle's contracts in its order, as many as
    fit 2.1's exiResponse, and remainingContracts for those left to further requests."""
    harness, hierarchies, pools = scene.harness, scene.hierarchies, scene.pools
    harness.csms.add_station("PNC21M", PASSWORD)
    emsp = next(c for c in pools.store.clients() if c.role == PoolRole.EMSP.value)
    emaids = [CONTRACT_EMAID]
    for index in range(2, 31):
        contract_id = emaid(f"DEPNCM{index:08d}")
        key = generate_contract_key(KeyProfile.ISO15118_2)
        issued = hierarchies.issue_contract(contract_id, key.public_key())
        sealed = seal_contract_key(key, issued.certificate, scene.provisioning.certificate)
        chain = [der(c) for c in issued.chain]
        pools.store_contract(emsp, PCID, contract_id, chain, sealed, index)
        emaids.append(contract_id)
    vehicle = contract_vehicle(scene)
    exi = encode_exi({"oemProvisioningCert": der64(scene.provisioning.certificate)})

    def request(maximum: int | None, wanted: list[str] | None = None) -> Any:
        return Get15118EVCertificate(
            iso_15118_schema_version=ISO15118_20,
            action="Install",
            exi_request=exi,
            maximum_contract_certificate_chains=maximum,
            prioritized_e_m_a_i_ds=wanted,
        )

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC21M", "ocpp2.1", PASSWORD) as cp,
        ):
            await boot2x(cp, c21)

            async def contracts(
                maximum: int | None, wanted: list[str] | None = None
            ) -> tuple[list[CertificateInstallationResponse], int | None, str]:
                answer = await cp.call(request(maximum, wanted), suppress=False)
                assert answer.status == "Accepted", answer.status_info
                body = decode_exi(answer.exi_response)
                responses = [
                    CertificateInstallationResponse.from_json(b)
                    for b in (body, *body.get("additionalContracts", []))
                ]
                return responses, answer.remaining_contracts, answer.exi_response

            found, remaining, _ = await contracts(None)  # an ISO 15118-2 session's request
            assert [r.emaid for r in found] == [CONTRACT_EMAID] and remaining is None
            found, remaining, _ = await contracts(3, [emaids[7]])
            assert [r.emaid for r in found] == [emaids[7], emaids[0], emaids[1]]
            assert remaining == 27
            for response in found:  # each one the vehicle can install
                installed = vehicle.install(encode_exi(response.to_json()))
                assert installed.chain[0] == response.contract_chain[0]
            # All thirty do not fit 17,000 characters: those left out are counted.
            found, remaining, exi_response = await contracts(30)
            assert 3 < len(found) < 30 and len(exi_response) <= 17_000
            assert [r.emaid for r in found] == emaids[: len(found)]
            assert remaining == 30 - len(found)

            none = await cp.call(request(0))
            assert none.status == "Failed"
            assert none.status_info["reason_code"] == "InvalidRequest"
            with pytest.raises(Exception, match="Violation"):
                await cp.call(request(-1), suppress=False, skip_schema_validation=True)

    asyncio.run(run())


@dataclass(frozen=True)
class ChainEntry:
    """A CertificateStatusRequestInfoType and the status the CSMS owes it."""

    body: dict[str, Any]
    status: str
    reason: str | None = None


def hash_data(certificate: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """CertificateHashDataType: OCSPRequestDataType without the responder."""
    data = certificate_hash_data(certificate, issuer, "")
    del data["responderURL"]
    return data


def test_v21_certificate_chain_status(scene: Scene) -> None:
    """GetCertificateChainStatus: each entry answered from its source, the OCSP responder
    through the CSMS's OCSP client or the CA's signed CRL, and Failed with the reason in its
    customData when the issuer is unknown, the responder is not the certificate's, or no
    answer comes; a request breaking 2.1's schema is a CALLERROR."""
    harness, hierarchies = scene.harness, scene.hierarchies
    harness.csms.add_station("PNC21S", PASSWORD)
    good = scene.contract
    revoked = hierarchies.issue_contract(emaid("DEPNCCHA1NREV1"))
    hierarchies.revoke(MO, revoked.certificate.serial_number)
    closed = f"http://127.0.0.1:{free_port()}"
    elsewhere = Hierarchies(
        harness.settings.model_copy(update={"pki_base_url": closed}), hierarchies.store.engine
    )
    unreachable = elsewhere.issue_contract(emaid("DEPNCCHA1NFAR1"))  # its AIA names `closed`
    sub_ca = good.sub_cas[0]
    never_issued = {**hash_data(good.certificate, sub_ca), "serialNumber": "abcdef12345"}
    stranger = {**hash_data(good.certificate, sub_ca), "issuerKeyHash": "00" * 32}

    def entry(source: str, data: dict[str, str], urls: list[str]) -> dict[str, Any]:
        return {"certificateHashData": data, "source": source, "urls": urls}

    ocsp_url = responder(good.certificate)
    entries = [
        ChainEntry(entry("OCSP", hash_data(good.certificate, sub_ca), [ocsp_url]), "Good"),
        ChainEntry(entry("OCSP", hash_data(sub_ca, good.sub_cas[1]), [responder(sub_ca)]), "Good"),
        ChainEntry(
            entry(
                "OCSP",
                hash_data(revoked.certificate, revoked.sub_cas[0]),
                [responder(revoked.certificate)],
            ),
            "Revoked",
        ),
        ChainEntry(entry("OCSP", never_issued, [ocsp_url]), "Unknown"),
        ChainEntry(
            entry("CRL", hash_data(good.certificate, sub_ca), [hierarchies.urls(MO).crl]), "Good"
        ),
        ChainEntry(
            entry(
                "CRL",
                hash_data(revoked.certificate, revoked.sub_cas[0]),
                [f"{closed}/nothing.crl", hierarchies.urls(MO).crl],  # the second one answers
            ),
            "Revoked",
        ),
        ChainEntry(entry("OCSP", stranger, [ocsp_url]), "Failed", "UnknownIssuer"),
        ChainEntry(
            entry("OCSP", hash_data(good.certificate, sub_ca), ["http://example.org/ocsp"]),
            "Failed",
            "UnknownResponder",
        ),
        ChainEntry(
            entry(
                "OCSP",
                hash_data(unreachable.certificate, unreachable.sub_cas[0]),
                [responder(unreachable.certificate)],
            ),
            "Failed",
            "OcspUnavailable",
        ),
        ChainEntry(
            entry("CRL", hash_data(good.certificate, sub_ca), [f"{closed}/mo.crl", "ftp://x"]),
            "Failed",
            "NoCRL",
        ),
        ChainEntry(
            # The MO root's CRL does not list the MO sub-CA 2's certificates.
            entry("CRL", hash_data(good.certificate, sub_ca), [hierarchies.urls("mo-t").crl]),
            "Failed",
            "NoCRL",
        ),
        ChainEntry(
            entry(
                "OCSP", {**hash_data(good.certificate, sub_ca), "serialNumber": "zz"}, [ocsp_url]
            ),
            "Failed",
            "InvalidOCSPData",
        ),
    ]

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC21S", "ocpp2.1", PASSWORD) as cp,
        ):
            await boot2x(cp, c21)
            now = datetime.now(UTC)
            for start in range(0, len(entries), 4):  # at most four entries a request
                batch = entries[start : start + 4]
                answer = await cp.call(
                    c21.GetCertificateChainStatus(
                        certificate_status_requests=[e.body for e in batch]
                    ),
                    suppress=False,
                )
                assert len(answer.certificate_status) == len(batch)
                for expected, status in zip(batch, answer.certificate_status, strict=True):
                    body = expected.body
                    assert status["certificate_hash_data"] == {
                        _snake(k): v for k, v in body["certificateHashData"].items()
                    }
                    assert status["source"] == body["source"]
                    assert status["status"] == expected.status, (body, status)
                    next_update = parse_time(status["next_update"])
                    if expected.status == "Failed":
                        custom = status["custom_data"]
                        assert custom["vendor_id"] == CUSTOM_DATA_VENDOR
                        assert custom["reason_code"] == expected.reason, custom
                        assert custom["additional_info"]
                    else:
                        assert "custom_data" not in status
                    if expected.status == "Good":
                        assert next_update > now  # the answer's or the CRL's nextUpdate
            # Five entries, or a source 2.1 does not know, break the schema: a CALLERROR.
            too_many = [entries[0].body] * 5
            unknown_source = [{**entries[0].body, "source": "LDAP"}]
            for requests in (too_many, unknown_source):
                with pytest.raises(Exception, match="Violation"):
                    await cp.call(
                        c21.GetCertificateChainStatus(certificate_status_requests=requests),
                        suppress=False,
                        skip_schema_validation=True,
                    )
            heartbeat = await cp.call(c21.Heartbeat())
            assert heartbeat.current_time

    asyncio.run(run())


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)

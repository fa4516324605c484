"""Plug & Charge at the CSMS over real websockets: V2G certificate signing, contract installation
from the pool (on 2.1 following the EV's prioritized eMAIDs), OCSP relay and contract
authorization with every certificate status, on 2.0.1, 2.1 and through 1.6's Plug & Charge
DataTransfer messages, to library stations and to the simulated 1.6 station. The ISO 15118
hierarchies' OCSP responders run in `evgi serve`'s HTTP app on the port the certificates name."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryStation16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v21 import call as c21
from ocpp.v201 import ChargePoint as LibraryStation201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201

from evgi.core.clock import SimulatedClock
from evgi.csms.plug_and_charge import PNC_VENDOR, certificate_hash_data, decode_exi, encode_exi
from evgi.pnc import (
    Branch,
    CertificateInstallationResponse,
    ChainValidator,
    Hierarchies,
    Iso15118,
    IssuedChain,
    KeyProfile,
    LeafRole,
    PoolRole,
    RootSpec,
    generate_contract_key,
    install_contract,
    seal_contract_key,
)
from evgi.sim.stations import station_class
from evgi.storage import open_database
from tests.csms.clients import station
from tests.csms.conftest import PASSWORD
from tests.csms.pnc_scene import (
    CONTRACT_EMAID,
    MO,
    PCID,
    UNPUBLISHED_PCID,
    Scene,
    der64,
    emaid,
    pem,
)
from tests.service_runner import free_port


class Station201(LibraryStation201):
    """A 2.0.1 station that keeps the certificates the CSMS sends it."""

    signed: asyncio.Queue[dict[str, Any]]

    @on("CertificateSigned")
    def on_certificate_signed(self, **body: Any) -> r201.CertificateSigned:
        self.signed.put_nowait(body)
        return r201.CertificateSigned(status="Accepted")


class Station16(LibraryStation16):
    """A 1.6 station that keeps what the CSMS sends it by Plug & Charge DataTransfer and
    accepts it, as the application note has it: the 2.0.1 response as the data."""

    signed: asyncio.Queue[dict[str, Any]]

    @on("DataTransfer")
    def on_data_transfer(self, **body: Any) -> r16.DataTransfer:
        self.signed.put_nowait(body)
        return r16.DataTransfer(status="Accepted", data=json.dumps({"status": "Accepted"}))


def secc_csr(secc_id: str, ca: bool = False) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, secc_id)])
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def responder(certificate: x509.Certificate) -> str:
    """The OCSP responder the certificate's AIA names."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return str(asn1_x509.Certificate.load(der).ocsp_urls[0])


def installation_request(provisioning: x509.Certificate) -> str:
    return encode_exi({"oemProvisioningCert": der64(provisioning)})


def forged(chain: IssuedChain) -> list[x509.Certificate]:
    """The contract certificate re-signed by a key that is not its CA's."""
    leaf = chain.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.subject)
        .issuer_name(leaf.issuer)
        .public_key(leaf.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.not_valid_before_utc)
        .not_valid_after(leaf.not_valid_after_utc)
    )
    for extension in leaf.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    fake = builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    return [fake, *chain.sub_cas]


async def boot2x(cp: Any, calls: Any = c201) -> None:
    boot = await cp.call(
        calls.BootNotification(
            charging_station={"model": "DC50", "vendor_name": "Acme"}, reason="PowerUp"
        )
    )
    assert boot.status == "Accepted"


def authorize201(token: str, **extra: Any) -> c201.Authorize:
    return c201.Authorize(id_token={"id_token": token, "type": "eMAID"}, **extra)


def transfer(message_id: str, body: Any) -> c16.DataTransfer:
    """A Plug & Charge DataTransfer: the 2.0.1 message `message_id`, its JSON as the data."""
    return c16.DataTransfer(vendor_id=PNC_VENDOR, message_id=message_id, data=json.dumps(body))


async def boot16(cp: Any) -> None:
    boot = await cp.call(
        c16.BootNotification(charge_point_vendor="Acme", charge_point_model="AC22")
    )
    assert boot.status == "Accepted"


def test_v201_certificates_and_installation(scene: Scene) -> None:
    harness = scene.harness
    harness.csms.add_station("PNC1", PASSWORD)

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC1", "ocpp2.0.1", PASSWORD, Station201) as cp,
        ):
            cp.signed = asyncio.Queue()
            await boot2x(cp)
            # A02 for the SECC: signed by the CPO sub-CA 2, CN = SECC id, DC = CPO.
            answer = await cp.call(
                c201.SignCertificate(csr=secc_csr("DEEVGE1PNC1"), certificate_type="V2GCertificate")
            )
            assert answer.status == "Accepted"
            signed = await asyncio.wait_for(cp.signed.get(), 10)
            assert signed["certificate_type"] == "V2GCertificate"
            chain = x509.load_pem_x509_certificates(signed["certificate_chain"].encode())
            verdict = ChainValidator(scene.hierarchies.roots()).validate(LeafRole.SECC, chain)
            assert verdict.accepted and verdict.identifier == "DEEVGE1PNC1"
            assert chain[0].subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)[0].value == (
                "CPO"
            )
            # A CSR for a CA, or one without a CN, is refused with a reason.
            for csr in (secc_csr("DEEVGE1PNC1", ca=True), "not a CSR"):
                refused = await cp.call(
                    c201.SignCertificate(csr=csr, certificate_type="V2GCertificate")
                )
                assert refused.status == "Rejected" and refused.status_info["reason_code"]

            # M01: the vehicle's contract from the pool, decrypted by the vehicle.
            installed = await cp.call(
                c201.Get15118EVCertificate(
                    iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                    action="Install",
                    exi_request=installation_request(scene.provisioning.certificate),
                )
            )
            assert installed.status == "Accepted"
            response = CertificateInstallationResponse.from_json(decode_exi(installed.exi_response))
            assert scene.provisioning.private_key is not None
            contract = install_contract(
                response,
                scene.provisioning.private_key,  # type: ignore[arg-type]
                PCID,
                scene.hierarchies.roots(),
            )
            assert contract.chain[0] == scene.contract.certificate

            # An unknown PCID and a request that is no installation request fail with a reason.
            stranger = scene.hierarchies.issue_provisioning(UNPUBLISHED_PCID)
            unknown = await cp.call(
                c201.Get15118EVCertificate(
                    iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                    action="Install",
                    exi_request=installation_request(stranger.certificate),
                )
            )
            assert unknown.status == "Failed"
            assert unknown.status_info["reason_code"] == "UnknownPcid"
            garbage = await cp.call(
                c201.Get15118EVCertificate(
                    iso15118_schema_version="urn:iso:15118:2:2013:MsgDef",
                    action="Install",
                    exi_request="bm90IGV4aQ==",
                )
            )
            assert garbage.status == "Failed" and garbage.status_info["reason_code"] == "InvalidEXI"

            # M06: the OCSP request relayed to the responder, its signed answer returned.
            leaf, issuer = scene.contract.certificate, scene.contract.sub_cas[0]
            data = certificate_hash_data(leaf, issuer, responder(leaf))
            status = await cp.call(c201.GetCertificateStatus(ocsp_request_data=data))
            assert status.status == "Accepted"
            answer = ocsp.load_der_ocsp_response(base64.b64decode(status.ocsp_result))
            assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
            assert answer.serial_number == leaf.serial_number
            nowhere = await cp.call(
                c201.GetCertificateStatus(
                    ocsp_request_data={**data, "responderURL": "ftp://example.org/ocsp"}
                )
            )
            assert nowhere.status == "Failed"

    asyncio.run(run())


def hash_data(chain: IssuedChain) -> list[dict[str, str]]:
    """iso15118CertificateHashData for a contract chain: the leaf's, then its sub-CAs'."""
    links = [chain.certificate, *chain.sub_cas, chain.root]
    return [
        certificate_hash_data(child, parent, responder(child))
        for child, parent in itertools.pairwise(links)
    ]


@dataclass(frozen=True)
class StatusCases:
    """Contracts in every certificate state, and the answers Authorize owes each."""

    # (eMAID, PEM chain, certificateStatus, idTokenInfo.status)
    chains: list[tuple[str, str, str, str]]
    # (eMAID, iso15118CertificateHashData, certificateStatus, idTokenInfo.status)
    hashes: list[tuple[str, list[dict[str, str]], str, str]]
    good_emaid: str
    revoked: tuple[str, list[dict[str, str]]]


def status_cases(scene: Scene) -> StatusCases:
    harness, hierarchies = scene.harness, scene.hierarchies
    good = scene.contract
    good_emaid = CONTRACT_EMAID
    harness.csms.add_token(good_emaid, token_type="eMAID")
    past = datetime.now(UTC) - timedelta(days=30)
    expired = hierarchies.issue(
        MO, emaid("DEPNCEXP1RED01"), not_before=past, not_after=past + timedelta(days=1)
    )
    revoked_emaid = emaid("DEPNCREV0KED01")
    revoked = hierarchies.issue_contract(revoked_emaid)
    hierarchies.revoke(MO, revoked.certificate.serial_number)
    cancelled_emaid = emaid("DEPNCCANCEL001")
    cancelled = hierarchies.issue_contract(cancelled_emaid)
    hierarchies.cancel_contract(cancelled_emaid)
    secc = hierarchies.issue_secc("DEEVGE1PNC2")  # a chain, but not a contract's
    other = hierarchies.issue_contract(emaid("DEPNC0THER0001"))
    for token in (revoked_emaid, cancelled_emaid):
        harness.csms.add_token(token, token_type="eMAID")

    cases: list[tuple[str, str, str, str]] = [
        (good_emaid, pem(good.chain), "Accepted", "Accepted"),
        (good_emaid, pem(forged(good)), "SignatureError", "Invalid"),
        (emaid("DEPNCEXP1RED01"), pem(expired.chain), "CertificateExpired", "Expired"),
        (revoked_emaid, pem(revoked.chain), "CertificateRevoked", "Invalid"),
        (good_emaid, "no certificate here", "NoCertificateAvailable", "Invalid"),
        (good_emaid, pem(secc.chain), "CertChainError", "Invalid"),
        (good_emaid, pem(other.chain), "CertChainError", "Invalid"),  # another eMAID's
        (cancelled_emaid, pem(cancelled.chain), "ContractCancelled", "Invalid"),
    ]
    # The station checked the chain itself and sends the OCSP data of each link.
    hashes = [
        (good_emaid, hash_data(good), "Accepted", "Accepted"),
        (revoked_emaid, hash_data(revoked), "CertificateRevoked", "Invalid"),
        (cancelled_emaid, hash_data(cancelled), "ContractCancelled", "Invalid"),
        (emaid("DEPNCEXP1RED01"), hash_data(expired), "CertificateExpired", "Expired"),
        (good_emaid, hash_data(other), "CertChainError", "Invalid"),  # another eMAID's
        (good_emaid, hash_data(secc), "CertChainError", "Invalid"),  # no contract at all
    ]
    return StatusCases(cases, hashes, good_emaid, (revoked_emaid, hash_data(revoked)))


# A 2.x version's request classes, and the name they give Authorize's hash data field.
CALLS_2X: dict[str, tuple[Any, str]] = {
    "ocpp2.0.1": (c201, "iso15118_certificate_hash_data"),
    "ocpp2.1": (c21, "iso_15118_certificate_hash_data"),
}


@pytest.mark.parametrize("version", list(CALLS_2X))
def test_v2x_authorize_every_certificate_status(scene: Scene, version: str) -> None:
    harness = scene.harness
    harness.csms.add_station("PNC2", PASSWORD)
    cases = status_cases(scene)
    good_emaid = cases.good_emaid
    revoked_emaid, revoked_hashes = cases.revoked
    calls, hash_field = CALLS_2X[version]

    def authorize(
        token: str, certificate: str | None = None, hashes: list[dict[str, str]] | None = None
    ) -> Any:
        extra = {} if hashes is None else {hash_field: hashes}
        token_type = {"id_token": token, "type": "eMAID"}
        return calls.Authorize(id_token=token_type, certificate=certificate, **extra)

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC2", version, PASSWORD) as cp,
        ):
            await boot2x(cp, calls)
            for token, chain, certificate_status, token_status in cases.chains:
                answer = await cp.call(authorize(token, certificate=chain))
                assert (answer.certificate_status, answer.id_token_info["status"]) == (
                    certificate_status,
                    token_status,
                ), token
            for token, hashes, certificate_status, token_status in cases.hashes:
                answer = await cp.call(authorize(token, hashes=hashes))
                assert (answer.certificate_status, answer.id_token_info["status"]) == (
                    certificate_status,
                    token_status,
                ), token
            # A revoked contract is refused even though its token is registered as Accepted.
            refused = await cp.call(authorize(revoked_emaid, hashes=revoked_hashes))
            assert refused.id_token_info["status"] == "Invalid"
            # A serial number that is not hex breaks no schema rule but is still refused.
            bad = [dict(entry) for entry in cases.hashes[0][1]]
            bad[0]["serialNumber"] = "zz"
            with pytest.raises(Exception, match="PropertyConstraintViolation"):
                await cp.call(authorize(good_emaid, hashes=bad), suppress=False)
            # Nothing the station sent before was lost: a plain token still authorizes.
            plain = await cp.call(authorize(good_emaid))
            assert plain.id_token_info["status"] == "Accepted"

    asyncio.run(run())


def test_v16_plug_and_charge_data_transfer(scene: Scene) -> None:
    harness, hierarchies = scene.harness, scene.hierarchies
    harness.csms.add_station("PNC16", PASSWORD)
    revoked_emaid = emaid("DEPNC16REV0KED")
    revoked = hierarchies.issue_contract(revoked_emaid)
    hierarchies.revoke(MO, revoked.certificate.serial_number)
    harness.csms.add_token(revoked_emaid, token_type="eMAID")

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC16", "ocpp1.6", PASSWORD, Station16) as cp,
        ):
            cp.signed = asyncio.Queue()
            await boot16(cp)
            refused = await cp.call(
                transfer(
                    "Authorize",
                    {
                        "idToken": {"idToken": revoked_emaid, "type": "eMAID"},
                        "certificate": pem(revoked.chain),
                    },
                )
            )
            assert refused.status == "Accepted"
            assert json.loads(refused.data) == {
                "idTokenInfo": {"status": "Invalid"},
                "certificateStatus": "CertificateRevoked",
            }
            installed = await cp.call(
                transfer(
                    "Get15118EVCertificate",
                    {
                        "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
                        "action": "Install",
                        "exiRequest": installation_request(scene.provisioning.certificate),
                    },
                )
            )
            body = json.loads(installed.data)
            assert body["status"] == "Accepted"
            response = CertificateInstallationResponse.from_json(decode_exi(body["exiResponse"]))
            assert response.contract_chain[0] == scene.contract.certificate

            signed = await cp.call(transfer("SignCertificate", {"csr": secc_csr("DEEVGE1PNC16")}))
            assert json.loads(signed.data) == {"status": "Accepted"}
            delivered = await asyncio.wait_for(cp.signed.get(), 10)
            assert delivered["vendor_id"] == PNC_VENDOR
            assert delivered["message_id"] == "CertificateSigned"
            assert json.loads(delivered["data"])["certificateType"] == "V2GCertificate"

            unknown = await cp.call(
                c16.DataTransfer(vendor_id=PNC_VENDOR, message_id="Frobnicate", data="{}")
            )
            assert unknown.status == "UnknownMessageId"
            # Data that is not the 2.0.1 message's JSON is a CALLERROR; the station stays on.
            for data in ("not json", json.dumps({"idToken": "no object"})):
                with pytest.raises(Exception, match="Violation"):
                    await cp.call(
                        c16.DataTransfer(vendor_id=PNC_VENDOR, message_id="Authorize", data=data),
                        suppress=False,
                    )
            heartbeat = await cp.call(c16.Heartbeat())
            assert heartbeat.current_time

    asyncio.run(run())


def test_v21_installation_and_authorization(scene: Scene) -> None:
    """2.1 runs the same blocks on its own messages."""
    harness = scene.harness
    harness.csms.add_station("PNC21", PASSWORD)
    harness.csms.add_token(CONTRACT_EMAID, token_type="eMAID")
    revoked = scene.hierarchies.issue_contract(emaid("DEPNC21REV0KED"))
    scene.hierarchies.revoke(MO, revoked.certificate.serial_number)

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC21", "ocpp2.1", PASSWORD) as cp,
        ):
            await boot2x(cp, c21)
            installed = await cp.call(
                c21.Get15118EVCertificate(
                    iso_15118_schema_version="urn:iso:std:iso:15118:-20:CommonMessages",
                    action="Install",
                    exi_request=installation_request(scene.provisioning.certificate),
                )
            )
            assert installed.status == "Accepted"
            response = CertificateInstallationResponse.from_json(decode_exi(installed.exi_response))
            assert response.emaid == CONTRACT_EMAID
            token = {"id_token": CONTRACT_EMAID, "type": "eMAID"}
            accepted = await cp.call(
                c21.Authorize(id_token=token, certificate=pem(scene.contract.chain))
            )
            assert accepted.certificate_status == "Accepted"
            assert accepted.id_token_info["status"] == "Accepted"
            links = [revoked.certificate, *revoked.sub_cas]
            hash_data = [
                certificate_hash_data(child, parent, responder(child))
                for child, parent in itertools.pairwise([*links, revoked.root])
            ]
            refused = await cp.call(
                c21.Authorize(
                    id_token={"id_token": emaid("DEPNC21REV0KED"), "type": "eMAID"},
                    iso_15118_certificate_hash_data=hash_data,
                )
            )
            assert refused.certificate_status == "CertificateRevoked"
            assert refused.id_token_info["status"] == "Invalid"

    asyncio.run(run())


def test_v16_authorize_every_certificate_status(scene: Scene) -> None:
    """C07 through 1.6's Plug & Charge Authorize: the answer in the DataTransfer's data carries
    the same certificateStatus and token status as 2.0.1's Authorize."""
    harness = scene.harness
    harness.csms.add_station("PNC16A", PASSWORD)
    cases = status_cases(scene)

    async def authorize(cp: Any, token: str, **extra: Any) -> Any:
        body = {"idToken": {"idToken": token, "type": "eMAID"}, **extra}
        answer = await cp.call(transfer("Authorize", body), suppress=False)
        assert answer.status == "Accepted"
        return json.loads(answer.data)

    def expected(certificate_status: str, token_status: str) -> dict[str, Any]:
        return {"idTokenInfo": {"status": token_status}, "certificateStatus": certificate_status}

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC16A", "ocpp1.6", PASSWORD) as cp,
        ):
            await boot16(cp)
            for token, chain, certificate_status, token_status in cases.chains:
                answer = await authorize(cp, token, certificate=chain)
                assert answer == expected(certificate_status, token_status), token
            for token, hashes, certificate_status, token_status in cases.hashes:
                answer = await authorize(cp, token, iso15118CertificateHashData=hashes)
                assert answer == expected(certificate_status, token_status), token
            bad = [dict(entry) for entry in cases.hashes[0][1]]
            bad[0]["serialNumber"] = "zz"
            with pytest.raises(Exception, match="PropertyConstraintViolation"):
                await authorize(cp, cases.good_emaid, iso15118CertificateHashData=bad)
            heartbeat = await cp.call(c16.Heartbeat())
            assert heartbeat.current_time

    asyncio.run(run())


def test_v16_certificate_status_relayed(scene: Scene) -> None:
    """M06 through 1.6's Plug & Charge GetCertificateStatus: the responder's signed answer for
    each link of a chain, and Failed with a reason when there is none to relay."""
    harness, hierarchies = scene.harness, scene.hierarchies
    harness.csms.add_station("PNC16O", PASSWORD)
    revoked = hierarchies.issue_contract(emaid("DEPNC16OCSPREV"))
    hierarchies.revoke(MO, revoked.certificate.serial_number)
    contract = scene.contract
    leaf_data = certificate_hash_data(
        contract.certificate, contract.sub_cas[0], responder(contract.certificate)
    )

    async def status(cp: Any, data: dict[str, str]) -> Any:
        answer = await cp.call(transfer("GetCertificateStatus", {"ocspRequestData": data}))
        assert answer.status == "Accepted"
        return json.loads(answer.data)

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC16O", "ocpp1.6", PASSWORD) as cp,
        ):
            await boot16(cp)
            links = [
                (contract.certificate, contract.sub_cas[0], ocsp.OCSPCertStatus.GOOD),
                (contract.sub_cas[0], contract.sub_cas[1], ocsp.OCSPCertStatus.GOOD),
                (revoked.certificate, revoked.sub_cas[0], ocsp.OCSPCertStatus.REVOKED),
            ]
            for certificate, issuer, expected in links:
                data = certificate_hash_data(certificate, issuer, responder(certificate))
                body = await status(cp, data)
                assert body["status"] == "Accepted"
                answer = ocsp.load_der_ocsp_response(base64.b64decode(body["ocspResult"]))
                assert answer.serial_number == certificate.serial_number
                assert answer.certificate_status is expected
            closed = f"http://127.0.0.1:{free_port()}/ocsp"
            for data, reason in (
                ({**leaf_data, "responderURL": "ftp://example.org/ocsp"}, "InvalidURL"),
                ({**leaf_data, "serialNumber": "zz"}, "InvalidOCSPData"),
                ({**leaf_data, "responderURL": closed}, "NoOCSPAnswer"),
            ):
                body = await status(cp, data)
                assert body["status"] == "Failed"
                assert body["statusInfo"]["reasonCode"] == reason

    asyncio.run(run())


def test_v16_simulated_station_installs_its_v2g_certificate(scene: Scene) -> None:
    """The simulated 1.6 station asks for its SECC certificate by Plug & Charge SignCertificate
    (by itself, or when the CSMS triggers it) and installs what CertificateSigned brings,
    answering as the application note says: the DataTransfer accepted, the 2.0.1 answer in
    its data."""
    harness, hierarchies = scene.harness, scene.hierarchies
    harness.csms.add_station("PNC16SIM", PASSWORD)
    stranger = hierarchies.issue_secc("DEEVGE1SIM16").chain_pem()  # for a key it never made

    async def pnc(message_id: str, body: Any) -> Any:
        data = body if isinstance(body, str) else json.dumps(body)
        request = c16.DataTransfer(vendor_id=PNC_VENDOR, message_id=message_id, data=data)
        return await harness.csms.commands.call("PNC16SIM", request)

    signed = {"certificateChain": stranger, "certificateType": "V2GCertificate"}

    def secc_id(chain: list[x509.Certificate]) -> str | None:
        verdict = ChainValidator(hierarchies.roots()).validate(LeafRole.SECC, chain)
        assert verdict.accepted, verdict.message
        (dc,) = chain[0].subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)
        assert dc.value == "CPO"
        return verdict.identifier

    async def run() -> None:
        async with harness.serve() as url:
            sim = station_class("1.6")("PNC16SIM", url, password=PASSWORD, clock=SimulatedClock())
            await sim.connect()
            try:
                answer = await pnc("CertificateSigned", signed)
                assert (answer.status, json.loads(answer.data)) == (
                    "Accepted",
                    {"status": "Rejected"},  # it asked for no certificate
                )
                assert await sim.request_v2g_certificate("DEEVGE1SIM16")
                await sim.until(lambda: bool(sim.certificates))
                chain = sim.certificates
                assert secc_id(chain) == "DEEVGE1SIM16"
                assert any('"CertificateSigned"' in line for line in sim.message_log)

                # Once installed, a chain for another key is refused and the one kept.
                answer = await pnc("CertificateSigned", signed)
                assert json.loads(answer.data) == {"status": "Rejected"}
                assert sim.certificates == chain

                # The CSMS triggers a new one: a new key, the station id as SECC id.
                # (the operator's TriggerMessage, sent to 1.6 as the Plug & Charge DataTransfer)
                trigger = await harness.csms.commands.trigger("PNC16SIM", "SignV2GCertificate")
                assert trigger.status == "Accepted"
                await sim.until(lambda: sim.certificates != chain)
                assert secc_id(sim.certificates) == "PNC16SIM"
                other = await pnc("TriggerMessage", {"requestedMessage": "BootNotification"})
                assert json.loads(other.data) == {"status": "NotImplemented"}

                # Another message of the vendor, and data that is not 2.0.1's request.
                unknown = await pnc("Frobnicate", {})
                assert unknown.status == "UnknownMessageId"
                broken = await pnc("CertificateSigned", {"certificate": stranger})
                assert broken.status == "Rejected"
                assert [v.action for v in sim.schema_violations] == ["CertificateSigned"]
            finally:
                await sim.close()

    asyncio.run(run())


@dataclass
class Get15118EVCertificate(c21.Get15118EVCertificate):
    """2.1's request with the EV's eMAIDs under their name on the wire, "prioritizedEMAIDs":
    the library sends its own field `prioritized_emaids` as "prioritizedEmaids", which 2.1's
    schema refuses."""

    prioritized_e_m_a_i_ds: list[str] | None = None


def test_v21_installation_follows_the_ev_prioritized_emaids(scene: Scene) -> None:
    """2.1's Get15118EVCertificate carries the EV's prioritized eMAIDs: the pool installs the
    first it holds a contract for, else the driver's default, else its highest priority."""
    harness, hierarchies, pools = scene.harness, scene.hierarchies, scene.pools
    harness.csms.add_station("PNC21P", PASSWORD)
    first, second = CONTRACT_EMAID, emaid("DEPNCSEC0ND001")
    emsp, _ = pools.register_client("emsp-2", PoolRole.EMSP)
    key = generate_contract_key(KeyProfile.ISO15118_2)
    issued = hierarchies.issue_contract(second, key.public_key())
    sealed = seal_contract_key(key, issued.certificate, scene.provisioning.certificate)
    chain = [c.public_bytes(serialization.Encoding.DER) for c in issued.chain]
    pools.store_contract(emsp, PCID, second, chain, sealed, 2)
    unknown = emaid("DEPNCN0C0NTRCT")  # well formed, but no contract of this vehicle
    dashed = f"{second[:2]}-{second[2:5]}-{second[5:14]}"  # no check character either

    def request(emaids: list[str] | None, in_exi: list[str] | None = None) -> Any:
        body: dict[str, Any] = {"oemProvisioningCert": der64(scene.provisioning.certificate)}
        if in_exi:
            body["prioritizedEmaids"] = in_exi  # ISO 15118-20 has them in the EXI request too
        return Get15118EVCertificate(
            iso_15118_schema_version="urn:iso:std:iso:15118:-20:CommonMessages",
            action="Install",
            exi_request=encode_exi(body),
            maximum_contract_certificate_chains=1,
            prioritized_e_m_a_i_ds=emaids,
        )

    async def run() -> None:
        async with (
            harness.serve() as url,
            station(url, "PNC21P", "ocpp2.1", PASSWORD) as cp,
        ):
            await boot2x(cp, c21)

            async def installed(emaids: list[str] | None, in_exi: list[str] | None = None) -> str:
                answer = await cp.call(request(emaids, in_exi), suppress=False)
                assert answer.status == "Accepted", answer.status_info
                response = CertificateInstallationResponse.from_json(
                    decode_exi(answer.exi_response)
                )
                return response.emaid

            assert await installed(None) == first  # the pool's highest priority
            assert await installed([second]) == second
            assert await installed([unknown, second, first]) == second  # in the EV's order
            assert await installed([dashed]) == second
            assert await installed([first], in_exi=[second]) == first  # OCPP's list wins
            assert await installed(None, in_exi=[second]) == second
            # The driver makes the second contract the default; the EV may still ask.
            pools.record_consent(scene.oem, PCID, second, "driver-7")
            assert await installed(None) == second
            assert await installed([unknown]) == second
            assert await installed([first]) == first

            # The vehicle decrypts the contract it asked for with its provisioning key.
            answer = await cp.call(request([second]))
            response = CertificateInstallationResponse.from_json(decode_exi(answer.exi_response))
            assert scene.provisioning.private_key is not None
            contract = install_contract(
                response,
                scene.provisioning.private_key,  # type: ignore[arg-type]
                PCID,
                hierarchies.roots(),
            )
            assert contract.emaid == second and contract.chain[0] == issued.certificate

            malformed = await cp.call(request(["not an eMAID"]))
            assert malformed.status == "Failed"
            assert malformed.status_info["reason_code"] == "MalformedIdentifier"
            # The library's own spelling of the field is no 2.1 field: a CALLERROR.
            with pytest.raises(Exception, match="Violation"):
                await cp.call(
                    c21.Get15118EVCertificate(
                        iso_15118_schema_version="urn:iso:std:iso:15118:-20:CommonMessages",
                        action="Install",
                        exi_request=installation_request(scene.provisioning.certificate),
                        prioritized_emaids=[second],
                    ),
                    suppress=False,
                    skip_schema_validation=True,
                )

    asyncio.run(run())


def test_a_root_added_while_running_is_trusted_at_the_next_authorize(scene: Scene) -> None:
    """The CSMS keeps one contract validator, and makes it anew when a CA appears: a new MO
    root set up through another connection (as `evgi pki init` in another process would)
    vouches for its contracts at once, and a revoked sub-CA still refuses the next chain."""
    harness, hierarchies = scene.harness, scene.hierarchies
    harness.csms.add_station("PNC3", PASSWORD)
    harness.csms.add_token(CONTRACT_EMAID, token_type="eMAID")
    late_emaid = emaid("DEPNCLATER0001")
    harness.csms.add_token(late_emaid, token_type="eMAID")

    async def authorize(token: str, chain: list[x509.Certificate]) -> str:
        async with harness.serve() as url, station(url, "PNC3", "ocpp2.0.1", PASSWORD) as cp:
            await boot2x(cp)
            answer = await cp.call(authorize201(token, certificate=pem(chain)))
            return str(answer.certificate_status)

    assert asyncio.run(authorize(CONTRACT_EMAID, scene.contract.chain)) == "Accepted"
    other = open_database(harness.settings.db_url)
    try:
        late = Hierarchies(harness.settings, other)
        late.init([RootSpec("mo-late", Branch.MO, "Late MO", Iso15118.PART_2, "secp256r1")])
        chain = late.issue_contract(late_emaid, mo="mo-late-mo-2").chain
    finally:
        other.dispose()
    assert asyncio.run(authorize(late_emaid, chain)) == "Accepted"
    hierarchies.revoke("mo-t-mo-1", scene.contract.sub_cas[0].serial_number)
    assert asyncio.run(authorize(CONTRACT_EMAID, scene.contract.chain)) == "CertificateRevoked"

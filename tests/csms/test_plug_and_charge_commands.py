"""The ISO 15118 certificate commands (InstallCertificate, GetInstalledCertificateIds,
DeleteCertificate) through the operator API of a real `evgi serve`: as 2.0.1 messages, and to a
1.6 station as Plug & Charge DataTransfer messages whose answers come back in 2.0.1's shape."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryStation16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as LibraryStation201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201

from evgi.csms.plug_and_charge import PNC_VENDOR
from tests.csms.clients import station
from tests.service_runner import free_port, running_service

PASSWORD = "pnc-station-password"


@dataclass(frozen=True)
class Service:
    base: str
    ocpp: str


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder: Path = tmp_path_factory.mktemp("serve")
    (folder / "evgi.toml").write_text("ocpp_call_timeout = 2.0\n")
    ocpp_port = free_port()
    with running_service(folder, ocpp_port=ocpp_port) as base:
        yield Service(base, f"ws://127.0.0.1:{ocpp_port}/ocpp")


def root_pem(name: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


class TrustStore:
    """A station's installed roots, by their CertificateHashDataType."""

    def __init__(self) -> None:
        self.roots: dict[str, tuple[str, dict[str, str]]] = {}

    def install(self, certificate_type: str, certificate: str) -> str:
        parsed = x509.load_pem_x509_certificate(certificate.encode())
        name_hash = hashlib.sha256(parsed.issuer.public_bytes()).hexdigest()
        serial = format(parsed.serial_number, "x")
        self.roots[serial] = (
            certificate_type,
            {
                "hashAlgorithm": "SHA256",
                "issuerNameHash": name_hash,
                "issuerKeyHash": parsed.fingerprint(hashes.SHA256()).hex(),
                "serialNumber": serial,
            },
        )
        return "Accepted"

    def ids(self, types: list[str] | None) -> dict[str, Any]:
        chains = [
            {"certificateType": kind, "certificateHashData": data}
            for kind, data in self.roots.values()
            if not types or kind in types
        ]
        if not chains:
            return {"status": "NotFound"}
        return {"status": "Accepted", "certificateHashDataChain": chains}

    def delete(self, hash_data: dict[str, str]) -> str:
        return "Accepted" if self.roots.pop(hash_data["serialNumber"], None) else "NotFound"


class Station201(LibraryStation201):
    store: TrustStore

    @on("InstallCertificate")
    def on_install(self, certificate_type: str, certificate: str) -> r201.InstallCertificate:
        return r201.InstallCertificate(status=self.store.install(certificate_type, certificate))

    @on("GetInstalledCertificateIds")
    def on_ids(self, certificate_type: list[str] | None = None) -> r201.GetInstalledCertificateIds:
        answer = self.store.ids(certificate_type)
        return r201.GetInstalledCertificateIds(
            status=answer["status"],
            certificate_hash_data_chain=[
                {
                    "certificate_type": c["certificateType"],
                    "certificate_hash_data": {
                        "hash_algorithm": c["certificateHashData"]["hashAlgorithm"],
                        "issuer_name_hash": c["certificateHashData"]["issuerNameHash"],
                        "issuer_key_hash": c["certificateHashData"]["issuerKeyHash"],
                        "serial_number": c["certificateHashData"]["serialNumber"],
                    },
                }
                for c in answer.get("certificateHashDataChain", [])
            ]
            or None,
        )

    @on("DeleteCertificate")
    def on_delete(self, certificate_hash_data: dict[str, str]) -> r201.DeleteCertificate:
        data = {
            "serialNumber": certificate_hash_data["serial_number"],
        }
        return r201.DeleteCertificate(status=self.store.delete(data))


class Station16(LibraryStation16):
    """A 1.6 station that speaks the Plug & Charge DataTransfer messages; a message id of
    "Broken" makes it answer with data that is not the 2.0.1 response."""

    store: TrustStore
    broken = False

    @on("DataTransfer")
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> r16.DataTransfer:
        if vendor_id != PNC_VENDOR:
            return r16.DataTransfer(status="UnknownVendorId")
        body = json.loads(data or "{}")
        if self.broken:
            return r16.DataTransfer(status="Accepted", data=json.dumps({"status": 42}))
        if message_id == "InstallCertificate":
            answer: dict[str, Any] = {
                "status": self.store.install(body["certificateType"], body["certificate"])
            }
        elif message_id == "GetInstalledCertificateIds":
            answer = self.store.ids(body.get("certificateType"))
        elif message_id == "DeleteCertificate":
            answer = {"status": self.store.delete(body["certificateHashData"])}
        else:
            return r16.DataTransfer(status="UnknownMessageId")
        return r16.DataTransfer(status="Accepted", data=json.dumps(answer))


def register(http: httpx.Client, station_id: str) -> None:
    answer = http.post("/api/stations", json={"id": station_id, "password": PASSWORD})
    assert answer.status_code == 201, answer.text


async def exercise(api: httpx.AsyncClient, station_id: str) -> None:
    """Install two roots, list them, delete one (twice), and send what the API refuses."""
    base = f"/api/stations/{station_id}/commands"
    for kind, name in (("V2GRootCertificate", "V2G Root"), ("MORootCertificate", "MO Root")):
        installed = await api.post(
            f"{base}/install-certificate",
            json={"certificate_type": kind, "certificate": root_pem(name)},
        )
        assert installed.status_code == 200, installed.text
        assert installed.json() == {
            "action": "InstallCertificate",
            "answer": {"status": "Accepted"},
        }
    listed = await api.post(
        f"{base}/get-installed-certificate-ids", json={"certificate_types": ["V2GRootCertificate"]}
    )
    assert listed.status_code == 200, listed.text
    chains = listed.json()["answer"]["certificateHashDataChain"]
    assert [c["certificateType"] for c in chains] == ["V2GRootCertificate"]
    hash_data = chains[0]["certificateHashData"]
    deleted = await api.post(
        f"{base}/delete-certificate", json={"certificate_hash_data": hash_data}
    )
    assert deleted.json()["answer"] == {"status": "Accepted"}
    again = await api.post(f"{base}/delete-certificate", json={"certificate_hash_data": hash_data})
    assert again.json()["answer"] == {"status": "NotFound"}
    remaining = await api.post(f"{base}/get-installed-certificate-ids", json={})
    kinds = [c["certificateType"] for c in remaining.json()["answer"]["certificateHashDataChain"]]
    assert kinds == ["MORootCertificate"]
    # Bad input is refused before anything reaches the station, and nothing is lost.
    wrong_type = await api.post(
        f"{base}/install-certificate",
        json={"certificate_type": "V2GCertificateChain", "certificate": "x"},
    )
    assert wrong_type.status_code == 422
    too_long = await api.post(
        f"{base}/delete-certificate",
        json={"certificate_hash_data": {**hash_data, "serialNumber": "f" * 41}},
    )
    assert too_long.status_code == 422
    still = await api.post(f"{base}/get-installed-certificate-ids", json={})
    assert still.json() == remaining.json()


def test_certificate_commands_201(service: Service) -> None:
    with httpx.Client(base_url=service.base) as http:
        register(http, "PNC-CMD-201")

    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=service.base, timeout=10) as api,
            station(service.ocpp, "PNC-CMD-201", "ocpp2.0.1", PASSWORD, Station201) as cp,
        ):
            cp.store = TrustStore()
            await cp.call(
                c201.BootNotification(
                    charging_station={"model": "DC50", "vendor_name": "Acme"}, reason="PowerUp"
                )
            )
            await exercise(api, "PNC-CMD-201")

    asyncio.run(run())


def test_certificate_commands_16(service: Service) -> None:
    with httpx.Client(base_url=service.base) as http:
        register(http, "PNC-CMD-16")

    async def run() -> None:
        async with (
            httpx.AsyncClient(base_url=service.base, timeout=10) as api,
            station(service.ocpp, "PNC-CMD-16", "ocpp1.6", PASSWORD, Station16) as cp,
        ):
            cp.store = TrustStore()
            await cp.call(c16.BootNotification(charge_point_vendor="Acme", charge_point_model="AC"))
            await exercise(api, "PNC-CMD-16")
            # A station answering with something that is not the 2.0.1 response: 502.
            cp.broken = True
            broken = await api.post(
                "/api/stations/PNC-CMD-16/commands/get-installed-certificate-ids", json={}
            )
            assert broken.status_code == 502
            assert broken.json()["detail"]["error_code"] == "FormationViolation"

    asyncio.run(run())

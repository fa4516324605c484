"""The Plug & Charge part of `evgi demo`: the foundation's vehicles leave the factory with OEM
provisioning certificates, their drivers' eMSP puts contracts for them in the certificate pool,
and each vehicle gets its contract installed through a station (Get15118EVCertificate), then
charges by plugging in: the station authorizes the contract certificate at the CSMS, which
validates the chain and asks the hierarchies' OCSP responders. The eMSP renews one contract
after installation and that vehicle updates it (CertificateUpdateReq, the new key encrypted for
the current contract's) and charges on the new one; the MO revokes another contract after
installation, and that vehicle is refused.

One station speaks OCPP 2.0.1, the other 1.6 with the Plug & Charge DataTransfer messages. The
OCSP responders are `evgi serve`'s HTTP app, run in the background on a free loopback port.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evgi.api import create_app
from evgi.config import Settings
from evgi.core.clock import SimulatedClock
from evgi.core.identifiers import emaid_check_digit
from evgi.csms import Csms, TransactionEnded
from evgi.pnc import (
    DEFAULT_ECOSYSTEM,
    CertificatePools,
    ContractKey,
    ContractRenewal,
    Hierarchies,
    IssuedChain,
    KeyProfile,
    PoolClient,
    PoolRole,
    generate_contract_key,
    seal_contract_key,
    seal_contract_update,
)
from evgi.service import http_in_background
from evgi.sim.report import Section
from evgi.sim.stations import EvseSpec, Station, Vehicle, station_class
from evgi.sim.stations.contract import ContractVehicle

if TYPE_CHECKING:  # the scenario imports this part
    from evgi.sim.scenario import FoundationScenario

# One V2G, one MO and one OEM root of the default ecosystem (ISO 15118-2, P-256): quick to make.
ECOSYSTEM = tuple(r for r in DEFAULT_ECOSYSTEM if r.name in ("v2g-a", "mo-a", "oem-a"))
V2G_ROOT = "v2g-a"
STATIONS = {"pnc-charger-1": "2.0.1", "pnc-charger-2": "1.6"}
STATION_POWER_W = 22_000
VEHICLE_POWER_W = 11_000


@dataclass(frozen=True)
class PncVisit:
    driver: str
    vehicle: str
    station: str
    soc_percent: int
    duration: timedelta
    revoked: bool = False  # the MO revokes this contract after it was installed
    renewed: bool = False  # the eMSP renews this contract after it was installed


VISITS = (
    PncVisit("driver-1", "vehicle-1", "pnc-charger-1", 30, timedelta(minutes=45), renewed=True),
    PncVisit("driver-2", "vehicle-2", "pnc-charger-2", 40, timedelta(minutes=30)),
    PncVisit("driver-3", "vehicle-3", "pnc-charger-1", 25, timedelta(minutes=30), revoked=True),
)


def contract_id(index: int) -> str:
    """The eMAID RoamPay (NL*RPY) gives its driver number `index`, with its check digit."""
    body = f"NLRPYC{index:08d}"
    return body + emaid_check_digit(body)


@dataclass
class PncOutcome:
    visit: PncVisit
    pcid: str
    emaid: str
    installation: str
    update: str  # "" when the contract was not renewed
    contract_serial: int  # of the contract certificate the vehicle authorized with
    certificate_status: str
    authorization: str
    transaction: str | None
    energy_wh: int


class PlugAndChargePart:
    """Issue provisioning certificates and contracts, install them, charge by contract."""

    def __init__(self, scenario: FoundationScenario) -> None:
        self.scenario = scenario
        self.platform = scenario.platform
        self.outcomes: list[PncOutcome] = []
        self.ended: dict[str, TransactionEnded] = {}
        self.ocsp_base = ""
        self.violations: dict[str, int] = {}  # station: CSMS messages breaking its schema
        self.checked = 0
        self.renewed: dict[str, IssuedChain] = {}  # vehicle: the contract that replaced its first

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("Plug & Charge: install contracts, charge by contract", self.charge),
            ("report the Plug & Charge sessions", self.report),
        ]

    def _claims(self, name: str) -> dict[str, Any]:
        subject: dict[str, Any] = self.scenario.people[name].certificate["credentialSubject"]
        return subject

    def charge(self) -> None:
        with http_in_background(create_app(self.platform)) as base:
            self.ocsp_base = base
            settings = self.platform.settings.model_copy(update={"pki_base_url": base})
            hierarchies = Hierarchies(settings, self.platform.db)
            hierarchies.init(ECOSYSTEM)
            pools = CertificatePools.open(settings, self.platform.db, self.platform.clock)
            try:
                pools.adopt_hierarchies()
                emsp, _ = pools.register_client("roampay", PoolRole.EMSP)
                vehicles, issued = self._provision(hierarchies, pools, emsp)
                renewal = Renewal(hierarchies, pools, emsp)
                asyncio.run(self._visits(settings, hierarchies, vehicles, issued, renewal))
            finally:
                pools.close()

    def _provision(
        self, hierarchies: Hierarchies, pools: CertificatePools, emsp: PoolClient
    ) -> tuple[dict[str, ContractVehicle], dict[str, IssuedChain]]:
        """The OEM publishes each vehicle's provisioning chain, the eMSP stores a contract."""
        oem, _ = pools.register_client("aurora-motors", PoolRole.OEM)
        v2g_root = hierarchies.get(V2G_ROOT).certificate
        vehicles: dict[str, ContractVehicle] = {}
        contracts: dict[str, IssuedChain] = {}
        for index, visit in enumerate(VISITS, start=1):
            pcid = self._claims(visit.vehicle)["pcid"]
            provisioning = hierarchies.issue_provisioning(pcid)
            vehicle_key = provisioning.private_key
            assert isinstance(vehicle_key, ContractKey)  # the OEM CA made an EC key
            pools.publish_provisioning(oem, pcid, [_der(c) for c in provisioning.chain])
            key = generate_contract_key(KeyProfile.ISO15118_2)
            emaid = contract_id(index)
            contract = hierarchies.issue_contract(emaid, key.public_key())
            sealed = seal_contract_key(key, contract.certificate, provisioning.certificate)
            pools.store_contract(emsp, pcid, emaid, [_der(c) for c in contract.chain], sealed, 1)
            vehicles[visit.vehicle] = ContractVehicle(
                vehicle_key,
                provisioning.chain,
                [v2g_root],
            )
            contracts[visit.vehicle] = contract
        return vehicles, contracts

    async def _visits(
        self,
        settings: Settings,
        hierarchies: Hierarchies,
        vehicles: dict[str, ContractVehicle],
        contracts: dict[str, IssuedChain],
        renewal: Renewal,
    ) -> None:
        csms = Csms(settings, self.platform.db, self.platform.bus, self.platform.clock)
        passwords = {name: secrets.token_urlsafe(18) for name in STATIONS}
        for name, password in passwords.items():
            csms.add_station(name, password)
        for index, _ in enumerate(VISITS, start=1):
            csms.add_token(contract_id(index), token_type="eMAID")  # the eMSP's tokens
        unsubscribe = self.platform.bus.subscribe(
            TransactionEnded, lambda e: self.ended.__setitem__(e.transaction_id, e)
        )
        start = self.platform.clock.now()
        try:
            async with csms.running("127.0.0.1", 0) as server:
                url = f"ws://127.0.0.1:{server.port}/ocpp"
                stations: dict[str, Station] = {
                    name: station_class(version)(
                        name,
                        url,
                        password=passwords[name],
                        clock=SimulatedClock(start),
                        evses=[EvseSpec(STATION_POWER_W)],
                        vendor="evgi",
                        model="evgi-sim ISO 15118",
                    )
                    for name, version in STATIONS.items()
                }
                await asyncio.gather(*(s.connect() for s in stations.values()))
                try:
                    installed = {
                        v.vehicle: await stations[v.station].install_contract(vehicles[v.vehicle])
                        for v in VISITS
                    }
                    updated: dict[str, str] = {}
                    for visit in VISITS:
                        if visit.renewed:  # e.g. the contract certificate runs out soon
                            vehicle = vehicles[visit.vehicle]
                            self.renewed[visit.vehicle] = renewal.renew(
                                vehicle, contracts[visit.vehicle]
                            )
                            station = stations[visit.station]
                            updated[visit.vehicle] = await station.update_contract(vehicle)
                    for visit in VISITS:
                        if visit.revoked:  # e.g. the driver reported the vehicle stolen
                            contract = contracts[visit.vehicle]
                            hierarchies.revoke(contract.issuer, contract.certificate.serial_number)
                    for visit in VISITS:
                        outcome = await self._visit(
                            stations[visit.station], visit, vehicles, installed
                        )
                        outcome.update = updated.get(visit.vehicle, "")
                        self.outcomes.append(outcome)
                finally:
                    await asyncio.gather(*(s.close() for s in stations.values()))
                    self.violations = {n: len(s.schema_violations) for n, s in stations.items()}
                    self.checked = sum(s.messages_checked for s in stations.values())
        finally:
            unsubscribe()

    async def _visit(
        self,
        station: Station,
        visit: PncVisit,
        vehicles: dict[str, ContractVehicle],
        installed: dict[str, str],
    ) -> PncOutcome:
        vehicle = vehicles[visit.vehicle]
        capacity = self._claims(visit.vehicle)["batteryCapacityWh"]
        battery = Vehicle.at_soc(capacity, visit.soc_percent, VEHICLE_POWER_W)
        certificate_status, status, session = await station.run_contract_session(
            vehicle, visit.duration, battery
        )
        return PncOutcome(
            visit,
            vehicle.pcid,
            vehicle.emaid or "",
            installed[visit.vehicle],
            "",
            vehicle.contract.chain[0].serial_number if vehicle.contract else 0,
            certificate_status,
            status,
            None if session is None else session.transaction_id,
            0 if session is None else session.energy_wh,
        )

    def report(self) -> None:
        report = self.scenario.report
        report.check(len(self.outcomes) == len(VISITS), "not every Plug & Charge visit ran")
        for name, violations in self.violations.items():
            report.check(violations == 0, f"{name} received invalid OCPP messages")
        rows: list[dict[str, Any]] = []
        for outcome in self.outcomes:
            visit = outcome.visit
            report.check(
                outcome.installation == "Accepted",
                f"{visit.vehicle}'s contract was not installed: {outcome.installation}",
            )
            if visit.renewed:
                renewed = self.renewed.get(visit.vehicle)
                report.check(
                    outcome.update == "Accepted"
                    and renewed is not None
                    and outcome.contract_serial == renewed.certificate.serial_number,
                    f"{visit.vehicle} did not update its contract and authorize with the new one",
                )
            if visit.revoked:
                report.check(
                    outcome.certificate_status == "CertificateRevoked"
                    and outcome.transaction is None,
                    f"{visit.vehicle}'s revoked contract was not refused",
                )
            else:
                ended = self.ended.get(outcome.transaction or "")
                report.check(
                    outcome.certificate_status == "Accepted" and outcome.energy_wh > 0,
                    f"{visit.vehicle} did not charge by Plug & Charge",
                )
                report.check(
                    ended is not None and ended.energy_wh == outcome.energy_wh,
                    f"the CSMS's energy for {visit.vehicle}'s session differs from the station's",
                )
            rows.append(
                {
                    "station": visit.station,
                    "version": STATIONS[visit.station],
                    "vehicle": visit.vehicle,
                    "PCID": outcome.pcid,
                    "eMAID": outcome.emaid,
                    "installation": outcome.installation,
                    "update": outcome.update,
                    "certificate": outcome.certificate_status,
                    "authorization": outcome.authorization,
                    "transaction": outcome.transaction or "",
                    "energy Wh": outcome.energy_wh,
                }
            )
        report.add(
            Section(
                "Plug & Charge sessions (ISO 15118 over OCPP)",
                "Each vehicle sent its OEM provisioning certificate through a station "
                "(Get15118EVCertificate; 1.6 as a Plug & Charge DataTransfer) and got the "
                "contract its eMSP had stored in the pool, signed by the CPS and encrypted for "
                "it; the vehicle checked the signature and decrypted its key. The eMSP renewed "
                "one contract: that vehicle updated it (Get15118EVCertificate, action Update, "
                "the request signed with its contract key) and decrypted the new key with the "
                "current one's. Plugged in, each vehicle "
                "authorized with its contract chain, which the CSMS validated up to the MO root "
                f"asking the OCSP responders at {self.ocsp_base}/pki/ocsp. The MO revoked one "
                "contract after installation: that vehicle was refused. The stations checked "
                f"all {self.checked} messages the CSMS sent them against the OCA schemas.",
                rows,
                data={"stations": STATIONS, "messages_checked": self.checked},
            )
        )


class Renewal:
    """The eMSP's renewal of a contract a vehicle holds (before it runs out, say): a new key
    and certificate for the same eMAID, its key sealed for the vehicle's provisioning key (an
    installation) and for the contract it replaces (an update), stored in the pool."""

    def __init__(self, hierarchies: Hierarchies, pools: CertificatePools, emsp: PoolClient) -> None:
        self.hierarchies = hierarchies
        self.pools = pools
        self.emsp = emsp

    def renew(self, vehicle: ContractVehicle, current: IssuedChain) -> IssuedChain:
        emaid = vehicle.emaid
        assert emaid is not None  # the vehicle installed its contract first
        key = generate_contract_key(KeyProfile.ISO15118_2)
        renewed = self.hierarchies.issue_contract(emaid, key.public_key())
        sealed = seal_contract_key(key, renewed.certificate, vehicle.provisioning_chain[0])
        update = seal_contract_update(key, renewed.certificate, current.certificate)
        self.pools.store_contract(
            self.emsp,
            vehicle.pcid,
            emaid,
            [_der(c) for c in renewed.chain],
            sealed,
            1,
            ContractRenewal(_der(current.certificate), update),
        )
        return renewed


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)

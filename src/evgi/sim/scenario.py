"""The reference scenario behind `evgi demo`: a small EV-charging ecosystem on-boarded onto the
trust layer. Later layers (CSMS, Plug & Charge, settlement, V2G, data sharing) extend it.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.progress import Progress

from evgi.app import GENESIS_KEY, Platform, open_platform
from evgi.config import Settings
from evgi.core.identifiers import EntityKind, make_eid, vin_check_digit
from evgi.core.keys import Account
from evgi.identity import (
    did_for,
    issue_entity_certificate,
    offboard_entity,
    resolve,
    verify_entity_certificate,
)
from evgi.sim.charging import ChargingPart
from evgi.sim.data_sharing import DataSharingPart
from evgi.sim.plug_and_charge import PlugAndChargePart
from evgi.sim.report import Report, Section, bar_plot
from evgi.sim.settlement import SettlementPart, SettlementReportPart
from evgi.sim.v2g import V2gPart

ONE_YEAR = 365 * 86400


@dataclass
class Participant:
    name: str
    kind: EntityKind
    account: Account
    issuer: str
    certificate: dict[str, Any]
    ec_hash: str
    block: int

    @property
    def address(self) -> str:
        return self.account.address


def _vin(wmi: str, serial: int) -> str:
    """A VIN with a valid position-9 check digit."""
    draft = f"{wmi}EV2G0R{serial:08d}"[:17]
    draft = draft[:8] + "0" + draft[9:]
    return draft[:8] + vin_check_digit(draft) + draft[9:]


@dataclass
class DemoResult:
    ok: bool
    failures: list[str]
    html_path: Path
    json_path: Path
    report: Report


class FoundationScenario:
    """Trust anchor, CPO, eMSP, OEM, utility, three drivers with vehicles, five chargers."""

    def __init__(self, platform: Platform, report: Report) -> None:
        self.platform = platform
        self.report = report
        self.ledger = platform.ledger
        self.chain_id = platform.ledger.chain_id
        self.people: dict[str, Participant] = {}
        self.trust_anchor = platform.submitter(GENESIS_KEY)

    def did(self, name: str) -> str:
        return did_for(self.chain_id, self.people[name].address)

    def onboard(
        self, name: str, kind: EntityKind, issuer: str, claims: dict[str, Any]
    ) -> Participant:
        account = self.platform.keystore.create(name)
        submitter = (
            self.trust_anchor
            if issuer == GENESIS_KEY
            else self.platform.submitter(self.people[issuer].account)
        )
        issued = issue_entity_certificate(
            submitter, account.address, kind, claims, self.platform.clock
        )
        person = Participant(
            name, kind, account, issuer, issued.document, issued.hash, issued.receipt.block
        )
        self.people[name] = person
        return person

    # -- steps ------------------------------------------------------------------------------

    def service_providers(self) -> None:
        providers = [
            ("volt-charge", EntityKind.CPO, "Volt Charge GmbH", "DE", "DE*VCH"),
            ("roampay", EntityKind.EMSP, "RoamPay B.V.", "NL", "NL*RPY"),
            ("aurora-motors", EntityKind.OEM, "Aurora Motors AG", "DE", None),
            ("rhine-grid", EntityKind.UTILITY, "Rhine Grid Netz GmbH", "DE", None),
        ]
        for name, kind, legal, country, party in providers:
            claims: dict[str, Any] = {
                "legalName": legal,
                "country": country,
                "serviceEndpoints": [f"https://{name}.example/api"],
            }
            if party:
                claims["partyId"] = party
            self.onboard(name, kind, GENESIS_KEY, claims)

    def did_services(self) -> None:
        services = {
            "volt-charge": [
                ("did/svc/OCPP", "wss://volt-charge.example/ocpp"),
                ("did/svc/OCPI", "https://volt-charge.example/ocpi/versions"),
            ],
            "roampay": [("did/svc/OCPI", "https://roampay.example/ocpi/versions")],
            "aurora-motors": [("did/svc/EVGIDataHost", "https://aurora-motors.example/data")],
            "rhine-grid": [("did/svc/IEEE2030.5", "https://rhine-grid.example/dcap")],
        }
        for name, entries in services.items():
            submitter = self.platform.submitter(self.people[name].account)
            for attribute, endpoint in entries:
                submitter.call(
                    "did",
                    "set_attribute",
                    identity=submitter.address,
                    name=attribute,
                    value=endpoint,
                    validity=ONE_YEAR,
                )
        operations = self.platform.keystore.create("volt-charge-ops")
        cpo = self.platform.submitter(self.people["volt-charge"].account)
        cpo.call(
            "did",
            "add_delegate",
            identity=cpo.address,
            delegate_type="sigAuth",
            delegate=operations.address,
            validity=ONE_YEAR,
        )

    def drivers_and_vehicles(self) -> None:
        models = [
            ("Aurora Lumen", 77_000, True),
            ("Aurora Vela", 58_000, False),
            ("Aurora Terra", 98_000, True),
        ]
        for i, (model, capacity, bidirectional) in enumerate(models, start=1):
            self.onboard(
                f"driver-{i}",
                EntityKind.USER,
                "roampay",
                {"role": "driver", "emsp": self.did("roampay")},
            )
            vehicle = self.onboard(
                f"vehicle-{i}",
                EntityKind.VEHICLE,
                "aurora-motors",
                {
                    "vin": _vin("WAU", 4100 + i),
                    "oem": self.did("aurora-motors"),
                    "model": model,
                    "batteryCapacityWh": capacity,
                    "pcid": f"DEAURPC{i:010d}1",
                    "bidirectional": bidirectional,
                },
            )
            self.onboard(
                f"battery-{i}",
                EntityKind.BATTERY,
                "aurora-motors",
                {
                    "serialNumber": f"AUR-BAT-{i:05d}",
                    "oem": self.did("aurora-motors"),
                    "chemistry": "NMC",
                    "capacityWh": capacity,
                    "vehicle": did_for(self.chain_id, vehicle.address),
                },
            )

    def chargers(self, count: int = 5, first: int = 1) -> None:
        for i in range(first, first + count):
            evse_id = f"DE*VCH*E{i:04d}*1"
            self.onboard(
                f"charger-{i}",
                EntityKind.CHARGER,
                "volt-charge",
                {
                    "evseIds": [evse_id],
                    "cpo": self.did("volt-charge"),
                    "maxPowerW": 150_000 if i % 2 else 22_000,
                    "connectors": 1,
                    "bidirectional": i % 2 == 1,
                    "country": "DE",
                },
            )
            self.onboard(
                f"meter-{i}",
                EntityKind.METER,
                "volt-charge",
                {
                    "serialNumber": f"VCH-MTR-{i:05d}",
                    "manufacturer": "Meterix",
                    "meterType": "evse",
                    "evseId": evse_id,
                    "calibrationLaw": "Eichrecht",
                },
            )

    # -- checks and report -----------------------------------------------------------------

    def resolve_all(self) -> None:
        rows = []
        for person in self.people.values():
            did = did_for(self.chain_id, person.address)
            result = resolve(self.ledger, did)
            document = result["didDocument"]
            self.report.check(
                document is not None and document["id"] == did,
                f"DID of {person.name} does not resolve",
            )
            rows.append(
                {
                    "entity": person.name,
                    "DID": did,
                    "verification methods": len(document["verificationMethod"]) if document else 0,
                    "services": ", ".join(s["type"] for s in (document or {}).get("service", [])),
                }
            )
        self.report.add(
            Section(
                "DID documents",
                "Every entity's did:ethr DID resolved from the "
                "ledger's ERC-1056 registry to a W3C DID Core document.",
                rows,
            )
        )

    def verify_certificates(self) -> None:
        rows = []
        for person in self.people.values():
            check = verify_entity_certificate(
                self.ledger, person.certificate, clock=self.platform.clock
            )
            self.report.check(check.valid, f"certificate of {person.name}: {check.reason}")
            rows.append(
                {
                    "entity": person.name,
                    "kind": person.kind.value,
                    "EID": make_eid(person.kind, person.address),
                    "issuer": person.issuer,
                    "EC hash": person.ec_hash,
                    "anchored in block": person.block,
                    "verification": check.reason,
                }
            )
        kinds = Counter(p.kind.value for p in self.people.values())
        self.report.add(
            Section(
                "Entities and their certificates",
                f"{len(self.people)} entities on-boarded; each entity certificate is a signed W3C "
                "verifiable credential whose hash is anchored on the ledger.",
                rows,
                [bar_plot("Entities by kind", list(kinds), list(kinds.values()), "entities")],
            )
        )

    def offboarding(self) -> None:
        self.chargers(count=1, first=6)
        retired = self.people["charger-6"]
        receipt = offboard_entity(self.trust_anchor, retired.address, "charger decommissioned")
        before = verify_entity_certificate(
            self.ledger, retired.certificate, receipt.block - 1, self.platform.clock
        )
        after = verify_entity_certificate(
            self.ledger, retired.certificate, clock=self.platform.clock
        )
        forged = {
            **retired.certificate,
            "credentialSubject": {**retired.certificate["credentialSubject"], "maxPowerW": 350_000},
        }
        tampered = verify_entity_certificate(self.ledger, forged, clock=self.platform.clock)
        self.report.check(before.valid, "retired charger's EC should be valid before off-boarding")
        self.report.check(not after.valid, "retired charger's EC must fail after off-boarding")
        self.report.check(not tampered.valid, "an altered EC must fail verification")
        self.report.add(
            Section(
                "Off-boarding",
                f"The trust anchor off-boarded charger-6 in block {receipt.block}.",
                [
                    {
                        "check": "charger-6 EC as of block " + str(receipt.block - 1),
                        "result": before.reason,
                    },
                    {"check": "charger-6 EC as of the head", "result": after.reason},
                    {"check": "charger-6 EC with an altered claim", "result": tampered.reason},
                ],
            )
        )

    def verify_ledger(self) -> None:
        audit = self.ledger.verify()
        self.report.check(audit.ok, f"ledger verification failed: {audit.problem}")
        head = self.ledger.head()
        blocks = [self.ledger.block(h) for h in range(1, head.height + 1)]
        self.report.add(
            Section(
                "Ledger",
                f"Engine {self.ledger.engine_name}, chain {self.chain_id}: {audit.blocks} blocks, "
                f"{audit.transactions} signed transactions, {audit.state_keys} state entries. "
                f"Verification from genesis: {'ok' if audit.ok else audit.problem}.",
                [
                    {
                        "height": b.height,
                        "hash": b.compute_hash(),
                        "transactions": b.tx_count,
                        "tx root": b.tx_root,
                    }
                    for b in blocks[-15:]
                ],
                [
                    bar_plot(
                        "Transactions per block",
                        [str(b.height) for b in blocks],
                        [b.tx_count for b in blocks],
                        "transactions",
                    )
                ],
                audit.to_json(),
            )
        )

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("on-board service providers", self.service_providers),
            ("publish DID services and delegates", self.did_services),
            ("on-board drivers, vehicles, batteries", self.drivers_and_vehicles),
            ("on-board chargers and meters", self.chargers),
            ("verify entity certificates", self.verify_certificates),
            ("resolve DID documents", self.resolve_all),
            ("off-board a retired charger", self.offboarding),
        ]


class ScenarioPart(Protocol):
    """A capability's part of the demo, run on the foundation's participants after them."""

    def steps(self) -> list[tuple[str, Callable[[], None]]]: ...


# Each later capability appends the factory of its part here.
PARTS: list[Callable[[FoundationScenario], ScenarioPart]] = [
    SettlementPart,  # wallets and tariffs before the drivers charge
    ChargingPart,
    SettlementReportPart,
    PlugAndChargePart,  # after settlement has stopped following the CSMS's transactions
    V2gPart,
    DataSharingPart,
]


def run_demo(out: Path, progress: Progress) -> DemoResult:
    """Run the scenario on a fresh data folder under `out` and write the report there."""
    data_dir = out / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    settings = Settings(
        data_dir=data_dir, database_url=f"sqlite:///{(data_dir / 'evgi.db').resolve()}"
    )
    platform = open_platform(settings)
    report = Report("evgi demo: EV charging ecosystem on the trust layer")
    try:
        scenario = FoundationScenario(platform, report)
        steps = scenario.steps()
        for part in PARTS:
            steps.extend(part(scenario).steps())
        steps.append(("verify the ledger from genesis", scenario.verify_ledger))
        with progress:
            task = progress.add_task("demo", total=len(steps))
            for description, step in steps:
                progress.update(task, description=description)
                step()
                progress.advance(task)
    finally:
        platform.close()
    html_path, json_path = report.write(out)
    return DemoResult(report.ok, report.failures, html_path, json_path, report)

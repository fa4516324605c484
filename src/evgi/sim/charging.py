"""The charging part of `evgi demo`: the foundation's chargers as OCPP stations, its drivers'
RFID cards, and one real charging session per driver against the CSMS over loopback.

The five chargers speak OCPP 1.6J, 2.0.1 and 2.1 to the CSMS running in-process, log in with
HTTP Basic credentials (security profile 1), and check every message the CSMS sends against the
official OCA schemas of their version. The stations run on simulated clocks, so an hour of
charging takes a moment.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from evgi.core.clock import SimulatedClock
from evgi.csms import Csms, TransactionEnded
from evgi.sim.report import Section, bar_plot
from evgi.sim.stations import EvseSpec, Session, Station, Vehicle, station_class

if TYPE_CHECKING:  # the scenario imports this part
    from evgi.sim.scenario import FoundationScenario

# Which OCPP version each of the foundation's chargers speaks.
VERSIONS = {
    "charger-1": "1.6",
    "charger-2": "2.0.1",
    "charger-3": "2.1",
    "charger-4": "1.6",
    "charger-5": "2.0.1",
}


@dataclass(frozen=True)
class Visit:
    """A driver bringing a vehicle to a charger with some charge left, for a while."""

    driver: str
    vehicle: str
    charger: str
    soc_percent: int
    duration: timedelta


VISITS = (
    Visit("driver-1", "vehicle-1", "charger-1", 20, timedelta(minutes=30)),
    Visit("driver-2", "vehicle-2", "charger-2", 35, timedelta(hours=1)),
    Visit("driver-3", "vehicle-3", "charger-3", 50, timedelta(minutes=40)),
)
AC_VEHICLE_W = 11_000  # the on-board charger of every demo vehicle
DC_VEHICLE_W = 120_000


def rfid_token(address: str) -> str:
    """A 7-byte ISO 14443 card UID (14 hex digits), fixed for a driver's account."""
    return "04" + address[2:14].upper()


@dataclass
class Outcome:
    visit: Visit
    version: str
    token: str
    session: Session


class ChargingPart:
    """Register chargers and cards at the CSMS, charge, and report the sessions."""

    def __init__(self, scenario: FoundationScenario) -> None:
        self.scenario = scenario
        self.platform = scenario.platform
        self.csms: Csms | None = None
        self.passwords: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.stations: dict[str, Station] = {}
        self.outcomes: list[Outcome] = []
        self.ended: dict[str, TransactionEnded] = {}
        self.url = ""

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("register chargers and RFID cards", self.register),
            ("charge over OCPP: a session per driver", self.charge),
            ("report the charging sessions", self.report),
        ]

    def _claims(self, name: str) -> dict[str, Any]:
        subject: dict[str, Any] = self.scenario.people[name].certificate["credentialSubject"]
        return subject

    def register(self) -> None:
        platform = self.platform
        self.csms = Csms(platform.settings, platform.db, platform.bus, platform.clock)
        for charger in VERSIONS:
            self.passwords[charger] = secrets.token_urlsafe(18)
            self.csms.add_station(charger, self.passwords[charger])
        for visit in VISITS:
            token = rfid_token(self.scenario.people[visit.driver].address)
            self.tokens[visit.driver] = token
            self.csms.add_token(token, "Accepted")

    def _station(self, charger: str, clock: SimulatedClock) -> Station:
        claims = self._claims(charger)
        dc = bool(claims["bidirectional"])  # the demo's DC chargers are its bidirectional ones
        return station_class(VERSIONS[charger])(
            charger,
            self.url,
            password=self.passwords[charger],
            clock=clock,
            evses=[EvseSpec(claims["maxPowerW"], dc=dc, evse_id=claims["evseIds"][0])],
            vendor="evgi",
            model="evgi-sim DC" if dc else "evgi-sim AC",
            serial_number=f"VCH-{charger}",
        )

    def _vehicle(self, visit: Visit, dc: bool) -> Vehicle:
        capacity = self._claims(visit.vehicle)["batteryCapacityWh"]
        power = DC_VEHICLE_W if dc else AC_VEHICLE_W
        return Vehicle.at_soc(capacity, visit.soc_percent, power)

    def charge(self) -> None:
        asyncio.run(self._charge())

    async def _charge(self) -> None:
        assert self.csms is not None, "register the chargers first"
        unsubscribe = self.platform.bus.subscribe(
            TransactionEnded, lambda e: self.ended.__setitem__(e.transaction_id, e)
        )
        start = self.platform.clock.now()
        try:
            async with self.csms.running("127.0.0.1", 0) as server:
                self.url = f"ws://127.0.0.1:{server.port}/ocpp"
                self.stations = {c: self._station(c, SimulatedClock(start)) for c in VERSIONS}
                await asyncio.gather(*(s.connect() for s in self.stations.values()))
                try:
                    sessions = await asyncio.gather(*(self._visit(v) for v in VISITS))
                finally:
                    await asyncio.gather(*(s.close() for s in self.stations.values()))
        finally:
            unsubscribe()
        self.outcomes = [
            Outcome(v, VERSIONS[v.charger], self.tokens[v.driver], s)
            for v, s in zip(VISITS, sessions, strict=True)
        ]

    async def _visit(self, visit: Visit) -> Session:
        station = self.stations[visit.charger]
        vehicle = self._vehicle(visit, station.evse(1).dc)
        return await station.run_session(self.tokens[visit.driver], visit.duration, vehicle=vehicle)

    def report(self) -> None:
        report = self.scenario.report
        for name, station in self.stations.items():
            report.check(station.registration == "Accepted", f"{name} was not accepted at boot")
            report.check(not station.schema_violations, f"{name} received invalid OCPP messages")
            report.check(len(station.outbox) == 0, f"{name} kept undelivered messages")
        rows: list[dict[str, Any]] = []
        for outcome in self.outcomes:
            session, visit = outcome.session, outcome.visit
            ended = self.ended.get(session.transaction_id or "")
            stopped = session.stopped
            report.check(session.energy_wh > 0, f"no energy in {visit.driver}'s session")
            report.check(
                ended is not None and ended.energy_wh == session.energy_wh,
                f"the CSMS's energy for {visit.driver}'s session differs from the station's",
            )
            rows.append(
                {
                    "station": visit.charger,
                    "version": outcome.version,
                    "driver": visit.driver,
                    "token": outcome.token,
                    "transaction": session.transaction_id,
                    "start": session.started.isoformat(timespec="seconds"),
                    "stop": stopped.isoformat(timespec="seconds") if stopped else "",
                    "energy Wh": session.energy_wh,
                }
            )
        checked = sum(s.messages_checked for s in self.stations.values())
        violations = sum(len(s.schema_violations) for s in self.stations.values())
        versions = ", ".join(f"{name} {version}" for name, version in VERSIONS.items())
        report.add(
            Section(
                "Charging sessions (OCPP)",
                f"The CSMS served the five chargers as OCPP stations ({versions}) at "
                f"{self.url}/{{id}} with HTTP Basic authentication; each driver's RFID card "
                f"started and stopped a session. The stations checked all {checked} messages "
                f"the CSMS sent them against the official OCA JSON schemas: {violations} "
                "violations.",
                rows,
                [
                    bar_plot(
                        "Energy per session",
                        [f"{row['driver']} @ {row['station']}" for row in rows],
                        [row["energy Wh"] for row in rows],
                        "Wh",
                    )
                ],
                {
                    "stations": VERSIONS,
                    "messages_checked": checked,
                    "schema_violations": violations,
                },
            )
        )

"""The V2G part of `evgi demo`: an evening on one residential feeder of the utility, with the
grid security layer and the consumer support layer each doing its own job (seed 001).

Grid side: the utility's IEEE 2030.5 server runs in-process on a free loopback port with mutual
TLS. Its "evening peak" program permits export only during a DERControl event (outside it, the
program's DefaultDERControl allows none), and its "feeder voltage" program keeps a volt-var
curve in force all evening. Each EVSE holds a device certificate of the grid CA; its GridClient
reads the programs, puts the control in force into the inverter (in the EVSE for DC, in the
vehicle for AC) and answers the events; the inverter clamps every setpoint it is given.

Consumer side: the utility's discharge program, the drivers' consents, the agreement to
discharge (with every refusal reason), the day-ahead fleet plan and the real-time dispatcher,
which each minute holds every vehicle to its planned power as far as it can go and shares what
some cannot do (a refusal since the plan, a grid limit below the program's) among the others,
within the limits the EVSEs report.

Between the two, the CPO's CSMS: each home EVSE is a simulated OCPP station on a real
websocket. 2.1 stations tell the EV's charging needs (with its V2X limits) when it plugs in;
the day-ahead schedule and then each setpoint of the dispatcher that differs from it go to
them as V2X charging profiles, and to the 1.6 station as charging limits, with the reason a
discharge became 0 W. The station applies its profile's setpoint to the inverter, which still
clamps it to the 2030.5 limits in force, meters import and export on registers of their own,
and raises a DER alarm when the grid limit holds a setpoint. When the vehicles leave, the
export each session metered is paid to the driver's wallet at the program's event price.

The feeder (sim/feeder.py) turns households, EV charging and the inverters' active and
reactive power into the voltage each inverter measures the next minute. The same evening is
run without V2G (every EV charging flat out on arrival) for comparison.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from cryptography.hazmat.primitives.serialization import Encoding
from numpy.typing import NDArray
from sqlalchemy import Engine

from evgi.app import Platform
from evgi.config import Settings
from evgi.core.clock import SimulatedClock
from evgi.core.units import Money
from evgi.csms import Csms, TransactionEnded, TransactionStarted
from evgi.csms.metering import format_time
from evgi.csms.v21 import DerAlarm
from evgi.grid import (
    RESPONSE_STATUS,
    Coupling,
    CsipServer,
    DerPrograms,
    EndDevices,
    GridClient,
    Inverter,
    Output,
    Rating,
    Schema,
    Setpoint,
    client_ssl_context,
    grid_authority,
    lfdi,
)
from evgi.grid.client import COMPLETED, OPTED_OUT, RECEIVED, STARTED
from evgi.settlement import ExportPayment, ExportPayments, Wallets
from evgi.sim.feeder import Feeder
from evgi.sim.report import Section, line_plot
from evgi.sim.settlement import CURRENCY
from evgi.sim.stations import EvseSpec, PowerStage, Station21, StationError, station_class
from evgi.sim.stations import Station as OcppStation
from evgi.storage import ChargingStore
from evgi.storage.grid import GridStore
from evgi.v2g import (
    REFUSED_BY,
    Consent,
    Decision,
    DischargeProgram,
    Evse,
    Executor,
    Fleet,
    Grid,
    Period,
    Plan,
    ProgramOperator,
    Sent,
    StationCommands,
    Target,
    V2gRegister,
    Vehicle,
    VehicleStates,
    decide,
    plan_fleet,
    share,
)
from evgi.v2g.station_commands import plan_periods

if TYPE_CHECKING:  # the scenario imports this part
    from evgi.sim.scenario import FoundationScenario

Array = NDArray[np.float64]

UTC_OFFSET_H = 1  # the feeder is in Germany, on winter time
EVENING_H = 15  # 16:00 to 07:00 local time
STEP = timedelta(minutes=1)
SLOT_MIN = 15
# Every EVSE and AC vehicle inverter: 11 kW both ways, 11.5 kVA, with the North American
# nominal values IEEE 1547's ride-through and enter-service defaults are written for.
RATING = Rating(11_000, 11_000, 11_500)
FREQUENCY_HZ = RATING.nominal_hz
EFFICIENCY = 0.95
# The peak event, in minutes after 16:00 local: 17:30 to 21:00. During it the utility allows
# export up to half the rating; outside it, none.
EVENT_START_MIN, EVENT_MIN = 90, 210
EVENT_LIMIT = 5000  # opModMaxLimW, hundredths of a per cent of setMaxW
# The utility's volt-var curve: x in hundredths of a per cent of VRef, y in per cent of the
# available reactive power; inject below 0.98 pu, absorb above 1.02 pu.
VOLT_VAR = [(9400, 100), (9800, 0), (10200, 0), (10600, -100)]
# The feeder's rating: the plan keeps households and EV charging together under it.
FEEDER_LIMIT_W = 55_000
PROGRAM_MAX_W = 7_000
# Energy prices (minor units per MWh): peak 17:00-21:00, cheap night, and what the utility's
# program pays for energy exported during its event.
PEAK_BUY, DAY_BUY, NIGHT_BUY, EVENT_SELL = 30_000, 20_000, 12_000, 45_000
# Export is paid at the event price (per kWh), from the program's budget; export only happens
# during the event, where the grid limit allows it.
EXPORT_PRICE = Money(CURRENCY, EVENT_SELL // 1000)
PROGRAM_WALLET = "rhine-grid-evening-peak"
PROGRAM_BUDGET = Money(CURRENCY, 100_00)
# The stations send meter values each half hour; at plug-in they get the next six hours of
# the day-ahead plan, within the 24 periods a station takes.
SAMPLE_INTERVAL_S = 1800
PLAN_SLOTS = 24
# The home EVSEs' link is quiet between meter values: a heartbeat an hour tells they are alive.
HEARTBEAT_S = 3600


@dataclass(frozen=True)
class Resident:
    """A driver on the feeder, the vehicle and home EVSE, and how the evening goes for them."""

    driver: str
    vehicle: str
    node: int
    coupling: Coupling
    receives_1547: bool
    capacity_wh: int
    soc_percent: int
    floor_percent: int
    arrival_min: int
    target_percent: int = 80
    opts_out_min: int | None = None
    ocpp: str = "2.1"

    @property
    def number(self) -> int:
        return int(self.vehicle.rsplit("-", 1)[1])

    @property
    def evse_id(self) -> str:
        return f"DE*VCH*E{100 + self.number:04d}*1"

    @property
    def station_id(self) -> str:
        return f"home-evse-{self.number}"

    @property
    def card(self) -> str:
        """The driver's RFID card at the home EVSE (a 7-byte UID)."""
        return f"04E2{self.number:010X}"

    @property
    def bidirectional(self) -> bool:
        """Whether the EV asks its station for bidirectional transfer: DC vehicles, whose EVSE
        has the inverter, and AC vehicles whose own inverter takes 1547 functions."""
        return self.coupling is Coupling.DC or self.receives_1547

    @property
    def modes(self) -> frozenset[str]:
        if self.coupling is Coupling.DC:
            return frozenset({"DC", "DC_BPT"})
        return frozenset({"AC_three_phase", "AC_BPT"})


RESIDENTS = (
    Resident("driver-1", "vehicle-1", 5, Coupling.DC, True, 77_000, 80, 40, 20),
    Resident("driver-2", "vehicle-2", 2, Coupling.AC, False, 58_000, 45, 30, 65),
    Resident("driver-3", "vehicle-3", 4, Coupling.DC, True, 98_000, 70, 30, 45),
    Resident("driver-4", "vehicle-4", 3, Coupling.AC, True, 60_000, 75, 35, 75),
    Resident("driver-5", "vehicle-5", 1, Coupling.DC, True, 77_000, 25, 30, 10),
    Resident(
        "driver-6",
        "vehicle-6",
        0,
        Coupling.DC,
        True,
        64_000,
        85,
        30,
        30,
        opts_out_min=80,
        ocpp="1.6",
    ),
)
FEEDER = Feeder.cable((4, 4, 4, 4, 4, 4), segment_m=120, ohm_per_km=(0.32, 0.08))


# The devices re-read their programs hourly: every event of the evening is scheduled before
# they first read, and a newer one would reach them within the hour.
POLL_RATE_S = 3600


@contextmanager
def grid_server(settings: Settings, db: Engine, clock: SimulatedClock) -> Iterator[CsipServer]:
    """The real 2030.5 server on a free loopback port, its event loop in a thread of its own
    so the EVSEs' synchronous clients can call it."""
    server = CsipServer(settings, db, clock, poll_rate_s=POLL_RATE_S)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="evgi-2030.5", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start("127.0.0.1", 0), loop).result(30)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def _store(soc_wh: float, active_w: float, hours: float) -> float:
    """State of charge after `hours` at `active_w` (positive discharges), with losses."""
    if active_w >= 0:
        return soc_wh - active_w * hours / EFFICIENCY
    return soc_wh - active_w * hours * EFFICIENCY


def _exported_wh(active_w: Array) -> float:
    """Wh exported from a station's minute-by-minute output (positive discharging)."""
    return float(np.maximum(active_w, 0.0).sum() * STEP.total_seconds() / 3600)


def _in_event(minutes: Array) -> NDArray[np.bool_]:
    """Which minutes after 16:00 fall in the utility's peak event."""
    return (minutes >= EVENT_START_MIN) & (minutes < EVENT_START_MIN + EVENT_MIN)


def _local_hour(at: datetime) -> float:
    return (at.hour + UTC_OFFSET_H + at.minute / 60) % 24


@dataclass
class Station:
    """One EVSE on the feeder: its 2030.5 client and the inverter the client feeds, its OCPP
    side, and the schedule the CSMS last sent it (start, periods)."""

    resident: Resident
    client: GridClient
    inverter: Inverter
    ocpp: OcppStation
    evse: Evse
    consent: Consent
    soc_wh: float
    decision: Decision | None = None
    target: Target | None = None
    in_force: tuple[datetime, list[Period]] | None = None

    def applies(self, power_w: float) -> float:
        """The power the station holds for a schedule's `power_w`: before 2.1, a charging limit
        only, drawn in full."""
        return power_w if isinstance(self.ocpp, Station21) else max(power_w, 0.0)

    def scheduled_w(self, at: datetime) -> float | None:
        """What the schedule in force has the station hold at `at`."""
        if self.in_force is None:
            return None
        start, periods = self.in_force
        offset = (at - start).total_seconds()
        return self.applies([p.power_w for p in periods if p.start_s <= offset][-1])


@dataclass
class Evening:
    """What happened, minute by minute; `checks` says whether it went as the layers promise."""

    start: datetime
    times: list[datetime]
    residents: tuple[Resident, ...]
    plan: Plan
    peak_event: str
    feeder_event: str
    load_without_w: Array
    load_with_w: Array
    voltage_without: Array  # minute x node, per unit
    voltage_with: Array
    active_w: Array  # minute x station, positive discharging
    reactive_var: Array  # minute x station, positive injecting
    requested_w: Array  # minute x station: the consumer layer's setpoint
    limit_w: Array  # minute x station: the export limit of the utility's controls
    soc_wh: Array  # minute x station
    metered_w: Array  # minute x station: the power the station metered, positive exporting
    decisions: dict[str, list[Decision]] = field(default_factory=dict)
    responses: dict[str, set[int]] = field(default_factory=dict)
    probe_w: dict[str, float] = field(default_factory=dict)
    telemetry: dict[str, int] = field(default_factory=dict)
    sent: dict[str, list[Sent]] = field(default_factory=dict)  # charging profiles, per vehicle
    needs: dict[str, str] = field(default_factory=dict)  # the CSMS's answer to the EV's needs
    alarms: dict[str, list[DerAlarm]] = field(default_factory=dict)
    overreached: set[str] = field(default_factory=set)
    der_control: tuple[str, str] | None = None  # station, its answer to SetDERControl
    export_register_wh: dict[str, int] = field(default_factory=dict)
    payments: dict[str, ExportPayment] = field(default_factory=dict)
    schema_violations: int = 0

    @property
    def event_window(self) -> tuple[datetime, datetime]:
        begin = self.start + timedelta(minutes=EVENT_START_MIN)
        return begin, begin + timedelta(minutes=EVENT_MIN)

    def agreed(self, vehicle: str) -> bool:
        """The decision in force during the event (the last one taken)."""
        return bool(self.decisions[vehicle]) and self.decisions[vehicle][-1].agreed

    def exported_wh(self, index: int) -> float:
        return _exported_wh(self.active_w[:, index])

    def checks(self) -> list[tuple[bool, str]]:
        """Assertions on the outcome, each with the failure it reports."""
        found: list[tuple[bool, str]] = []
        tolerance = 1e-6
        apparent = np.hypot(self.active_w, self.reactive_var)
        found.append(
            (
                bool(np.all(self.active_w <= self.limit_w + tolerance)),
                "an inverter exported more than the utility's control in force allows",
            )
        )
        found.append(
            (
                bool(np.all(apparent <= RATING.apparent_va + tolerance))
                and bool(np.all(np.abs(self.reactive_var) <= RATING.max_var + tolerance)),
                "an inverter left its apparent or reactive power rating",
            )
        )
        for index, resident in enumerate(self.residents):
            vehicle = resident.vehicle
            floor = resident.capacity_wh * resident.floor_percent / 100
            if self.agreed(vehicle):
                found.append(
                    (self.exported_wh(index) > 0, f"{vehicle} agreed but did not discharge")
                )
                found.append(
                    (
                        bool(np.all(self.soc_wh[:, index] >= floor - 1)),
                        f"{vehicle} was discharged below its state-of-charge floor",
                    )
                )
            else:
                refused_at = self.decisions[vehicle][-1].decided_at
                after = np.array([at >= refused_at for at in self.times])
                found.append(
                    (
                        bool(np.all(self.active_w[after, index] <= tolerance)),
                        f"{vehicle} discharged after it was refused",
                    )
                )
            if not resident.receives_1547 and resident.coupling is Coupling.AC:
                found.append(
                    (
                        self.probe_w[vehicle] <= tolerance,
                        f"the inverter of {vehicle} would discharge without 1547 functions",
                    )
                )
            found.append(
                (
                    self.probe_w[vehicle] <= RATING.max_discharge_w * EVENT_LIMIT / 10000 + 1e-6,
                    f"asked to discharge flat out, the inverter of {vehicle} left the limit",
                )
            )
            expected = {RECEIVED, STARTED, COMPLETED}
            if resident.opts_out_min is not None:
                expected = {RECEIVED, OPTED_OUT}
            found.append(
                (
                    expected <= self.responses.get(vehicle, set()),
                    f"the EVSE of {vehicle} did not answer the peak event with {sorted(expected)}",
                )
            )
            target = resident.capacity_wh * resident.target_percent / 100
            found.append(
                (
                    self.soc_wh[-1, index] >= target - 0.02 * resident.capacity_wh,
                    f"{vehicle} left short of its departure energy",
                )
            )
        found.append(
            (
                self.load_with_w.max() < self.load_without_w.max(),
                "V2G did not lower the feeder's peak load",
            )
        )
        begin, end = self.event_window
        during = np.array([begin <= at < end for at in self.times])
        found.append(
            (
                self.load_with_w[during].max() < self.load_without_w[during].max(),
                "the feeder's load in the peak event did not fall with V2G",
            )
        )
        low = self.voltage_with[:-1] < 0.98 - 1e-3
        injected = self.reactive_var[1:][low.any(axis=1)]
        found.append(
            (
                bool(low.any()) and bool(np.all(injected.sum(axis=1) > 0)),
                "the inverters did not inject reactive power while the voltage was low",
            )
        )
        found.append(
            (
                self.voltage_with.min() > self.voltage_without.min(),
                "the lowest voltage on the feeder did not rise with V2G",
            )
        )
        found.append(
            (
                all(count > 0 for count in self.telemetry.values()),
                "the utility's server holds no telemetry of some EVSE",
            )
        )
        return found + self._ocpp_checks()

    def _ocpp_checks(self) -> list[tuple[bool, str]]:
        """The OCPP side: profiles taken, grid limits kept at the meter, export paid."""
        found: list[tuple[bool, str]] = [
            (
                bool(np.all(self.metered_w <= self.limit_w + 1)),
                "a station metered export past the grid limit in force",
            ),
            (self.schema_violations == 0, "the CSMS sent a home EVSE invalid OCPP messages"),
            (
                self.der_control is not None and self.der_control[1] == "Accepted",
                "no 2.1 station accepted the CSMS's DER control",
            ),
        ]
        # Each minute the meter counts the stage's power in whole W, and the register whole Wh.
        rounding_wh = 0.5 * len(self.times) * STEP.total_seconds() / 3600 + 1
        for index, resident in enumerate(self.residents):
            vehicle = resident.vehicle
            sent = self.sent.get(vehicle, [])
            found.append(
                (
                    bool(sent) and all(s.status == "Accepted" for s in sent),
                    f"the station of {vehicle} did not accept every charging profile",
                )
            )
            if resident.ocpp == "2.1":
                expected = "Processing" if resident.bidirectional else "NoChargingProfile"
                found.append(
                    (
                        self.needs.get(vehicle) == expected,
                        f"the CSMS did not answer {vehicle}'s charging needs with {expected}",
                    )
                )
            elif bool((self.plan.power_w[index] < 0).any()):
                # The plan it got at plug-in asks for discharge its OCPP version cannot carry.
                found.append(
                    (
                        any(s.reason for s in sent),
                        f"the {resident.ocpp} station of {vehicle} was asked to discharge "
                        "and no reason was recorded",
                    )
                )
            metered = self.export_register_wh.get(vehicle, 0)
            found.append(
                (
                    abs(metered - self.exported_wh(index)) <= rounding_wh,
                    f"the export register of {vehicle}'s station disagrees with its inverter",
                )
            )
            payment = self.payments.get(vehicle)
            if metered > 0:
                found.append(
                    (
                        payment is not None
                        and payment.export_wh == metered
                        and payment.amount_minor == metered * EXPORT_PRICE.minor // 1000,
                        f"{vehicle}'s driver was not paid the metered export at the price",
                    )
                )
            else:
                found.append((payment is None, f"{vehicle}'s driver was paid without export"))
        for vehicle in self.overreached:
            raised = [a for a in self.alarms.get(vehicle, []) if not a.alarm_ended]
            cleared = [a for a in self.alarms.get(vehicle, []) if a.alarm_ended]
            found.append(
                (
                    bool(raised) and bool(cleared),
                    f"the station of {vehicle} raised and cleared no DER alarm when the grid "
                    "limit held its setpoint",
                )
            )
        found.append((bool(self.overreached), "no station was asked past the grid limit"))
        return found


def _power_stage(
    inverter: Inverter, at: datetime, volts: float, outputs: list[Output]
) -> PowerStage:
    """The inverter as the station's power stage: it takes the station's setpoint (import
    positive) and clamps it to the grid limits in force; its output is kept in `outputs`."""

    def stage(setpoint_w: float) -> float:
        inverter.request(Setpoint(-setpoint_w))
        output = inverter.step(at, volts, FREQUENCY_HZ)
        outputs.append(output)
        return -output.active_w

    return stage


def _prices(start: datetime, slots: int) -> tuple[Array, Array]:
    hours = np.array(
        [_local_hour(start + timedelta(minutes=SLOT_MIN * s)) for s in range(slots)],
    )
    buy = np.where((hours >= 17) & (hours < 21), PEAK_BUY, np.where(hours < 6, NIGHT_BUY, DAY_BUY))
    sell = np.where(
        _in_event(np.arange(slots, dtype=np.float64) * SLOT_MIN), EVENT_SELL, buy - 2_000
    )
    return buy.astype(np.float64), sell.astype(np.float64)


class V2gEvening:
    """Runs the evening: grid programs and devices, consumer programs and consents, the
    simulation at one-minute steps and the comparison without V2G."""

    def __init__(
        self,
        platform: Platform,
        operator_id: str = "rhine-grid",
        day: date | None = None,
        residents: tuple[Resident, ...] = RESIDENTS,
        feeder: Feeder = FEEDER,
    ) -> None:
        self.platform = platform
        self.settings = platform.settings
        self.db = platform.db
        self.operator_id = operator_id
        day = day or datetime.now(UTC).date()
        self.start = datetime(day.year, day.month, day.day, 16 - UTC_OFFSET_H, tzinfo=UTC)
        self.residents = residents
        self.feeder = feeder
        self.clock = SimulatedClock(self.start)
        self.register = V2gRegister(self.db)
        self.times = [self.start + STEP * i for i in range(EVENING_H * 60)]

    # -- the grid security layer -------------------------------------------------------------

    def utility_programs(self) -> tuple[str, str]:
        """The peak event and the all-evening volt-var control, on the 2030.5 server."""
        programs = DerPrograms(GridStore(self.db), self.clock)
        programs.create_program("evening peak", 1, {"opModMaxLimW": 0})
        programs.create_program("feeder voltage", 2)
        curve = programs.create_curve(
            "feeder voltage", "opModVoltVar", VOLT_VAR, x_multiplier=-2, y_ref_type=2
        )
        feeder_event = programs.create_control(
            "feeder voltage",
            {"opModVoltVar": {"href": curve}},
            self.start,
            EVENING_H * 3600,
            "volt-var all evening",
        )
        peak_event = programs.create_control(
            "evening peak",
            {"opModMaxLimW": EVENT_LIMIT},
            self.start + timedelta(minutes=EVENT_START_MIN),
            EVENT_MIN * 60,
            "evening peak: export allowed",
        )
        return peak_event, feeder_event

    def _station(
        self, resident: Resident, base_url: str, schema: Schema | None, ocpp: OcppStation
    ) -> Station:
        """Admit the EVSE's certificate on the server and connect its client over mTLS."""
        authority = grid_authority(self.settings)
        identity = authority.issue_device_certificate(resident.evse_id)
        der = identity.certificate.public_bytes(Encoding.DER)
        pin = 424_240 + resident.node  # printed on the EVSE for its installer
        EndDevices(GridStore(self.db), self.clock).register(lfdi(der), pin)
        inverter = Inverter(
            RATING, resident.coupling, accepts_grid_functions=resident.receives_1547
        )
        client = GridClient(
            base_url,
            client_ssl_context(authority.certificate_pem, identity),
            der,
            inverter,
            self.clock,
            pin=pin,
            schema=schema,
        )
        client.register()
        consent = Consent(
            driver=resident.driver,
            vehicle=resident.vehicle,
            program_id=self.program.id,
            min_soc_percent=resident.floor_percent,
            departure_at=self.start + timedelta(hours=EVENING_H),
            departure_energy_wh=resident.capacity_wh * resident.target_percent // 100,
            energy_transfer=resident.modes,
            given_at=self.start,
        )
        self.register.save_consent(consent)
        evse = Evse(resident.evse_id, True, True, resident.coupling.value.upper())
        soc = resident.capacity_wh * resident.soc_percent / 100
        return Station(resident, client, inverter, ocpp, evse, consent, soc)

    def _ocpp_station(self, resident: Resident, url: str, password: str) -> OcppStation:
        """The home EVSE as an OCPP station of its version, on a clock of its own that the
        evening keeps in step."""
        station = station_class(resident.ocpp)(
            resident.station_id,
            url,
            password=password,
            clock=SimulatedClock(self.start),
            evses=[
                EvseSpec(
                    int(RATING.max_charge_w),
                    dc=resident.coupling is Coupling.DC,
                    evse_id=resident.evse_id,
                )
            ],
            model="evgi-sim home",
        )
        station.config.put("sample_interval", SAMPLE_INTERVAL_S)
        return station

    # -- the consumer support layer ------------------------------------------------------------

    @property
    def program(self) -> DischargeProgram:
        return DischargeProgram(
            id="rhine-grid-evening-peak",
            name="Rhine Grid evening peak",
            operator=ProgramOperator.UTILITY,
            operator_id=self.operator_id,
            executed_by=Executor.EVSE,
            priority=0,
            max_discharge_w=PROGRAM_MAX_W,
            created_at=self.start,
        )

    def _agreement(self, station: Station, at: datetime) -> Decision:
        """The seed's agreement rules for the station's vehicle as it is now."""
        resident = station.resident
        vehicle = Vehicle(
            resident.vehicle, int(station.soc_wh), resident.capacity_wh, resident.receives_1547
        )
        return decide(self.program, station.evse, vehicle, station.consent, at)

    def _decide(self, station: Station, at: datetime) -> Decision:
        decision = self._agreement(station, at)
        self.register.record(decision)
        station.decision = decision
        return decision

    def _plan(self, stations: list[Station]) -> Plan:
        """The day-ahead plan on what the consumer layer knows at 16:00: arrivals, consents,
        and who could discharge if the evening went as announced."""
        slots = EVENING_H * 60 // SLOT_MIN
        allowed = [self._agreement(s, self.start).agreed for s in stations]
        fleet = Fleet.of(
            arrival_slot=[-(-s.resident.arrival_min // SLOT_MIN) for s in stations],
            departure_slot=slots,
            soc_wh=[s.soc_wh for s in stations],
            capacity_wh=[s.resident.capacity_wh for s in stations],
            floor_wh=[s.consent.floor_wh(s.resident.capacity_wh) for s in stations],
            target_wh=[s.consent.departure_energy_wh for s in stations],
            max_charge_w=RATING.max_charge_w,
            max_discharge_w=[PROGRAM_MAX_W if ok else 0 for ok in allowed],
            charge_efficiency=EFFICIENCY,
            discharge_efficiency=EFFICIENCY,
        )
        forecast = np.array(
            [
                self.feeder.household_load(self.start + timedelta(minutes=SLOT_MIN * s), 1)[0].sum()
                for s in range(slots)
            ]
        )
        in_event = _in_event(np.arange(slots, dtype=np.float64) * SLOT_MIN)
        buy, sell = _prices(self.start, slots)
        grid = Grid.of(
            import_limit_w=np.maximum(FEEDER_LIMIT_W - forecast, 0.0),
            export_limit_w=np.where(in_event, PROGRAM_MAX_W * len(stations), 0.0),
            buy_price=buy,
            sell_price=sell,
            slots=slots,
            slot_s=SLOT_MIN * 60,
        )
        return plan_fleet(fleet, grid)

    # -- the evening ----------------------------------------------------------------------------

    def run(self) -> Evening:
        self.register.add_program(self.program)
        peak_event, feeder_event = self.utility_programs()
        payments = self._export_payments()
        schema = None if self.settings.grid_schema is None else Schema(self.settings.grid_schema)
        with grid_server(self.settings, self.db, self.clock) as server:
            evening, stations, ended = asyncio.run(
                self._over_ocpp(
                    f"https://127.0.0.1:{server.port}", schema, peak_event, feeder_event
                )
            )
        store = GridStore(self.db)
        for station in stations:
            vehicle, lfdi = station.resident.vehicle, station.client.lfdi
            evening.responses[vehicle] = {
                row.status for row in store.responses(subject=peak_event, lfdi=lfdi)
            }
            points = store.usage_points(lfdi)
            evening.telemetry[vehicle] = sum(len(store.latest_readings(p.id)) for p in points)
            evening.decisions[vehicle] = self.register.decisions(vehicle)
            event = ended.get(station.resident.station_id)
            payment = None if event is None else payments.pay(event)
            if payment is not None:
                evening.payments[vehicle] = payment
        return evening

    def _export_payments(self) -> ExportPayments:
        """The drivers' wallets, each linked to the card of the driver's home EVSE, and the
        program's budget that pays for the export."""
        wallets = Wallets.for_platform(self.platform, CURRENCY)
        for resident in self.residents:
            if wallets.find(resident.driver) is None:
                wallets.open(resident.driver)
            wallets.link(resident.driver, resident.card)
        wallets.topup(PROGRAM_WALLET, PROGRAM_BUDGET).raise_for_status()
        payer = wallets.account(wallets.get(PROGRAM_WALLET))
        return ExportPayments(wallets, ChargingStore(self.db), EXPORT_PRICE, payer)

    async def _over_ocpp(
        self, base_url: str, schema: Schema | None, peak_event: str, feeder_event: str
    ) -> tuple[Evening, list[Station], dict[str, TransactionEnded]]:
        """The CSMS on a free loopback port, the home EVSEs connected to it and to the 2030.5
        server, and the evening run through both; the transactions that ended, by station."""
        settings = self.settings.model_copy(update={"ocpp_heartbeat_interval": HEARTBEAT_S})
        csms = Csms(settings, self.db, self.platform.bus, self.clock)
        passwords = {r.station_id: secrets.token_urlsafe(18) for r in self.residents}
        for resident in self.residents:
            csms.add_station(resident.station_id, passwords[resident.station_id])
            csms.add_token(resident.card, "Accepted")
        started: dict[str, str] = {}
        ended: dict[str, TransactionEnded] = {}
        alarms: list[DerAlarm] = []
        bus = self.platform.bus
        unsubscribe = [
            bus.subscribe(
                TransactionStarted, lambda e: started.__setitem__(e.station_id, e.transaction_id)
            ),
            bus.subscribe(TransactionEnded, lambda e: ended.__setitem__(e.station_id, e)),
            bus.subscribe(DerAlarm, alarms.append),
        ]
        commands = StationCommands(csms.commands, self.clock)
        stations: list[Station] = []
        try:
            async with csms.running("127.0.0.1", 0) as server:
                url = f"ws://127.0.0.1:{server.port}/ocpp"
                try:
                    for r in self.residents:
                        ocpp = self._ocpp_station(r, url, passwords[r.station_id])
                        stations.append(self._station(r, base_url, schema, ocpp))
                    await asyncio.gather(*(s.ocpp.connect() for s in stations))
                    evening = await self._simulate(
                        stations, commands, started, peak_event, feeder_event
                    )
                    for station in stations:
                        if station.ocpp.session() is not None:
                            await station.ocpp.stop_charging()
                            await station.ocpp.unplug()
                finally:
                    for station in stations:
                        station.client.close()
                        await station.ocpp.close()
        finally:
            for cancel in unsubscribe:
                cancel()
        for station in stations:
            resident = station.resident
            evening.sent[resident.vehicle] = [
                s for s in commands.sent if s.target.station_id == resident.station_id
            ]
            evening.alarms[resident.vehicle] = [
                a for a in alarms if a.station_id == resident.station_id
            ]
            evening.export_register_wh[resident.vehicle] = (
                station.ocpp.evse().meter.export_register_wh
            )
            evening.schema_violations += len(station.ocpp.schema_violations)
        return evening, stations, ended

    async def _plug_in(
        self,
        station: Station,
        index: int,
        step: int,
        plan: Plan,
        commands: StationCommands,
        started: dict[str, str],
    ) -> str | None:
        """The driver plugs in; a 2.1 EV tells its charging needs (the CSMS's answer is
        returned), so its transaction meters export from the start; the driver badges; the CSMS
        sends the station the next hours of the day-ahead plan."""
        resident, ocpp = station.resident, station.ocpp
        await ocpp.plug_in()
        answer = None
        if isinstance(ocpp, Station21):
            answer = await ocpp.notify_ev_charging_needs(1, self._charging_needs(resident))
        status = await ocpp.present_token(resident.card)
        transaction = started.get(resident.station_id)
        if status != "Accepted" or transaction is None:
            raise StationError(f"{resident.station_id} started no transaction: {status}")
        station.target = Target(resident.station_id, 1, transaction)
        slot, elapsed = divmod(step, SLOT_MIN)
        row = np.round(plan.power_w[index, slot : slot + PLAN_SLOTS])
        await self._schedule(
            station, commands, plan_periods(row.tolist(), SLOT_MIN * 60, elapsed * 60)
        )
        return answer

    def _charging_needs(self, resident: Resident) -> dict[str, Any]:
        """NotifyEVChargingNeeds' chargingNeeds (snake_case): the transfer the EV asks for
        and, when bidirectional, its V2X limits."""
        if not resident.bidirectional:
            return {"requested_energy_transfer": "AC_three_phase"}
        mode = "DC_BPT" if resident.coupling is Coupling.DC else "AC_BPT"
        return {
            "requested_energy_transfer": mode,
            "control_mode": "DynamicControl",
            "departure_time": format_time(self.start + timedelta(hours=EVENING_H)),
            "v2x_charging_parameters": {
                "max_charge_power": float(RATING.max_charge_w),
                "max_discharge_power": float(RATING.max_discharge_w),
            },
        }

    async def _schedule(
        self, station: Station, commands: StationCommands, periods: list[Period]
    ) -> None:
        assert station.target is not None, "the vehicle plugs in first"
        await commands.send_setpoints(station.target, periods)
        station.in_force = (self.clock.now(), periods)

    async def _dispatch_to(
        self, stations: list[Station], shares: Array, commands: StationCommands, overreach: bool
    ) -> set[str]:
        """Each dispatched setpoint the station's schedule does not hold already goes to it.
        With `overreach`, a consumer layer gone wrong asks every vehicle that may discharge
        for all it can give: the grid limits must hold it. Returns the vehicles overreached."""
        overreached: set[str] = set()
        for index, station in enumerate(stations):
            if station.target is None:
                continue
            wanted = float(round(shares[index]))
            agreed = station.decision is not None and station.decision.agreed
            if overreach and agreed and isinstance(station.ocpp, Station21):
                wanted = -float(RATING.max_discharge_w)
                overreached.add(station.resident.vehicle)
            scheduled = station.scheduled_w(self.clock.now())
            if scheduled is None or round(scheduled) != round(station.applies(wanted)):
                await self._schedule(station, commands, [Period(0, wanted)])
        return overreached

    async def _der_control(
        self, stations: list[Station], commands: StationCommands
    ) -> tuple[str, str]:
        """The CPO passes the peak event on to its first 2.1 station as a DER control."""
        station = next(s for s in stations if isinstance(s.ocpp, Station21))
        begin = self.start + timedelta(minutes=EVENT_START_MIN)
        answer = await commands.commands.set_der_control(
            station.resident.station_id,
            "evening-peak",
            "LimitMaxDischarge",
            {
                "limitMaxDischarge": {
                    "priority": 1,
                    "pctMaxDischargePower": EVENT_LIMIT / 100,
                    "startTime": format_time(begin),
                    "duration": EVENT_MIN * 60,
                }
            },
        )
        return station.resident.station_id, str(answer.status)

    async def _simulate(
        self,
        stations: list[Station],
        commands: StationCommands,
        started: dict[str, str],
        peak_event: str,
        feeder_event: str,
    ) -> Evening:
        steps, size = len(self.times), len(stations)
        plan = self._plan(stations)
        nodes = np.array([s.resident.node for s in stations])
        arrival = np.array([s.resident.arrival_min for s in stations])
        event_begin, event_end = (
            self.start + timedelta(minutes=EVENT_START_MIN),
            self.start + timedelta(minutes=EVENT_START_MIN + EVENT_MIN),
        )
        active = np.zeros((steps, size))
        reactive = np.zeros((steps, size))
        requested = np.zeros((steps, size))
        limit = np.zeros((steps, size))
        soc = np.zeros((steps, size))
        metered = np.zeros((steps, size))
        needs: dict[str, str] = {}
        overreached: set[str] = set()
        der_control = None
        load = np.zeros(steps)
        voltage = np.zeros((steps, self.feeder.nodes))
        probe: dict[str, float] = {}
        measured = np.full(self.feeder.nodes, self.feeder.source_pu)
        hours = STEP.total_seconds() / 3600
        for step, at in enumerate(self.times):
            if step:
                self.clock.advance(STEP)
            plugged = arrival <= step
            for index, station in enumerate(stations):
                resident = station.resident
                if resident.opts_out_min == step:
                    station.consent = station.consent.opt_out(at)
                    self.register.save_consent(station.consent)
                    station.client.opt_out(peak_event)
                    self._decide(station, at)
                elif resident.arrival_min == step or (
                    at == event_begin and station.decision is not None
                ):
                    self._decide(station, at)
                if resident.arrival_min == step:
                    answer = await self._plug_in(station, index, step, plan, commands, started)
                    if answer is not None:
                        needs[resident.vehicle] = answer
            for station in stations:
                station.client.poll()
            envelope = [
                s.inverter.command(measured[s.resident.node] * RATING.nominal_v, FREQUENCY_HZ)
                for s in stations
            ]
            states = VehicleStates(
                soc_wh=np.array([s.soc_wh for s in stations]),
                floor_wh=np.array(
                    [float(s.consent.floor_wh(s.resident.capacity_wh)) for s in stations]
                ),
                # Charging stops at the departure energy the driver asked for.
                capacity_wh=np.array(
                    [max(float(s.consent.departure_energy_wh), s.soc_wh) for s in stations]
                ),
                max_charge_w=np.where(plugged, RATING.max_charge_w, 0.0),
                max_discharge_w=np.where(plugged, RATING.max_discharge_w, 0.0),
                grid_import_cap_w=np.array([max(-c.active_low_w, 0.0) for c in envelope]),
                grid_export_cap_w=np.array([max(c.active_high_w, 0.0) for c in envelope]),
                discharge_allowed=np.array(
                    [
                        bool(p) and s.decision is not None and s.decision.agreed
                        for p, s in zip(plugged, stations, strict=True)
                    ]
                ),
                charge_efficiency=np.full(size, EFFICIENCY),
                discharge_efficiency=np.full(size, EFFICIENCY),
            )
            planned = plan.power_w[:, step // SLOT_MIN]
            shares = self._dispatch(planned, states)
            probe_at = event_begin + timedelta(minutes=EVENT_MIN // 2)
            overreached |= await self._dispatch_to(stations, shares, commands, at == probe_at)
            if at == event_begin:
                der_control = await self._der_control(stations, commands)
            in_event = event_begin <= at < event_end
            households_w, households_var = self.feeder.household_load(at, UTC_OFFSET_H)
            net_w, net_var = households_w.copy(), households_var.copy()
            for index, station in enumerate(stations):
                inverter = station.inverter
                limit[step, index] = (
                    RATING.max_discharge_w * EVENT_LIMIT / 10000
                    if in_event and inverter.may_discharge
                    else 0.0
                )
                if not plugged[index]:
                    soc[step, index] = station.soc_wh
                    await station.ocpp.elapse(STEP)
                    continue
                volts = measured[station.resident.node] * RATING.nominal_v
                if at == probe_at:
                    # A consumer layer gone wrong: ask every inverter for full discharge, see
                    # what the grid side lets through (a command only; the overreach that went
                    # over OCPP reaches the power stages of the vehicles that may discharge).
                    inverter.request(Setpoint(RATING.max_discharge_w))
                    probe[station.resident.vehicle] = inverter.command(volts, FREQUENCY_HZ).active_w
                requested[step, index] = -planned[index]
                outputs: list[Output] = []
                stage = _power_stage(inverter, at, volts, outputs)
                metered[step, index] = -round(await station.ocpp.transfer_for(STEP, stage))
                output = outputs[-1]
                active[step, index] = output.active_w
                reactive[step, index] = output.reactive_var
                station.soc_wh = _store(station.soc_wh, output.active_w, hours)
                soc[step, index] = station.soc_wh
                net_w[station.resident.node] -= output.active_w
                net_var[station.resident.node] -= output.reactive_var
                if step % 30 == 0:
                    station.client.mirror(
                        at,
                        output.active_w,
                        output.reactive_var,
                        volts,
                        round(_exported_wh(active[: step + 1, index])),
                    )
            measured = self.feeder.voltages(net_w, net_var)
            voltage[step] = measured
            load[step] = net_w.sum()
        without_w, without_v = self._without_v2g(nodes, arrival)
        return Evening(
            self.start,
            self.times,
            self.residents,
            plan,
            peak_event,
            feeder_event,
            without_w,
            load,
            without_v,
            voltage,
            active,
            reactive,
            requested,
            limit,
            soc,
            metered,
            probe_w=probe,
            needs=needs,
            overreached=overreached,
            der_control=der_control,
        )

    @staticmethod
    def _dispatch(planned: Array, states: VehicleStates) -> Array:
        """Each vehicle's planned power within what it can do this minute; what some cannot do
        (a refusal since the plan, a grid limit below the program's) the dispatcher shares
        among the others, so the feeder follows the plan as far as the vehicles allow."""
        lower, upper = states.limits(STEP.total_seconds())
        base = np.clip(planned, lower, upper)
        rest = float(planned.sum() - base.sum())
        extra: Array = share(np.array([rest]), lower - base, upper - base)
        return base + extra

    def _without_v2g(
        self, nodes: NDArray[np.intp], arrival: NDArray[np.intp]
    ) -> tuple[Array, Array]:
        """The same evening with every EV charging flat out from arrival to its target."""
        soc = np.array([r.capacity_wh * r.soc_percent / 100 for r in self.residents])
        target = np.array([r.capacity_wh * r.target_percent / 100 for r in self.residents])
        hours = STEP.total_seconds() / 3600
        load = np.zeros(len(self.times))
        voltage = np.zeros((len(self.times), self.feeder.nodes))
        for step, at in enumerate(self.times):
            households_w, households_var = self.feeder.household_load(at, UTC_OFFSET_H)
            room = np.maximum(target - soc, 0.0) / (EFFICIENCY * hours)
            charging = np.where(arrival <= step, np.minimum(RATING.max_charge_w, room), 0.0)
            soc = np.array([_store(s, -p, hours) for s, p in zip(soc, charging, strict=True)])
            net_w = households_w + np.bincount(nodes, charging, minlength=self.feeder.nodes)
            voltage[step] = self.feeder.voltages(net_w, households_var)
            load[step] = net_w.sum()
        return load, voltage


class V2gPart:
    """The evening on the feeder, and its report: decisions, limits, load, voltage, vars."""

    def __init__(self, scenario: FoundationScenario) -> None:
        self.scenario = scenario
        self.report = scenario.report
        self.evening: Evening | None = None

    def steps(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("V2G: an evening peak on the feeder over IEEE 2030.5 and OCPP", self.run),
            ("report V2G and the feeder", self.summarize),
        ]

    def run(self) -> None:
        platform = self.scenario.platform
        utility = self.scenario.did("rhine-grid")  # the foundation's utility runs the program
        self.evening = V2gEvening(platform, utility, platform.clock.now().date()).run()

    def summarize(self) -> None:
        evening = self.evening
        if not self.report.check(evening is not None, "the V2G evening did not run"):
            return
        assert evening is not None
        for ok, failure in evening.checks():
            self.report.check(ok, failure)
        self.report.add(_section(evening))


def _section(evening: Evening) -> Section:
    rows: list[dict[str, Any]] = []
    for index, resident in enumerate(evening.residents):
        final = evening.decisions[resident.vehicle][-1]
        soc = evening.soc_wh[:, index] / resident.capacity_wh * 100
        sent = evening.sent.get(resident.vehicle, [])
        alarms = evening.alarms.get(resident.vehicle, [])
        exported = evening.export_register_wh.get(resident.vehicle, 0)
        payment = evening.payments.get(resident.vehicle)
        rows.append(
            {
                "vehicle": resident.vehicle,
                "EVSE": resident.evse_id,
                "coupling": resident.coupling.value.upper(),
                "1547 functions": "yes" if resident.receives_1547 else "no",
                "arrives": _local(evening.start + timedelta(minutes=resident.arrival_min)),
                "SoC floor %": resident.floor_percent,
                "SoC arrival / lowest / leaving %": f"{resident.soc_percent} / "
                f"{soc.min():.0f} / {soc[-1]:.0f}",
                "decision": "agreed"
                if final.agreed
                else "refused: " + ", ".join(r.value for r in final.refusals),
                "refused by": ", ".join(sorted({REFUSED_BY[r] for r in final.refusals})),
                "OCPP": resident.ocpp,
                "EV charging needs": evening.needs.get(resident.vehicle, ""),
                "profiles sent / accepted": f"{len(sent)} / "
                f"{sum(s.status == 'Accepted' for s in sent)}",
                "profile notes": "; ".join(sorted({s.reason for s in sent if s.reason})),
                "DER alarms": sum(not a.alarm_ended for a in alarms),
                "exported kWh": round(exported / 1000, 2),
                "paid": "" if payment is None else str(Money(CURRENCY, payment.amount_minor)),
                "plan asked, most W": round(float(evening.requested_w[:, index].max()), 0),
                "peak discharge W": round(float(evening.active_w[:, index].max()), 0),
                "asked 11 kW mid-event, inverter allows W": round(
                    evening.probe_w.get(resident.vehicle, 0.0), 0
                ),
                "2030.5 responses": ", ".join(
                    RESPONSE_STATUS.get(s, str(s))
                    for s in sorted(evening.responses.get(resident.vehicle, set()))
                ),
            }
        )
    labels = [_local(at) for at in evening.times]
    begin, end = evening.event_window
    control = (
        "no station took the peak event as a DER control."
        if evening.der_control is None
        else f"{evening.der_control[0]} took the peak event as a DER control "
        f"(SetDERControl LimitMaxDischarge: {evening.der_control[1]})."
    )
    peak_without = float(evening.load_without_w.max())
    peak_with = float(evening.load_with_w.max())
    summary = (
        f"Rhine Grid's 2030.5 server (mutual TLS, in-process) scheduled the 'evening peak' "
        f"DERControl {_local(begin)}-{_local(end)} local time: export up to "
        f"{EVENT_LIMIT / 100:g} % of each inverter's rating, none outside it; a volt-var curve "
        f"was in force all evening. Six home EVSEs on a {FEEDER.nodes}-node feeder read it "
        "through their GridClients and every consumer setpoint passed their inverter's clamp. "
        "Asked mid-event to discharge flat out, each inverter allows no more than the limit, "
        "and the AC vehicle without 1547 functions nothing; consent and the state-of-charge "
        "floor are the consumer layer's to enforce, and it did. "
        f"The fleet plan and the dispatcher set the setpoints; feeder peak "
        f"{peak_without / 1000:.1f} kW without V2G, {peak_with / 1000:.1f} kW with it; lowest "
        f"voltage {evening.voltage_without.min():.3f} pu without, "
        f"{evening.voltage_with.min():.3f} pu with. "
        "The setpoints reached the home EVSEs from the CPO's CSMS over OCPP: V2X charging "
        "profiles (CentralSetpoint) to the 2.1 stations after the EV's charging needs, charging "
        f"limits to the 1.6 station; {control} Asked mid-event over OCPP to discharge flat "
        "out, the stations of the consenting vehicles were held at the limit by their "
        "inverters and raised DER alarms. Each station metered export on a register of its own; "
        "at departure "
        f"the export was paid to the driver's wallet at {EXPORT_PRICE} per kWh."
    )
    step = 5  # plot every fifth minute: the curves stay smooth and the page small
    return Section(
        "V2G and the feeder (IEEE 2030.5 / 1547)",
        summary,
        rows,
        [
            line_plot(
                "Feeder load, without and with V2G",
                labels[::step],
                {
                    "without V2G": list(evening.load_without_w[::step] / 1000),
                    "with V2G": list(evening.load_with_w[::step] / 1000),
                },
                "kW",
            ),
            line_plot(
                "Voltage at the feeder's end and middle",
                labels[::step],
                {
                    "end, without V2G": list(evening.voltage_without[::step, -1]),
                    "end, with V2G": list(evening.voltage_with[::step, -1]),
                    "middle, with V2G": list(
                        evening.voltage_with[::step, evening.voltage_with.shape[1] // 2]
                    ),
                },
                "per unit",
            ),
            line_plot(
                "Reactive power of the inverters (volt-var)",
                labels[::step],
                {
                    r.vehicle: list(evening.reactive_var[::step, i])
                    for i, r in enumerate(evening.residents)
                },
                "var (+ injecting)",
            ),
        ],
        {
            "peak_event": evening.peak_event,
            "volt_var_event": evening.feeder_event,
            "peak_without_w": round(peak_without),
            "peak_with_w": round(peak_with),
            "min_voltage_without_pu": round(float(evening.voltage_without.min()), 4),
            "min_voltage_with_pu": round(float(evening.voltage_with.min()), 4),
            "plan_cost_minor": evening.plan.cost_minor,
            "plan_gap": round(evening.plan.gap, 6),
            "export_price_per_kwh": str(EXPORT_PRICE),
            "der_control": None
            if evening.der_control is None
            else {"station": evening.der_control[0], "status": evening.der_control[1]},
            "export_payments": {
                vehicle: {
                    "export_wh": payment.export_wh,
                    "amount_minor": payment.amount_minor,
                    "tx_hash": payment.tx_hash,
                }
                for vehicle, payment in evening.payments.items()
            },
        },
    )


def _local(at: datetime) -> str:
    return (at + timedelta(hours=UTC_OFFSET_H)).strftime("%H:%M")

"""The simulated charging stations: their meter, smart charging, outbox and schema check, and
sessions of every OCPP version against the real evgi CSMS over loopback WebSockets."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import Result
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201
from typer.testing import CliRunner

from evgi import cli
from evgi.config import Settings
from evgi.core.clock import SimulatedClock, SystemClock
from evgi.core.events import EventBus
from evgi.csms import Csms, TransactionEnded, VariableRef, ocpp_tls
from evgi.csms.security import station_ssl_context
from evgi.pnc import csms_authority
from evgi.sim.stations import (
    VERSIONS,
    BootRefused,
    ChargingProfile,
    ChargingProfiles,
    ConnectorStatus,
    Evse,
    EvseSpec,
    MessageSchemas,
    Meter,
    Offline,
    Outbox,
    Purpose,
    QueuedMessage,
    Rating,
    Refused,
    Station,
    Vehicle,
    station_class,
)
from evgi.sim.stations.authorization import ListUpdate, LocalAuthorization
from evgi.sim.stations.charging_profile import Period, ProfileRefused
from evgi.sim.stations.configuration import Configuration, station_settings
from evgi.storage import open_database
from tests.service_runner import free_port

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
PASSWORD = "station-password-0001"
TOKEN = "04A1B2C3D4E5F6"

# -- the meter ------------------------------------------------------------------------------


def test_meter_integrates_power_exactly() -> None:
    meter = Meter()
    assert meter.run(11_000, timedelta(minutes=30)) == 5_500
    # Many short steps lose nothing: a second at a time, or a millisecond at a time.
    for _ in range(3600):
        meter.run(7_000, timedelta(seconds=1))
    assert meter.register_wh == 5_500 + 7_000
    for _ in range(1000):
        meter.run(3_600, timedelta(milliseconds=1))
    assert meter.register_wh == 12_501
    # Below a watt-hour the register holds the remainder until it adds up.
    small = Meter()
    assert small.run(1, timedelta(minutes=30)) == 0
    assert small.run(1, timedelta(minutes=30)) == 1
    with pytest.raises(ValueError):
        small.run(-5, timedelta(seconds=1))


def test_meter_keeps_export_on_a_register_of_its_own() -> None:
    meter = Meter()
    assert meter.run(4_000, timedelta(minutes=30)) == 2_000
    for _ in range(60):
        meter.export(6_000, timedelta(minutes=1))
    assert (meter.register_wh, meter.export_register_wh) == (2_000, 6_000)
    # While exporting nothing is imported.
    assert meter.power_w == 0
    assert meter.reading(T0).energy_wh == 2_000
    with pytest.raises(ValueError):
        meter.export(-1, timedelta(seconds=1))


def test_meter_readings_per_phase_and_state_of_charge() -> None:
    ac = Meter(phases=3)
    ac.run(11_040, timedelta(hours=1))
    reading = ac.reading(T0, soc_percent=40)
    assert reading.currents_a == (16.0, 16.0, 16.0) and reading.soc_percent is None
    samples = reading.samples(["Energy.Active.Import.Register", "Current.Import", "SoC"])
    assert [(s.measurand, s.value, s.unit, s.phase) for s in samples] == [
        ("Energy.Active.Import.Register", 11_040, "Wh", None),
        ("Current.Import", 16.0, "A", "L1"),
        ("Current.Import", 16.0, "A", "L2"),
        ("Current.Import", 16.0, "A", "L3"),
    ]
    dc = Meter(dc=True)
    dc.run(100_000, timedelta(minutes=6))
    reading = dc.reading(T0, soc_percent=57)
    assert reading.currents_a == (250.0,)
    assert [(s.measurand, s.value) for s in reading.samples(["SoC", "Power.Active.Import"])] == [
        ("SoC", 57),
        ("Power.Active.Import", 100_000),
    ]


def test_evse_power_stays_within_rating_profile_limit_and_battery() -> None:
    evse = Evse(1, max_power_w=22_000)
    assert evse.deliver(50_000, None, timedelta(minutes=6)) == 22_000
    assert evse.deliver(50_000, 7_000, timedelta(minutes=6)) == 7_000
    assert evse.charging_state == ConnectorStatus.CHARGING
    assert evse.deliver(50_000, 0, timedelta(minutes=6)) == 0
    assert evse.charging_state == ConnectorStatus.SUSPENDED_EVSE
    assert evse.register_wh == 2_200 + 700

    dc = Evse(1, max_power_w=150_000, dc=True)
    dc.vehicle = Vehicle.at_soc(50_000, 90, 100_000)
    assert dc.vehicle.acceptance_w() == 50_000  # half way down the taper from 80 %
    dc.deliver(150_000, None, timedelta(minutes=1))
    assert dc.meter.power_w == 50_000
    for _ in range(120):
        dc.deliver(150_000, None, timedelta(minutes=1))
    assert dc.vehicle.full and dc.vehicle.energy_wh == 50_000
    assert dc.register_wh == 5_000  # what the battery took, not a watt-hour more
    assert dc.charging_state == ConnectorStatus.SUSPENDED_EV


# -- smart charging -------------------------------------------------------------------------

RATING = Rating(230, 3)


def _profile(
    profile_id: int,
    purpose: Purpose,
    periods: list[tuple[int, float]],
    evse: int = 1,
    stack_level: int = 0,
    unit: str = "W",
    kind: str = "Absolute",
    **extra: Any,
) -> ChargingProfile:
    return ChargingProfile(
        id=profile_id,
        evse=evse,
        stack_level=stack_level,
        purpose=purpose,
        kind=kind,
        unit=unit,
        periods=tuple(Period(start, limit) for start, limit in periods),
        installed=T0,
        **extra,
    )


def test_profile_stack_precedence() -> None:
    profiles = ChargingProfiles()
    profiles.install(_profile(1, Purpose.TX_DEFAULT, [(0, 16)], evse=0, unit="A"))
    assert profiles.limit_w(1, RATING, T0) == 16 * 230 * 3
    profiles.install(_profile(2, Purpose.TX_DEFAULT, [(0, 9_000)], stack_level=3))
    assert profiles.limit_w(1, RATING, T0) == 9_000  # the EVSE's own default wins
    profiles.install(
        _profile(3, Purpose.TX, [(0, 5_000), (600, 4_000)], transaction_id="t1", kind="Relative")
    )
    assert profiles.limit_w(1, RATING, T0, "t1", T0) == 5_000
    assert profiles.limit_w(1, RATING, T0 + timedelta(minutes=11), "t1", T0) == 4_000
    assert profiles.limit_w(1, RATING, T0, "t2", T0) == 9_000  # another transaction
    profiles.install(_profile(4, Purpose.STATION_MAX, [(0, 4_500)], evse=0))
    assert profiles.limit_w(1, RATING, T0, "t1", T0) == 4_500  # the station maximum caps all
    assert profiles.next_change(T0, T0) == T0 + timedelta(minutes=10)
    profiles.end_transaction(1, "t1")
    assert profiles.clear(purpose=Purpose.STATION_MAX) == 1
    assert profiles.limit_w(1, RATING, T0, "t1", T0) == 9_000
    assert profiles.clear(profile_id=99) == 0


def test_composite_schedule_and_recurring_profiles() -> None:
    profiles = ChargingProfiles()
    daily = _profile(
        1,
        Purpose.TX_DEFAULT,
        [(0, 11_000), (8 * 3600, 3_000)],
        kind="Recurring",
        recurrency="Daily",
        start=T0 - timedelta(days=3),
    )
    profiles.install(daily)
    steps = profiles.composite(1, RATING, T0, 24 * 3600, hardware_w=22_000)
    assert steps == [(0, 11_000), (8 * 3600, 3_000)]
    later = profiles.composite(1, RATING, T0 + timedelta(hours=7), 2 * 3600, hardware_w=22_000)
    assert later == [(0, 11_000), (3600, 3_000)]
    assert ChargingProfiles().composite(1, RATING, T0, 600, hardware_w=22_000) == [(0, 22_000)]


def test_profiles_a_station_refuses() -> None:
    profiles = ChargingProfiles(max_stack_level=2, max_periods=2)
    refused = [
        _profile(1, Purpose.TX_DEFAULT, [(0, 1)], stack_level=3),
        _profile(1, Purpose.TX_DEFAULT, [(0, 1), (60, 2), (120, 3)]),
        _profile(1, Purpose.TX_DEFAULT, [(30, 1)]),
        _profile(1, Purpose.TX_DEFAULT, [(0, 1)], unit="kW"),
        _profile(1, Purpose.STATION_MAX, [(0, 1)], evse=1),
        _profile(1, Purpose.TX_DEFAULT, [(0, 1)], kind="Recurring", recurrency="Daily"),
    ]
    for profile in refused:
        with pytest.raises(ProfileRefused):
            profiles.install(profile)
    assert len(profiles) == 0


# -- settings and local authorization -------------------------------------------------------


def test_configuration_is_typed_and_named_per_version() -> None:
    config = Configuration(station_settings("ST-1", 2, 1, dc=False))
    interval = config.by_key("heartbeatinterval")
    assert interval is config.by_variable("OCPPCommCtrlr", "HeartbeatInterval")
    assert interval is not None
    assert config.change(interval, "60") and config.integer("heartbeat_interval") == 60
    assert not config.change(interval, "soon")
    readonly = config.by_key("NumberOfConnectors")
    assert readonly is not None and not config.change(readonly, "3")
    sampled = config.by_key("MeterValuesSampledData")
    assert sampled is not None and not config.change(sampled, "Energy.Active.Import.Register,Foo")
    assert config.by_variable("SecurityCtrlr", "Identity") is not None
    assert config.by_key("Identity") is None  # a 2.x variable only


def test_local_authorization_list_and_cache() -> None:
    local = LocalAuthorization(max_entries=2)
    assert local.update(1, True, {"aa": "Accepted", "BB": "Blocked"}) == ListUpdate.ACCEPTED
    assert local.lookup("AA") == "Accepted" and local.lookup("bb") == "Blocked"
    assert local.update(1, False, {"cc": "Accepted"}) == ListUpdate.VERSION_MISMATCH
    assert local.update(2, False, {"cc": "Accepted"}) == ListUpdate.FAILED  # too many
    assert local.update(2, False, {"bb": None, "cc": "Accepted"}) == ListUpdate.ACCEPTED
    assert local.lookup("bb") is None and len(local) == 2
    local.remember("dd", "Accepted")
    assert local.lookup("dd") == "Accepted" and local.lookup("dd", use_cache=False) is None
    local.clear_cache()
    assert local.lookup("dd") is None


# -- the outbox -----------------------------------------------------------------------------


@dataclass
class Link:
    """A transport for the outbox: up or down, recording what it delivered."""

    up: bool = True
    refuse: set[str] = field(default_factory=set)
    delivered: list[str] = field(default_factory=list)

    async def send(self, payload: str) -> str:
        if not self.up:
            raise Offline("down")
        if payload in self.refuse:
            raise Refused(payload, "FormatViolation", "bad")
        self.delivered.append(payload)
        return f"ok {payload}"


def test_outbox_delivers_in_order_across_outages() -> None:
    async def scenario() -> None:
        outbox = Outbox()
        link = Link(up=False)
        answers: list[str] = []
        for name in ("start", "sample-1", "sample-2", "stop"):
            outbox.put(QueuedMessage(name, lambda n=name: n, answers.append))
            assert not await outbox.flush(link.send)
        assert outbox.pending() == ["start", "sample-1", "sample-2", "stop"]
        link.up = True
        sent = 0

        async def flaky(payload: str) -> str:
            nonlocal sent
            if sent == 2:
                raise Offline("dropped mid-call")
            sent += 1
            return await link.send(payload)

        assert not await outbox.flush(flaky)
        assert link.delivered == ["start", "sample-1"] and outbox.pending() == ["sample-2", "stop"]
        assert await outbox.flush(link.send)
        assert link.delivered == ["start", "sample-1", "sample-2", "stop"]
        assert answers == ["ok start", "ok sample-1", "ok sample-2", "ok stop"]

    asyncio.run(scenario())


def test_outbox_builds_late_and_drops_what_cannot_be_sent() -> None:
    async def scenario() -> None:
        outbox = Outbox()
        link = Link(refuse={"bad"})
        transaction: dict[str, str] = {}
        outbox.put(QueuedMessage("Start", lambda: "start", lambda r: transaction.update(id=r)))
        outbox.put(QueuedMessage("Stop", lambda: f"stop {transaction['id']}"))
        outbox.put(QueuedMessage("Bad", lambda: "bad"))
        outbox.put(QueuedMessage("Moot", lambda: None))
        outbox.put(QueuedMessage("Last", lambda: "last"))
        assert await outbox.flush(link.send)
        assert link.delivered == ["start", "stop ok start", "last"]
        assert [r.action for r in outbox.refused] == ["bad"] and len(outbox) == 0

    asyncio.run(scenario())


# -- the schema check -----------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_schema_check_of_csms_messages(version: str) -> None:
    schemas = MessageSchemas(version)
    boot = {"currentTime": "2025-03-01T10:00:00Z", "interval": 300, "status": "Accepted"}
    assert schemas.check("CALLRESULT", "BootNotification", boot) is None
    wrong = schemas.check("CALLRESULT", "BootNotification", {**boot, "status": "Maybe"})
    assert wrong is not None and wrong.action == "BootNotification" and wrong.kind == "CALLRESULT"
    missing = schemas.check("CALLRESULT", "BootNotification", {"status": "Accepted"})
    assert missing is not None and "must contain" in missing.problem
    reset = {"type": "Hard"} if version == "1.6" else {"type": "Immediate"}
    assert schemas.check("CALL", "Reset", reset) is None
    assert schemas.check("CALL", "Reset", {**reset, "extra": 1}) is not None
    foreign = "RemoteStartTransaction" if version != "1.6" else "RequestStartTransaction"
    unknown = schemas.check("CALL", foreign, {})
    assert unknown is not None and "has no" in unknown.problem


def test_station_records_what_violates_its_schemas() -> None:
    """The evgi CSMS never sends an invalid frame (it validates its own), so feed one in."""
    station = station_class("2.0.1")("ST-1", "ws://127.0.0.1:1/ocpp")
    station._check_schema('[2,"a","Reset",{"type":"OnIdle"}]')
    station._check_schema('[2,"b","Reset",{"type":"Sometimes"}]')
    station._check_schema('[3,"c",{"status":"Accepted"}]')  # answers no call of ours
    [violation] = station.schema_violations
    assert (violation.kind, violation.action) == ("CALL", "Reset")
    assert "must be one of" in violation.problem and station.messages_checked == 2


def test_schema_check_of_decimal_limits() -> None:
    schemas = MessageSchemas("1.6")
    profile = {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
            },
        },
    }
    assert schemas.check("CALL", "SetChargingProfile", profile) is None
    period = profile["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]
    period["limit"] = 4.11  # 1.6 allows one decimal
    assert schemas.check("CALL", "SetChargingProfile", profile) is not None


# -- sessions against the real CSMS ---------------------------------------------------------


@dataclass
class Backend:
    csms: Csms
    url: str
    ended: list[TransactionEnded]

    def station(self, version: str, station_id: str = "ST-1", **options: Any) -> Station:
        options.setdefault("password", PASSWORD)
        options.setdefault("clock", SimulatedClock(T0))
        return station_class(version)(station_id, self.url, **options)

    def transactions(self, station_id: str = "ST-1") -> list[Any]:
        return self.csms.store.run(self.csms.store.transactions, station_id)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", ocpp_boot_retry_interval=1)


@asynccontextmanager
async def backend(
    settings: Settings, ssl: Any = None, check: Any = None, **stations: dict[str, Any]
) -> AsyncIterator[Backend]:
    """The evgi CSMS on a free loopback port with stations and the test token registered."""
    engine = open_database(f"sqlite:///{settings.data_dir / 'csms.db'}")
    bus = EventBus()
    ended: list[TransactionEnded] = []
    bus.subscribe(TransactionEnded, ended.append)
    csms = Csms(settings, engine, bus, SystemClock())
    for station_id, registration in (stations or {"ST-1": {}}).items():
        csms.add_station(station_id, **{"password": PASSWORD, **registration})
    csms.add_token(TOKEN)
    try:
        async with csms.running("127.0.0.1", 0, ssl, check) as server:
            scheme = "wss" if ssl else "ws"
            yield Backend(csms, f"{scheme}://127.0.0.1:{server.port}/ocpp", ended)
    finally:
        engine.dispose()


def _clean(station: Station) -> None:
    assert station.schema_violations == []
    assert station.messages_checked > 0
    assert len(station.outbox) == 0 and station.outbox.refused == []


@pytest.mark.parametrize("version", VERSIONS)
def test_rfid_session(settings: Settings, version: str) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            station = site.station(version, evses=[EvseSpec(150_000, dc=True)])
            await station.connect()
            assert station.registration == "Accepted"
            vehicle = Vehicle.at_soc(77_000, 20, 120_000)
            session = await station.run_session(TOKEN, timedelta(minutes=30), vehicle=vehicle)
            assert session.energy_wh == 55_697 and vehicle.soc_percent == 92
            assert session.stop_reason == "Local" and session.transaction_id is not None
            [stored] = site.transactions()
            assert stored.state == "ended" and stored.energy_wh == session.energy_wh
            assert stored.transaction_id == session.transaction_id
            assert [e.energy_wh for e in site.ended] == [session.energy_wh]
            connectors = site.csms.store.run(site.csms.store.connectors, "ST-1")
            assert [c.status for c in connectors if c.evse_id == 1] == ["Available"]
            # Refused tokens start nothing; the stop button ends a session.
            await station.plug_in()
            assert await station.present_token("UNKNOWN-CARD") in ("Invalid", "Unknown")
            assert station.session() is None
            assert await station.present_token(TOKEN) == "Accepted"
            stopped = await station.stop_charging()
            assert stopped.stop_reason == "Local" and stopped.energy_wh == 0
            assert station.evse().reported == ("Finishing" if version == "1.6" else "Occupied")
            _clean(station)
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("version", VERSIONS)
def test_commands_from_the_csms(settings: Settings, version: str) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            commands = site.csms.commands
            station = site.station(version, evses=[EvseSpec(22_000), EvseSpec(22_000)])
            await station.connect()
            heartbeat = VariableRef(
                "" if version == "1.6" else "OCPPCommCtrlr", "HeartbeatInterval"
            )
            await commands.set_variables("ST-1", [(heartbeat, "120")])
            assert station.config.integer("heartbeat_interval") == 120
            await commands.get_variables("ST-1", [heartbeat])
            await commands.get_report("ST-1")  # 2.x: the inventory follows in NotifyReport

            def reported() -> dict[tuple[str, str], str | None]:
                records = site.csms.store.run(site.csms.store.variables, "ST-1")
                return {(r.component, r.variable): r.value for r in records}

            await station.until(lambda: len(reported()) > 10)
            assert reported()[(heartbeat.component, "HeartbeatInterval")] == "120"
            assert (await commands.send_local_list("ST-1")).status == "Accepted"
            assert station.authorization.lookup(TOKEN) == "Accepted"
            assert (await commands.clear_cache("ST-1")).status == "Accepted"
            reserved = await commands.reserve("ST-1", 7, TOKEN, T0 + timedelta(hours=1), 2)
            assert reserved.status == "Accepted"
            await station.until(lambda: station.evse(2).reported == "Reserved")
            assert (await commands.cancel_reservation("ST-1", 7)).status == "Accepted"
            assert (await commands.data_transfer("ST-1", "evgi", "echo", "hi")).data == "hi"
            assert (await commands.data_transfer("ST-1", "acme")).status == "UnknownVendorId"

            # A remote start with a transaction profile: the meter follows its limit.
            await station.plug_in(1)
            assert (await commands.remote_start("ST-1", TOKEN, 1)).status == "Accepted"
            await station.until(
                lambda: (s := station.session(1)) is not None and s.transaction_id is not None
            )
            session = station.session(1)
            assert session is not None and session.transaction_id is not None
            periods = [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 600, "limit": 8.0}]
            schedule: dict[str, Any] = {"chargingRateUnit": "A", "chargingSchedulePeriod": periods}
            if version == "1.6":
                profile: dict[str, Any] = {
                    "chargingProfileId": 5,
                    "transactionId": int(session.transaction_id),
                    "chargingSchedule": schedule,
                }
            else:
                profile = {
                    "id": 5,
                    "transactionId": session.transaction_id,
                    "chargingSchedule": [{"id": 1, **schedule}],
                }
            profile.update(
                stackLevel=1, chargingProfilePurpose="TxProfile", chargingProfileKind="Relative"
            )
            assert (await commands.set_charging_profile("ST-1", 1, profile)).status == "Accepted"
            composite = await commands.composite_schedule("ST-1", 1, 3600, "W")
            plan = composite.charging_schedule if version == "1.6" else composite.schedule
            assert [(p["start_period"], p["limit"]) for p in plan["charging_schedule_period"]] == [
                (0, 11_040.0),
                (600, 5_520.0),
            ]
            assert await station.charge_for(timedelta(minutes=20)) == 1_840 + 920
            for message in ("MeterValues", "StatusNotification", "Heartbeat"):
                assert (await commands.trigger("ST-1", message, 1)).status == "Accepted"
            assert (await commands.change_availability("ST-1", False, 1)).status == "Scheduled"
            assert (await commands.change_availability("ST-1", False, 2)).status == "Accepted"
            await station.until(lambda: station.evse(2).reported == "Unavailable")
            unlock = await commands.unlock("ST-1", 1)
            if version == "1.6":  # 1.6 ends the transaction to unlock
                assert unlock.status == "Unlocked"
                await station.until(lambda: station.session(1) is None)
                assert session.stop_reason == "UnlockCommand"
            else:
                assert unlock.status == "OngoingAuthorizedTransaction"
                stop = await commands.remote_stop("ST-1", session.transaction_id)
                assert stop.status == "Accepted"
                await station.until(lambda: station.session(1) is None)
                assert session.stop_reason == "Remote"
            assert not station.evse(1).operative  # the scheduled change came into force
            await station.unplug(1)
            [stored] = site.transactions()
            assert stored.energy_wh == session.energy_wh == 2_760

            # Reset: the station reboots and registers again.
            assert (await commands.reset("ST-1")).status == "Accepted"
            await station.until(lambda: station.reboots == 1 and station.booted)
            _clean(station)
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("version", VERSIONS)
def test_offline_sessions_arrive_in_order(settings: Settings, version: str) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            station = site.station(version)
            await station.connect()
            await station.plug_in()
            await station.present_token(TOKEN)  # online: the token is cached
            await station.charge_for(timedelta(minutes=10), 11_000)
            await station.disconnect()
            await station.charge_for(timedelta(minutes=20), 11_000)
            await station.present_token(TOKEN)
            await station.unplug()
            # A whole session while offline, on the cached authorization.
            await station.plug_in()
            assert await station.present_token(TOKEN) == "Accepted"
            await station.charge_for(timedelta(minutes=5), 11_000)
            await station.present_token(TOKEN)
            await station.unplug()
            queued = station.outbox.pending()
            assert len(queued) == 21 + 7  # two sessions' starts, samples and stops
            assert site.transactions()[0].state == "active"
            await station.connect()
            first, second = site.transactions()
            assert (first.state, first.energy_wh) == ("ended", 5_500)
            assert (second.state, second.energy_wh) == ("ended", 916)
            assert [s.transaction_id for s in station.sessions] == [
                first.transaction_id,
                second.transaction_id,
            ]
            if version != "1.6":
                assert first.missing == [] and second.missing == []
                assert (first.offline_messages, second.offline_messages) == (21, 7)
            _clean(station)
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("version", VERSIONS)
def test_reservations(settings: Settings, version: str) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            holder = "04B0B0B0B0B0B0"
            site.csms.add_token(holder)
            station = site.station(version)
            await station.connect()
            commands = site.csms.commands
            expiry = T0 + timedelta(minutes=15)
            assert (await commands.reserve("ST-1", 1, holder, expiry, 1)).status == "Accepted"
            assert (await commands.reserve("ST-1", 2, TOKEN, expiry, 1)).status == "Occupied"
            await station.plug_in()
            assert await station.present_token(TOKEN) == "Reserved"  # someone else's
            await station.unplug()
            session = await station.run_session(holder, timedelta(minutes=5), 11_000)
            assert session.reservation_id == 1 and station.evse().reservation is None
            assert (await commands.reserve("ST-1", 3, TOKEN, expiry, 1)).status == "Accepted"
            await station.elapse(timedelta(minutes=20))
            assert station.evse().reservation is None
            assert station.evse().reported == "Available"
            if version != "1.6":  # 2.x tells the CSMS; 1.6 only reports the status
                [*_, expired] = site.csms.store.run(site.csms.store.reservations, "ST-1")
                assert (expired.reservation_id, expired.status) == (3, "Expired")
            _clean(station)
            await station.close()

    asyncio.run(scenario())


class _FileServer(http.server.SimpleHTTPRequestHandler):
    uploads: ClassVar[list[tuple[str, int]]] = []

    def do_PUT(self) -> None:
        size = int(self.headers.get("Content-Length", 0))
        self.uploads.append((self.path, len(self.rfile.read(size))))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def files(tmp_path: Path) -> Iterator[str]:
    """An HTTP server for firmware images and uploaded logs."""
    (tmp_path / "firmware-2.0.bin").write_bytes(b"\x7fELF" + bytes(2048))
    handler = functools.partial(_FileServer, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("version", VERSIONS)
def test_firmware_update_and_log_upload(settings: Settings, files: str, version: str) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            commands, store = site.csms.commands, site.csms.store
            station = site.station(version)
            await station.connect()
            await commands.update_firmware("ST-1", f"{files}/firmware-2.0.bin", T0)
            await station.until(lambda: station.reboots == 1 and station.firmware_status == "Idle")
            assert station.firmware == "firmware-2.0.bin-2052"
            await commands.update_firmware("ST-1", f"{files}/missing.bin", T0)
            await station.until(lambda: station.firmware_status == "DownloadFailed")
            _FileServer.uploads.clear()
            await commands.get_log("ST-1", f"{files}/logs/")
            await station.until(lambda: station.upload_status == "Idle")
            [(path, size)] = _FileServer.uploads
            assert path.startswith("/logs/ST-1-") and size > 0
            statuses = [r["status"] for r in store.run(store.firmware_log_status, "ST-1")]
            expected = ["Downloading", "Downloaded", "Installing"]
            expected += [] if version == "1.6" else ["InstallRebooting"]
            expected += ["Installed", "Downloading", "DownloadFailed", "Uploading", "Uploaded"]
            assert statuses == expected
            rebooted = store.run(store.station, "ST-1")
            assert rebooted.firmware_version == "firmware-2.0.bin-2052"
            _clean(station)
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_boot_pending_then_accepted_and_rejected(tmp_path: Path, version: str) -> None:
    # A long retry interval: the pending station boots again only when the CSMS triggers it.
    settings = Settings(data_dir=tmp_path / "data", ocpp_boot_retry_interval=60)

    async def scenario() -> None:
        async with backend(
            settings, **{"ST-1": {"boot_status": "Pending"}, "ST-2": {"boot_status": "Rejected"}}
        ) as site:
            store = site.csms.store
            pending = site.station(version, clock=SystemClock())
            booting = asyncio.create_task(pending.connect())
            await pending.until(lambda: pending.registration == "Pending")
            store.run(store.update_station, "ST-1", boot_status="Accepted")
            trigger = await site.csms.commands.trigger("ST-1", "BootNotification")
            assert trigger.status == "Accepted"
            await asyncio.wait_for(booting, 10)
            assert pending.booted and pending.registration == "Accepted"
            rejected = site.station(version, "ST-2")
            with pytest.raises(BootRefused):
                await rejected.connect(attempts=2)
            assert rejected.registration == "Rejected" and not rejected.booted
            _clean(pending)
            await pending.close()
            await rejected.close()

    asyncio.run(scenario())


def test_heartbeats_while_idle(settings: Settings) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            station = site.station("2.0.1")
            await station.connect()
            interval = station.config.integer("heartbeat_interval")
            await station.elapse(timedelta(seconds=interval * 3))
            sent = [line for line in station.message_log if '"Heartbeat"' in line]
            assert len(sent) == 3
            _clean(station)
            await station.close()

    asyncio.run(scenario())


def test_certificate_signed_for_the_station_key(settings: Settings) -> None:
    async def scenario() -> None:
        authority = csms_authority(settings)
        async with backend(settings) as site:
            station = site.station("2.0.1", clock=SimulatedClock())  # certificates are dated
            await station.connect()
            send = site.csms.commands.call
            stranger = authority.issue_station_certificate("ST-1").chain_pem()
            answer = await send("ST-1", c201.CertificateSigned(certificate_chain=stranger))
            assert answer.status == "Rejected"  # it asked for no certificate
            assert await station.request_certificate()
            await station.until(lambda: bool(station.certificates))
            answer = await send("ST-1", c201.CertificateSigned(certificate_chain=stranger))
            assert answer.status == "Rejected"  # not for the key of its CSR
            assert station.schema_violations == []
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("version", VERSIONS)
def test_csms_signs_the_station_csr(settings: Settings, version: str) -> None:
    """SignCertificate -> CertificateSigned with the CSMS CA, CN checked against the station."""

    async def scenario() -> None:
        authority = csms_authority(settings)
        async with backend(settings) as site:
            station = site.station(version, clock=SimulatedClock())
            await station.connect()
            assert not await station.request_certificate(common_name="ST-OTHER")
            assert await station.request_certificate()
            await station.until(lambda: bool(station.certificates))
            leaf = station.certificates[0]
            assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "ST-1"
            assert leaf.issuer == authority.certificate.subject
            authority.verify(leaf)
            assert station.schema_violations == []
            await station.close()

    asyncio.run(scenario())


def test_tls_security_profiles(tmp_path: Path) -> None:
    """Profile 2 (TLS and Basic auth) and 3 (mutual TLS), with the CSMS's own TLS set-up."""
    settings = Settings(data_dir=tmp_path / "data", ocpp_tls=True)

    async def scenario() -> None:
        authority = csms_authority(settings)
        server, check = ocpp_tls(settings)
        registrations = {
            "ST-2": {"security_profile": 2},
            "ST-3": {"password": None, "security_profile": 3},
        }
        async with backend(settings, server, check, **registrations) as site:
            identity = authority.issue_station_certificate("ST-3")
            basic = site.station("2.1", "ST-2", ssl=station_ssl_context(authority.certificate))
            mutual = site.station(
                "1.6",
                "ST-3",
                password=None,
                ssl=station_ssl_context(authority.certificate, identity),
            )
            for station, profile in ((basic, 2), (mutual, 3)):
                assert station.security_profile == profile
                await station.connect()
                session = await station.run_session(TOKEN, timedelta(minutes=10), 7_000)
                assert session.energy_wh == 1_166
                _clean(station)
                await station.close()

    asyncio.run(scenario())


def test_offline_station_cannot_connect(settings: Settings) -> None:
    async def scenario() -> None:
        station = station_class("2.0.1")("ST-1", f"ws://127.0.0.1:{free_port()}/ocpp")
        with pytest.raises(Offline):
            await station.connect()
        await station.plug_in()
        assert await station.present_token(TOKEN) == "Invalid"  # unknown, and offline

    asyncio.run(scenario())


def test_cli_station_session(settings: Settings) -> None:
    """`evgi sim station` against the CSMS on loopback (in-process: the command's imports
    cost seconds in a child process)."""
    runner = CliRunner()

    def evgi(*args: str) -> Result:
        return runner.invoke(cli.app, list(args), env={"COLUMNS": "200"})

    async def scenario() -> None:
        async with backend(settings, **{"ST-1": {}, "ST-2": {}}) as site:
            common = ("sim", "station", "--url", site.url, "--password", PASSWORD)
            result = await asyncio.to_thread(
                evgi,
                *common,
                "--id",
                "ST-1",
                "--version",
                "1.6",
                "--token",
                TOKEN,
                "--minutes",
                "30",
                "--power",
                "11000",
            )
            assert result.exit_code == 0, result.output
            assert "5500" in result.stdout and "0 violation(s)" in result.stdout
            assert [t.energy_wh for t in site.transactions()] == [5_500]
            refused = await asyncio.to_thread(evgi, *common, "--id", "ST-2", "--token", "NOPE")
            assert refused.exit_code == 1 and "did not accept" in refused.stderr

    asyncio.run(scenario())


def test_1_6_station_answers_get_configuration_for_unknown_keys(settings: Settings) -> None:
    async def scenario() -> None:
        async with backend(settings) as site:
            station = site.station("1.6")
            await station.connect()
            answer = await site.csms.commands.call(
                "ST-1", c16.GetConfiguration(key=["HeartbeatInterval", "NoSuchKey"])
            )
            assert [k["key"] for k in answer.configuration_key] == ["HeartbeatInterval"]
            assert answer.unknown_key == ["NoSuchKey"]
            _clean(station)
            await station.close()

    asyncio.run(scenario())

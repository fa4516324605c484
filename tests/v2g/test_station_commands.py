"""Dispatched setpoints reach simulated 2.1 and 2.0.1 stations over real WebSockets: a V2X
profile the 2.1 station checks against the OCA schema, a charging-only limit for 2.0.1; the
EV's charging needs and DER alarms are kept and published."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from evgi.core.clock import SimulatedClock
from evgi.core.errors import ValidationError
from evgi.csms import UnsupportedCommand
from evgi.csms.v21 import DerAlarm, EvChargingNeeds
from evgi.sim.stations import EvseSpec, Rating, Station, Vehicle, station_class
from evgi.v2g import Dispatch
from evgi.v2g.station_commands import (
    BOUNDED_BY_EV,
    DISCHARGE_UNSUPPORTED,
    Period,
    StationCommands,
    Target,
    plan_periods,
    vehicle_periods,
)
from tests.csms import conftest as csms_fixtures
from tests.csms.clients import raw_socket
from tests.csms.conftest import PASSWORD, Harness

T0 = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)
CARD = "04V2G0000000001"
# The CSMS harness of the CSMS tests, on SQLite.
harness = csms_fixtures.harness
NEEDS = {
    "requested_energy_transfer": "AC_BPT",
    "control_mode": "DynamicControl",
    "v2x_charging_parameters": {"max_charge_power": 11_000.0, "max_discharge_power": 7_400.0},
}


async def charging(harness: Harness, version: str, station_id: str) -> Station:
    harness.csms.add_station(station_id, PASSWORD)
    station = station_class(version)(
        station_id, harness.url, password=PASSWORD, clock=SimulatedClock(T0), evses=[EvseSpec()]
    )
    await station.connect()
    await station.plug_in(vehicle=Vehicle.at_soc(60_000, 60, 11_000))
    assert await station.present_token(CARD) == "Accepted"
    return station


def test_v2x_profile_and_der_control_reach_a_21_station(harness: Harness) -> None:
    async def scenario() -> None:
        harness.csms.add_token(CARD)
        async with harness.serve():
            station = await charging(harness, "2.1", "V2X-21")
            # The EV asks for bidirectional transfer: stored, published, answered Processing.
            assert await station.notify_ev_charging_needs(1, NEEDS) == "Processing"
            commands = harness.csms.commands
            needs = commands.ev_charging_needs("V2X-21", 1)
            assert needs is not None and needs.bidirectional
            assert needs.max_discharge_w == 7_400.0
            assert harness.of_type(EvChargingNeeds) == [needs]

            session = station.session()
            assert session is not None
            dispatch = Dispatch(np.array([-6_000.0]), -6_000.0, -6_000.0)
            target = Target("V2X-21", 1, session.transaction_id)
            v2g = StationCommands(commands, station.clock)
            sent = await v2g.send_setpoints(target, vehicle_periods(dispatch, 0))
            assert (sent.status, sent.purpose, sent.reason) == ("Accepted", "TxProfile", None)
            period = sent.body["chargingSchedule"][0]["chargingSchedulePeriod"][0]
            assert period == {
                "startPeriod": 0,
                "operationMode": "CentralSetpoint",
                "setpoint": -6_000.0,
                "limit": 0.0,
                "dischargeLimit": -6_000.0,
            }
            # Asked for more than the EV offers, it gets what the EV announced, and why.
            bounded = await v2g.send_setpoints(target, [Period(0, -9_000.0), Period(900, 15_000.0)])
            assert bounded.reason == BOUNDED_BY_EV
            periods = bounded.body["chargingSchedule"][0]["chargingSchedulePeriod"]
            assert [p["setpoint"] for p in periods] == [-7_400.0, 11_000.0]
            limits = await v2g.send_grid_limits(target, 11_000, 5_000)
            assert (limits.status, limits.purpose) == (
                "Accepted",
                "ChargingStationExternalConstraints",
            )

            answer = await commands.set_der_control(
                "V2X-21",
                "lmd-1",
                "LimitMaxDischarge",
                {"limitMaxDischarge": {"priority": 1, "pctMaxDischargePower": 50.0}},
            )
            assert answer.status == "Accepted"
            assert station.der_controls["lmd-1"][0] == "LimitMaxDischarge"

            await station.notify_der_alarm("LimitMaxDischarge", "OverVoltage")
            await asyncio.sleep(0.05)
            (alarm,) = harness.of_type(DerAlarm)
            assert (alarm.station_id, alarm.control_type, alarm.grid_event_fault) == (
                "V2X-21",
                "LimitMaxDischarge",
                "OverVoltage",
            )

            # Every CSMS message, the V2X profile among them, passed the OCA 2.1 schemas.
            assert station.messages_checked > 0 and station.schema_violations == []
            assert len(station.profiles) == 2
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(("version", "wire"), [("2.0.1", "ocpp2.0.1"), ("1.6", "ocpp1.6")])
def test_stations_without_discharge_get_a_charging_only_limit(
    harness: Harness, version: str, wire: str
) -> None:
    async def scenario() -> None:
        harness.csms.add_token(CARD)
        async with harness.serve():
            station = await charging(harness, version, "V2X-OLD")
            session = station.session()
            assert session is not None
            target = Target("V2X-OLD", 1, session.transaction_id)
            v2g = StationCommands(harness.csms.commands, station.clock)
            sent = await v2g.send_setpoints(
                target, plan_periods([4_000.0, -6_000.0, -6_000.0], 900)
            )
            assert sent.status == "Accepted"
            assert sent.reason == DISCHARGE_UNSUPPORTED.format(version=wire)
            schedule = sent.body["chargingSchedule"]
            periods = (schedule[0] if version == "2.0.1" else schedule)["chargingSchedulePeriod"]
            assert periods == [
                {"startPeriod": 0, "limit": 4_000.0},
                {"startPeriod": 900, "limit": 0.0},
            ]
            assert station.messages_checked > 0 and station.schema_violations == []
            # The station obeys it: 4 kW now, nothing once the plan asks for discharge.
            rating, tx = Rating(230, 3), session.transaction_id
            assert station.profiles.limit_w(1, rating, T0, tx, T0) == 4_000
            assert station.profiles.limit_w(1, rating, T0 + timedelta(minutes=20), tx, T0) == 0
            with pytest.raises(UnsupportedCommand):
                await v2g.send_grid_limits(target, 11_000, 5_000)
            with pytest.raises(UnsupportedCommand):
                await harness.csms.commands.set_der_control("V2X-OLD", "x", "LimitMaxDischarge", {})
            await station.close()

    asyncio.run(scenario())


def test_bad_v2x_messages_get_ocpp_errors_and_nothing_is_kept(harness: Harness) -> None:
    async def scenario() -> None:
        harness.csms.add_station("V2X-BAD", PASSWORD)
        async with (
            harness.serve(),
            raw_socket(harness.url, "V2X-BAD", ["ocpp2.1"], PASSWORD) as socket,
        ):

            async def exchange(frame: list[Any]) -> list[Any]:
                await socket.send(json.dumps(frame))
                answer: list[Any] = json.loads(await asyncio.wait_for(socket.recv(), 5))
                return answer

            boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
            booted = await exchange([2, "b", "BootNotification", boot])
            assert booted[2]["status"] == "Accepted"
            no_mode = {"evseId": 1, "chargingNeeds": {"controlMode": "DynamicControl"}}
            answer = await exchange([2, "n1", "NotifyEVChargingNeeds", no_mode])
            assert answer[:3] == [4, "n1", "OccurrenceConstraintViolation"]
            bad_fault = {
                "controlType": "LimitMaxDischarge",
                "timestamp": "2025-06-01T18:00:00Z",
                "gridEventFault": "Meteor",
            }
            answer = await exchange([2, "a1", "NotifyDERAlarm", bad_fault])
            assert answer[:3] == [4, "a1", "PropertyConstraintViolation"]
            assert harness.csms.commands.ev_charging_needs("V2X-BAD", 1) is None
            assert harness.of_type(DerAlarm) == []

    asyncio.run(scenario())


def test_a_21_station_holds_its_v2x_setpoint_and_alarms_when_a_limit_holds_it(
    harness: Harness,
) -> None:
    async def scenario() -> None:
        harness.csms.add_token(CARD)
        async with harness.serve():
            station = await charging(harness, "2.1", "V2X-SP")
            assert await station.notify_ev_charging_needs(1, NEEDS) == "Processing"
            session = station.session()
            assert session is not None
            v2g = StationCommands(harness.csms.commands, station.clock)
            target = Target("V2X-SP", 1, session.transaction_id)
            await v2g.send_setpoints(target, [Period(0, -6_000.0), Period(3_600, 2_000.0)])
            asked: list[float] = []

            def inverter_at_4kw(setpoint_w: float) -> float:
                """An inverter under a grid limit of 4 kW export."""
                asked.append(setpoint_w)
                return max(setpoint_w, -4_000.0)

            # The setpoint goes to the power stage; the export it let through is metered.
            assert await station.transfer_for(timedelta(hours=1), inverter_at_4kw) == -4_000.0
            meter = station.evse().meter
            assert (meter.register_wh, meter.export_register_wh) == (0, 4_000)
            # The next period charges: the stage follows, the alarm ends.
            assert await station.transfer_for(timedelta(minutes=30), inverter_at_4kw) == 2_000.0
            assert asked == [-6_000.0, 2_000.0]
            assert (meter.register_wh, meter.export_register_wh) == (1_000, 4_000)
            await asyncio.sleep(0.05)
            raised, ended = harness.of_type(DerAlarm)
            assert (raised.control_type, raised.alarm_ended, ended.alarm_ended) == (
                "LimitMaxDischarge",
                False,
                True,
            )
            assert raised.extra_info == (
                "discharge setpoint 6000 W held at 4000 W by the grid limit in force"
            )
            # The meter values of the transaction carry both registers.
            await station.stop_charging()
            samples = harness.csms.store.run(harness.csms.store.meter_samples, "V2X-SP")
            registers = {
                s.sample.measurand: s.sample.value
                for s in samples
                if s.sample.measurand.startswith("Energy")
            }
            assert registers == {
                "Energy.Active.Import.Register": 1_000,
                "Energy.Active.Export.Register": 4_000,
            }
            assert station.schema_violations == []
            await station.close()

    asyncio.run(scenario())


def test_a_201_station_draws_its_charging_limit_through_its_power_stage(
    harness: Harness,
) -> None:
    async def scenario() -> None:
        harness.csms.add_token(CARD)
        async with harness.serve():
            station = await charging(harness, "2.0.1", "V2X-LIM")
            session = station.session()
            assert session is not None
            v2g = StationCommands(harness.csms.commands, station.clock)
            target = Target("V2X-LIM", 1, session.transaction_id)
            sent = await v2g.send_setpoints(target, [Period(0, 3_000.0), Period(1_800, -5_000.0)])
            assert sent.reason == DISCHARGE_UNSUPPORTED.format(version="ocpp2.0.1")
            asked: list[float] = []

            def follows(setpoint_w: float) -> float:
                asked.append(setpoint_w)
                return setpoint_w

            await station.transfer_for(timedelta(minutes=30), follows)
            await station.transfer_for(timedelta(minutes=30), follows)
            # The EV draws the limit; where discharge was asked, the limit is 0 W.
            assert asked == [3_000.0, 0.0]
            assert station.evse().meter.register_wh == 1_500
            assert station.evse().meter.export_register_wh == 0
            await station.close()

    asyncio.run(scenario())


def test_a_schedule_starts_at_zero() -> None:
    assert plan_periods([1.0, 1.0, 2.0], 900) == [Period(0, 1.0), Period(1_800, 2.0)]
    # A vehicle plugged in 5 minutes into a slot: the next slot starts 10 minutes from now.
    assert plan_periods([1.0, 2.0], 900, 300) == [Period(0, 1.0), Period(600, 2.0)]
    with pytest.raises(ValidationError):
        plan_periods([1.0], 900, 900)

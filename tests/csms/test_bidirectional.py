"""OCPP 2.1 NotifyEVChargingNeeds and NotifyDERAlarm from a simulated 2.1 station over a real
WebSocket, on SQLite and PostgreSQL: every message is stored and published; the EV's current
needs are read from the store, so they outlive the connection and a restart of the CSMS, and
end with the transaction they came in; the operator API lists both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from evgi.api import create_app
from evgi.app import open_platform
from evgi.core.clock import SimulatedClock
from evgi.csms.v21 import DerAlarm, EvChargingNeeds
from evgi.service import http_in_background
from evgi.sim.stations import EvseSpec, Station21, Vehicle
from evgi.storage.bidirectional import charging_needs, der_alarms
from tests.csms.conftest import PASSWORD, Harness

T0 = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)
CARD = "04V2G0000000002"
FIRST = {
    "requested_energy_transfer": "AC_BPT",
    "control_mode": "DynamicControl",
    "departure_time": "2025-06-02T07:30:00Z",
    "v2x_charging_parameters": {"max_charge_power": 11_000.0, "max_discharge_power": 7_400.0},
}
# The EV renegotiates: less discharge now.
SECOND = {**FIRST, "v2x_charging_parameters": {"max_discharge_power": 3_700.0}}


def test_needs_and_alarms_are_stored_and_outlive_a_restart(harness_any_db: Harness) -> None:
    harness = harness_any_db
    harness.csms.add_station("V2X-S", PASSWORD)
    harness.csms.add_token(CARD)
    platform = open_platform(harness.settings)

    async def scenario() -> None:
        station = Station21(
            "V2X-S", "ws://unused", password=PASSWORD, clock=SimulatedClock(T0), evses=[EvseSpec()]
        )
        async with harness.serve():
            station.url = harness.url
            await station.connect()
            # Needs before any transaction, then two within Dana's session.
            assert await station.notify_ev_charging_needs(
                1, {"requested_energy_transfer": "AC_three_phase"}
            )
            await station.plug_in(vehicle=Vehicle.at_soc(60_000, 60, 11_000))
            assert await station.present_token(CARD) == "Accepted"
            session = station.session()
            assert session is not None and session.transaction_id is not None
            assert await station.notify_ev_charging_needs(1, FIRST) == "Processing"
            assert await station.notify_ev_charging_needs(1, SECOND) == "Processing"
            await station.notify_der_alarm("LimitMaxDischarge", "OverVoltage")
            await station.notify_der_alarm("LimitMaxDischarge", "OverVoltage", ended=True)
            await station.disconnect()
        published = harness.of_type(EvChargingNeeds)
        transaction_id = session.transaction_id
        assert [n.transaction_id for n in published] == [None, transaction_id, transaction_id]

        # A restart: a new CSMS on the same database, the station not connected to it.
        csms = harness.reopen()
        current = csms.commands.ev_charging_needs("V2X-S", 1)
        assert current == published[-1]
        assert current is not None and current.bidirectional
        assert (current.max_charge_w, current.max_discharge_w) == (None, 3_700.0)
        assert current.departure_at == datetime(2025, 6, 2, 7, 30, tzinfo=UTC)
        assert current.needs["v2x_charging_parameters"] == {"max_discharge_power": 3_700.0}
        assert csms.store.run(charging_needs, "V2X-S") == published[::-1]
        assert csms.store.run(charging_needs, "V2X-S", 2) == []
        alarms = csms.store.run(der_alarms, "V2X-S")
        assert alarms == harness.of_type(DerAlarm)[::-1]
        assert [(a.control_type, a.grid_event_fault, a.alarm_ended) for a in alarms] == [
            ("LimitMaxDischarge", "OverVoltage", True),
            ("LimitMaxDischarge", "OverVoltage", False),
        ]

        # The operator API lists them, newest first; an unknown station is a 404.
        with (
            http_in_background(create_app(platform, csms)) as base,
            httpx.Client(base_url=base) as api,
        ):
            needs = api.get("/api/stations/V2X-S/ev-charging-needs", params={"limit": 2})
            assert needs.status_code == 200, needs.text
            body = needs.json()
            assert [n["max_discharge_w"] for n in body] == [3_700.0, 7_400.0]
            assert body[0]["transaction_id"] == transaction_id and body[0]["bidirectional"]
            assert body[0]["answer"] == "Processing"
            of_evse = api.get("/api/stations/V2X-S/ev-charging-needs", params={"evse_id": 1})
            assert len(of_evse.json()) == 3
            listed = api.get("/api/stations/V2X-S/der-alarms").json()
            assert [a["alarm_ended"] for a in listed] == [True, False]
            assert api.get("/api/stations/NOPE/der-alarms").status_code == 404
            assert api.get("/api/stations/V2X-S/der-alarms", params={"limit": 0}).status_code == 422

        # Dana's EV leaves: its session ends, and with it its needs; the history stays.
        async with harness.serve():
            station.url = harness.url
            await station.connect()
            await station.stop_charging()
            await station.unplug()
            await station.close()
        assert csms.commands.ev_charging_needs("V2X-S", 1) is None
        assert len(csms.store.run(charging_needs, "V2X-S", 1)) == 3

    try:
        asyncio.run(scenario())
    finally:
        platform.close()

"""Each OCPP version end to end over a real WebSocket: boot, authorization, transactions, meter
values, status, remote commands, and the events settlement consumes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryStation16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v21 import ChargePoint as LibraryStation21
from ocpp.v21 import call as c21
from ocpp.v21 import call_result as r21
from ocpp.v201 import ChargePoint as LibraryStation201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201

from evgi.csms import (
    AuthorizationRequest,
    MeterValuesReceived,
    Refusal,
    StationBooted,
    StationOffline,
    StationStatusChanged,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    UnsupportedCommand,
    VariableRef,
)
from tests.csms.clients import station
from tests.csms.conftest import PASSWORD, Harness

T0 = "2025-03-01T10:00:00Z"
T1 = "2025-03-01T10:30:00Z"
T2 = "2025-03-01T11:00:00Z"


class Station16(LibraryStation16):
    """A 1.6 station that accepts what the CSMS asks."""

    @on("RemoteStartTransaction")
    def remote_start(self, id_tag: str, **_: Any) -> r16.RemoteStartTransaction:
        return r16.RemoteStartTransaction(status="Accepted")

    @on("Reset")
    def reset(self, type: str, **_: Any) -> r16.Reset:
        return r16.Reset(status="Accepted")

    @on("SetChargingProfile")
    def set_profile(self, **_: Any) -> r16.SetChargingProfile:
        return r16.SetChargingProfile(status="Accepted")

    @on("GetConfiguration")
    def get_configuration(self, **_: Any) -> r16.GetConfiguration:
        return r16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        )

    @on("SendLocalList")
    def send_local_list(self, **_: Any) -> r16.SendLocalList:
        return r16.SendLocalList(status="Accepted")

    @on("ReserveNow")
    def reserve_now(self, **_: Any) -> r16.ReserveNow:
        return r16.ReserveNow(status="Accepted")

    @on("DataTransfer")
    def data_transfer(self, **_: Any) -> r16.DataTransfer:
        return r16.DataTransfer(status="Accepted", data="pong")


class Station201(LibraryStation201):
    @on("RequestStartTransaction")
    def request_start(self, **_: Any) -> r201.RequestStartTransaction:
        return r201.RequestStartTransaction(status="Accepted")

    @on("SetChargingProfile")
    def set_profile(self, **_: Any) -> r201.SetChargingProfile:
        return r201.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def clear_profile(self, **_: Any) -> r201.ClearChargingProfile:
        return r201.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def composite(self, evse_id: int, duration: int, **_: Any) -> r201.GetCompositeSchedule:
        return r201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": T0,
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 11000.0}],
            },
        )

    @on("GetVariables")
    def get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> r201.GetVariables:
        return r201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                    "attribute_value": "42",
                }
                for d in get_variable_data
            ]
        )


class Station21(LibraryStation21):
    @on("RequestStopTransaction")
    def request_stop(self, **_: Any) -> r21.RequestStopTransaction:
        return r21.RequestStopTransaction(status="Accepted")


def test_ocpp16_session(harness: Harness) -> None:
    csms = harness.csms
    csms.add_station("CS16", PASSWORD)
    csms.add_token("TAG-OK", group_id="FLEET")
    csms.add_token("TAG-BLOCKED", status="Blocked")
    csms.add_token("TAG-OLD", expires_at=datetime(2020, 1, 1, tzinfo=UTC))

    async def scenario() -> None:
        async with (
            harness.serve() as url,
            station(url, "CS16", "ocpp1.6", PASSWORD, Station16) as cp,
        ):
            boot = await cp.call(
                c16.BootNotification(
                    charge_point_vendor="Acme",
                    charge_point_model="AC22",
                    charge_point_serial_number="S-1",
                    firmware_version="1.2",
                )
            )
            assert boot.status == "Accepted" and boot.interval == 300
            assert (await cp.call(c16.Heartbeat())).current_time.endswith("Z")
            await cp.call(
                c16.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )
            ok = await cp.call(c16.Authorize(id_tag="TAG-OK"))
            assert ok.id_tag_info == {"status": "Accepted", "parent_id_tag": "FLEET"}
            for tag, status in (
                ("TAG-BLOCKED", "Blocked"),
                ("TAG-OLD", "Expired"),
                ("NOPE", "Invalid"),
            ):
                answer = await cp.call(c16.Authorize(id_tag=tag))
                assert answer.id_tag_info["status"] == status

            started = await cp.call(
                c16.StartTransaction(
                    connector_id=1, id_tag="TAG-OK", meter_start=1000, timestamp=T0
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            tx_id = started.transaction_id
            again = await cp.call(
                c16.StartTransaction(connector_id=2, id_tag="TAG-OK", meter_start=0, timestamp=T0)
            )
            assert again.id_tag_info["status"] == "ConcurrentTx"
            await cp.call(
                c16.StopTransaction(meter_stop=0, timestamp=T0, transaction_id=again.transaction_id)
            )
            await cp.call(
                c16.MeterValues(
                    connector_id=1,
                    transaction_id=tx_id,
                    meter_value=[
                        {
                            "timestamp": T1,
                            "sampled_value": [
                                {"value": "5.5", "unit": "kWh", "context": "Sample.Periodic"},
                                {
                                    "value": "16.1",
                                    "measurand": "Current.Import",
                                    "phase": "L1",
                                    "unit": "A",
                                },
                                {"value": "AB12CD", "format": "SignedData"},
                            ],
                        }
                    ],
                )
            )
            stopped = await cp.call(
                c16.StopTransaction(
                    meter_stop=12000,
                    timestamp=T2,
                    transaction_id=tx_id,
                    reason="EVDisconnected",
                    id_tag="TAG-OK",
                )
            )
            assert stopped.id_tag_info["status"] == "Accepted"

            commands = csms.commands
            assert (await commands.reset("CS16")).status == "Accepted"
            assert (await commands.remote_start("CS16", "TAG-OK", evse_id=1)).status == ("Accepted")
            profile = {
                "chargingProfileId": 7,
                "stackLevel": 1,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                },
            }
            assert (await commands.set_charging_profile("CS16", 1, profile)).status == ("Accepted")
            config = await commands.get_report("CS16")
            assert config.configuration_key[0]["key"] == "HeartbeatInterval"
            assert (await commands.send_local_list("CS16")).status == "Accepted"
            expiry = datetime.now(UTC) + timedelta(hours=1)
            assert (await commands.reserve("CS16", 3, "TAG-OK", expiry, 1)).status == ("Accepted")
            transfer = await commands.data_transfer("CS16", "org.example", "ping", "hello")
            assert transfer.data == "pong"
            with pytest.raises(UnsupportedCommand):
                await commands.reset("CS16", evse_id=1)
        with pytest.raises(StationOffline):
            await csms.commands.reset("CS16")

    asyncio.run(scenario())
    store = csms.store
    tx = store.run(store.transaction_by_number, 1)
    assert (tx.state, tx.meter_start_wh, tx.meter_stop_wh, tx.stop_reason) == (
        "ended",
        1000,
        12000,
        "EVDisconnected",
    )
    assert tx.group_id == "FLEET" and tx.evse_id == 1
    samples = store.run(store.meter_samples, "CS16", tx.number)
    assert [(s.sample.measurand, s.sample.phase, s.sample.unit) for s in samples] == [
        ("Energy.Active.Import.Register", None, "kWh"),
        ("Current.Import", "L1", "A"),
        ("Energy.Active.Import.Register", None, "Wh"),
    ]
    assert samples[2].sample.signed == "AB12CD" and samples[2].sample.value is None
    station_row = store.run(store.station, "CS16")
    assert (station_row.vendor, station_row.model, station_row.ocpp_version) == (
        "Acme",
        "AC22",
        "ocpp1.6",
    )
    assert station_row.connected is False
    assert [p.profile_id for p in store.run(store.profiles, "CS16")] == [7]
    assert store.run(store.local_list_version, "CS16") == 1
    assert store.run(store.reservations, "CS16")[0].status == "Accepted"
    assert store.run(store.variables, "CS16")[0].value == "300"
    assert store.run(store.data_transfers, "CS16")[0]["data"] == "hello"

    ended = harness.of_type(TransactionEnded)
    main = next(e for e in ended if e.transaction_id == tx.transaction_id)
    assert (main.meter_start_wh, main.meter_stop_wh, main.energy_wh, main.id_token) == (
        1000,
        12000,
        11000,
        "TAG-OK",
    )
    assert harness.of_type(StationBooted)[0].status == "Accepted"
    assert len(harness.of_type(TransactionStarted)) == 2
    assert harness.of_type(TransactionUpdated)
    assert harness.of_type(MeterValuesReceived)[0].transaction_id == tx.transaction_id
    assert harness.of_type(StationStatusChanged)[0].status == "Available"


def _event(
    event_type: str, seq_no: int, at: str, wh: float | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_type": event_type,
        "timestamp": at,
        "seq_no": seq_no,
        "trigger_reason": {
            "Started": "Authorized",
            "Updated": "MeterValuePeriodic",
            "Ended": "StopAuthorized",
        }[event_type],
        "transaction_info": {"transaction_id": "TX-1"},
    }
    if wh is not None:
        body["meter_value"] = [
            {
                "timestamp": at,
                "sampled_value": [
                    {
                        "value": wh,
                        "measurand": "Energy.Active.Import.Register",
                        "unit_of_measure": {"unit": "Wh"},
                    }
                ],
            }
        ]
    body.update(extra)
    return body


@pytest.mark.parametrize("version", ["ocpp2.0.1", "ocpp2.1"])
def test_ocpp2x_session(harness: Harness, version: str) -> None:
    csms = harness.csms
    csms.add_station("CS2", PASSWORD)
    csms.add_token("TAG-OK")
    refusals: list[AuthorizationRequest] = []

    async def no_credit(request: AuthorizationRequest) -> Refusal | None:
        if request.starting and request.id_token == "TAG-POOR":
            refusals.append(request)
            return Refusal("NoCredit", "balance too low")
        return None

    csms.authorization.add_hook(no_credit)
    csms.add_token("TAG-POOR")
    call = c201 if version == "ocpp2.0.1" else c21
    station_class = Station201 if version == "ocpp2.0.1" else Station21

    async def scenario() -> None:
        async with (
            harness.serve() as url,
            station(url, "CS2", version, PASSWORD, station_class) as cp,
        ):
            boot = await cp.call(
                call.BootNotification(
                    charging_station={
                        "model": "DC50",
                        "vendor_name": "Acme",
                        "firmware_version": "2.0",
                    },
                    reason="PowerUp",
                )
            )
            assert boot.status == "Accepted"
            await cp.call(
                call.StatusNotification(
                    timestamp=T0, connector_status="Occupied", evse_id=1, connector_id=1
                )
            )
            auth = await cp.call(
                call.Authorize(id_token={"id_token": "TAG-OK", "type": "ISO14443"})
            )
            assert auth.id_token_info["status"] == "Accepted"
            unknown = await cp.call(call.Authorize(id_token={"id_token": "X", "type": "Local"}))
            assert unknown.id_token_info["status"] == "Unknown"
            token = {"id_token": "TAG-OK", "type": "ISO14443"}
            started = await cp.call(
                call.TransactionEvent(
                    **_event(
                        "Started", 0, T0, 1000.0, id_token=token, evse={"id": 1, "connector_id": 1}
                    )
                )
            )
            assert started.id_token_info["status"] == "Accepted"
            # seqNo 1 and 2 were queued while offline: 2 arrives, then 4 (3 is lost), then 1.
            await cp.call(call.TransactionEvent(**_event("Updated", 2, T1, 4000.0, offline=True)))
            await cp.call(call.TransactionEvent(**_event("Updated", 4, T1, 5000.0)))
            await cp.call(call.TransactionEvent(**_event("Updated", 1, T1, 3000.0, offline=True)))
            # A repeated seqNo (a retransmission) changes nothing.
            await cp.call(call.TransactionEvent(**_event("Updated", 1, T1, 3000.0)))
            ended = _event("Ended", 5, T2, 9000.0)
            ended["transaction_info"]["stopped_reason"] = "EVDisconnected"
            await cp.call(call.TransactionEvent(**ended))
            poor = await cp.call(
                call.Authorize(id_token={"id_token": "TAG-POOR", "type": "ISO14443"})
            )
            assert poor.id_token_info["status"] == "Accepted"  # not starting yet
            refused = _event(
                "Started", 0, T2, 0.0, id_token={"id_token": "TAG-POOR", "type": "ISO14443"}
            )
            refused["transaction_info"]["transaction_id"] = "TX-2"
            answer = await cp.call(call.TransactionEvent(**refused))
            assert answer.id_token_info["status"] == "NoCredit"
            await cp.call(
                call.MeterValues(
                    evse_id=1,
                    meter_value=[
                        {
                            "timestamp": T2,
                            "sampled_value": [
                                {
                                    "value": 230.1,
                                    "measurand": "Voltage",
                                    "phase": "L1-N",
                                    "unit_of_measure": {"unit": "V"},
                                    "context": "Trigger",
                                }
                            ],
                        }
                    ],
                )
            )
            await cp.call(
                call.SecurityEventNotification(type="TamperDetectionActivated", timestamp=T2)
            )
            await cp.call(call.FirmwareStatusNotification(status="Downloading", request_id=4))

            commands = csms.commands
            if version == "ocpp2.0.1":
                assert (await commands.remote_start("CS2", "TAG-OK", 1)).status == "Accepted"
                profile = {
                    "id": 3,
                    "stackLevel": 0,
                    "chargingProfilePurpose": "TxDefaultProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": [
                        {
                            "id": 1,
                            "chargingRateUnit": "W",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
                        }
                    ],
                }
                assert (await commands.set_charging_profile("CS2", 1, profile)).status == (
                    "Accepted"
                )
                composite = await commands.composite_schedule("CS2", 1, 3600)
                assert composite.schedule["charging_schedule_period"][0]["limit"] == 11000.0
                await commands.set_charging_profile("CS2", 1, {**profile, "id": 4, "stackLevel": 1})
                cleared = await commands.clear_charging_profile("CS2", profile_id=4)
                assert cleared.status == "Accepted"
                answer = await commands.get_variables(
                    "CS2", [VariableRef("SampledDataCtrlr", "TxUpdatedInterval")]
                )
                assert answer.get_variable_result[0]["attribute_value"] == "42"
            else:
                assert (await commands.remote_stop("CS2", "TX-1")).status == "Accepted"

    asyncio.run(scenario())
    store = csms.store
    tx = store.run(store.find_transaction, "CS2", "TX-1")
    assert tx is not None
    assert (tx.state, tx.meter_start_wh, tx.meter_stop_wh, tx.stop_reason) == (
        "ended",
        1000,
        9000,
        "EVDisconnected",
    )
    assert (tx.last_seq_no, tx.missing, tx.offline_messages) == (5, [3], 2)
    register = [s.sample.value for s in store.run(store.meter_samples, "CS2", tx.number)]
    assert register == [1000.0, 4000.0, 5000.0, 3000.0, 9000.0]  # by arrival within a time
    assert refusals and refusals[0].station_id == "CS2"
    assert store.run(store.security_events, "CS2")[0]["type"] == "TamperDetectionActivated"
    assert store.run(store.firmware_log_status, "CS2")[0]["request_id"] == 4
    voltage = [s for s in store.run(store.meter_samples, "CS2") if s.transaction_number is None]
    assert voltage[0].sample.phase == "L1-N" and voltage[0].sample.context == "Trigger"
    assert [c.status for c in store.run(store.connectors, "CS2")] == ["Occupied"]
    if version == "ocpp2.0.1":
        assert store.run(store.variables, "CS2")[0].value == "42"
        assert store.run(store.profiles, "CS2")[0].purpose == "TxDefaultProfile"
    ended = [e for e in harness.of_type(TransactionEnded) if e.transaction_id == "TX-1"]
    assert len(ended) == 1 and ended[0].energy_wh == 8000


def test_ocpp21_answers_every_unimplemented_action(harness: Harness) -> None:
    harness.csms.add_station("CS21", PASSWORD)

    async def scenario() -> None:
        async with harness.serve() as url, station(url, "CS21", "ocpp2.1", PASSWORD) as cp:
            await cp.call(
                c21.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                )
            )
            from ocpp.exceptions import NotImplementedError as NotImplementedCallError

            with pytest.raises(NotImplementedCallError):
                await cp.call(
                    c21.NotifyEvent(
                        generated_at=T0,
                        seq_no=0,
                        event_data=[
                            {
                                "event_id": 1,
                                "timestamp": T0,
                                "trigger": "Alerting",
                                "actual_value": "on",
                                "event_notification_type": "HardWiredNotification",
                                "component": {"name": "Door"},
                                "variable": {"name": "Open"},
                            }
                        ],
                    ),
                    suppress=False,
                )
            with pytest.raises(NotImplementedCallError):
                await cp.call(
                    c21.BatterySwap(
                        event_type="BatteryIn",
                        request_id=1,
                        id_token={"id_token": "T", "type": "Local"},
                        battery_data=[
                            {"evse_id": 1, "serial_number": "B", "so_c": 50.0, "so_h": 90.0}
                        ],
                    ),
                    suppress=False,
                )

    asyncio.run(scenario())


def test_pending_station_may_only_boot(harness: Harness) -> None:
    harness.csms.add_station("CSP", PASSWORD, boot_status="Pending")

    async def scenario() -> None:
        async with harness.serve() as url, station(url, "CSP", "ocpp1.6", PASSWORD) as cp:
            from ocpp.exceptions import SecurityError

            with pytest.raises(SecurityError):
                await cp.call(c16.Heartbeat(), suppress=False)
            boot = await cp.call(
                c16.BootNotification(charge_point_vendor="V", charge_point_model="M")
            )
            assert (boot.status, boot.interval) == ("Pending", 60)
            with pytest.raises(SecurityError):
                await cp.call(c16.Heartbeat(), suppress=False)
            harness.csms.store.run(harness.csms.store.update_station, "CSP", boot_status="Accepted")
            boot = await cp.call(
                c16.BootNotification(charge_point_vendor="V", charge_point_model="M")
            )
            assert boot.status == "Accepted"
            await cp.call(c16.Heartbeat(), suppress=False)

    asyncio.run(scenario())

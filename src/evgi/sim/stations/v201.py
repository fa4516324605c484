"""OCPP 2.0.1: the station's messages and its answers to a CSMS, in 2.x's words.

OCPP 2.1 keeps every message 2.0.1 has with the same shape (and adds new ones), so the 2.x
behaviour lives in `Ocpp2Station` once; `Station201` and `v21.Station21` bind it to their
version's payload classes and schemas. The station makes its own transaction ids, numbers
each transaction's events, and speaks of settings as components and variables.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, ClassVar

import ocpp.v201
from ocpp.charge_point import camel_to_snake_case, remove_nones, snake_to_camel_case

from evgi.sim.stations.authorization import Verdict
from evgi.sim.stations.charging_profile import ChargingProfile, Period, Purpose
from evgi.sim.stations.configuration import Setting
from evgi.sim.stations.connector import ConnectorStatus, Evse, Reservation
from evgi.sim.stations.meter import Reading
from evgi.sim.stations.session import Session, StartTrigger, StopReason
from evgi.sim.stations.station import BootResult, Station, ocpp_time, on, parse_time, ready

_PURPOSES = {
    "ChargingStationMaxProfile": Purpose.STATION_MAX,
    "ChargingStationExternalConstraints": Purpose.EXTERNAL,
    "TxDefaultProfile": Purpose.TX_DEFAULT,
    "TxProfile": Purpose.TX,
}

# Why a transaction ended: (triggerReason, stoppedReason).
_ENDINGS = {
    StopReason.LOCAL: ("StopAuthorized", "Local"),
    StopReason.REMOTE: ("RemoteStop", "Remote"),
    StopReason.EV_DISCONNECTED: ("EVCommunicationLost", "EVDisconnected"),
    StopReason.HARD_RESET: ("ResetCommand", "ImmediateReset"),
    StopReason.SOFT_RESET: ("ResetCommand", "ImmediateReset"),
    StopReason.UNLOCK: ("UnlockCommand", "Other"),
    StopReason.DEAUTHORIZED: ("Deauthorized", "DeAuthorized"),
    StopReason.REBOOT: ("ResetCommand", "Reboot"),
}

_CHARGING_STATES = {
    ConnectorStatus.CHARGING: "Charging",
    ConnectorStatus.SUSPENDED_EV: "SuspendedEV",
    ConnectorStatus.SUSPENDED_EVSE: "SuspendedEVSE",
}

AVAILABILITY = "AvailabilityState"


class Ocpp2Station(Station):
    """What OCPP 2.0.1 and 2.1 stations do alike."""

    _types: ClassVar[Any]  # the version's datatypes module

    # -- messages to the CSMS -------------------------------------------------------------------

    def _new_transaction_id(self) -> str | None:
        return str(uuid.uuid4())

    def _wire_status(self, evse: Evse) -> str:
        status = evse.status
        if status in (ConnectorStatus.UNAVAILABLE, ConnectorStatus.FAULTED):
            return status.value
        if evse.plugged or evse.session is not None:
            return "Occupied"
        return "Reserved" if status == ConnectorStatus.RESERVED else "Available"

    def _station_availability(self) -> str:
        return "Available" if self.operative else "Unavailable"

    async def _send_boot(self, reason: str) -> BootResult:
        result = await self._request(
            self._call.BootNotification(
                charging_station=self._types.ChargingStationType(
                    model=self.model,
                    vendor_name=self.vendor,
                    serial_number=self.serial_number,
                    firmware_version=self.firmware,
                ),
                reason=reason,
            )
        )
        return BootResult(result.status, result.interval)

    async def _send_status(self, evse: Evse, status: str) -> Any:
        return await self._notify(
            self._call.StatusNotification(
                timestamp=ocpp_time(self.clock.now()),
                connector_status=status,
                evse_id=evse.id,
                connector_id=evse.connector_id,
            )
        )

    async def _pnc_request(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = getattr(self._call, action)(**camel_to_snake_case(body))
        answer = await self._request(payload)
        wire: dict[str, Any] = snake_to_camel_case(remove_nones(dataclasses.asdict(answer)))
        return wire

    def _id_token(self, token: str, token_type: str) -> Any:
        return self._types.IdTokenType(id_token=token, type=token_type)

    async def _send_authorize(self, token: str, token_type: str) -> Verdict:
        token_payload = self._id_token(token, token_type)
        result = await self._request(self._call.Authorize(id_token=token_payload))
        info = result.id_token_info
        group = info.get("group_id_token")
        return Verdict(info["status"], group["id_token"] if group else None)

    def _meter_value(self, reading: Reading, context: str) -> Any:
        types = self._types
        return types.MeterValueType(
            timestamp=ocpp_time(reading.timestamp),
            sampled_value=[
                types.SampledValueType(
                    value=sample.value,
                    context=context,
                    measurand=sample.measurand,
                    phase=sample.phase,
                    location="Outlet",
                    unit_of_measure=types.UnitOfMeasureType(unit=sample.unit),
                )
                for sample in reading.samples(self.config.members("sampled_data"))
            ],
        )

    def _charging_state(self, evse: Evse) -> str:
        if evse.session is not None:
            return _CHARGING_STATES.get(evse.charging_state, "Charging")
        return "EVConnected" if evse.plugged else "Idle"

    def _event(
        self,
        event_type: str,
        trigger: str,
        session: Session,
        info: dict[str, Any],
        readings: list[Any],
        **extra: Any,
    ) -> Any:
        """A TransactionEvent, numbered and flagged offline when it happens without a link."""
        timestamp = readings[0].timestamp if readings else ocpp_time(self.clock.now())
        return self._call.TransactionEvent(
            event_type=event_type,
            timestamp=timestamp,
            trigger_reason=trigger,
            seq_no=session.next_seq_no(),
            transaction_info=self._types.TransactionType(
                transaction_id=session.transaction_id, **info
            ),
            meter_value=readings or None,
            offline=not self.online,
            **extra,
        )

    def _id_token_verdict(self, evse: Evse, session: Session) -> Any:
        def verdict(result: Any) -> None:
            if result.id_token_info:
                self._verdict(evse, session, result.id_token_info["status"])

        return verdict

    async def _transaction_started(
        self, evse: Evse, session: Session, trigger: StartTrigger, reading: Reading
    ) -> None:
        event = self._event(
            "Started",
            trigger.value,
            session,
            {
                "charging_state": self._charging_state(evse),
                "remote_start_id": session.remote_start_id,
            },
            [self._meter_value(reading, "Transaction.Begin")],
            id_token=self._id_token(session.token, session.token_type),
            evse=self._types.EVSEType(id=evse.id, connector_id=evse.connector_id),
            reservation_id=session.reservation_id,
        )
        await self._transaction_message(
            "TransactionEvent", ready(event), self._id_token_verdict(evse, session)
        )

    async def _transaction_sample(self, evse: Evse, session: Session, reading: Reading) -> None:
        event = self._event(
            "Updated",
            "MeterValuePeriodic",
            session,
            {"charging_state": self._charging_state(evse)},
            [self._meter_value(reading, "Sample.Periodic")],
        )
        await self._transaction_message("TransactionEvent", ready(event))

    async def _charging_state_changed(self, evse: Evse, session: Session) -> None:
        event = self._event(
            "Updated",
            "ChargingStateChanged",
            session,
            {"charging_state": self._charging_state(evse)},
            [],
        )
        await self._transaction_message("TransactionEvent", ready(event))

    async def _transaction_ended(self, evse: Evse, session: Session, reading: Reading) -> None:
        assert session.stop_reason is not None
        trigger, stopped = _ENDINGS[session.stop_reason]
        local = session.stop_reason == StopReason.LOCAL
        event = self._event(
            "Ended",
            trigger,
            session,
            {
                "charging_state": self._charging_state(evse),
                "stopped_reason": stopped,
                "time_spent_charging": session.seconds_charging,
            },
            [self._meter_value(reading, "Transaction.End")],
            id_token=self._id_token(session.token, session.token_type) if local else None,
        )
        await self._transaction_message("TransactionEvent", ready(event))

    async def _reservation_ended(self, reservation: Reservation, why: str) -> None:
        await self._notify(
            self._call.ReservationStatusUpdate(
                reservation_id=reservation.id, reservation_update_status=why
            )
        )

    def _firmware_status_payload(self, status: str, request_id: int | None) -> Any:
        return self._call.FirmwareStatusNotification(status=status, request_id=request_id)

    async def _firmware_installing_reboot(self, request_id: int | None) -> None:
        await self._firmware_progress("InstallRebooting", request_id)

    def _upload_status_payload(self, stage: str, request_id: int | None) -> Any:
        status = "UploadFailure" if stage == "Failed" else stage
        return self._call.LogStatusNotification(status=status, request_id=request_id)

    def _sign_certificate_payload(self, csr: str) -> Any:
        return self._call.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate")

    # -- answers to the CSMS --------------------------------------------------------------------

    def _parse_profile(self, evse: int, raw: dict[str, Any]) -> ChargingProfile | None:
        """The profile, or None for a purpose this station does not implement (2.1's priority
        charging and local generation)."""
        purpose = _PURPOSES.get(raw["charging_profile_purpose"])
        if purpose is None:
            return None
        schedule = raw["charging_schedule"][0]  # further schedules are ISO 15118 alternatives
        start = schedule.get("start_schedule")
        valid_from, valid_to = raw.get("valid_from"), raw.get("valid_to")
        return ChargingProfile(
            id=raw["id"],
            evse=evse,
            stack_level=raw["stack_level"],
            purpose=purpose,
            kind=raw["charging_profile_kind"],
            unit=schedule["charging_rate_unit"],
            periods=tuple(
                Period(
                    p["start_period"],
                    float(p["limit"]) if p.get("limit") is not None else None,
                    p.get("number_phases"),
                    float(p["setpoint"]) if p.get("setpoint") is not None else None,
                )
                for p in schedule["charging_schedule_period"]
            ),
            installed=self.clock.now(),
            start=parse_time(start) if start else None,
            duration_s=schedule.get("duration"),
            recurrency=raw.get("recurrency_kind"),
            valid_from=parse_time(valid_from) if valid_from else None,
            valid_to=parse_time(valid_to) if valid_to else None,
            transaction_id=raw.get("transaction_id"),
        )

    @on("RequestStartTransaction")
    def on_request_start_transaction(
        self,
        id_token: dict[str, Any],
        remote_start_id: int,
        evse_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        profile = None
        if charging_profile is not None:
            profile = self._parse_profile(evse_id or 0, charging_profile)
        started = (charging_profile is None or profile is not None) and self._remote_start(
            evse_id, id_token["id_token"], id_token["type"], remote_start_id, profile
        )
        return self._call_result.RequestStartTransaction(
            status="Accepted" if started else "Rejected"
        )

    @on("RequestStopTransaction")
    def on_request_stop_transaction(self, transaction_id: str, **_: Any) -> Any:
        stopped = self._remote_stop(transaction_id)
        return self._call_result.RequestStopTransaction(
            status="Accepted" if stopped else "Rejected"
        )

    @on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        if evse_id is not None:  # resetting a single EVSE is optional; this station can't
            return self._call_result.Reset(status="Rejected")
        status = self._reset(type != "OnIdle", StopReason.HARD_RESET)
        return self._call_result.Reset(status=status)

    @on("UnlockConnector")
    def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        evse = self.evses.get(evse_id)
        if evse is None or connector_id != evse.connector_id:
            status = "UnknownConnector"
        elif evse.session is not None:
            status = "OngoingAuthorizedTransaction"
        else:
            status = "Unlocked"
        return self._call_result.UnlockConnector(status=status)

    @on("ChangeAvailability")
    def on_change_availability(
        self, operational_status: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        number = evse["id"] if evse else 0
        connector = (evse or {}).get("connector_id")
        known = number in self.evses
        if connector is not None and known and connector != self.evses[number].connector_id:
            return self._call_result.ChangeAvailability(status="Rejected")
        status = self._change_availability(number, operational_status == "Operative")
        return self._call_result.ChangeAvailability(status=status)

    def _lookup(
        self, component: dict[str, Any], variable: dict[str, Any]
    ) -> tuple[str, str | None, Setting | None]:
        """(status, value, setting) of a component variable; availability is computed live."""
        name, var = component["name"], variable["name"]
        if component.get("instance") is not None or variable.get("instance") is not None:
            return "UnknownVariable", None, None
        if name == "EVSE":
            evse = self.evses.get((component.get("evse") or {}).get("id", 0))
            if evse is None:
                return "UnknownComponent", None, None
            if var == AVAILABILITY:
                return "Accepted", self._wire_status(evse), None
            return "UnknownVariable", None, None
        if name == "ChargingStation" and var == AVAILABILITY:
            return "Accepted", self._station_availability(), None
        setting = self.config.by_variable(name, var)
        if setting is not None:
            return "Accepted", setting.value, setting
        known = self.config.has_component(name) or name == "ChargingStation"
        return ("UnknownVariable" if known else "UnknownComponent"), None, None

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in get_variable_data:
            attribute = item.get("attribute_type", "Actual")
            status, value, _setting = self._lookup(item["component"], item["variable"])
            if status == "Accepted" and attribute != "Actual":
                status, value = "NotSupportedAttributeType", None
            results.append(
                {
                    "attribute_status": status,
                    "attribute_type": attribute,
                    "attribute_value": value,
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return self._call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        results = []
        for item in set_variable_data:
            attribute = item.get("attribute_type", "Actual")
            status, _value, setting = self._lookup(item["component"], item["variable"])
            if status == "Accepted":
                if attribute != "Actual":
                    status = "NotSupportedAttributeType"
                elif setting is None or not self.config.change(setting, item["attribute_value"]):
                    status = "Rejected"
            results.append(
                {
                    "attribute_status": status,
                    "attribute_type": attribute,
                    "component": item["component"],
                    "variable": item["variable"],
                }
            )
        return self._call_result.SetVariables(set_variable_result=results)

    def _report_entry(
        self, component: Any, variable: str, value: str, readonly: bool, setting: Setting | None
    ) -> Any:
        """One NotifyReport entry; a setting knows its type, availability is an option list."""
        types = self._types
        values: str | None
        if setting is None:
            data_type, values = "OptionList", "Available,Occupied,Reserved,Unavailable,Faulted"
        else:
            data_type, values = setting.kind.value, ",".join(setting.members) or None
        return types.ReportDataType(
            component=component,
            variable=types.VariableType(name=variable),
            variable_attribute=[
                types.VariableAttributeType(
                    type="Actual",
                    value=value,
                    mutability="ReadOnly" if readonly else "ReadWrite",
                )
            ],
            variable_characteristics=types.VariableCharacteristicsType(
                data_type=data_type, supports_monitoring=False, values_list=values
            ),
        )

    def _report(self, base: str) -> list[Any]:
        types = self._types
        entries = []
        if base in ("FullInventory", "ConfigurationInventory"):
            for setting in self.config:
                if setting.component is None or setting.variable is None:
                    continue
                if base == "ConfigurationInventory" and setting.readonly:
                    continue
                entries.append(
                    self._report_entry(
                        types.ComponentType(name=setting.component),
                        setting.variable,
                        setting.value,
                        setting.readonly,
                        setting,
                    )
                )
        if base in ("FullInventory", "SummaryInventory"):
            entries.append(
                self._report_entry(
                    types.ComponentType(name="ChargingStation"),
                    AVAILABILITY,
                    self._station_availability(),
                    True,
                    None,
                )
            )
            for evse in self.evses.values():
                entries.append(
                    self._report_entry(
                        types.ComponentType(name="EVSE", evse=types.EVSEType(id=evse.id)),
                        AVAILABILITY,
                        self._wire_status(evse),
                        True,
                        None,
                    )
                )
        return entries

    @on("GetBaseReport")
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        if report_base not in ("FullInventory", "ConfigurationInventory", "SummaryInventory"):
            return self._call_result.GetBaseReport(status="NotSupported")
        entries = self._report(report_base)

        async def notify() -> None:
            await self._notify(
                self._call.NotifyReport(
                    request_id=request_id,
                    generated_at=ocpp_time(self.clock.now()),
                    seq_no=0,
                    tbc=False,
                    report_data=entries,
                )
            )

        self._after_reply(notify)
        return self._call_result.GetBaseReport(status="Accepted")

    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> Any:
        profile = self._parse_profile(evse_id, charging_profile)
        installed = profile is not None and self._install_profile(profile)
        return self._call_result.SetChargingProfile(status="Accepted" if installed else "Rejected")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        charging_profile_id: int | None = None,
        charging_profile_criteria: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        criteria = charging_profile_criteria or {}
        purpose_name = criteria.get("charging_profile_purpose")
        purpose = _PURPOSES.get(purpose_name) if purpose_name else None
        removed = (purpose_name is None or purpose is not None) and self.profiles.clear(
            charging_profile_id, criteria.get("evse_id"), purpose, criteria.get("stack_level")
        )
        return self._call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        steps = self._composite(evse_id, duration)
        if steps is None:
            return self._call_result.GetCompositeSchedule(status="Rejected")
        unit = charging_rate_unit or "W"
        rating = self._rating(evse_id)
        types = self._types
        return self._call_result.GetCompositeSchedule(
            status="Accepted",
            schedule=types.CompositeScheduleType(
                evse_id=evse_id,
                duration=duration,
                schedule_start=ocpp_time(self.clock.now()),
                charging_rate_unit=unit,
                charging_schedule_period=[
                    types.ChargingSchedulePeriodType(
                        start_period=offset,
                        limit=float(watts) if unit == "W" else rating.amperes(watts),
                    )
                    for offset, watts in steps
                ],
            ),
        )

    @on("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, evse: dict[str, Any] | None = None, **_: Any
    ) -> Any:
        number = evse["id"] if evse else None
        if number and number not in self.evses:
            return self._call_result.TriggerMessage(status="Rejected")
        targets = [self.evses[number]] if number else list(self.evses.values())

        async def heartbeat() -> None:
            await self._heartbeat()

        async def statuses() -> None:
            for target in targets:
                await self._send_status(target, self._wire_status(target))

        async def meter_values() -> None:
            for target in targets:
                reading = target.reading(self.clock.now())
                await self._notify(
                    self._call.MeterValues(
                        evse_id=target.id, meter_value=[self._meter_value(reading, "Trigger")]
                    )
                )

        async def transaction_events() -> None:
            for target in targets:
                session = target.session
                if session is None:
                    continue
                reading = target.reading(self.clock.now())
                event = self._event(
                    "Updated",
                    "Trigger",
                    session,
                    {"charging_state": self._charging_state(target)},
                    [self._meter_value(reading, "Trigger")],
                )
                await self._transaction_message("TransactionEvent", ready(event))

        async def firmware() -> None:
            await self._notify(self._call.FirmwareStatusNotification(status=self.firmware_status))

        async def log_status() -> None:
            status = self.upload_status if self.upload_status != "Failed" else "UploadFailure"
            await self._notify(self._call.LogStatusNotification(status=status))

        async def certificate() -> None:
            await self.request_certificate()

        actions = {
            "BootNotification": self._triggered_boot,
            "Heartbeat": heartbeat,
            "StatusNotification": statuses,
            "MeterValues": meter_values,
            "TransactionEvent": transaction_events,
            "FirmwareStatusNotification": firmware,
            "LogStatusNotification": log_status,
            "SignChargingStationCertificate": certificate,
        }
        if requested_message not in actions:
            return self._call_result.TriggerMessage(status="NotImplemented")
        if requested_message == "BootNotification" and self.registration == "Accepted":
            return self._call_result.TriggerMessage(status="Rejected")
        self._after_reply(actions[requested_message])
        return self._call_result.TriggerMessage(status="Accepted")

    @on("ReserveNow")
    def on_reserve_now(
        self,
        id: int,
        expiry_date_time: str,
        id_token: dict[str, Any],
        evse_id: int | None = None,
        group_id_token: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        status = self._reserve(
            evse_id,
            id,
            id_token["id_token"],
            parse_time(expiry_date_time),
            group_id_token["id_token"] if group_id_token else None,
        )
        return self._call_result.ReserveNow(status=status)

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        cancelled = self._cancel_reservation(reservation_id)
        return self._call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")

    @on("UpdateFirmware")
    def on_update_firmware(self, request_id: int, firmware: dict[str, Any], **_: Any) -> Any:
        self._update_firmware(
            firmware["location"], parse_time(firmware["retrieve_date_time"]), request_id
        )
        return self._call_result.UpdateFirmware(status="Accepted")

    @on("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **_: Any) -> Any:
        filename = self._log_filename(log_type.lower())
        self._upload_log(log["remote_location"], filename, request_id)
        return self._call_result.GetLog(status="Accepted", filename=filename)

    @on("DataTransfer")
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: Any = None, **_: Any
    ) -> Any:
        status, reply = self._data_transfer(vendor_id, data)
        return self._call_result.DataTransfer(status=status, data=reply)

    @on("SendLocalList")
    def on_send_local_list(
        self,
        version_number: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        if not self.config.flag("local_list"):
            return self._call_result.SendLocalList(status="Failed")
        entries = {
            entry["id_token"]["id_token"]: (entry.get("id_token_info") or {}).get("status")
            for entry in local_authorization_list or []
        }
        outcome = self.authorization.update(version_number, update_type == "Full", entries)
        return self._call_result.SendLocalList(status=outcome.value)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_: Any) -> Any:
        return self._call_result.GetLocalListVersion(version_number=self.authorization.version)

    @on("ClearCache")
    def on_clear_cache(self, **_: Any) -> Any:
        if not self.config.flag("auth_cache"):
            return self._call_result.ClearCache(status="Rejected")
        self.authorization.clear_cache()
        return self._call_result.ClearCache(status="Accepted")

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **_: Any) -> Any:
        accepted = self._certificate_signed(certificate_chain)
        return self._call_result.CertificateSigned(status="Accepted" if accepted else "Rejected")

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> Any:
        ongoing = None
        if transaction_id is not None:
            ongoing = any(
                e.session is not None and e.session.transaction_id == transaction_id
                for e in self.evses.values()
            )
        return self._call_result.GetTransactionStatus(
            messages_in_queue=len(self.outbox) > 0, ongoing_indicator=ongoing
        )


class Station201(Ocpp2Station):
    """A charging station speaking OCPP 2.0.1."""

    version = "2.0.1"
    subprotocol = "ocpp2.0.1"
    _call = ocpp.v201.call
    _call_result = ocpp.v201.call_result
    _types = ocpp.v201.datatypes
    _ocpp_version = "2.0.1"

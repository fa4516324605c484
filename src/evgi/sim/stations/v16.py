"""OCPP 1.6J: the station's messages and its answers to a Central System, in 1.6's words.

Connectors are numbered from 1 (0 is the whole charge point), the CSMS assigns transaction ids
in StartTransaction.conf, and meter values travel as strings. ISO 15118 Plug & Charge runs
through the DataTransfer messages of OCA's application note "Using ISO 15118 Plug & Charge
with OCPP 1.6": vendor `PNC_VENDOR`, the message's name as messageId, and the JSON of its
2.0.1 request and response as the data of DataTransfer.req and .conf.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from ocpp.v16 import call, call_result, datatypes

from evgi.csms import PNC_VENDOR, V2G_CERTIFICATE
from evgi.sim.stations.authorization import Verdict
from evgi.sim.stations.certificate import signing_request
from evgi.sim.stations.charging_profile import ChargingProfile, Period, Purpose
from evgi.sim.stations.connector import Evse, Reservation
from evgi.sim.stations.meter import Reading
from evgi.sim.stations.outbox import Refused
from evgi.sim.stations.schema import MessageSchemas
from evgi.sim.stations.session import Session, StartTrigger, StopReason
from evgi.sim.stations.station import BootResult, Station, ocpp_time, on, parse_time, ready

log = structlog.get_logger(__name__)

_PURPOSES = {
    "ChargePointMaxProfile": Purpose.STATION_MAX,
    "TxDefaultProfile": Purpose.TX_DEFAULT,
    "TxProfile": Purpose.TX,
}

# The Plug & Charge messages' data is checked against the 2.0.1 message of the same name.
_PNC_SCHEMAS = MessageSchemas("2.0.1")


def _value(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


class Station16(Station):
    """A charge point speaking OCPP 1.6J (core profile, smart charging, reservations, local
    lists, firmware, remote trigger, and the security extension's logs and certificates)."""

    version = "1.6"
    subprotocol = "ocpp1.6"
    _call = call
    _call_result = call_result
    _ocpp_version = "1.6"

    # -- messages to the Central System ---------------------------------------------------------

    def _new_transaction_id(self) -> str | None:
        return None  # the Central System assigns it in StartTransaction.conf

    def _wire_status(self, evse: Evse) -> str:
        return evse.status.value

    async def _send_boot(self, reason: str) -> BootResult:
        result = await self._request(
            call.BootNotification(
                charge_point_vendor=self.vendor,
                charge_point_model=self.model,
                charge_point_serial_number=self.serial_number,
                firmware_version=self.firmware,
            )
        )
        return BootResult(result.status, result.interval)

    async def _report_statuses(self) -> None:
        await self._station_status()
        await super()._report_statuses()

    async def _station_status(self) -> None:
        await self._notify(
            call.StatusNotification(
                connector_id=0,
                error_code="NoError",
                status="Available" if self.operative else "Unavailable",
                timestamp=ocpp_time(self.clock.now()),
            )
        )

    async def _send_status(self, evse: Evse, status: str) -> Any:
        return await self._notify(
            call.StatusNotification(
                connector_id=evse.id,
                error_code="NoError",
                status=status,
                timestamp=ocpp_time(self.clock.now()),
            )
        )

    async def _pnc_request(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """The Plug & Charge DataTransfer message `action`, its data the 2.0.1 JSON."""
        answer = await self._request(
            call.DataTransfer(vendor_id=PNC_VENDOR, message_id=action, data=json.dumps(body))
        )
        if answer.status != "Accepted":
            raise Refused(action, answer.status, "the Plug & Charge message was not taken")
        data: dict[str, Any] = json.loads(answer.data)
        return data

    async def _send_authorize(self, token: str, token_type: str) -> Verdict:
        result = await self._request(call.Authorize(id_tag=token))
        info = result.id_tag_info
        return Verdict(info["status"], info.get("parent_id_tag"))

    def _meter_value(self, reading: Reading, context: str) -> datatypes.MeterValue:
        measurands = self.config.members("sampled_data")
        return datatypes.MeterValue(
            timestamp=ocpp_time(reading.timestamp),
            sampled_value=[
                datatypes.SampledValue(
                    value=_value(sample.value),
                    context=context,
                    measurand=sample.measurand,
                    phase=sample.phase,
                    location="Outlet",
                    unit=sample.unit,
                )
                for sample in reading.samples(measurands)
            ],
        )

    async def _transaction_started(
        self, evse: Evse, session: Session, trigger: StartTrigger, reading: Reading
    ) -> None:
        payload = call.StartTransaction(
            connector_id=evse.id,
            id_tag=session.token,
            meter_start=session.meter_start_wh,
            timestamp=ocpp_time(session.started),
            reservation_id=session.reservation_id,
        )

        def started(result: Any) -> None:
            session.transaction_id = str(result.transaction_id)
            self._verdict(evse, session, result.id_tag_info["status"])
            self._changed()

        await self._transaction_message("StartTransaction", ready(payload), started)

    async def _transaction_sample(self, evse: Evse, session: Session, reading: Reading) -> None:
        values = [self._meter_value(reading, "Sample.Periodic")]

        def build() -> Any:
            if session.transaction_id is None:
                return None  # its StartTransaction was refused: nothing to attach values to
            return call.MeterValues(
                connector_id=evse.id,
                transaction_id=int(session.transaction_id),
                meter_value=values,
            )

        await self._transaction_message("MeterValues", build)

    async def _charging_state_changed(self, evse: Evse, session: Session) -> None:
        """1.6 tells of it by the connector status alone (Charging, SuspendedEV, …)."""

    async def _transaction_ended(self, evse: Evse, session: Session, reading: Reading) -> None:
        assert session.stop_reason is not None and session.meter_stop_wh is not None
        reason, meter_stop = session.stop_reason, session.meter_stop_wh
        timestamp = ocpp_time(reading.timestamp)
        data = [self._meter_value(reading, "Transaction.End")]

        def build() -> Any:
            if session.transaction_id is None:
                return None
            return call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=timestamp,
                transaction_id=int(session.transaction_id),
                reason=reason.value,
                id_tag=session.token,
                transaction_data=data,
            )

        def stopped(result: Any) -> None:
            if result.id_tag_info and self.config.flag("auth_cache"):
                self.authorization.remember(session.token, result.id_tag_info["status"])

        await self._transaction_message("StopTransaction", build, stopped)

    async def _reservation_ended(self, reservation: Reservation, why: str) -> None:
        """1.6 has no message for it: the connector status going back to Available says it."""

    def _firmware_status_payload(self, status: str, request_id: int | None) -> Any:
        return call.FirmwareStatusNotification(status=status)

    def _upload_status_payload(self, stage: str, request_id: int | None) -> Any:
        if request_id is None:  # GetDiagnostics, from the core profile
            return call.DiagnosticsStatusNotification(
                status="UploadFailed" if stage == "Failed" else stage
            )
        return call.LogStatusNotification(
            status="UploadFailure" if stage == "Failed" else stage, request_id=request_id
        )

    def _sign_certificate_payload(self, csr: str) -> Any:
        return call.SignCertificate(csr=csr)

    # -- answers to the Central System ----------------------------------------------------------

    def _parse_profile(self, connector_id: int, raw: dict[str, Any]) -> ChargingProfile:
        schedule = raw["charging_schedule"]
        start = schedule.get("start_schedule")
        valid_from, valid_to = raw.get("valid_from"), raw.get("valid_to")
        transaction = raw.get("transaction_id")
        return ChargingProfile(
            id=raw["charging_profile_id"],
            evse=connector_id,
            stack_level=raw["stack_level"],
            purpose=_PURPOSES[raw["charging_profile_purpose"]],
            kind=raw["charging_profile_kind"],
            unit=schedule["charging_rate_unit"],
            periods=tuple(
                Period(p["start_period"], float(p["limit"]), p.get("number_phases"))
                for p in schedule["charging_schedule_period"]
            ),
            installed=self.clock.now(),
            start=parse_time(start) if start else None,
            duration_s=schedule.get("duration"),
            recurrency=raw.get("recurrency_kind"),
            valid_from=parse_time(valid_from) if valid_from else None,
            valid_to=parse_time(valid_to) if valid_to else None,
            transaction_id=str(transaction) if transaction is not None else None,
        )

    @on("RemoteStartTransaction")
    def on_remote_start_transaction(
        self,
        id_tag: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        profile = None
        if charging_profile is not None:
            profile = self._parse_profile(connector_id or 0, charging_profile)
        started = connector_id != 0 and self._remote_start(
            connector_id, id_tag, "ISO14443", profile=profile
        )
        return call_result.RemoteStartTransaction(status="Accepted" if started else "Rejected")

    @on("RemoteStopTransaction")
    def on_remote_stop_transaction(self, transaction_id: int, **_: Any) -> Any:
        stopped = self._remote_stop(str(transaction_id))
        return call_result.RemoteStopTransaction(status="Accepted" if stopped else "Rejected")

    @on("Reset")
    def on_reset(self, type: str, **_: Any) -> Any:
        reason = StopReason.HARD_RESET if type == "Hard" else StopReason.SOFT_RESET
        return call_result.Reset(status=self._reset(True, reason))

    @on("UnlockConnector")
    def on_unlock_connector(self, connector_id: int, **_: Any) -> Any:
        evse = self.evses.get(connector_id)
        if evse is None:
            return call_result.UnlockConnector(status="NotSupported")
        session = evse.session
        if session is not None:
            self._after_reply(lambda: self._unlock_stop(evse, session))
        return call_result.UnlockConnector(status="Unlocked")

    async def _unlock_stop(self, evse: Evse, session: Session) -> None:
        if evse.session is session:
            await self._stop(evse, StopReason.UNLOCK)

    @on("ChangeAvailability")
    def on_change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
        status = self._change_availability(connector_id, type == "Operative")
        return call_result.ChangeAvailability(status=status)

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        if key:
            found = [(k, self.config.by_key(k)) for k in key]
            settings = [s for _, s in found if s is not None]
            unknown = [k for k, s in found if s is None]
        else:
            settings, unknown = [s for s in self.config if s.key], []
        return call_result.GetConfiguration(
            configuration_key=[
                datatypes.KeyValue(key=s.key, readonly=s.readonly, value=s.value) for s in settings
            ],
            unknown_key=unknown or None,
        )

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **_: Any) -> Any:
        setting = self.config.by_key(key)
        if setting is None:
            return call_result.ChangeConfiguration(status="NotSupported")
        changed = self.config.change(setting, value)
        return call_result.ChangeConfiguration(status="Accepted" if changed else "Rejected")

    @on("ClearCache")
    def on_clear_cache(self, **_: Any) -> Any:
        if not self.config.flag("auth_cache"):
            return call_result.ClearCache(status="Rejected")
        self.authorization.clear_cache()
        return call_result.ClearCache(status="Accepted")

    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> Any:
        profile = self._parse_profile(connector_id, cs_charging_profiles)
        installed = self._install_profile(profile)
        return call_result.SetChargingProfile(status="Accepted" if installed else "Rejected")

    @on("ClearChargingProfile")
    def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> Any:
        purpose = _PURPOSES[charging_profile_purpose] if charging_profile_purpose else None
        removed = self.profiles.clear(id, connector_id, purpose, stack_level)
        return call_result.ClearChargingProfile(status="Accepted" if removed else "Unknown")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        steps = self._composite(connector_id, duration)
        if steps is None:
            return call_result.GetCompositeSchedule(status="Rejected")
        unit = charging_rate_unit or "W"
        rating = self._rating(connector_id)
        now = ocpp_time(self.clock.now())
        return call_result.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=now,
            charging_schedule=datatypes.ChargingSchedule(
                charging_rate_unit=unit,
                duration=duration,
                start_schedule=now,
                charging_schedule_period=[
                    datatypes.ChargingSchedulePeriod(
                        start_period=offset,
                        limit=float(watts) if unit == "W" else rating.amperes(watts),
                    )
                    for offset, watts in steps
                ],
            ),
        )

    @on("TriggerMessage")
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        return call_result.TriggerMessage(status=self._trigger(requested_message, connector_id))

    @on("ExtendedTriggerMessage")
    def on_extended_trigger_message(
        self, requested_message: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        if requested_message == "SignChargePointCertificate":
            self._after_reply(self._request_certificate)
            return call_result.ExtendedTriggerMessage(status="Accepted")
        status = self._trigger(requested_message, connector_id)
        return call_result.ExtendedTriggerMessage(status=status)

    async def _request_certificate(self) -> None:
        await self.request_certificate()

    async def request_v2g_certificate(self, secc_id: str | None = None) -> bool:
        """Make a key pair for the SECC (the TLS server the EV talks to) and ask the Central
        System to have it certified: SignCertificate as a Plug & Charge DataTransfer, answered
        later by CertificateSigned the same way. `secc_id` defaults to the station id."""
        self._csr_key, csr = signing_request(secc_id or self.id, self.vendor)
        answer = await self._pnc_request(
            "SignCertificate", {"csr": csr, "certificateType": V2G_CERTIFICATE}
        )
        return answer.get("status") == "Accepted"

    async def _request_v2g_certificate(self) -> None:
        await self.request_v2g_certificate()

    def _trigger(self, message: str, connector_id: int | None) -> str:
        if connector_id and connector_id not in self.evses:
            return "Rejected"
        targets = [self.evses[connector_id]] if connector_id else list(self.evses.values())

        async def statuses() -> None:
            if not connector_id:
                await self._station_status()
            for evse in targets:
                await self._send_status(evse, self._wire_status(evse))

        async def meter_values() -> None:
            for evse in targets:
                session = evse.session
                await self._notify(
                    call.MeterValues(
                        connector_id=evse.id,
                        transaction_id=(
                            int(session.transaction_id)
                            if session is not None and session.transaction_id is not None
                            else None
                        ),
                        meter_value=[self._meter_value(evse.reading(self.clock.now()), "Trigger")],
                    )
                )

        async def heartbeat() -> None:
            await self._heartbeat()

        async def firmware() -> None:
            await self._notify(call.FirmwareStatusNotification(status=self.firmware_status))

        async def diagnostics() -> None:
            status = self.upload_status if self.upload_status != "Failed" else "UploadFailed"
            await self._notify(call.DiagnosticsStatusNotification(status=status))

        actions = {
            "BootNotification": self._triggered_boot,
            "DiagnosticsStatusNotification": diagnostics,
            "FirmwareStatusNotification": firmware,
            "Heartbeat": heartbeat,
            "MeterValues": meter_values,
            "StatusNotification": statuses,
        }
        if message not in actions:
            return "NotImplemented"
        self._after_reply(actions[message])
        return "Accepted"

    @on("ReserveNow")
    def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        parent_id_tag: str | None = None,
        **_: Any,
    ) -> Any:
        status = self._reserve(
            connector_id or None, reservation_id, id_tag, parse_time(expiry_date), parent_id_tag
        )
        return call_result.ReserveNow(status=status)

    @on("CancelReservation")
    def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        cancelled = self._cancel_reservation(reservation_id)
        return call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")

    @on("UpdateFirmware")
    def on_update_firmware(self, location: str, retrieve_date: str, **_: Any) -> Any:
        self._update_firmware(location, parse_time(retrieve_date), None)
        return call_result.UpdateFirmware()

    @on("GetDiagnostics")
    def on_get_diagnostics(self, location: str, **_: Any) -> Any:
        filename = self._log_filename("diagnostics")
        self._upload_log(location, filename, None)
        return call_result.GetDiagnostics(file_name=filename)

    @on("GetLog")
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, **_: Any) -> Any:
        filename = self._log_filename(log_type.lower())
        self._upload_log(log["remote_location"], filename, request_id)
        return call_result.GetLog(status="Accepted", filename=filename)

    @on("DataTransfer")
    def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> Any:
        if vendor_id == PNC_VENDOR:
            status, reply = self._pnc_message(message_id, data)
        else:
            status, reply = self._data_transfer(vendor_id, data)
        return call_result.DataTransfer(status=status, data=reply)

    def _pnc_message(self, message_id: str | None, data: str | None) -> tuple[str, str | None]:
        """A Plug & Charge message from the Central System, answered with the 2.0.1 response
        as data: CertificateSigned installs the signed V2G chain if it answers the station's
        pending CSR; TriggerMessage for SignV2GCertificate makes the station ask for one. Data
        that is not the 2.0.1 request is refused (and kept as a schema violation)."""
        if message_id not in ("CertificateSigned", "TriggerMessage"):
            return "UnknownMessageId", None
        try:
            body = json.loads(data or "")
        except ValueError:
            body = data
        violation = _PNC_SCHEMAS.check("CALL", message_id, body)
        if violation is not None:
            log.error("csms Plug & Charge data violates the OCPP schema", station=self.id)
            self.schema_violations.append(violation)
            return "Rejected", None
        if message_id == "TriggerMessage":
            if body["requestedMessage"] != "SignV2GCertificate":
                return "Accepted", json.dumps({"status": "NotImplemented"})
            self._after_reply(self._request_v2g_certificate)
            return "Accepted", json.dumps({"status": "Accepted"})
        accepted = body.get("certificateType", V2G_CERTIFICATE) == V2G_CERTIFICATE and (
            self._certificate_signed(body["certificateChain"])
        )
        return "Accepted", json.dumps({"status": "Accepted" if accepted else "Rejected"})

    @on("SendLocalList")
    def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        if not self.config.flag("local_list"):
            return call_result.SendLocalList(status="NotSupported")
        entries = {
            entry["id_tag"]: (entry.get("id_tag_info") or {}).get("status")
            for entry in local_authorization_list or []
        }
        outcome = self.authorization.update(list_version, update_type == "Full", entries)
        return call_result.SendLocalList(status=outcome.value)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_: Any) -> Any:
        version = self.authorization.version if self.config.flag("local_list") else -1
        return call_result.GetLocalListVersion(list_version=version)

    @on("CertificateSigned")
    def on_certificate_signed(self, certificate_chain: str, **_: Any) -> Any:
        accepted = self._certificate_signed(certificate_chain)
        return call_result.CertificateSigned(status="Accepted" if accepted else "Rejected")

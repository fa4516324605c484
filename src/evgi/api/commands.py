"""Operator routes that send a command to a connected station and return its answer.

One route per command of the CSMS's `Commands`, each with the body it needs, in one shape for
every OCPP version: the CSMS turns it into the station's own message (reset becomes a 1.6
Reset Hard or a 2.x Reset Immediate). `call` sends any action of the station's version as is.
Field values are checked against the station's version schema before anything is sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import AwareDatetime, BaseModel, Field

from evgi.api.charging import (
    STATION_REFUSALS,
    CommandAnswer,
    CsmsDep,
    KnownStation,
    station_answer,
)
from evgi.api.charging_profiles import ClearProfiles, SetProfileBody
from evgi.csms import VariableRef

router = APIRouter(tags=["commands"], responses=STATION_REFUSALS)


class Reset(BaseModel):
    immediate: bool = Field(default=True, description="false: when idle (1.6 Soft, 2.x OnIdle)")
    evse_id: int | None = Field(
        default=None, ge=1, description="one EVSE (2.x only); none: the whole station"
    )


IMMEDIATE_RESET = Reset()


class RemoteStart(BaseModel):
    id_token: str = Field(min_length=1, max_length=255, examples=["04A2B3C4D5E6F7"])
    evse_id: int | None = Field(
        default=None, ge=1, description="1.6: the connector id", examples=[1]
    )
    charging_profile: dict[str, Any] | None = Field(
        default=None, description="a TxProfile in the station's version, camelCase"
    )
    remote_start_id: int | None = Field(
        default=None, description="2.x remoteStartId; the CSMS picks one when none is given"
    )


class RemoteStop(BaseModel):
    transaction_id: str = Field(
        min_length=1, description="the station's transaction id", examples=["1"]
    )


class Unlock(BaseModel):
    evse_id: int = Field(ge=1, description="1.6: the connector id", examples=[1])
    connector_id: int = Field(default=1, ge=1, description="2.x only")


class Trigger(BaseModel):
    message: str = Field(
        description="a MessageTrigger value of the station's version",
        examples=["StatusNotification"],
    )
    evse_id: int | None = Field(default=None, ge=0, description="1.6: the connector id")


class Availability(BaseModel):
    operative: bool = Field(examples=[False])
    evse_id: int | None = Field(
        default=None, ge=0, description="none or 0: the whole station", examples=[1]
    )


class Variable(BaseModel):
    component: str = Field(
        description='2.x component; "" for a 1.6 configuration key', examples=["OCPPCommCtrlr"]
    )
    variable: str = Field(
        min_length=1, description="2.x variable, or the 1.6 key", examples=["HeartbeatInterval"]
    )
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    attribute_type: str = Field(default="Actual", examples=["Actual"])

    def ref(self) -> VariableRef:
        return VariableRef(**self.model_dump(exclude={"value"}))


class VariableValue(Variable):
    value: str = Field(examples=["300"])


class GetVariables(BaseModel):
    variables: list[Variable] = Field(min_length=1)


class SetVariables(BaseModel):
    values: list[VariableValue] = Field(min_length=1)


class LocalList(BaseModel):
    tokens: list[str] | None = Field(
        default=None, description="registered tokens to send; none: every registered token"
    )
    full: bool = Field(default=True, description="false: a differential update")


EVERY_TOKEN = LocalList()


class CompositeSchedule(BaseModel):
    evse_id: int = Field(ge=0, examples=[1])
    duration: int = Field(gt=0, description="seconds", examples=[3600])
    unit: str | None = Field(default=None, description="A or W", examples=["W"])


class Reservation(BaseModel):
    reservation_id: int = Field(examples=[3])
    id_token: str = Field(min_length=1, max_length=255, examples=["04A2B3C4D5E6F7"])
    expires_at: AwareDatetime = Field(examples=["2030-01-01T12:00:00Z"])
    evse_id: int | None = Field(default=None, ge=0, examples=[1])


class CancelReservation(BaseModel):
    reservation_id: int = Field(examples=[3])


class Firmware(BaseModel):
    location: str = Field(min_length=1, examples=["https://firmware.example/acme-ac22-2.0.bin"])
    retrieve_at: AwareDatetime = Field(examples=["2030-01-01T02:00:00Z"])


class Log(BaseModel):
    location: str = Field(
        min_length=1,
        description="where the station uploads its log",
        examples=["https://logs.example/upload"],
    )


RootUse = Literal[
    "V2GRootCertificate", "MORootCertificate", "CSMSRootCertificate", "ManufacturerRootCertificate"
]
CertificateUse = RootUse | Literal["V2GCertificateChain"]


class InstallCertificate(BaseModel):
    certificate_type: RootUse = Field(examples=["V2GRootCertificate"])
    certificate: str = Field(min_length=1, max_length=5500, description="PEM")


class InstalledCertificates(BaseModel):
    certificate_types: list[CertificateUse] | None = Field(
        default=None, description="none: every type the station holds"
    )


class CertificateHashData(BaseModel):
    """CertificateHashDataType as GetInstalledCertificateIds reports it (camelCase)."""

    hash_algorithm: Literal["SHA256", "SHA384", "SHA512"] = Field(alias="hashAlgorithm")
    issuer_name_hash: str = Field(alias="issuerNameHash", min_length=1, max_length=128)
    issuer_key_hash: str = Field(alias="issuerKeyHash", min_length=1, max_length=128)
    serial_number: str = Field(alias="serialNumber", min_length=1, max_length=40)


class DeleteCertificate(BaseModel):
    certificate_hash_data: CertificateHashData


class DataTransfer(BaseModel):
    vendor_id: str = Field(min_length=1, examples=["org.example"])
    message_id: str | None = Field(default=None, examples=["ping"])
    data: Any = Field(default=None, description="1.6: a string; 2.x: any JSON")


class RawCall(BaseModel):
    action: str = Field(
        pattern=r"^[A-Za-z0-9]+$",
        description="an action of the station's version",
        examples=["GetLocalListVersion"],
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="camelCase, as on the wire", examples=[{}]
    )
    timeout: float | None = Field(
        default=None, gt=0, le=300, description="seconds; default: the CSMS's call timeout"
    )


@router.post("/reset", summary="Reset the station (1.6 Hard/Soft, 2.x Immediate/OnIdle)")
async def reset(
    station_id: KnownStation, csms: CsmsDep, request: Annotated[Reset, Body()] = IMMEDIATE_RESET
) -> CommandAnswer:
    return await station_answer(csms.commands.reset(station_id, request.immediate, request.evse_id))


@router.post(
    "/remote-start",
    summary="Start a transaction (1.6 RemoteStartTransaction, 2.x RequestStartTransaction)",
)
async def remote_start(
    station_id: KnownStation, request: RemoteStart, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.remote_start(
            station_id,
            request.id_token,
            request.evse_id,
            request.charging_profile,
            request.remote_start_id,
        )
    )


@router.post(
    "/remote-stop",
    summary="Stop a transaction (1.6 RemoteStopTransaction, 2.x RequestStopTransaction)",
)
async def remote_stop(
    station_id: KnownStation, request: RemoteStop, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(csms.commands.remote_stop(station_id, request.transaction_id))


@router.post("/unlock", summary="Unlock a connector")
async def unlock(station_id: KnownStation, request: Unlock, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(
        csms.commands.unlock(station_id, request.evse_id, request.connector_id)
    )


@router.post("/trigger", summary="Ask the station to send a message (TriggerMessage)")
async def trigger(station_id: KnownStation, request: Trigger, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(csms.commands.trigger(station_id, request.message, request.evse_id))


@router.post("/change-availability", summary="Take the station or an EVSE in or out of service")
async def change_availability(
    station_id: KnownStation, request: Availability, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.change_availability(station_id, request.operative, request.evse_id)
    )


@router.post("/get-variables", summary="Read variables (1.6 GetConfiguration of keys)")
async def get_variables(
    station_id: KnownStation, request: GetVariables, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.get_variables(station_id, [v.ref() for v in request.variables])
    )


@router.post(
    "/set-variables",
    summary="Set variables (1.6: one ChangeConfiguration per key, answers in order)",
)
async def set_variables(
    station_id: KnownStation, request: SetVariables, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.set_variables(station_id, [(v.ref(), v.value) for v in request.values])
    )


@router.post(
    "/get-report", summary="Full inventory (2.x GetBaseReport; 1.6 GetConfiguration of every key)"
)
async def get_report(station_id: KnownStation, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(csms.commands.get_report(station_id))


@router.post("/send-local-list", summary="Send registered tokens as the next local list")
async def send_local_list(
    station_id: KnownStation, csms: CsmsDep, request: Annotated[LocalList, Body()] = EVERY_TOKEN
) -> CommandAnswer:
    return await station_answer(
        csms.commands.send_local_list(station_id, request.tokens, request.full)
    )


@router.post("/get-local-list-version", summary="The version of the station's local list")
async def get_local_list_version(station_id: KnownStation, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(csms.commands.get_local_list_version(station_id))


@router.post("/clear-cache", summary="Clear the station's authorization cache")
async def clear_cache(station_id: KnownStation, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(csms.commands.clear_cache(station_id))


@router.post("/set-charging-profile", summary="Set a charging profile")
async def set_charging_profile(
    station_id: KnownStation, request: SetProfileBody, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.set_charging_profile(station_id, request.evse_id, request.profile)
    )


@router.post(
    "/clear-charging-profile",
    summary="Clear charging profiles by id or criteria (all when none is given)",
)
async def clear_charging_profile(
    station_id: KnownStation, request: ClearProfiles, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.clear_charging_profile(
            station_id, request.profile_id, request.evse_id, request.purpose, request.stack_level
        )
    )


@router.post("/composite-schedule", summary="The schedule the station will follow on an EVSE")
async def composite_schedule(
    station_id: KnownStation, request: CompositeSchedule, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.composite_schedule(
            station_id, request.evse_id, request.duration, request.unit
        )
    )


@router.post("/reserve", summary="Reserve an EVSE (or the station) for a token (ReserveNow)")
async def reserve(station_id: KnownStation, request: Reservation, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(
        csms.commands.reserve(
            station_id,
            request.reservation_id,
            request.id_token,
            request.expires_at,
            request.evse_id,
        )
    )


@router.post("/cancel-reservation", summary="Cancel a reservation")
async def cancel_reservation(
    station_id: KnownStation, request: CancelReservation, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.cancel_reservation(station_id, request.reservation_id)
    )


@router.post("/update-firmware", summary="Have the station fetch and install firmware")
async def update_firmware(
    station_id: KnownStation, request: Firmware, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.update_firmware(station_id, request.location, request.retrieve_at)
    )


@router.post("/get-log", summary="Have the station upload its log (1.6 GetDiagnostics)")
async def get_log(station_id: KnownStation, request: Log, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(csms.commands.get_log(station_id, request.location))


@router.post("/data-transfer", summary="Vendor-specific DataTransfer")
async def data_transfer(
    station_id: KnownStation, request: DataTransfer, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.data_transfer(station_id, request.vendor_id, request.message_id, request.data)
    )


@router.post("/install-certificate", summary="InstallCertificate (1.6: Plug & Charge DataTransfer)")
async def install_certificate(
    station_id: KnownStation, request: InstallCertificate, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.install_certificate(station_id, request.certificate_type, request.certificate)
    )


@router.post(
    "/get-installed-certificate-ids",
    summary="GetInstalledCertificateIds (1.6: Plug & Charge DataTransfer)",
)
async def get_installed_certificate_ids(
    station_id: KnownStation, request: InstalledCertificates, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.get_installed_certificate_ids(station_id, request.certificate_types)
    )


@router.post("/delete-certificate", summary="DeleteCertificate (1.6: Plug & Charge DataTransfer)")
async def delete_certificate(
    station_id: KnownStation, request: DeleteCertificate, csms: CsmsDep
) -> CommandAnswer:
    hash_data = request.certificate_hash_data.model_dump(by_alias=True)
    return await station_answer(csms.commands.delete_certificate(station_id, hash_data))


@router.post("/call", summary="Send any action of the station's OCPP version as is")
async def call(station_id: KnownStation, request: RawCall, csms: CsmsDep) -> CommandAnswer:
    return await station_answer(
        csms.commands.send(station_id, request.action, request.payload, request.timeout)
    )

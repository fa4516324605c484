"""Operator routes for OCPP 2.1 bidirectional records: the EV charging needs and DER alarms
stations sent, newest first, as the CSMS stored them (read-only: stations write them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from evgi.api.charging import CsmsDep, KnownStation, responses
from evgi.storage.bidirectional import charging_needs, der_alarms

router = APIRouter(tags=["bidirectional"])

MAX_PAGE = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="how many of the newest")]


class EvChargingNeedsRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    evse_id: int = Field(examples=[1])
    transaction_id: str | None = Field(
        description="the transaction running at the EVSE when the needs came, if one was"
    )
    requested_energy_transfer: str = Field(examples=["AC_BPT"])
    control_mode: str | None = Field(examples=["DynamicControl"])
    departure_at: datetime | None
    max_charge_w: float | None = Field(description="v2xChargingParameters.maxChargePower")
    max_discharge_w: float | None = Field(description="v2xChargingParameters.maxDischargePower")
    bidirectional: bool = Field(description="a *_BPT* transfer mode: power may flow back")
    needs: dict[str, Any] = Field(description="the whole chargingNeeds object, snake_case")
    received_at: datetime = Field(description="the message's timestamp, or its arrival")
    answer: str = Field(examples=["Processing"])


class DerAlarmRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    control_type: str = Field(examples=["LimitMaxDischarge"])
    grid_event_fault: str | None = Field(examples=["OverVoltage"])
    alarm_ended: bool = Field(description="this notice ends an earlier alarm")
    timestamp: datetime
    extra_info: str | None
    received_at: datetime


@router.get(
    "/{station_id}/ev-charging-needs",
    summary="A station's NotifyEVChargingNeeds, newest first",
    responses=responses(404),
)
def list_charging_needs(
    station_id: KnownStation,
    csms: CsmsDep,
    evse_id: Annotated[int | None, Query(ge=0, description="of one EVSE only")] = None,
    limit: Limit = 100,
) -> list[EvChargingNeedsRecord]:
    found = csms.store.run(charging_needs, station_id, evse_id, limit)
    return [EvChargingNeedsRecord.model_validate(needs) for needs in found]


@router.get(
    "/{station_id}/der-alarms",
    summary="A station's NotifyDERAlarm, newest first",
    responses=responses(404),
)
def list_der_alarms(
    station_id: KnownStation, csms: CsmsDep, limit: Limit = 100
) -> list[DerAlarmRecord]:
    found = csms.store.run(der_alarms, station_id, limit)
    return [DerAlarmRecord.model_validate(alarm) for alarm in found]

"""Operator routes for a station's charging profiles: those it accepted, and setting or clearing
them through the station (the store follows what the station accepts)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from evgi.api.charging import (
    STATION_REFUSALS,
    CommandAnswer,
    CsmsDep,
    KnownStation,
    responses,
    station_answer,
)

router = APIRouter(tags=["charging profiles"])

_PROFILE_16 = {
    "chargingProfileId": 7,
    "stackLevel": 1,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
    },
}
_PROFILE_2X = {
    "id": 7,
    "stackLevel": 1,
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


class ChargingProfile(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    profile_id: int = Field(examples=[7])
    evse_id: int = Field(description="0: the whole station", examples=[1])
    purpose: str = Field(examples=["TxDefaultProfile"])
    stack_level: int = Field(examples=[1])
    transaction_id: str | None
    body: dict[str, Any] = Field(
        description="the profile as sent, in the station's version", examples=[_PROFILE_2X]
    )
    installed_at: datetime


class SetProfile(BaseModel):
    evse_id: int = Field(ge=0, description="0: the whole station (1.6: connector id)", examples=[1])
    profile: dict[str, Any] = Field(
        description="the profile in the station's OCPP version, camelCase as on the wire: 1.6 "
        "csChargingProfiles, 2.x ChargingProfile"
    )


SetProfileBody = Annotated[
    SetProfile,
    Body(
        openapi_examples={
            "ocpp1.6": {
                "summary": "OCPP 1.6 TxDefaultProfile, 16 A",
                "value": {"evse_id": 1, "profile": _PROFILE_16},
            },
            "ocpp2.x": {
                "summary": "OCPP 2.0.1 / 2.1 TxDefaultProfile, 11 kW",
                "value": {"evse_id": 1, "profile": _PROFILE_2X},
            },
        }
    ),
]


class ClearProfiles(BaseModel):
    """With no field at all every profile of the station is cleared (OCPP's rule)."""

    profile_id: int | None = Field(default=None, examples=[7])
    evse_id: int | None = Field(default=None, ge=0, examples=[1])
    purpose: str | None = Field(default=None, examples=["TxDefaultProfile"])
    stack_level: int | None = Field(default=None, ge=0, examples=[1])


@router.get("", summary="Profiles the station accepted", responses=responses(404))
def list_profiles(station_id: KnownStation, csms: CsmsDep) -> list[ChargingProfile]:
    return [
        ChargingProfile.model_validate(p) for p in csms.store.run(csms.store.profiles, station_id)
    ]


MAX_COMPOSITE_SECONDS = 31 * 86400


class CompositePeriod(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start_period: int = Field(description="seconds from schedule_start", examples=[0])
    limit: float | None = Field(
        description="in charging_rate_unit; null: no profile limits this period", examples=[6900.0]
    )
    number_phases: int | None = Field(
        description="phases of the period that sets the limit (OCPP's default of 3 when null)",
        examples=[3],
    )


class CompositeScheduleView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    evse_id: int = Field(examples=[1])
    schedule_start: datetime
    duration: int = Field(description="seconds", examples=[86400])
    charging_rate_unit: Literal["A", "W"]
    periods: list[CompositePeriod]
    min_charging_rate: float | None = Field(
        description="the EV's lowest useful rate, from the transaction's (default) schedule"
    )


@router.get(
    "/composite",
    summary="An EVSE's composite schedule, computed by the CSMS from the accepted profiles",
    description="Stacks the profiles the station accepted as OCPP 1.6 and 2.0.1 define it (the "
    "highest stack level in force per purpose, the transaction's TxProfile over "
    "TxDefaultProfile, capped by the station maximum and external constraints) without asking "
    "the station; limits in the other unit are converted with the period's phases and the "
    "`ocpp_nominal_voltage` setting. To ask the station itself: POST "
    "/api/stations/{station_id}/commands/composite-schedule.",
    responses=responses(404),
)
def composite_schedule(
    station_id: KnownStation,
    csms: CsmsDep,
    evse_id: Annotated[int, Query(ge=0, description="0: the station as a whole")] = 1,
    duration: Annotated[int, Query(ge=1, le=MAX_COMPOSITE_SECONDS, description="seconds")] = 86400,
    unit: Annotated[
        Literal["A", "W"] | None,
        Query(description="A or W; by default A when every profile that counts is in A"),
    ] = None,
    start: Annotated[
        AwareDatetime | None, Query(description="from when, with a time zone (default now)")
    ] = None,
) -> CompositeScheduleView:
    schedule = csms.composite_schedule(station_id, evse_id, duration, unit, start)
    return CompositeScheduleView.model_validate(schedule)


@router.post("", summary="Set a charging profile through the station", responses=STATION_REFUSALS)
async def set_profile(
    station_id: KnownStation, request: SetProfileBody, csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.set_charging_profile(station_id, request.evse_id, request.profile)
    )


@router.delete(
    "/{profile_id}",
    summary="Clear one charging profile through the station",
    responses=STATION_REFUSALS,
)
async def clear_profile(
    station_id: KnownStation, profile_id: Annotated[int, Path(examples=[7])], csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(csms.commands.clear_charging_profile(station_id, profile_id))


@router.delete(
    "",
    summary="Clear the station's profiles that match (all when none is given)",
    responses=STATION_REFUSALS,
)
async def clear_profiles(
    station_id: KnownStation, criteria: Annotated[ClearProfiles, Query()], csms: CsmsDep
) -> CommandAnswer:
    return await station_answer(
        csms.commands.clear_charging_profile(
            station_id,
            criteria.profile_id,
            criteria.evse_id,
            criteria.purpose,
            criteria.stack_level,
        )
    )

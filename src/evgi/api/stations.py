"""Operator routes for charging stations: registration, state, EVSEs and connectors.

Reads run on worker threads (plain `def` routes); a station's registration changes take effect
on its connection by closing it, so the station connects and boots again under the new terms.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import Connection

from evgi.api.charging import (
    CsmsDep,
    KnownStation,
    StationId,
    member_of,
    problem,
    responses,
)
from evgi.core.errors import NotFoundError, ValidationError
from evgi.csms import BOOT_STATUSES
from evgi.storage import ChargingStore, Connector, Station

router = APIRouter(tags=["stations"])

BootStatus = Annotated[
    str,
    member_of(BOOT_STATUSES),
    Field(
        description="what the station's BootNotification is answered with; Rejected keeps "
        "it from charging",
        json_schema_extra={"enum": list(BOOT_STATUSES)},
    ),
]


class StationSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(examples=["CS-1"])
    ocpp_version: str | None = Field(
        description="subprotocol of its latest connection", examples=["ocpp2.0.1"]
    )
    vendor: str | None = Field(examples=["Acme"])
    model: str | None = Field(examples=["AC22"])
    serial_number: str | None
    firmware_version: str | None
    boot_status: str = Field(examples=["Accepted"])
    boot_reason: str | None = Field(examples=["PowerUp"])
    security_profile: int = Field(examples=[1])
    registered_at: datetime
    last_boot_at: datetime | None
    last_seen: datetime | None = Field(
        description="latest message or connection change (heartbeats: at most once a minute)"
    )
    connected: bool


class ConnectorState(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    connector_id: int = Field(examples=[1])
    status: str = Field(examples=["Available"])
    error_code: str | None = Field(description="1.6 only", examples=["NoError"])
    info: str | None
    vendor_error_code: str | None
    updated_at: datetime


class EvseState(BaseModel):
    evse_id: int = Field(description="1.6: the connector id; 0 is the whole station", examples=[1])
    operational_status: str = Field(examples=["Operative"])
    connectors: list[ConnectorState]


class StationDetail(StationSummary):
    evses: list[EvseState]


class StationRegistration(BaseModel):
    id: str = Field(
        min_length=1,
        max_length=48,
        pattern=r"^[^/:]+$",
        description="the identity in ws://host:9000/ocpp/{id}",
        examples=["CS-1"],
    )
    password: SecretStr | None = Field(
        default=None,
        description="HTTP Basic password (user name = id) of 16 to 40 "
        "characters; needed for security profiles 1 and 2",
        examples=["correct-horse-battery"],
    )
    security_profile: int | None = Field(
        default=None,
        ge=0,
        le=3,
        description="0 none, 1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS; default 1 with a "
        "password, else 0",
        examples=[1],
    )
    boot_status: BootStatus = "Accepted"


class StationChange(BaseModel):
    boot_status: BootStatus = Field(examples=["Rejected"])


@router.get("", summary="Registered stations")
def list_stations(csms: CsmsDep) -> list[StationSummary]:
    return [StationSummary.model_validate(s) for s in csms.store.run(csms.store.stations)]


@router.post("", status_code=201, summary="Register a station", responses=responses(400, 409))
def register_station(registration: StationRegistration, csms: CsmsDep) -> StationSummary:
    if csms.store.run(csms.store.find_station, registration.id) is not None:
        raise HTTPException(
            409,
            detail={
                "code": "exists",
                "message": f"station {registration.id!r} is already registered",
            },
        )
    password = registration.password
    try:
        station = csms.add_station(
            registration.id,
            None if password is None else password.get_secret_value(),
            registration.security_profile,
            registration.boot_status,
        )
    except ValidationError as exc:
        raise problem(400, exc) from exc
    return StationSummary.model_validate(station)


@router.get(
    "/{station_id}", summary="A station with its EVSEs and connectors", responses=responses(404)
)
def get_station(station_id: StationId, csms: CsmsDep) -> StationDetail:
    store = csms.store
    try:
        station, connectors, operational = store.run(_station_state, store, station_id)
    except NotFoundError as exc:
        raise problem(404, exc) from exc
    evses = [
        EvseState(
            evse_id=evse_id,
            operational_status=operational.get(evse_id, "Operative"),
            connectors=[
                ConnectorState.model_validate(c) for c in connectors if c.evse_id == evse_id
            ],
        )
        for evse_id in sorted(set(operational) | {c.evse_id for c in connectors})
    ]
    return StationDetail.model_validate({**asdict(station), "evses": evses})


@router.patch(
    "/{station_id}",
    summary="Change a station's boot status (Rejected disables it)",
    responses=responses(404),
)
async def change_station(
    station_id: KnownStation, change: StationChange, csms: CsmsDep
) -> StationSummary:
    """A station no longer Accepted is disconnected, so that its next boot gets the new
    status; one set to Accepted is let in at its next boot retry."""
    store = csms.store
    try:
        station = await store.apply(
            store.update_station, station_id, boot_status=change.boot_status
        )
    except NotFoundError as exc:
        raise problem(404, exc) from exc
    if station.boot_status != "Accepted":
        await csms.disconnect(station_id, f"boot status changed to {station.boot_status}")
    return StationSummary.model_validate(station)


@router.delete(
    "/{station_id}", status_code=204, summary="Remove a station", responses=responses(404, 409)
)
async def remove_station(station_id: KnownStation, csms: CsmsDep) -> Response:
    """Only a station without transactions can be removed (they are billing records): set
    one with transactions to Rejected instead. An open connection is closed."""
    store = csms.store
    try:
        await store.apply(_forget_station, store, station_id)
    except NotFoundError as exc:
        raise problem(404, exc) from exc
    except ValidationError as exc:
        raise HTTPException(
            409, detail={"code": "has_transactions", "message": exc.message}
        ) from exc
    await csms.disconnect(station_id, "station removed")
    return Response(status_code=204)


def _station_state(
    conn: Connection, store: ChargingStore, station_id: str
) -> tuple[Station, list[Connector], dict[int, str]]:
    """One consistent read of a station and its EVSEs."""
    return (
        store.station(conn, station_id),
        store.connectors(conn, station_id),
        store.operational_status(conn, station_id),
    )


def _forget_station(conn: Connection, store: ChargingStore, station_id: str) -> None:
    if store.transactions(conn, station_id, limit=1):
        raise ValidationError(
            f"station {station_id!r} has transactions: set its boot status "
            "to Rejected to disable it"
        )
    store.delete_station(conn, station_id)

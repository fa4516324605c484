"""The data the platform publishes into its owners' containers, with the schema of each record.

Owners may also keep data of other types (any name a DBC covers); their records are any JSON
object, checked only against the schema name the container was opened with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from evgi.permissions import DidText

Text = Annotated[str, Field(min_length=1, max_length=100)]


class DataType(StrEnum):
    METER_VALUES = "meter-values"
    BATTERY_HEALTH = "battery-health"
    CHARGING_SESSIONS = "charging-sessions"
    V2G_EVENTS = "v2g-events"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterValue(_Record):
    """A meter reading: energy registers in Wh and power in W (integers, as everywhere)."""

    meter: DidText
    evseId: Text | None = None
    measuredAt: AwareDatetime
    energyImportWh: int = Field(ge=0)
    energyExportWh: int = Field(default=0, ge=0)
    powerW: int


class BatteryHealth(_Record):
    """A battery's state of health, as the vehicle's battery management system reports it."""

    battery: DidText
    vehicle: DidText | None = None
    measuredAt: AwareDatetime
    stateOfHealthPercent: float = Field(ge=0, le=100)
    usableCapacityWh: int = Field(gt=0)
    equivalentFullCycles: int = Field(ge=0)


class SessionRecord(_Record):
    """A finished charging session, as the CSMS closed it."""

    sessionId: Text
    evseId: Text
    vehicle: DidText | None = None
    startedAt: AwareDatetime
    endedAt: AwareDatetime
    energyWh: int = Field(ge=0)
    priceMinor: int | None = Field(default=None, ge=0)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None


class V2GEvent(_Record):
    """A vehicle-to-grid discharge (or managed charge) under a program's dispatch."""

    eventId: Text
    program: Text
    vehicle: DidText | None = None
    direction: Literal["discharge", "charge"] = "discharge"
    startedAt: AwareDatetime
    endedAt: AwareDatetime
    energyWh: int = Field(ge=0)
    peakPowerW: int = Field(ge=0)


@dataclass(frozen=True)
class Kind:
    """Where a data type lives: a bucket keeps it; a stream keeps it online for `retention`,
    then nearline for `nearline`, then offline."""

    model: type[_Record]
    container: Literal["bucket", "stream"]
    retention: timedelta | None = None
    nearline: timedelta | None = None

    @property
    def schema(self) -> str:
        return f"urn:evgi:schema:{self.model.__name__}:1"


CATALOG: dict[DataType, Kind] = {
    DataType.METER_VALUES: Kind(MeterValue, "stream", timedelta(days=1), timedelta(days=30)),
    DataType.BATTERY_HEALTH: Kind(BatteryHealth, "bucket"),
    DataType.CHARGING_SESSIONS: Kind(SessionRecord, "bucket"),
    DataType.V2G_EVENTS: Kind(V2GEvent, "stream", timedelta(days=7), timedelta(days=90)),
}


def kind_of(data_type: str) -> Kind | None:
    """The catalog's entry for a data type name, or None for an owner's own type."""
    return CATALOG[DataType(data_type)] if data_type in DataType.__members__.values() else None

"""Events the CSMS publishes on the platform's bus, for settlement, V2G and dashboards.

Each is published after what it reports has been stored, so a subscriber can read it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from evgi.core.units import energy_between
from evgi.storage.charging import MeterSample


@dataclass(frozen=True)
class StationBooted:
    station_id: str
    ocpp_version: str
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None
    status: str  # the answer given: Accepted, Pending or Rejected
    at: datetime


@dataclass(frozen=True)
class StationStatusChanged:
    station_id: str
    evse_id: int
    connector_id: int
    status: str
    previous: str | None
    error_code: str | None
    at: datetime


@dataclass(frozen=True)
class TransactionStarted:
    station_id: str
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    meter_start_wh: int | None
    started_at: datetime


@dataclass(frozen=True)
class TransactionUpdated:
    station_id: str
    transaction_id: str
    meter_wh: int | None  # the latest energy register reading, if the update carried one
    charging_state: str | None
    at: datetime


@dataclass(frozen=True)
class TransactionEnded:
    station_id: str
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    started_at: datetime
    stopped_at: datetime
    stop_reason: str | None

    @property
    def energy_wh(self) -> int | None:
        return energy_between(self.meter_start_wh, self.meter_stop_wh)


@dataclass(frozen=True)
class MeterValuesReceived:
    station_id: str
    evse_id: int
    transaction_id: str | None
    samples: tuple[MeterSample, ...]

"""Simulated charging stations speaking OCPP 1.6J, 2.0.1 and 2.1 to a real CSMS."""

from evgi.sim.stations.charging_profile import ChargingProfile, ChargingProfiles, Purpose, Rating
from evgi.sim.stations.connector import ConnectorStatus, Evse
from evgi.sim.stations.meter import Meter, Reading
from evgi.sim.stations.outbox import Offline, Outbox, QueuedMessage, Refused
from evgi.sim.stations.schema import MessageSchemas, SchemaViolation
from evgi.sim.stations.session import Session, StopReason
from evgi.sim.stations.station import BootRefused, EvseSpec, PowerStage, Station, StationError
from evgi.sim.stations.v16 import Station16
from evgi.sim.stations.v21 import Station21
from evgi.sim.stations.v201 import Station201
from evgi.sim.stations.vehicle import Vehicle

STATIONS: dict[str, type[Station]] = {"1.6": Station16, "2.0.1": Station201, "2.1": Station21}
VERSIONS = tuple(STATIONS)


def station_class(version: str) -> type[Station]:
    """The station class speaking an OCPP version ("1.6", "2.0.1" or "2.1")."""
    try:
        return STATIONS[version]
    except KeyError:
        raise StationError(f"unknown OCPP version {version!r}; choose one of {VERSIONS}") from None


__all__ = [
    "STATIONS",
    "VERSIONS",
    "BootRefused",
    "ChargingProfile",
    "ChargingProfiles",
    "ConnectorStatus",
    "Evse",
    "EvseSpec",
    "MessageSchemas",
    "Meter",
    "Offline",
    "Outbox",
    "PowerStage",
    "Purpose",
    "QueuedMessage",
    "Rating",
    "Reading",
    "Refused",
    "SchemaViolation",
    "Session",
    "Station",
    "Station16",
    "Station21",
    "Station201",
    "StationError",
    "StopReason",
    "Vehicle",
    "station_class",
]

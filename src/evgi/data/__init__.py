"""Data subsystem: data hosts keeping owners' Data Buckets and Data Streams, data registration on
the ledger (hashes, URIs, owners, schemas: never the data), stream ageing to nearline and offline
storage, the owners' access log, and the API the platform publishes its own data through.
"""

from evgi.data.access_log import AccessEntry, AccessLog
from evgi.data.catalog import (
    CATALOG,
    BatteryHealth,
    DataType,
    MeterValue,
    SessionRecord,
    V2GEvent,
)
from evgi.data.container import Archive, Container, ContainerKind, Record
from evgi.data.host import HOST_KEY, ContainerRequest, DataHost, HostPlatform, RecordPage
from evgi.data.lifecycle import Ageing
from evgi.data.publisher import DataPublisher
from evgi.data.registration import Registration, record_hash, registration_root

__all__ = [
    "CATALOG",
    "HOST_KEY",
    "AccessEntry",
    "AccessLog",
    "Ageing",
    "Archive",
    "BatteryHealth",
    "Container",
    "ContainerKind",
    "ContainerRequest",
    "DataHost",
    "DataPublisher",
    "DataType",
    "HostPlatform",
    "MeterValue",
    "Record",
    "RecordPage",
    "Registration",
    "SessionRecord",
    "V2GEvent",
    "record_hash",
    "registration_root",
]

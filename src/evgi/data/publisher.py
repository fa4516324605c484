"""How the platform publishes its own data into its owners' containers: meter values, battery
state of health, charging-session records and V2G events. Other layers call this; each call
stores the records with the owner's host and anchors their registration on the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence

from evgi.core.keys import normalize_address
from evgi.data.catalog import (
    CATALOG,
    BatteryHealth,
    DataType,
    MeterValue,
    SessionRecord,
    V2GEvent,
)
from evgi.data.container import Container
from evgi.data.host import DataHost
from evgi.data.registration import Registration
from evgi.identity import Did


class DataPublisher:
    def __init__(self, host: DataHost) -> None:
        self.host = host

    def container(self, owner: str, data_type: DataType) -> Container:
        """The owner's container for `data_type`, opened (a bucket or a stream, as the catalog
        says) the first time the platform publishes such data for it."""
        address = self._address(owner)
        found = self.host.container_of(address, data_type.value)
        if found is not None:
            return found
        return self.host.create_container(address, data_type.value, CATALOG[data_type].container)

    def publish(
        self,
        owner: str,
        data_type: DataType,
        records: Sequence[MeterValue | BatteryHealth | SessionRecord | V2GEvent],
    ) -> Registration:
        """Store `records` (all of `data_type`'s model) for `owner`, an address or a DID."""
        model = CATALOG[data_type].model
        if any(not isinstance(r, model) for r in records):
            raise TypeError(f"{data_type.value} records are {model.__name__} objects")
        container = self.container(owner, data_type)
        return self.host.append(container.id, [r.model_dump(mode="json") for r in records])

    def meter_values(self, owner: str, values: Sequence[MeterValue]) -> Registration:
        return self.publish(owner, DataType.METER_VALUES, values)

    def battery_health(self, owner: str, readings: Sequence[BatteryHealth]) -> Registration:
        return self.publish(owner, DataType.BATTERY_HEALTH, readings)

    def session_records(self, owner: str, records: Sequence[SessionRecord]) -> Registration:
        return self.publish(owner, DataType.CHARGING_SESSIONS, records)

    def v2g_events(self, owner: str, events: Sequence[V2GEvent]) -> Registration:
        return self.publish(owner, DataType.V2G_EVENTS, events)

    def _address(self, owner: str) -> str:
        if owner.startswith("did:"):
            return Did.parse(owner, self.host.chain_id).address
        return normalize_address(owner)

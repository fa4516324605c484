"""The devices an operator admits to the 2030.5 server, and what they last reported.

A device is known only by the LFDI of its certificate and the PIN its installer was given (2030.5
section 6.4, Registration): no owner, no address, nothing of the consumer layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from evgi.core.clock import Clock
from evgi.core.errors import NotFoundError, ValidationError
from evgi.grid.identifiers import normalize_lfdi, sfdi
from evgi.grid.resources import summary
from evgi.storage.grid import GridStore


@dataclass(frozen=True)
class DeviceReport:
    """A device with its last DER documents (flattened) and newest telemetry."""

    lfdi: str
    sfdi: int
    pin: int | None
    registered_at: str
    last_seen: str | None
    documents: dict[str, dict[str, str]]
    telemetry: dict[str, dict[str, Any]]


class EndDevices:
    def __init__(self, store: GridStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def register(self, lfdi_hex: str, pin: int) -> int:
        """Admit a device by its LFDI with the PIN its installer reads on it; returns its SFDI."""
        lfdi = normalize_lfdi(lfdi_hex)
        if not 0 <= pin <= 999_999:
            raise ValidationError("a PIN has at most six digits")
        if self.store.device(lfdi) is not None:
            raise ValidationError(f"device {lfdi} is already registered")
        short = sfdi(lfdi)
        self.store.add_device(lfdi, short, pin, self.clock.now())
        return short

    def remove(self, lfdi_hex: str) -> None:
        if not self.store.remove_device(normalize_lfdi(lfdi_hex)):
            raise NotFoundError(f"no device {lfdi_hex!r}")

    def reports(self) -> list[DeviceReport]:
        reports = []
        for device in self.store.devices():
            documents = {
                kind: summary(etree.fromstring(row.body.encode()))
                for kind, row in self.store.documents(device.lfdi).items()
            }
            telemetry: dict[str, dict[str, Any]] = {}
            for point in self.store.usage_points(device.lfdi):
                for reading in self.store.latest_readings(point.id):
                    telemetry[reading.description or reading.meter_reading] = {
                        "value": reading.value,
                        "power_of_ten": reading.power_of_ten,
                        "uom": reading.uom,
                        "at": reading.at.isoformat(),
                    }
            reports.append(
                DeviceReport(
                    device.lfdi,
                    device.sfdi,
                    device.pin,
                    device.registered_at.isoformat(),
                    None if device.last_seen is None else device.last_seen.isoformat(),
                    documents,
                    telemetry,
                )
            )
        return reports

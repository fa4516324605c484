"""A small data-sharing scene on a real platform: a trust anchor, a data host, a driver who owns
a battery-health bucket, an OEM and an insurer; shared by the data and permissions tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evgi.app import GENESIS_KEY, Platform, open_platform
from evgi.config import Settings
from evgi.core import Account, EntityKind, SimulatedClock
from evgi.data import BatteryHealth, Container, DataHost, DataPublisher, DataType
from evgi.identity import did_for, issue_entity_certificate
from evgi.ledger import Submitter
from evgi.permissions import Role, sign_unlock_request

PROVIDER = {"legalName": "Aurora Motors AG", "country": "DE"}


@dataclass
class Scene:
    platform: Platform
    clock: SimulatedClock
    host: DataHost
    anchor: Submitter
    driver: Account
    oem: Account
    insurer: Account
    bucket: Container

    @property
    def chain_id(self) -> int:
        return self.platform.ledger.chain_id

    def did(self, account: Account) -> str:
        return did_for(self.chain_id, account.address)

    def as_(self, account: Account) -> Submitter:
        return self.platform.submitter(account)

    def unlock_request(
        self, account: Account, role: Role = Role.READER, container: str | None = None
    ) -> dict[str, object]:
        return sign_unlock_request(
            account,
            self.chain_id,
            self.host.did,
            container or self.bucket.id,
            role,
            self.clock.now(),
        )

    def expires(self, days: float = 30) -> datetime:
        return self.clock.now() + timedelta(days=days)


def reading(battery: str, month: int) -> BatteryHealth:
    return BatteryHealth(
        battery=battery,
        measuredAt=datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=30 * month),
        stateOfHealthPercent=99.5 - 0.5 * month,
        usableCapacityWh=77_000 - 300 * month,
        equivalentFullCycles=20 * month,
    )


def build_scene(data_dir: Path, db_url: str | None = None) -> Scene:
    """On-board everyone, bootstrap the host and publish three readings into driver's bucket."""
    clock = SimulatedClock(datetime.now(UTC))
    platform = open_platform(Settings(data_dir=data_dir, database_url=db_url), clock)
    host = DataHost.open(platform, GENESIS_KEY)
    anchor = platform.submitter(GENESIS_KEY)
    driver, oem, insurer = (platform.keystore.create(n) for n in ("driver", "oem", "insurer"))
    issue_entity_certificate(anchor, driver.address, EntityKind.USER, {"role": "driver"}, clock)
    issue_entity_certificate(anchor, oem.address, EntityKind.OEM, PROVIDER, clock)
    issue_entity_certificate(anchor, insurer.address, EntityKind.INSURER, PROVIDER, clock)
    publisher = DataPublisher(host)
    battery = did_for(platform.ledger.chain_id, Account.generate().address)
    publisher.battery_health(driver.address, [reading(battery, m) for m in range(3)])
    bucket = publisher.container(driver.address, DataType.BATTERY_HEALTH)
    return Scene(platform, clock, host, anchor, driver, oem, insurer, bucket)


@pytest.fixture
def scene(db_url: str, tmp_path: Path) -> Iterator[Scene]:
    built = build_scene(tmp_path / "evgi-data", db_url)
    yield built
    built.host.close()
    built.platform.close()

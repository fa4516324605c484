"""A running `evgi serve` with its IEEE 2030.5 server, devices admitted with certificates of
the grid CA, and the operator's programs, as the fixtures of the grid tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine

from evgi.config import Settings
from evgi.core.clock import SystemClock
from evgi.grid import DerPrograms, EndDevices, grid_authority
from evgi.storage import open_database
from evgi.storage.grid import GridStore
from tests.grid.sep_client import SepClient, lfdi_of, sfdi_of, tls_context
from tests.service_runner import free_port, running_service

SEP_XSD = Path(
    os.environ.get(
        "EVGI_TEST_SEP_XSD",
        Path(__file__).resolve().parents[3] / "shared/fixtures/ieee2030.5/sep_2018.xsd",
    )
)


@pytest.fixture(scope="session")
def sep_schema() -> etree.XMLSchema | None:
    """The official XSD when it is at hand (IEEE's terms keep it out of the repository)."""
    return etree.XMLSchema(etree.parse(str(SEP_XSD))) if SEP_XSD.exists() else None


@dataclass
class Device:
    name: str
    certificate: Path
    key: Path
    lfdi: str
    sfdi: int


@dataclass
class GridSite:
    base: str
    port: int
    folder: Path
    settings: Settings
    db: Engine
    ca: Path
    devices: dict[str, Device]
    programs: DerPrograms
    schema: etree.XMLSchema | None

    def client(self, name: str) -> SepClient:
        device = self.devices[name]
        return SepClient(
            self.base, tls_context(self.ca, device.certificate, device.key), self.schema
        )


@pytest.fixture
def grid_site(
    db_url: str, tmp_path: Path, sep_schema: etree.XMLSchema | None
) -> Iterator[GridSite]:
    """`evgi serve` on free ports, 2030.5 on mTLS; devices evse-1 and evse-2 admitted (PINs
    111115 and 222220), `stranger` holding a grid certificate but never admitted; programs
    "utility" (primacy 1, with a default control and a volt-var curve) and "aggregator" (2)."""
    port = free_port()
    toml = [f"grid_port = {port}"]
    if SEP_XSD.exists():
        toml.append(f'grid_schema = "{SEP_XSD}"')
    (tmp_path / "evgi.toml").write_text("\n".join(toml) + "\n")
    settings = Settings(data_dir=tmp_path / "evgi-data", database_url=db_url)
    db = open_database(db_url)
    clock = SystemClock()
    store = GridStore(db)
    authority = grid_authority(settings)
    devices = {}
    for name, pin in (("evse-1", 111115), ("evse-2", 222220), ("stranger", None)):
        chain, key = authority.issue_device_certificate(name).write(tmp_path, name)
        lfdi = lfdi_of(chain)
        devices[name] = Device(name, chain, key, lfdi, sfdi_of(lfdi))
        if pin is not None:
            EndDevices(store, clock).register(lfdi, pin)
    programs = DerPrograms(store, clock)
    programs.create_program("utility", 1, {"opModMaxLimW": 10000, "opModConnect": True})
    programs.create_program("aggregator", 2)
    try:
        with running_service(tmp_path, "--db", db_url):
            yield GridSite(
                f"https://127.0.0.1:{port}",
                port,
                tmp_path,
                settings,
                db,
                authority.certificate_path,
                devices,
                programs,
                sep_schema,
            )
    finally:
        db.dispose()

"""A small ISO 15118 ecosystem on each test's own data folder, and its /pki routes served over
loopback on the port the certificates' AIA names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evgi.api import create_app
from evgi.app import open_platform
from evgi.config import Settings
from evgi.pnc import Branch, Hierarchies, Iso15118, RootSpec
from evgi.service import http_in_background
from evgi.storage import open_database
from tests.service_runner import free_port

QA_CERTS = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "iso15118-qa-certs"

# One root of each kind on -2, and a -20 V2G root on each of its key algorithms.
SMALL_ECOSYSTEM = (
    RootSpec("v2g-t", Branch.V2G, "Test V2G", Iso15118.PART_2, "secp256r1"),
    RootSpec("mo-t", Branch.MO, "Test MO", Iso15118.PART_2, "secp256r1"),
    RootSpec("oem-t", Branch.OEM, "Test OEM", Iso15118.PART_2, "secp256r1"),
    RootSpec("mo-p521", Branch.MO, "Test MO P521", Iso15118.PART_20, "secp521r1"),
    RootSpec("oem-ed448", Branch.OEM, "Test OEM Ed448", Iso15118.PART_20, "ed448"),
)


@pytest.fixture
def pki_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", http_port=free_port())


@pytest.fixture
def hierarchies(pki_settings: Settings) -> Iterator[Hierarchies]:
    engine = open_database(pki_settings.db_url)
    hierarchies = Hierarchies(pki_settings, engine)
    hierarchies.init(SMALL_ECOSYSTEM)
    yield hierarchies
    engine.dispose()


@pytest.fixture
def pki_server(pki_settings: Settings, hierarchies: Hierarchies) -> Iterator[str]:
    """`evgi serve`'s HTTP app on the port the AIA and CRL URLs point at."""
    platform = open_platform(pki_settings)
    try:
        with http_in_background(create_app(platform), port=pki_settings.http_port) as url:
            yield url
    finally:
        platform.close()

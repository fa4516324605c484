"""A running `evgi serve` with the ISO 15118 hierarchies built on its database and the pool
clients (OEM, two eMSPs, CPO) registered by its operator over HTTP, as a deployment starts.

One service per test module and backend (`pool` fixture): starting `evgi serve` is the slow
part, and the tests of a module use vehicles (PCIDs) of their own."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from evgi.config import Settings
from evgi.pnc import Branch, Hierarchies, Iso15118, RootSpec
from evgi.storage import open_database
from tests.conftest import _BACKENDS, POSTGRES_ENV, _postgres_database
from tests.service_runner import running_service

ECOSYSTEM = (
    RootSpec("v2g-a", Branch.V2G, "Example V2G A", Iso15118.PART_2, "secp256r1"),
    RootSpec("v2g-b", Branch.V2G, "Example V2G B", Iso15118.PART_2, "secp256r1"),
    RootSpec("mo-a", Branch.MO, "Example MO", Iso15118.PART_2, "secp256r1"),
    RootSpec("oem-a", Branch.OEM, "Example OEM", Iso15118.PART_2, "secp256r1"),
    RootSpec("v2g-p521", Branch.V2G, "Example V2G P521", Iso15118.PART_20, "secp521r1"),
    RootSpec("mo-p521", Branch.MO, "Example MO P521", Iso15118.PART_20, "secp521r1"),
    RootSpec("oem-p521", Branch.OEM, "Example OEM P521", Iso15118.PART_20, "secp521r1"),
    RootSpec("v2g-ed448", Branch.V2G, "Example V2G Ed448", Iso15118.PART_20, "ed448"),
    RootSpec("mo-ed448", Branch.MO, "Example MO Ed448", Iso15118.PART_20, "ed448"),
    RootSpec("oem-ed448", Branch.OEM, "Example OEM Ed448", Iso15118.PART_20, "ed448"),
)
ROLES = {"oem": "oem", "emsp": "emsp", "emsp-2": "emsp", "cpo": "cpo"}


def der64(certificate: x509.Certificate) -> str:
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


@dataclass
class PoolScene:
    base: str
    http: httpx.Client
    hierarchies: Hierarchies
    tokens: dict[str, str]

    def auth(self, client: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[client]}"}

    def call(self, method: str, path: str, client: str | None = None, **kwargs: Any) -> Any:
        """A request as `client` (none: without a token)."""
        headers = self.auth(client) if client else {}
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)

    def root(self, name: str) -> x509.Certificate:
        return self.hierarchies.get(name).certificate


@contextmanager
def pool_service(tmp_path: Path, db_url: str) -> Iterator[PoolScene]:
    with running_service(tmp_path, "--db", db_url) as base:
        data_dir = tmp_path / "evgi-data"
        settings = Settings(data_dir=data_dir, database_url=db_url, pki_base_url=base)
        engine = open_database(db_url)
        hierarchies = Hierarchies(settings, engine)
        hierarchies.init(ECOSYSTEM)
        operator = (data_dir / "opcp-operator.token").read_text().strip()
        try:
            with httpx.Client(timeout=30) as http:
                tokens = {"operator": operator}
                for name, role in ROLES.items():
                    reply = http.post(
                        f"{base}/opcp/v1/clients",
                        json={"name": name, "role": role},
                        headers={"Authorization": f"Bearer {operator}"},
                    )
                    assert reply.status_code == 201, reply.text
                    tokens[name] = reply.json()["token"]
                yield PoolScene(base, http, hierarchies, tokens)
        finally:
            engine.dispose()


@pytest.fixture(name="pool", scope="module", params=_BACKENDS)
def pool_fixture(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PoolScene]:
    """The pool service of this module on each configured backend."""
    folder = tmp_path_factory.mktemp("pool")
    if request.param == "sqlite":
        with pool_service(folder, f"sqlite:///{folder / 'evgi.db'}") as scene:
            yield scene
        return
    with (
        contextmanager(_postgres_database)(os.environ[POSTGRES_ENV]) as url,
        pool_service(folder, url) as scene,
    ):
        yield scene

"""An in-process CSMS on a free loopback port, over each storage backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Engine

from evgi.config import Settings
from evgi.core.clock import SystemClock
from evgi.core.events import EventBus
from evgi.csms import Csms
from evgi.storage import open_database

if TYPE_CHECKING:
    from tests.csms.pnc_scene import Scene

PASSWORD = "correct-horse-battery"


class Harness:
    """A CSMS on a database, with the events it published; `serve()` runs its server."""

    def __init__(self, db: Engine, tmp_path: Path, **settings: Any) -> None:
        self.db = db
        self.settings = Settings(data_dir=tmp_path / "data", **settings)
        self.bus = EventBus()
        self.events: list[object] = []
        self.bus.subscribe(object, self.events.append)
        self.csms = Csms(self.settings, db, self.bus, SystemClock())
        self.url = ""

    def reopen(self) -> Csms:
        """A new CSMS on the same database, as after a restart."""
        self.csms = Csms(self.settings, self.db, self.bus, SystemClock())
        return self.csms

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        async with self.csms.running("127.0.0.1", 0) as server:
            self.url = f"ws://127.0.0.1:{server.port}/ocpp"
            yield self.url

    def of_type(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """SQLite: protocol tests; the storage tests run on both backends through `db_url`."""
    engine = open_database(f"sqlite:///{tmp_path / 'csms.db'}")
    yield Harness(engine, tmp_path)
    engine.dispose()


@pytest.fixture
def harness_any_db(db: Engine, tmp_path: Path) -> Harness:
    return Harness(db, tmp_path)


@pytest.fixture
def scene(tmp_path: Path, db_url: str) -> Iterator[Scene]:
    """The Plug & Charge scene (`tests.csms.pnc_scene`, which builds on `Harness`) on each
    backend."""
    from tests.csms.pnc_scene import open_scene

    with open_scene(tmp_path, db_url) as opened:
        yield opened

"""The data host's freshness check: a commit by any other connection (another engine stands for
another process) must show on the very next call, and asking must leave SQLite's own locks on
the database's WAL index to SQLite."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from evgi.storage.data_version import DataVersion
from evgi.storage.database import open_database

# Run in another process: can it lock the WAL index's "dead man switch" byte (offset 128 of the
# -shm file), which every process with the database open holds a shared lock on? If it can, it
# would take itself for the database's first user and reset the WAL index under the others.
_PROBE = """
import fcntl, sys
with open(sys.argv[1], "r+b") as shm:
    try:
        fcntl.lockf(shm, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
    except OSError:
        print("held", end="")
    else:
        print("free", end="")
"""


@pytest.fixture
def engines(db_url: str) -> Iterator[tuple[Engine, Engine]]:
    mine, other = open_database(db_url), open_database(db_url)
    yield mine, other
    mine.dispose()
    other.dispose()


def _commit(engine: Engine, value: int) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        conn.execute(text("INSERT INTO probe (x) VALUES (:x)"), {"x": value})


@pytest.mark.parametrize("wal_index", [True, False], ids=["wal-index", "pragma"])
def test_every_commit_of_another_connection_shows_on_the_next_call(
    engines: tuple[Engine, Engine], wal_index: bool
) -> None:
    mine, other = engines
    version = DataVersion(mine)
    if mine.dialect.name != "sqlite":
        assert version.changed() and version.changed()  # no counter: always "maybe"
        return
    assert version._header is not None  # SQLite in WAL mode: the header is read
    if not wal_index:
        version._header = None
    try:
        assert version.changed()  # the first call knows nothing yet
        assert not version.changed()
        for value in range(3):
            _commit(other, value)
            assert version.changed()
            assert not version.changed()
        with mine.connect() as conn:  # reads commit nothing
            conn.execute(text("SELECT count(*) FROM probe")).scalar_one()
        assert not version.changed()
    finally:
        version.close()


def test_asking_leaves_the_wal_index_locked_for_this_process(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path}/evgi.db")
    _commit(engine, 1)
    versions = [DataVersion(engine) for _ in range(2)]  # the second finds the header mapped
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM probe")).scalar_one()
            assert all(version._header is not None and version.changed() for version in versions)
            versions[0].close()
            probe = subprocess.run(
                [sys.executable, "-c", _PROBE, f"{tmp_path}/evgi.db-shm"],
                capture_output=True,
                text=True,
                check=True,
            )
            assert probe.stdout == "held"
    finally:
        for version in versions:
            version.close()
        engine.dispose()

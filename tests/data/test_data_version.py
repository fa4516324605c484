"""The data host's freshness check: a commit by any other connection (another engine stands for
another process) must show on the very next call, whichever way the check reads it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from evgi.storage.data_version import DataVersion
from evgi.storage.database import open_database


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
        version._header.close()
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

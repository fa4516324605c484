"""Fixtures every test module shares: a fresh database on each backend, and ledgers opened on it.

Each test gets its own SQLite file and, when `EVGI_TEST_POSTGRES_URL` names a server (an admin
URL that may create databases), its own PostgreSQL database, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from evgi.core import Account
from evgi.ledger import open_local_ledger
from evgi.ledger.journal import LocalLedger
from evgi.storage import open_database

pytest.register_assert_rewrite("tests.ledger.economy")

POSTGRES_ENV = "EVGI_TEST_POSTGRES_URL"
CHAIN_ID = 1337

LedgerOpener = Callable[..., LocalLedger]

_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(
            not os.environ.get(POSTGRES_ENV),
            reason=f"PostgreSQL not configured: set {POSTGRES_ENV} to an admin URL such as "
            "postgresql://evgi:evgi@127.0.0.1:5433/postgres (.ci/run starts such a server)",
        ),
    ),
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fast by default: slow tests run under CI=true or when `-m` selects them."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") or config.getoption("markexpr"):
        return
    skip = pytest.mark.skip(reason="slow test: runs with CI=true or `-m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _psycopg_url(url: str) -> str:
    """The same URL with the psycopg 3 driver, the one PostgreSQL driver evgi depends on."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise pytest.UsageError(f"{POSTGRES_ENV} must be a postgresql:// URL, not {url!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def _postgres_database(admin_url: str) -> Iterator[str]:
    """Create a uniquely named database, yield its URL, then drop it with its connections."""
    admin_url = _psycopg_url(admin_url)
    name = f"evgi_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            # PostgreSQL 15+ can copy the small template at once instead of WAL-logging it.
            version = conn.dialect.server_version_info or (0,)
            strategy = " STRATEGY = FILE_COPY" if version >= (15,) else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{strategy}'))
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                # Only the tests' own sessions: an autovacuum worker on the new database is the
                # server's (a superuser's), which DROP DATABASE stops by itself.
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend' AND usename = current_user"
                    ),
                    {"name": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture(params=_BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database, not yet migrated, on each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'evgi.db'}"
    else:
        yield from _postgres_database(os.environ[POSTGRES_ENV])


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    """The migrated database, for tests that read or edit rows directly."""
    engine = open_database(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def anchor() -> Account:
    """The trust anchor fixed in the genesis block of the test ledger."""
    return Account.generate()


@pytest.fixture
def open_ledger(db_url: str, anchor: Account) -> Iterator[LedgerOpener]:
    """Open (or reopen) the ledger on `db_url`, each time through a new engine, as a restart does;
    everything opened is closed after the test."""
    engines: list[Engine] = []
    ledgers: list[LocalLedger] = []

    def opener(
        chain_id: int = CHAIN_ID,
        trust_anchors: Sequence[str] | None = None,
        block_max_transactions: int = 2000,
    ) -> LocalLedger:
        engines.append(open_database(db_url))
        anchors = [anchor.address] if trust_anchors is None else trust_anchors
        ledger = open_local_ledger(
            engines[-1], chain_id, anchors, block_max_transactions=block_max_transactions
        )
        assert isinstance(ledger, LocalLedger)
        ledgers.append(ledger)
        return ledger

    yield opener
    for ledger in ledgers:
        ledger.close()
    for engine in engines:
        engine.dispose()


@pytest.fixture
def ledger(open_ledger: LedgerOpener) -> LocalLedger:
    """A fresh ledger whose genesis names `anchor` as its one trust anchor."""
    return open_ledger()

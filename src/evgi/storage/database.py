"""Engine creation and schema migration for SQLite (default) and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL + NORMAL survives a killed process without losing a committed transaction.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_database_engine(url: str) -> Engine:
    """Engine for `url`; creates the SQLite file's folder so a fresh machine needs no setup.

    A plain postgresql:// URL gets the psycopg 3 driver, the one PostgreSQL driver evgi ships.
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # Threads that read at once (HTTP handlers, validators) each hold a connection: with
        # fewer pooled than that, the overflow is opened, set up and closed on every read.
        engine = create_engine(
            parsed, connect_args={"check_same_thread": False}, pool_size=16, max_overflow=32
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring every subsystem's schema to its newest revision; safe to call on every start.

    Each subsystem keeps its own branch of migrations (rooted at the ledger's first revision,
    with its own branch label), so layers evolve their tables independently.
    """
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "heads")


def open_database(url: str) -> Engine:
    engine = create_database_engine(url)
    migrate(engine)
    return engine

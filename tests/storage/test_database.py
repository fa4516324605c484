"""Migrations: they build the schema the models describe, on SQLite and PostgreSQL, and running
them again on every start changes nothing and loses nothing."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from evgi.storage import Base, create_database_engine, migrate, open_database
from evgi.storage.database import alembic_config

LEDGER_TABLES = {"ledger_blocks", "ledger_transactions", "ledger_state"}


def revisions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


def test_fresh_database_is_migrated_to_head(db_url: str) -> None:
    engine = create_database_engine(db_url)
    try:
        assert LEDGER_TABLES.isdisjoint(inspect(engine).get_table_names())
        migrate(engine)
        assert LEDGER_TABLES | {"alembic_version"} <= set(inspect(engine).get_table_names())
        assert revisions(engine) == set(ScriptDirectory.from_config(alembic_config()).get_heads())
    finally:
        engine.dispose()


def test_schema_matches_the_models(db: Engine) -> None:
    """Autogenerate finds nothing to add: the migrations and the models describe one schema."""
    with db.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_migrating_again_changes_nothing_and_keeps_rows(db_url: str, db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(
            text("INSERT INTO ledger_state (key, value, block_height) VALUES ('probe', '1', 0)")
        )
    before = revisions(db), sorted(inspect(db).get_table_names())

    migrate(db)
    again = open_database(db_url)  # a second process starting on the same database
    try:
        assert (revisions(again), sorted(inspect(again).get_table_names())) == before
        with again.connect() as conn:
            rows = conn.execute(text("SELECT key, value FROM ledger_state")).all()
            versions = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
        assert [tuple(row) for row in rows] == [("probe", "1")]
        assert versions == len(before[0])  # one row per subsystem's branch
    finally:
        again.dispose()


def test_plain_postgresql_urls_use_psycopg() -> None:
    """`postgresql://` as users write it selects the psycopg 3 driver that evgi installs."""
    engine = create_database_engine("postgresql://evgi:secret@127.0.0.1:1/evgi")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()

"""Single-row writes the stores share: a row given a serial key, and a row replaced or added by
its key columns. Both run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Table, insert, update


def insert_numbered(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """Insert one row into a table with a serial key; return the key it was given."""
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def upsert(
    conn: Connection, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]
) -> bool:
    """Set `values` on the row whose columns equal `key`, or add that row when there is none;
    True when a row was there. Written once for SQLite and PostgreSQL, whose ON CONFLICT
    clauses SQLAlchemy builds per dialect."""
    where = [table.c[name] == value for name, value in key.items()]
    replaced = conn.execute(update(table).where(*where).values(**values)).rowcount
    if not replaced:
        conn.execute(insert(table).values(**{**key, **values}))
    return bool(replaced)

"""Writes the stores share: a row given a serial key, a row replaced or added by its key columns,
and one statement run for a batch of rows. All run inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert, update
from sqlalchemy.sql.dml import UpdateBase


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


class BatchStatement:
    """An INSERT or UPDATE run for many rows at once through the driver's executemany.

    Compiled once per dialect and set of columns, with each row's values put through its
    columns' bind processors here: SQLAlchemy's own executemany builds every row's parameters
    anew, which costs more than the database's work when a batch writes thousands of rows.
    Every row names the same columns.
    """

    def __init__(self, statement: UpdateBase) -> None:
        self.statement = statement
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        names = tuple(rows[0])
        key = (conn.dialect.name, names)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.statement, conn.dialect, names)
        conn.exec_driver_sql(compiled.sql, compiled.parameters(rows))


class _Compiled:
    def __init__(self, statement: UpdateBase, dialect: Dialect, names: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names))
        self.sql = str(compiled)
        self.order = compiled.positiontup  # None where the driver takes named parameters
        self.processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.bind_processor(dialect)) is not None
        }

    def parameters(self, rows: Sequence[Mapping[str, Any]]) -> Any:
        processors = self.processors
        if self.order is None:
            return [
                {
                    name: processors[name](value) if name in processors else value
                    for name, value in row.items()
                }
                for row in rows
            ]
        order = [(name, processors.get(name)) for name in self.order]
        return [
            tuple(row[name] if process is None else process(row[name]) for name, process in order)
            for row in rows
        ]

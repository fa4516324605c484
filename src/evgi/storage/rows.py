"""Reads and writes the stores share: a row given a serial key, a row replaced or added by its
key columns, and prepared statements for the hot paths and for batches. All run inside the
caller's transaction."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, Insert, Table, insert, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.selectable import ReturnsRows


def insert_numbered(conn: Connection, table: Table, values: Mapping[str, Any]) -> int:
    """Insert one row into a table with a serial key; return the key it was given."""
    rows = fetch(conn, _numbered(table), values, tuple(values))
    return int(next(iter(rows[0].values())))


@functools.cache
def _numbered(table: Table) -> Insert:
    return insert(table).returning(*table.primary_key.columns)


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


Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Prepared:
    """A statement compiled once per dialect and set of columns, run on the driver's own cursor
    of the caller's connection (so inside its transaction), its values put through the column
    types' own processors: what is stored and read back is what SQLAlchemy would store and
    read, without the per-call cost of building its parameters and result rows, which exceeds
    the database's own work on the hot paths and for batches of thousands of rows."""

    sql: str
    positional: tuple[tuple[str, Processor | None], ...] | None  # None: named parameters
    named: Mapping[str, Processor]
    columns: tuple[tuple[str, Processor | None], ...]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.positional is None:
            named = self.named
            return {
                name: named[name](value) if name in named else value
                for name, value in values.items()
            }
        return tuple(
            values[name] if process is None else process(values[name])
            for name, process in self.positional
        )

    def mapping(self, row: Sequence[Any]) -> dict[str, Any]:
        return {
            name: value if process is None else process(value)
            for (name, process), value in zip(self.columns, row, strict=True)
        }


@functools.lru_cache(maxsize=1024)
def prepared(
    statement: Executable, dialect: Dialect, keys: tuple[str, ...] | None = None
) -> Prepared:
    """`statement` compiled for `dialect`; `keys` names the columns an INSERT or UPDATE sets."""
    compiled = statement.compile(  # type: ignore[attr-defined]
        dialect=dialect, column_keys=None if keys is None else list(keys)
    )
    named = {
        name: processor
        for name, bind in compiled.binds.items()
        if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
    }
    positional = (
        None
        if compiled.positiontup is None
        else tuple((name, named.get(name)) for name in compiled.positiontup)
    )
    selected = statement.exported_columns if isinstance(statement, ReturnsRows) else ()
    columns = tuple(
        (str(c.key), c.type.dialect_impl(dialect).result_processor(dialect, None)) for c in selected
    )
    return Prepared(str(compiled), positional, named, columns)


def _cursor(conn: Connection) -> Any:
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


@contextmanager
def _raised_as_sqlalchemy(conn: Connection, sql: str, parameters: Any) -> Iterator[None]:
    """The driver's errors as SQLAlchemy raises them (IntegrityError, OperationalError, ...),
    so that callers catch the same error however a statement ran."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        raise sa_exc.DBAPIError.instance(
            sql, parameters, exc, dbapi.Error, dialect=conn.dialect
        ) from exc


def fetch(
    conn: Connection,
    statement: Executable,
    values: Mapping[str, Any],
    keys: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """The rows a SELECT, or an INSERT setting columns `keys` and RETURNING some, gives."""
    ready = prepared(statement, conn.dialect, keys)
    cursor = _cursor(conn)
    parameters = ready.parameters(values)
    with _raised_as_sqlalchemy(conn, ready.sql, parameters):
        cursor.execute(ready.sql, parameters)
        return [ready.mapping(row) for row in cursor.fetchall()]


def execute(conn: Connection, statement: Executable, values: Mapping[str, Any]) -> int:
    """Run an UPDATE or DELETE for `values`; the number of rows it matched."""
    ready = prepared(statement, conn.dialect)
    parameters = ready.parameters(values)
    with _raised_as_sqlalchemy(conn, ready.sql, parameters):
        return int(_cursor(conn).execute(ready.sql, parameters).rowcount)


def execute_many(
    conn: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run an INSERT or UPDATE once per row, in one executemany; every row names the same
    columns."""
    if not rows:
        return
    ready = prepared(statement, conn.dialect, tuple(rows[0]))
    parameters = [ready.parameters(row) for row in rows]
    with _raised_as_sqlalchemy(conn, ready.sql, parameters):
        _cursor(conn).executemany(ready.sql, parameters)

"""A cheap answer to "has anyone committed to the database since I last asked?".

On SQLite, `PRAGMA data_version` on a connection of our own moves whenever any other connection,
in this process or another, commits. Asking costs microseconds where reading the ledger's head
through the ORM costs a hundred, so per-request freshness checks ask this first. Other databases
have no such counter here, and the answer is always "maybe" (True).

The WAL's `-shm` file is never opened here to read its header directly: closing any descriptor
of that file drops every lock this process holds on it, SQLite's included, and the next process
to open the database would then take itself for the first, reset the file under this process's
mapping of it and crash it (SIGBUS).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Engine


class DataVersion:
    def __init__(self, engine: Engine) -> None:
        self._connection: Any = engine.raw_connection() if engine.dialect.name == "sqlite" else None
        self._cursor: Any = self._connection.cursor() if self._connection is not None else None
        self._lock = threading.Lock()
        self._last: Any = None

    def changed(self) -> bool:
        """True if a commit may have happened since the previous call (always, the first time)."""
        if self._cursor is None:
            return True
        with self._lock:
            self._cursor.execute("PRAGMA data_version")
            version = self._cursor.fetchone()[0]
            moved: bool = version != self._last
            self._last = version
            return moved

    def close(self) -> None:
        if self._connection is not None:
            with self._lock:
                self._cursor.close()
                self._connection.close()
                self._cursor = self._connection = None

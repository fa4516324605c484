"""A cheap answer to "has anyone committed to the database since I last asked?".

On SQLite, `PRAGMA data_version` on a connection of our own moves whenever any other connection,
in this process or another, commits. Asking costs microseconds where reading the ledger's head
through the ORM costs a hundred, so per-request freshness checks ask this first. Other databases
have no such counter here, and the answer is always "maybe" (True).

In WAL mode every commit, by any connection of any process, rewrites the WAL-index header at the
start of the shared `-shm` file (a change counter, the last frame and the salts; see SQLite's
"WAL-mode file format"). Comparing that header with the one seen last time answers the same
question with one memory read and no lock, so it is asked first; the pragma is the fallback
wherever the header cannot be read (another journal mode, an in-memory database).
"""

from __future__ import annotations

import mmap
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

# WAL-index header: the first of its two 48-byte copies, which writers update last.
_HEADER = 48
# Its format version (WALINDEX_MAX_VERSION) and the offset of its "initialized" flag.
_WAL_INDEX_VERSION = 3007000
_IS_INIT = 12


class DataVersion:
    def __init__(self, engine: Engine) -> None:
        self._connection: Any = engine.raw_connection() if engine.dialect.name == "sqlite" else None
        self._cursor: Any = self._connection.cursor() if self._connection is not None else None
        self._lock = threading.Lock()
        self._last: Any = None
        self._header: mmap.mmap | None = None
        if self._cursor is not None:
            self._header = self._map_wal_index()

    def _map_wal_index(self) -> mmap.mmap | None:
        """The live WAL-index header, mapped read-only, or None where there is none to read.

        A read on this connection opens the WAL first: SQLite deletes the `-shm` file only
        when the last connection using it closes, so while this one lives the mapping stays
        the file every writer updates."""
        self._cursor.execute("PRAGMA data_version")
        self._cursor.fetchone()
        self._cursor.execute("PRAGMA journal_mode")
        mode = str(self._cursor.fetchone()[0]).lower()
        # In exclusive locking mode the WAL index lives in private memory, not in the file.
        self._cursor.execute("PRAGMA locking_mode")
        mode += "/" + str(self._cursor.fetchone()[0]).lower()
        self._cursor.execute("PRAGMA database_list")
        files = {row[1]: row[2] for row in self._cursor.fetchall()}
        if mode != "wal/normal" or not files.get("main"):
            return None
        try:
            with Path(f"{files['main']}-shm").open("rb") as shm:
                header = mmap.mmap(shm.fileno(), _HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None
        if int.from_bytes(header[:4], "little") != _WAL_INDEX_VERSION or not header[_IS_INIT]:
            header.close()
            return None
        return header

    def changed(self) -> bool:
        """True if a commit may have happened since the previous call (always, the first time)."""
        if self._cursor is None:
            return True
        with self._lock:
            if self._header is not None:
                version: Any = self._header[:_HEADER]
            else:
                self._cursor.execute("PRAGMA data_version")
                version = self._cursor.fetchone()[0]
            moved: bool = version != self._last
            self._last = version
            return moved

    def close(self) -> None:
        if self._connection is not None:
            with self._lock:
                if self._header is not None:
                    self._header.close()
                    self._header = None
                self._cursor.close()
                self._connection.close()
                self._cursor = self._connection = None

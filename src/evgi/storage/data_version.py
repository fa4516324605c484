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

The `-shm` file is opened once per process and never closed: closing any descriptor of it drops
every lock this process holds on it, SQLite's included, and the next process to open the
database would then take itself for the first, reset the file under this process's mapping and
crash it (SIGBUS).
"""

from __future__ import annotations

import mmap
import os
import threading
from typing import Any

from sqlalchemy import Engine

# WAL-index header: the first of its two 48-byte copies, which writers update last.
_HEADER = 48
# Its format version (WALINDEX_MAX_VERSION) and the offset of its "initialized" flag.
_WAL_INDEX_VERSION = 3007000
_IS_INIT = 12

# By (device, inode) of a -shm file: its header, mapped for the rest of the process (see above).
_HEADERS: dict[tuple[int, int], mmap.mmap] = {}
_HEADERS_LOCK = threading.Lock()


def _header_of(path: str) -> mmap.mmap | None:
    """The WAL-index header of the -shm file at `path`, mapped read-only; its descriptor stays
    open with the mapping, and a file mapped already is not opened again."""
    try:
        known = os.stat(path)
    except OSError:
        return None
    with _HEADERS_LOCK:
        header = _HEADERS.get((known.st_dev, known.st_ino))
        if header is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            opened = os.fstat(fd)  # the inode that fd holds, whatever the path names by now
            header = _HEADERS.get((opened.st_dev, opened.st_ino))
            if header is None:
                try:
                    header = mmap.mmap(fd, _HEADER, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    return None
                _HEADERS[opened.st_dev, opened.st_ino] = header
    if int.from_bytes(header[:4], "little") != _WAL_INDEX_VERSION or not header[_IS_INIT]:
        return None
    return header


class DataVersion:
    def __init__(self, engine: Engine) -> None:
        self._connection: Any = engine.raw_connection() if engine.dialect.name == "sqlite" else None
        self._cursor: Any = self._connection.cursor() if self._connection is not None else None
        self._lock = threading.Lock()
        self._last: Any = None
        self._header: mmap.mmap | None = None
        if self._cursor is not None:
            self._header = self._wal_index()

    def _wal_index(self) -> mmap.mmap | None:
        """The live WAL-index header, or None where there is none to read.

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
        return _header_of(f"{files['main']}-shm")

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
                self._header = None  # the mapping stays, for the process (see above)
                self._cursor.close()
                self._connection.close()
                self._cursor = self._connection = None

"""The owners' audit log: who tried what on which container, when, and how it ended.

Entries are queued and written in batches, by `flush()`: the host's maintenance thread calls it
every few tens of milliseconds and every listing calls it first, so logging adds no database
commit to an access. A process killed outright loses at most the entries of that interval.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, insert, select

from evgi.identity import did_for
from evgi.storage.data_hosting import DATA_ACCESS_LOG

Action = Literal["unlock", "read", "write", "audit"]
_L = DATA_ACCESS_LOG.c


@dataclass(frozen=True)
class AccessEntry:
    at: datetime
    owner: str
    container_id: str
    accessor: str
    action: Action
    role: str | None
    outcome: Literal["granted", "refused"]
    reason: str = ""
    via: str = ""
    request_id: str | None = None
    records: int = 0

    def to_json(self, chain_id: int) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "container": self.container_id,
            "accessor": did_for(chain_id, self.accessor),
            "action": self.action,
            "role": self.role,
            "outcome": self.outcome,
            "reason": self.reason,
            "via": self.via,
            "requestId": self.request_id,
            "records": self.records,
        }


class AccessLog:
    def __init__(self, db: Engine) -> None:
        self.db = db
        self._pending: list[AccessEntry] = []
        self._lock = threading.Lock()

    def record(self, entry: AccessEntry) -> None:
        with self._lock:
            self._pending.append(entry)

    def flush(self) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
        if batch:
            rows = [_row(e) for e in batch]
            with self.db.begin() as conn:
                conn.execute(insert(DATA_ACCESS_LOG), rows)
        return len(batch)

    def entries(
        self, owner: str, container_id: str | None = None, limit: int = 200
    ) -> list[AccessEntry]:
        """The owner's entries, newest first."""
        self.flush()
        query = select(DATA_ACCESS_LOG).where(_L.owner == owner)
        if container_id is not None:
            query = query.where(_L.container_id == container_id)
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(_L.id.desc()).limit(limit)).all()
        return [
            AccessEntry(
                _moment(r.at_us),
                r.owner,
                r.container_id,
                r.accessor,
                r.action,
                r.role,
                r.outcome,
                r.reason,
                r.via,
                r.request_id,
                r.records,
            )
            for r in rows
        ]

    def recent_requests(self, since: datetime) -> list[tuple[str, datetime]]:
        """(request id, time) of the unlocks logged since `since`: ids a restart must not
        accept again while their window lasts."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(_L.request_id, _L.at_us).where(
                    _L.at_us >= _microseconds(since),
                    _L.action == "unlock",
                    _L.request_id.is_not(None),
                )
            ).all()
        return [(r.request_id, _moment(r.at_us)) for r in rows]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _row(entry: AccessEntry) -> dict[str, Any]:
    """The entry as a row: its fields as they are, the time as unix microseconds."""
    row = dict(entry.__dict__)
    row["at_us"] = _microseconds(row.pop("at"))
    return row


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _moment(microseconds: int) -> datetime:
    return _EPOCH + microseconds * _MICROSECOND

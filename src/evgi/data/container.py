"""Data Buckets and Data Streams as a host stores them: descriptors, records and stream archives.

Tables are used through SQLAlchemy Core: reads sit on the path of every authorized access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, delete, func, insert, select

from evgi.core.canonical import compact_json, parse_json
from evgi.identity import did_for
from evgi.storage.data_hosting import DATA_ARCHIVES, DATA_CONTAINERS, DATA_RECORDS

ContainerKind = Literal["bucket", "stream"]


@dataclass(frozen=True)
class Container:
    id: str
    kind: ContainerKind
    owner: str
    host: str
    data_type: str
    schema: str
    uri: str
    dbc: str
    retention_s: int | None
    nearline_s: int | None
    created_at: datetime

    def to_json(self, chain_id: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "uri": self.uri,
            "owner": did_for(chain_id, self.owner),
            "host": did_for(chain_id, self.host),
            "dataType": self.data_type,
            "schema": self.schema,
            "dbc": self.dbc,
            "retentionSeconds": self.retention_s,
            "nearlineSeconds": self.nearline_s,
            "created": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Record:
    seq: int
    at: datetime
    hash: str
    registration: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "hash": self.hash,
            "registration": self.registration,
            "body": self.body,
        }


@dataclass(frozen=True)
class Archive:
    """A stream segment past its retention: `nearline` (compressed in the database) or
    `offline` (a file, `path`); `hash` covers its compressed bytes."""

    tier: str
    first_seq: int
    last_seq: int
    count: int
    first_at: datetime
    last_at: datetime
    hash: str
    path: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "firstSeq": self.first_seq,
            "lastSeq": self.last_seq,
            "count": self.count,
            "firstAt": self.first_at.isoformat(),
            "lastAt": self.last_at.isoformat(),
            "hash": self.hash,
        }


_C = DATA_CONTAINERS.c
_R = DATA_RECORDS.c


class ContainerStore:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def add(self, container: Container) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(DATA_CONTAINERS),
                {
                    "id": container.id,
                    "kind": container.kind,
                    "owner": container.owner,
                    "host": container.host,
                    "data_type": container.data_type,
                    "schema": container.schema,
                    "uri": container.uri,
                    "dbc": container.dbc,
                    "retention_s": container.retention_s,
                    "nearline_s": container.nearline_s,
                    "created_at": container.created_at,
                },
            )

    def get(self, container_id: str) -> Container | None:
        with self.db.connect() as conn:
            row = conn.execute(select(DATA_CONTAINERS).where(_C.id == container_id)).first()
        return _container(row) if row is not None else None

    def of_owner(self, owner: str, data_type: str | None = None) -> list[Container]:
        query = select(DATA_CONTAINERS).where(_C.owner == owner)
        if data_type is not None:
            query = query.where(_C.data_type == data_type)
        with self.db.connect() as conn:
            rows = conn.execute(query.order_by(_C.created_at, _C.id)).all()
        return [_container(r) for r in rows]

    def streams(self) -> list[Container]:
        with self.db.connect() as conn:
            rows = conn.execute(select(DATA_CONTAINERS).where(_C.kind == "stream")).all()
        return [_container(r) for r in rows]

    def next_seq(self, container_id: str) -> int:
        """The next record number: one past the highest online or archived one."""
        with self.db.connect() as conn:
            online = conn.execute(
                select(func.max(_R.seq)).where(_R.container_id == container_id)
            ).scalar()
            archived = conn.execute(
                select(func.max(DATA_ARCHIVES.c.last_seq)).where(
                    DATA_ARCHIVES.c.container_id == container_id
                )
            ).scalar()
        return max(online or 0, archived or 0) + 1

    def add_records(self, container_id: str, records: Sequence[Record]) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(DATA_RECORDS),
                [
                    {
                        "container_id": container_id,
                        "seq": r.seq,
                        "at": r.at,
                        "hash": r.hash,
                        "registration": r.registration,
                        "body": compact_json(r.body),
                    }
                    for r in records
                ],
            )

    def remove_records(self, container_id: str, first: int) -> None:
        """Take back records from number `first` on (their registration failed)."""
        with self.db.begin() as conn:
            conn.execute(
                delete(DATA_RECORDS).where(_R.container_id == container_id, _R.seq >= first)
            )

    def records(self, container_id: str, after: int = 0, limit: int = 100) -> list[Record]:
        """Online records after number `after`, oldest first."""
        with self.db.connect() as conn:
            rows = conn.execute(
                select(_R.seq, _R.at, _R.hash, _R.registration, _R.body)
                .where(_R.container_id == container_id, _R.seq > after)
                .order_by(_R.seq)
                .limit(limit)
            ).all()
        return [Record(r.seq, r.at, r.hash, r.registration, parse_json(r.body)) for r in rows]

    def archives(self, container_id: str) -> list[Archive]:
        a = DATA_ARCHIVES.c
        with self.db.connect() as conn:
            rows = conn.execute(
                select(DATA_ARCHIVES).where(a.container_id == container_id).order_by(a.first_seq)
            ).all()
        return [
            Archive(
                r.tier,
                r.first_seq,
                r.last_seq,
                r._mapping["count"],
                r.first_at,
                r.last_at,
                r.hash,
                r.path,
            )
            for r in rows
        ]


def _container(row: Any) -> Container:
    return Container(
        row.id,
        row.kind,
        row.owner,
        row.host,
        row.data_type,
        row.schema,
        row.uri,
        row.dbc,
        row.retention_s,
        row.nearline_s,
        row.created_at,
    )

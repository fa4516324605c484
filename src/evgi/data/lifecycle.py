"""The life of a Data Stream's records: online for the stream's retention period, then nearline
(a compressed segment in the database), then offline (the segment as a gzip file of JSON lines,
with only its hash and path left in the database). Buckets keep their records online.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from evgi.core.canonical import compact_json, parse_json
from evgi.core.digest import keccak256, to_hex
from evgi.data.container import Container, ContainerStore
from evgi.storage.data_hosting import DATA_ARCHIVES, DATA_RECORDS

_R = DATA_RECORDS.c
_A = DATA_ARCHIVES.c


@dataclass(frozen=True)
class Ageing:
    """What one pass moved: records that went nearline, segments that went offline."""

    nearline_records: int = 0
    offline_segments: int = 0


def age_streams(store: ContainerStore, now: datetime, offline_dir: Path) -> Ageing:
    nearline = offline = 0
    for stream in store.streams():
        nearline += _to_nearline(store, stream, now)
        offline += _to_offline(store, stream, now, offline_dir)
    return Ageing(nearline, offline)


def _to_nearline(store: ContainerStore, stream: Container, now: datetime) -> int:
    cutoff = now - timedelta(seconds=stream.retention_s or 0)
    with store.db.begin() as conn:
        rows = conn.execute(
            select(_R.id, _R.seq, _R.at, _R.hash, _R.registration, _R.body)
            .where(_R.container_id == stream.id, _R.at < cutoff)
            .order_by(_R.seq)
        ).all()
        if not rows:
            return 0
        lines = [
            compact_json(
                {
                    "seq": r.seq,
                    "at": r.at.isoformat(),
                    "hash": r.hash,
                    "registration": r.registration,
                    "body": parse_json(r.body),
                }
            )
            for r in rows
        ]
        blob = gzip.compress("\n".join(lines).encode() + b"\n", mtime=0)
        conn.execute(
            insert(DATA_ARCHIVES),
            {
                "container_id": stream.id,
                "tier": "nearline",
                "first_seq": rows[0].seq,
                "last_seq": rows[-1].seq,
                "count": len(rows),
                "first_at": rows[0].at,
                "last_at": rows[-1].at,
                "hash": to_hex(keccak256(blob)),
                "blob": blob,
                "path": None,
                "moved_at": now,
            },
        )
        conn.execute(delete(DATA_RECORDS).where(_R.id.in_([r.id for r in rows])))
    return len(rows)


def _to_offline(store: ContainerStore, stream: Container, now: datetime, folder: Path) -> int:
    cutoff = now - timedelta(seconds=(stream.retention_s or 0) + (stream.nearline_s or 0))
    with store.db.connect() as conn:
        segments = conn.execute(
            select(_A.id, _A.first_seq, _A.last_seq, _A.blob).where(
                _A.container_id == stream.id, _A.tier == "nearline", _A.last_at < cutoff
            )
        ).all()
    target = folder / stream.id
    for segment in segments:
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{segment.first_seq:012d}-{segment.last_seq:012d}.jsonl.gz"
        partial = path.with_suffix(".partial")
        partial.write_bytes(segment.blob)
        os.replace(partial, path)  # a crash leaves the segment nearline, never half offline
        with store.db.begin() as conn:
            conn.execute(
                update(DATA_ARCHIVES)
                .where(_A.id == segment.id)
                .values(tier="offline", blob=None, path=str(path), moved_at=now)
            )
    return len(segments)

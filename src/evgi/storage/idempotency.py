"""Idempotency keys of the wallet API: a client's retry of a top-up or withdrawal gets the first
request's answer instead of moving the money again.

The key is the primary key, so the database itself lets only one request claim it, from any
process sharing the database. The claim is committed before the request runs and holds no
answer until the request has one; a request that finds a claim without an answer is refused
rather than run a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, SmallInteger, String, Table, Text, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, mapped_column

from evgi.core.canonical import compact_json, parse_json
from evgi.core.errors import EvgiError, ValidationError
from evgi.storage.models import Base, UtcDateTime


class IdempotentRequestRow(Base):
    __tablename__ = "settlement_idempotent_requests"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    wallet: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the parsed request body: a retry must send the same request.
    body_digest: Mapped[str] = mapped_column(String(66))
    claimed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # NULL while the first request runs.
    status: Mapped[int | None] = mapped_column(SmallInteger)
    answer: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


IDEMPOTENT_REQUESTS = cast(Table, IdempotentRequestRow.__table__)


class IdempotencyKeyReused(ValidationError):
    code = "idempotency_key_reused"


class IdempotencyKeyInProgress(EvgiError):
    code = "idempotency_key_in_progress"


@dataclass(frozen=True)
class StoredAnswer:
    """The HTTP status and JSON body the first request with a key was answered."""

    status: int
    body: Any


class IdempotencyStore:
    """Claims of idempotency keys and their answers, each write in a transaction of its own so
    that a claim is visible to every other request before the request it guards runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(
        self, key: str, wallet: str, operation: str, body_digest: str, at: datetime
    ) -> StoredAnswer | None:
        """None when this request now holds the key and must run, then `answer` it; the first
        answer when the same request holds it already. Raises IdempotencyKeyReused when the
        key was given to another request, IdempotencyKeyInProgress while its first request
        has no answer yet."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(IDEMPOTENT_REQUESTS).values(
                        key=key,
                        wallet=wallet,
                        operation=operation,
                        body_digest=body_digest,
                        claimed_at=at,
                    )
                )
        except sa_exc.IntegrityError:
            return self._replay(key, wallet, operation, body_digest)
        return None

    def _replay(self, key: str, wallet: str, operation: str, body_digest: str) -> StoredAnswer:
        t = IDEMPOTENT_REQUESTS
        with self.engine.connect() as conn:
            row = conn.execute(
                select(t.c.wallet, t.c.operation, t.c.body_digest, t.c.status, t.c.answer).where(
                    t.c.key == key
                )
            ).one()
        if (row.wallet, row.operation, row.body_digest) != (wallet, operation, body_digest):
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was sent with another request "
                f"({row.operation} of wallet {row.wallet!r})"
            )
        if row.status is None:
            raise IdempotencyKeyInProgress(
                f"the first request with idempotency key {key!r} has not been answered yet"
            )
        return StoredAnswer(row.status, parse_json(row.answer))

    def answer(self, key: str, answer: StoredAnswer, at: datetime) -> None:
        """Keep the answer of the request that claimed `key`, for its retries."""
        with self.engine.begin() as conn:
            conn.execute(
                update(IDEMPOTENT_REQUESTS)
                .where(IDEMPOTENT_REQUESTS.c.key == key)
                .values(status=answer.status, answer=compact_json(answer.body), answered_at=at)
            )

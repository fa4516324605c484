"""Whether an id token may charge: the token store first, then any hooks other layers add.

A hook (settlement's balance check, for one) sees every request the store accepted and may
refuse it with an OCPP 2.x authorization status and a reason; the first refusal wins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from evgi.core.clock import Clock
from evgi.storage.charging import ChargingStore, IdToken

ACCEPTED = "Accepted"
# The statuses OCPP 1.6 knows; any other 2.x status reaches a 1.6 station as Invalid.
V16_STATUSES = frozenset({"Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"})


@dataclass(frozen=True)
class AuthorizationRequest:
    station_id: str
    id_token: str
    evse_id: int | None
    starting: bool  # a transaction is starting with this token (not a bare Authorize)


@dataclass(frozen=True)
class Refusal:
    status: str  # an OCPP 2.x AuthorizationStatus such as "NoCredit"
    reason: str


AuthorizationHook = Callable[[AuthorizationRequest], Awaitable[Refusal | None]]


@dataclass(frozen=True)
class TokenDecision:
    status: str  # an OCPP 2.x AuthorizationStatus
    expires_at: datetime | None = None
    group_id: str | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    @property
    def status_16(self) -> str:
        return self.status if self.status in V16_STATUSES else "Invalid"


class Authorization:
    def __init__(self, store: ChargingStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._hooks: list[AuthorizationHook] = []

    def add_hook(self, hook: AuthorizationHook) -> Callable[[], None]:
        """Consult `hook` on every token the store accepts; returns the call that removes it."""
        self._hooks.append(hook)

        def remove() -> None:
            if hook in self._hooks:
                self._hooks.remove(hook)

        return remove

    async def decide(self, request: AuthorizationRequest) -> TokenDecision:
        token, busy = await self._store.apply(self._lookup, request.id_token, request.starting)
        decision = self._from_store(token, busy)
        if not decision.accepted:
            return decision
        for hook in list(self._hooks):
            refusal = await hook(request)
            if refusal is not None:
                return TokenDecision(
                    refusal.status, decision.expires_at, decision.group_id, refusal.reason
                )
        return decision

    def _lookup(self, conn: Connection, token: str, starting: bool) -> tuple[IdToken | None, bool]:
        found = self._store.find_token(conn, token)
        busy = (
            starting
            and found is not None
            and bool(self._store.active_transactions_of_token(conn, token))
        )
        return found, busy

    def _from_store(self, token: IdToken | None, busy: bool) -> TokenDecision:
        if token is None:
            return TokenDecision("Unknown", reason="token not registered")
        if token.status != ACCEPTED:
            return TokenDecision(token.status, token.expires_at, token.group_id)
        if token.expires_at is not None and token.expires_at <= self._clock.now():
            return TokenDecision("Expired", token.expires_at, token.group_id)
        if busy:
            return TokenDecision(
                "ConcurrentTx",
                token.expires_at,
                token.group_id,
                "token already has a transaction in progress",
            )
        return TokenDecision(ACCEPTED, token.expires_at, token.group_id)

"""Transaction messages in the order they happened, delivered in that order even across outages.

A station keeps starting, metering and stopping transactions while its link is down; OCPP
requires those messages to reach the CSMS later, in order. Every transaction message therefore
passes through this queue, online or not.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)


class Offline(Exception):
    """The link to the CSMS is down (or went down while waiting for an answer)."""


class Refused(Exception):
    """The CSMS answered a message with a CALLERROR: retrying it would not help."""

    def __init__(self, action: str, code: str, description: str) -> None:
        super().__init__(f"{action}: {code} {description}")
        self.action = action
        self.code = code


@dataclass
class QueuedMessage:
    """A message and what to do with its answer.

    The payload is built when the message is sent, because an OCPP 1.6 StopTransaction names
    the transaction id that the CSMS returns for a StartTransaction queued before it.
    Building may return None: the message has become pointless (its transaction was refused).
    """

    action: str
    build: Callable[[], Any]
    on_result: Callable[[Any], None] | None = None


Sender = Callable[[Any], Awaitable[Any]]


class Outbox:
    def __init__(self) -> None:
        self._queue: deque[QueuedMessage] = deque()
        self._lock = asyncio.Lock()
        self.refused: list[Refused] = []

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, message: QueuedMessage) -> None:
        self._queue.append(message)

    def pending(self) -> list[str]:
        return [m.action for m in self._queue]

    async def flush(self, send: Sender) -> bool:
        """Send from the head until empty or offline; True when everything was delivered.

        A message leaves the queue only once answered, so an outage mid-call keeps it first.
        """
        async with self._lock:
            while self._queue:
                message = self._queue[0]
                payload = message.build()
                if payload is None:
                    self._queue.popleft()
                    continue
                try:
                    result = await send(payload)
                except Offline:
                    return False
                except Refused as refusal:
                    log.warning("csms refused a transaction message", error=str(refusal))
                    self.refused.append(refusal)
                    self._queue.popleft()
                    continue
                self._queue.popleft()
                if message.on_result is not None:
                    message.on_result(result)
            return True

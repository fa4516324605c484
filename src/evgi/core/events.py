"""In-process event bus: how layers talk upward without importing each other."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None] | None]

log = structlog.get_logger(__name__)


class EventBus:
    """Typed publish/subscribe; a failing subscriber is logged and never breaks the publisher."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self._lock = threading.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    def subscribe(self, event_type: type[E], handler: Callable[[E], Any]) -> Callable[[], None]:
        """Register `handler` for `event_type` and its subclasses; returns an unsubscribe call."""
        with self._lock:
            self._handlers[event_type].append(handler)

        def unsubscribe() -> None:
            with self._lock:
                if handler in self._handlers[event_type]:
                    self._handlers[event_type].remove(handler)

        return unsubscribe

    def _handlers_for(self, event: object) -> list[Handler]:
        with self._lock:
            return [h for t in type(event).__mro__ for h in self._handlers.get(t, ())]

    def publish(self, event: object) -> None:
        """Deliver now to sync handlers; schedule async ones on the running loop.

        Without a running loop (a script, a worker thread) an async handler is run to completion
        here: parking it on a loop that never runs would drop the event silently.
        """
        for handler in self._handlers_for(event):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    try:
                        loop = asyncio.get_running_loop()
                    except RuntimeError:
                        asyncio.run(_awaited(result))
                        continue
                    task = loop.create_task(_awaited(result))
                    self._pending.add(task)
                    task.add_done_callback(self._finished)
            except Exception:
                # structlog's first parameter is named `event`, hence `event_type` here.
                log.exception("event handler failed", event_type=type(event).__name__)

    async def publish_and_wait(self, event: object) -> None:
        """Deliver to every handler and wait for the async ones: for flows that need the outcome."""
        for handler in self._handlers_for(event):
            try:
                result = handler(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("event handler failed", event_type=type(event).__name__)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("async event handler failed", error=repr(task.exception()))


async def _awaited(result: Awaitable[None]) -> None:
    """Wrap any awaitable in a coroutine, which is what tasks and `asyncio.run` accept."""
    await result

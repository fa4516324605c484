"""The in-process event bus: layers talk upward through it, so one bad subscriber must not
break it."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from structlog.testing import capture_logs

from evgi.core import EventBus


@dataclass(frozen=True)
class TransactionEnded:
    station: str
    energy_wh: int


@dataclass(frozen=True)
class RemoteTransactionEnded(TransactionEnded):
    roaming_party: str


def test_sync_subscribers_get_events_in_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, TransactionEnded]] = []
    bus.subscribe(TransactionEnded, lambda e: seen.append(("first", e)))
    bus.subscribe(TransactionEnded, lambda e: seen.append(("second", e)))
    event = TransactionEnded("CS-1", 12_000)
    bus.publish(event)
    assert seen == [("first", event), ("second", event)]


def test_subscribers_of_a_base_class_get_subclass_events_only_downward() -> None:
    bus = EventBus()
    base: list[object] = []
    sub: list[object] = []
    bus.subscribe(TransactionEnded, base.append)
    bus.subscribe(RemoteTransactionEnded, sub.append)
    local, remote = TransactionEnded("CS-1", 1), RemoteTransactionEnded("CS-2", 2, "NL*TNM")
    bus.publish(local)
    bus.publish(remote)
    bus.publish("an unrelated event")
    assert base == [local, remote]
    assert sub == [remote]


def test_failing_handler_does_not_break_others_or_the_publisher() -> None:
    bus = EventBus()
    seen: list[TransactionEnded] = []

    def broken(event: TransactionEnded) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(TransactionEnded, broken)
    bus.subscribe(TransactionEnded, seen.append)
    event = TransactionEnded("CS-1", 5)
    with capture_logs() as logs:
        bus.publish(event)
    assert seen == [event]
    assert [entry["event_type"] for entry in logs] == ["TransactionEnded"]
    assert logs[0]["log_level"] == "error"


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    bus = EventBus()
    seen: list[TransactionEnded] = []
    unsubscribe = bus.subscribe(TransactionEnded, seen.append)
    bus.publish(TransactionEnded("CS-1", 1))
    unsubscribe()
    unsubscribe()
    bus.publish(TransactionEnded("CS-1", 2))
    assert [e.energy_wh for e in seen] == [1]


def test_unsubscribing_during_publish_is_safe() -> None:
    bus = EventBus()
    seen: list[str] = []
    unsubscribers: list[object] = []

    def once(event: TransactionEnded) -> None:
        seen.append("once")
        unsubscribers[0]()  # type: ignore[operator]

    unsubscribers.append(bus.subscribe(TransactionEnded, once))
    bus.subscribe(TransactionEnded, lambda e: seen.append("always"))
    bus.publish(TransactionEnded("CS-1", 1))
    bus.publish(TransactionEnded("CS-1", 2))
    assert seen == ["once", "always", "always"]


def test_async_subscribers_run_on_the_running_loop() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def settle(event: TransactionEnded) -> None:
        await asyncio.sleep(0)
        seen.append(f"async {event.energy_wh}")

    bus.subscribe(TransactionEnded, settle)
    bus.subscribe(TransactionEnded, lambda e: seen.append(f"sync {e.energy_wh}"))

    async def scenario() -> None:
        bus.publish(TransactionEnded("CS-1", 7))
        assert seen == ["sync 7"]  # async handlers are scheduled, not awaited, by publish
        for _ in range(5):
            await asyncio.sleep(0)
        assert seen == ["sync 7", "async 7"]

    asyncio.run(scenario())


def test_publish_and_wait_awaits_async_subscribers() -> None:
    bus = EventBus()
    seen: list[int] = []

    async def slow(event: TransactionEnded) -> None:
        await asyncio.sleep(0.01)
        seen.append(event.energy_wh)

    async def broken(event: TransactionEnded) -> None:
        raise RuntimeError("async subscriber bug")

    bus.subscribe(TransactionEnded, broken)
    bus.subscribe(TransactionEnded, slow)

    async def scenario() -> None:
        with capture_logs() as logs:
            await bus.publish_and_wait(TransactionEnded("CS-1", 3))
        assert seen == [3]
        assert [entry["event_type"] for entry in logs] == ["TransactionEnded"]

    asyncio.run(scenario())


def test_failing_async_subscriber_is_logged_and_others_still_run() -> None:
    bus = EventBus()
    seen: list[int] = []

    async def broken(event: TransactionEnded) -> None:
        raise RuntimeError("async subscriber bug")

    async def good(event: TransactionEnded) -> None:
        seen.append(event.energy_wh)

    bus.subscribe(TransactionEnded, broken)
    bus.subscribe(TransactionEnded, good)

    async def scenario() -> list[dict[str, object]]:
        with capture_logs() as logs:
            bus.publish(TransactionEnded("CS-1", 9))
            for _ in range(5):
                await asyncio.sleep(0)
        return logs

    logs = asyncio.run(scenario())
    assert seen == [9]
    assert any("RuntimeError" in str(entry.get("error")) for entry in logs)


def test_async_subscriber_without_a_running_loop_still_gets_the_event() -> None:
    bus = EventBus()
    seen: list[tuple[str, int]] = []

    async def settle(event: TransactionEnded) -> None:
        await asyncio.sleep(0)
        seen.append((threading.current_thread().name, event.energy_wh))

    bus.subscribe(TransactionEnded, settle)
    bus.publish(TransactionEnded("CS-1", 1))  # no loop in this thread
    worker = threading.Thread(
        target=bus.publish, args=(TransactionEnded("CS-2", 2),), name="meter-worker"
    )
    worker.start()
    worker.join()
    assert seen == [(threading.current_thread().name, 1), ("meter-worker", 2)]

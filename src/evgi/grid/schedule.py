"""Which DERControl events are in force: supersession, primacy and cancellation
(IEEE 2030.5 section 12.1.3 and the DER function set's rules).

Within one program a newer event supersedes an older one it overlaps. Across programs nothing is
superseded on the server; an event that a more important program's event overlaps (lower
primacy, or the same primacy and created later) is flagged `potentiallySuperseded`, and a device
follows the more important one while both run. Randomization widens the window an event may
occupy, so overlap is judged on the widest window it can take.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from evgi.grid.resources import (
    ACTIVE,
    CANCELLED,
    CANCELLED_RANDOMIZED,
    SCHEDULED,
    SUPERSEDED,
)


@dataclass(frozen=True)
class ScheduledEvent:
    mrid: str
    program: str
    primacy: int
    creation_time: datetime
    start: datetime
    duration_s: int
    randomize_start_s: int | None = None
    randomize_duration_s: int | None = None
    cancelled_at: datetime | None = None

    @property
    def earliest(self) -> datetime:
        return self.start + timedelta(seconds=min(0, self.randomize_start_s or 0))

    @property
    def latest(self) -> datetime:
        """The latest moment the event can still run, with randomization stretching it."""
        stretch = max(0, self.randomize_start_s or 0) + max(0, self.randomize_duration_s or 0)
        return self.start + timedelta(seconds=self.duration_s + stretch)

    def overlaps(self, other: ScheduledEvent) -> bool:
        return self.earliest < other.latest and other.earliest < self.latest

    def outranks(self, other: ScheduledEvent) -> bool:
        """Lower primacy wins; at equal primacy the newer event wins."""
        return (self.primacy, -self.creation_time.timestamp()) < (
            other.primacy,
            -other.creation_time.timestamp(),
        )


@dataclass(frozen=True)
class EventState:
    status: int
    since: datetime
    potentially_superseded: bool = False
    potentially_superseded_time: datetime | None = None


def event_states(events: Sequence[ScheduledEvent], now: datetime) -> dict[str, EventState]:
    """The EventStatus of every event at `now`."""
    live = [event for event in events if event.cancelled_at is None]
    states: dict[str, EventState] = {}
    for event in events:
        if event.cancelled_at is not None:
            randomized = bool(event.randomize_start_s or event.randomize_duration_s)
            states[event.mrid] = EventState(
                CANCELLED_RANDOMIZED if randomized else CANCELLED, event.cancelled_at
            )
            continue
        newer = [
            other.creation_time
            for other in live
            if other.program == event.program
            and other.mrid != event.mrid
            and other.creation_time > event.creation_time
            and other.overlaps(event)
        ]
        if newer:
            states[event.mrid] = EventState(SUPERSEDED, min(newer))
            continue
        rivals = [
            other.creation_time
            for other in live
            if other.program != event.program and other.overlaps(event) and other.outranks(event)
        ]
        # An event that has begun stays Active in its status: 2030.5 has no "completed".
        started = event.start <= now
        states[event.mrid] = EventState(
            ACTIVE if started else SCHEDULED,
            event.start if started else event.creation_time,
            bool(rivals),
            min(rivals) if rivals else None,
        )
    return states


def in_force(events: Iterable[ScheduledEvent], now: datetime) -> list[ScheduledEvent]:
    """The events running now, most important first: the first one a device obeys."""
    listed = list(events)
    states = event_states(listed, now)
    running = [
        event
        for event in listed
        if states[event.mrid].status == ACTIVE
        and now < event.start + timedelta(seconds=event.duration_s)
    ]
    return sorted(running, key=lambda e: (e.primacy, -e.creation_time.timestamp()))

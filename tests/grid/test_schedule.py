"""Event status rules: supersession within a program, primacy across programs, cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from evgi.grid import ScheduledEvent, event_states, in_force
from evgi.grid.resources import ACTIVE, CANCELLED, CANCELLED_RANDOMIZED, SCHEDULED, SUPERSEDED

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _event(
    mrid: str, program: str, primacy: int, created_min: int, start_min: int, **kw: object
) -> ScheduledEvent:
    return ScheduledEvent(
        mrid,
        program,
        primacy,
        T0 + timedelta(minutes=created_min),
        T0 + timedelta(minutes=start_min),
        int(kw.pop("duration_s", 3600)),  # type: ignore[call-overload]
        **kw,  # type: ignore[arg-type]
    )


def test_newer_overlapping_event_of_the_same_program_supersedes() -> None:
    old = _event("A", "p", 1, 0, 60)
    new = _event("B", "p", 1, 5, 90)
    apart = _event("C", "p", 1, 10, 200)
    states = event_states([old, new, apart], T0)
    assert states["A"].status == SUPERSEDED
    assert states["A"].since == new.creation_time
    assert states["B"].status == SCHEDULED and states["C"].status == SCHEDULED


def test_lower_primacy_outranks_other_programs_without_superseding() -> None:
    utility = _event("U", "utility", 1, 0, 0)
    aggregator = _event("G", "aggregator", 5, 10, 30)
    now = T0 + timedelta(minutes=40)
    states = event_states([utility, aggregator], now)
    assert states["G"].status == ACTIVE and states["G"].potentially_superseded
    assert states["G"].potentially_superseded_time == utility.creation_time
    assert not states["U"].potentially_superseded
    assert [e.mrid for e in in_force([aggregator, utility], now)] == ["U", "G"]


def test_randomization_widens_the_window_judged_for_overlap() -> None:
    first = _event("A", "p", 1, 0, 0, duration_s=600)
    second = _event("B", "p", 1, 1, 11)
    assert event_states([first, second], T0)["A"].status == ACTIVE
    stretched = _event("A", "p", 1, 0, 0, duration_s=600, randomize_duration_s=120)
    assert event_states([stretched, second], T0)["A"].status == SUPERSEDED


def test_cancelled_events_neither_run_nor_supersede() -> None:
    cancelled_at = T0 + timedelta(minutes=1)
    plain = _event("A", "p", 1, 5, 0, cancelled_at=cancelled_at)
    randomized = _event("B", "p", 1, 6, 0, randomize_start_s=30, cancelled_at=cancelled_at)
    older = _event("C", "p", 1, 0, 0)
    states = event_states([plain, randomized, older], T0 + timedelta(minutes=2))
    assert states["A"].status == CANCELLED and states["A"].since == cancelled_at
    assert states["B"].status == CANCELLED_RANDOMIZED
    assert states["C"].status == ACTIVE
    assert [e.mrid for e in in_force([plain, randomized, older], T0 + timedelta(minutes=2))] == [
        "C"
    ]
    assert in_force([older], T0 + timedelta(hours=2)) == []

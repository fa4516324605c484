"""The composite schedule of an EVSE as the CSMS expects it, from the profiles its station accepted.

OCPP lets a station answer GetCompositeSchedule itself; this is the CSMS's own computation from
what it has set, by the rules of OCPP 1.6 (3.13 Smart Charging) and 2.0.1 (K, stacking and
combining charging profile purposes):

- within one purpose, the profile in force at a moment is the one with the highest stack level
  among those valid then (validFrom <= t < validTo) whose schedule covers that moment; a
  schedule whose duration has run out, or that has not started, lets the next level show;
  at equal stack level a profile on the EVSE itself wins over one on EVSE 0;
- the transaction's TxProfile, when one is in force, replaces the TxDefaultProfile (a
  TxProfile belongs to the EVSE's active transaction, or to any when it names none);
- the station maximum (1.6 ChargePointMaxProfile, 2.x ChargingStationMaxProfile) and 2.x's
  ChargingStationExternalConstraints cap the result: the lowest limit wins;
- schedules repeat from their startSchedule every day or week (Recurring), start at the
  transaction start (Relative; with no transaction, at the start of the requested schedule,
  as if one began then), or at their startSchedule (Absolute; without one, when the station
  accepted the profile);
- limits in another unit than the one asked for are converted with the period's numberPhases
  (3 when absent, OCPP's default) and a nominal voltage per phase; adjacent equal periods are
  merged.

For EVSE 0 only the station-wide caps count. A 2.x profile may carry up to three alternative
schedules for ISO 15118 negotiation; the CSMS cannot know which one the EV picked and takes
the first. A moment no profile limits has the limit None.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from evgi.core.errors import ValidationError
from evgi.csms.metering import parse_time
from evgi.storage.charging import ChargingProfileRecord, ChargingTransaction

Unit = Literal["A", "W"]
UNITS: tuple[Unit, ...] = ("A", "W")
DEFAULT_PHASES = 3
MAX_PURPOSES = frozenset({"ChargePointMaxProfile", "ChargingStationMaxProfile"})
EXTERNAL_PURPOSE = "ChargingStationExternalConstraints"
TX_DEFAULT_PURPOSE = "TxDefaultProfile"
TX_PURPOSE = "TxProfile"
_RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(weeks=1)}


@dataclass(frozen=True)
class SchedulePeriod:
    start_period: int  # seconds from the schedule start
    limit: float | None  # in the schedule's unit; None: no profile limits this period
    number_phases: int | None = None


@dataclass(frozen=True)
class CompositeSchedule:
    evse_id: int
    schedule_start: datetime
    duration: int  # seconds
    charging_rate_unit: Unit
    periods: tuple[SchedulePeriod, ...]
    # The EV's lowest useful rate, from the transaction's (default) schedule at the start.
    min_charging_rate: float | None = None


@dataclass(frozen=True)
class _Limit:
    value: float
    unit: str
    phases: int | None

    def converted(self, unit: Unit, voltage: float) -> float:
        if self.unit == unit:
            return self.value
        watts_per_amp = voltage * (self.phases or DEFAULT_PHASES)
        return self.value * watts_per_amp if unit == "W" else self.value / watts_per_amp


@dataclass(frozen=True)
class _Profile:
    """A stored profile read into what the computation needs, in either version's shape."""

    purpose: str
    stack_level: int
    on_evse: bool  # set on the EVSE itself rather than on EVSE 0
    kind: str
    recurrence: timedelta | None
    valid_from: datetime | None
    valid_to: datetime | None
    start_schedule: datetime  # the profile's acceptance when it names none
    duration: timedelta | None
    unit: str
    periods: tuple[tuple[int, float | None, int | None], ...]  # (startPeriod, limit, phases)
    min_charging_rate: float | None

    @classmethod
    def read(cls, record: ChargingProfileRecord) -> _Profile:
        body = record.body
        schedule: dict[str, Any] = body["chargingSchedule"]
        if isinstance(schedule, list):  # 2.x: alternatives for ISO 15118; the first counts
            schedule = schedule[0]
        periods = tuple(
            sorted(
                (
                    (
                        int(p["startPeriod"]),
                        None if p.get("limit") is None else float(p["limit"]),
                        p.get("numberPhases"),
                    )
                    for p in schedule["chargingSchedulePeriod"]
                ),
                key=lambda period: period[0],
            )
        )
        start = schedule.get("startSchedule")
        duration = schedule.get("duration")
        return cls(
            purpose=record.purpose,
            stack_level=record.stack_level,
            on_evse=record.evse_id != 0,
            kind=body["chargingProfileKind"],
            recurrence=_RECURRENCE.get(body.get("recurrencyKind", "")),
            valid_from=_time(body.get("validFrom")),
            valid_to=_time(body.get("validTo")),
            start_schedule=parse_time(start) if start else record.installed_at,
            duration=None if duration is None else timedelta(seconds=int(duration)),
            unit=schedule["chargingRateUnit"],
            periods=periods,
            min_charging_rate=schedule.get("minChargingRate"),
        )

    def schedule_start(self, at: datetime, anchor: datetime) -> datetime:
        """When the schedule run covering `at` starts (a Recurring one: the latest run's)."""
        if self.kind == "Relative":
            return anchor
        if self.kind == "Recurring" and self.recurrence is not None:
            return self.start_schedule + self.recurrence * (
                (at - self.start_schedule) // self.recurrence
            )
        return self.start_schedule

    def limit_at(self, at: datetime, anchor: datetime) -> _Limit | None:
        """The profile's limit at `at`, None when it is not in force then."""
        if (self.valid_from is not None and at < self.valid_from) or (
            self.valid_to is not None and at >= self.valid_to
        ):
            return None
        start = self.schedule_start(at, anchor)
        if at < start:
            return None
        offset = at - start
        if self.duration is not None and offset >= self.duration:
            return None
        index = bisect.bisect_right(self.periods, offset.total_seconds(), key=lambda p: p[0])
        if index == 0:
            return None
        _, limit, phases = self.periods[index - 1]
        return None if limit is None else _Limit(limit, self.unit, phases)

    def changes(self, begin: datetime, end: datetime, anchor: datetime) -> Iterator[datetime]:
        """Every moment in (begin, end) at which this profile's limit may change."""
        yield from (t for t in (self.valid_from, self.valid_to) if t is not None)
        runs = [self.schedule_start(begin, anchor)]
        if self.kind == "Recurring" and self.recurrence is not None:
            while runs[-1] + self.recurrence < end:
                runs.append(runs[-1] + self.recurrence)
        for run in runs:
            yield run
            yield from (run + timedelta(seconds=p[0]) for p in self.periods)
            if self.duration is not None:
                yield run + self.duration


def composite_schedule(
    records: Sequence[ChargingProfileRecord],
    evse_id: int,
    start: datetime,
    duration: int,
    unit: Unit | None = None,
    transaction: ChargingTransaction | None = None,
    voltage: float = 230.0,
) -> CompositeSchedule:
    """The composite schedule of `evse_id` over `duration` seconds from `start`.

    `records` are the station's stored profiles (others' EVSEs are ignored), `transaction`
    the EVSE's active transaction if it has one. Without `unit`, A when every profile that
    counts is in A, else W.
    """
    if duration <= 0:
        raise ValidationError("duration must be at least one second")
    if unit is not None and unit not in UNITS:
        raise ValidationError(f"charging rate unit is one of {', '.join(UNITS)}")
    start = start.astimezone(UTC)
    end = start + timedelta(seconds=duration)
    profiles = [_Profile.read(r) for r in records if _counts(r, evse_id, transaction)]
    if unit is None:
        unit = "A" if profiles and all(p.unit == "A" for p in profiles) else "W"
    anchor = transaction.started_at if transaction is not None else start
    moments = {start}
    for profile in profiles:
        moments.update(t for t in profile.changes(start, end, anchor) if start < t < end)
    groups = {
        "max": [p for p in profiles if p.purpose in MAX_PURPOSES],
        "external": [p for p in profiles if p.purpose == EXTERNAL_PURPOSE],
        "tx": [p for p in profiles if p.purpose == TX_PURPOSE],
        "default": [p for p in profiles if p.purpose == TX_DEFAULT_PURPOSE],
    }
    periods: list[SchedulePeriod] = []
    for moment in sorted(moments):
        limit, phases = _combined(groups, moment, anchor, unit, voltage)
        if periods and (periods[-1].limit, periods[-1].number_phases) == (limit, phases):
            continue
        periods.append(SchedulePeriod(int((moment - start).total_seconds()), limit, phases))
    charging = _in_force(groups["tx"], start, anchor) or _in_force(groups["default"], start, anchor)
    minimum = None
    if charging is not None and charging.min_charging_rate is not None:
        phases = charging.periods[0][2]
        minimum = _rounded(
            _Limit(float(charging.min_charging_rate), charging.unit, phases).converted(
                unit, voltage
            )
        )
    return CompositeSchedule(evse_id, start, duration, unit, tuple(periods), minimum)


def _counts(
    record: ChargingProfileRecord, evse_id: int, transaction: ChargingTransaction | None
) -> bool:
    """Whether a stored profile bears on this EVSE's composite schedule at all."""
    if record.evse_id not in (0, evse_id):
        return False
    if record.purpose in MAX_PURPOSES or record.purpose == EXTERNAL_PURPOSE:
        return True
    if evse_id == 0:
        return False
    if record.purpose == TX_PURPOSE:
        return transaction is not None and record.transaction_id in (
            None,
            transaction.transaction_id,
        )
    return record.purpose == TX_DEFAULT_PURPOSE


def _in_force(profiles: Sequence[_Profile], at: datetime, anchor: datetime) -> _Profile | None:
    """The profile of one purpose that prevails at `at`."""
    best: _Profile | None = None
    for profile in profiles:
        if profile.limit_at(at, anchor) is None:
            continue
        if best is None or (profile.stack_level, profile.on_evse) > (
            best.stack_level,
            best.on_evse,
        ):
            best = profile
    return best


def _combined(
    groups: dict[str, list[_Profile]], at: datetime, anchor: datetime, unit: Unit, voltage: float
) -> tuple[float | None, int | None]:
    """The lowest limit of the station caps and the transaction's (default) profile, with the
    phases of the period that sets it (fewer phases at equal limits)."""
    charging = _in_force(groups["tx"], at, anchor) or _in_force(groups["default"], at, anchor)
    candidates = [
        profile
        for profile in (
            charging,
            _in_force(groups["max"], at, anchor),
            _in_force(groups["external"], at, anchor),
        )
        if profile is not None
    ]
    best: tuple[float, int, int | None] | None = None
    for profile in candidates:
        limit = profile.limit_at(at, anchor)
        assert limit is not None
        value = _rounded(limit.converted(unit, voltage))
        phases = limit.phases or DEFAULT_PHASES
        if best is None or (value, phases) < best[:2]:
            best = (value, phases, limit.phases)
    if best is None:
        return None, None
    return best[0], best[2]


def _rounded(value: float) -> float:
    """OCPP limits have one decimal (2.x schemas: multipleOf 0.1)."""
    return round(value, 1)


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text)

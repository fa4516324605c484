"""What a tariff is applied to: a session's times, its meter readings and when it charged.

Between readings the energy register is taken to rise linearly, and power and current to keep
the last reported value; when a reading has no power, the average power until the next reading
stands in for it. Time that is not charging is parking (OCPI PARKING_TIME).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from evgi.core.errors import ValidationError


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware (UTC)")


def location_zone(name: str) -> ZoneInfo:
    """The IANA time zone of the Location, in which OCPI evaluates times of day and dates."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class MeterSample:
    """One meter reading: the energy import register and, when sent, power and current."""

    at: datetime
    energy_wh: int  # register value; only differences matter
    power_w: int | None = None
    current_a: Decimal | None = None  # sum over phases, as OCPI restrictions count it

    def __post_init__(self) -> None:
        _aware("meter sample time", self.at)


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _aware("interval start", self.start)
        _aware("interval end", self.end)
        if self.end < self.start:
            raise ValidationError(f"interval ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class ChargingSession:
    """A session from plug-in to plug-out, optionally preceded by the reservation it used."""

    start: datetime
    end: datetime
    time_zone: str  # IANA name, the `time_zone` of the OCPI Location
    samples: tuple[MeterSample, ...] = ()
    charging: tuple[Interval, ...] = ()  # when energy flowed; the rest of the session is parking
    reservation_start: datetime | None = None  # the reservation ran until `start`

    def __post_init__(self) -> None:
        Interval(self.start, self.end)  # refuses naive times and an end before the start
        location_zone(self.time_zone)
        for earlier, later in zip(self.samples, self.samples[1:], strict=False):
            if later.at <= earlier.at:
                raise ValidationError("meter samples must be in strictly increasing time order")
            if later.energy_wh < earlier.energy_wh:
                raise ValidationError(
                    f"energy register fell from {earlier.energy_wh} to {later.energy_wh} Wh"
                    f" at {later.at}"
                )
        previous_end = self.start
        for interval in self.charging:
            if interval.start < previous_end or interval.end > self.end:
                raise ValidationError(
                    "charging intervals must be ordered, disjoint and within the session"
                )
            previous_end = interval.end
        if self.reservation_start is not None:
            Interval(self.reservation_start, self.start)

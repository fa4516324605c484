"""Whether a Tariff Element applies at one moment of a session (OCPI 2.2.1 TariffRestrictions).

Restrictions hold piecewise: a cost calculation cuts the session wherever one could change and
asks here once per piece, at a moment strictly inside it, so inclusive and exclusive limits only
matter where a value stays exactly on a limit (energy while parking, a steady current).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from fractions import Fraction
from functools import cache

from evgi.settlement.tariff import (
    DayOfWeek,
    ReservationRestrictionType,
    TariffElement,
    TariffRestrictions,
)

_US = 10**6
_DAY = 86_400 * _US
_WEEKDAYS = tuple(DayOfWeek)  # Monday first, as datetime.weekday() counts


@dataclass(frozen=True)
class Moment:
    """What restrictions look at: local wall-clock time and the session's state so far."""

    local: datetime  # at the location, in its time zone
    energy_wh: Fraction  # delivered since the session started
    power_w: Fraction | None  # None: the meter did not say
    current_a: Fraction | None
    duration_s: Fraction  # since the session (or the reservation) started
    reservation: ReservationRestrictionType | None  # None outside a reservation


@cache
def time_of_day(text: str) -> time:
    return time.fromisoformat(text)


@cache
def _day(text: str) -> date:
    return date.fromisoformat(text)


def boundary_times(elements: tuple[TariffElement, ...]) -> set[time]:
    """Local times of day at which some element may switch, midnight included (dates, weekdays)."""
    times = {time(0, 0)}
    for element in elements:
        if element.restrictions is not None:
            for text in (element.restrictions.start_time, element.restrictions.end_time):
                if text is not None:
                    times.add(time_of_day(text))
    return times


def _microseconds(moment: time) -> int:
    return ((moment.hour * 60 + moment.minute) * 60 + moment.second) * _US + moment.microsecond


def _in_time_window(start: str | None, end: str | None, local: datetime) -> bool:
    """[start, end) in local time; end before start wraps past midnight, end 00:00 is 24:00."""
    now = _microseconds(local.time())
    low = _microseconds(time_of_day(start)) if start is not None else 0
    high = (_microseconds(time_of_day(end)) if end is not None else 0) or _DAY
    if low < high:
        return low <= now < high
    return now >= low or now < high  # past midnight; equal ends mean the whole day


def _within(
    value: Fraction | None, low: Decimal | int | None, high: Decimal | int | None, scale: int
) -> bool:
    """low <= value < high with OCPI's units scaled (kWh to Wh, kW to W); unknown never matches."""
    if low is None and high is None:
        return True
    if value is None:
        return False
    if low is not None and value < Fraction(low) * scale:
        return False
    return high is None or value < Fraction(high) * scale


def _reservation_matches(
    wanted: ReservationRestrictionType | None, actual: ReservationRestrictionType | None
) -> bool:
    """Plain elements price the session, RESERVATION ones any reservation, EXPIRES expired ones."""
    if wanted is None or actual is None:
        return wanted is actual
    return wanted is ReservationRestrictionType.RESERVATION or actual is wanted


def unrestricted_match(reservation: ReservationRestrictionType | None) -> bool:
    """Whether an element without restrictions applies: outside a reservation only. Needs no
    moment, which spares pricing one per piece when no element is restricted."""
    return reservation is None


def restrictions_match(restrictions: TariffRestrictions | None, moment: Moment) -> bool:
    if restrictions is None:
        return unrestricted_match(moment.reservation)
    day = moment.local.date()
    return (
        _reservation_matches(restrictions.reservation, moment.reservation)
        and (restrictions.start_date is None or day >= _day(restrictions.start_date))
        and (restrictions.end_date is None or day < _day(restrictions.end_date))
        and (not restrictions.day_of_week or _WEEKDAYS[day.weekday()] in restrictions.day_of_week)
        and _in_time_window(restrictions.start_time, restrictions.end_time, moment.local)
        and _within(moment.energy_wh, restrictions.min_kwh, restrictions.max_kwh, 1000)
        and _within(moment.power_w, restrictions.min_power, restrictions.max_power, 1000)
        and _within(moment.current_a, restrictions.min_current, restrictions.max_current, 1)
        and _within(moment.duration_s, restrictions.min_duration, restrictions.max_duration, 1)
    )

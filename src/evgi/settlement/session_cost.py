"""Cost of a charging session under an OCPI 2.2.1 Tariff, broken down for a CDR and an invoice.

The rules, from OCPI 2.2.1 mod_tariffs and mod_cdrs (`step_size`):

- At each moment and for each dimension, the first element that has a price component of that
  dimension and whose restrictions match applies; if none matches, that dimension is free then.
- FLAT is billed once per session (and once per reservation), from the first moment a FLAT
  component applies.
- `step_size` applies once per session to the total of a dimension (ENERGY in Wh, TIME and
  PARKING_TIME in seconds), with the step of the last period that billed it; the rounded-up
  remainder is billed at that period's price. Charging time followed by billed parking time is
  not rounded, only the parking time is (mod_cdrs step_size; the Complex Tariff example).
- A reservation before the session is priced by its own elements (`reservation` restriction),
  with its own FLAT and its own TIME rounding.
- `min_price` and `max_price` bound the totals, excl. and incl. VAT separately.
- A component without `vat` carries no VAT: its amount incl. VAT equals the amount excl. VAT.

Arithmetic is exact (rational numbers) to the end. Each Money is then rounded once, half-up
(ties away from zero), to the currency's minor unit; the totals are rounded from the exact sum,
not summed from rounded lines, so lines may differ from a total by rounding: the total is what
is owed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from evgi.core.errors import ValidationError
from evgi.core.units import MINOR_UNITS, Money
from evgi.settlement.charging_session import (
    ChargingSession,
    Interval,
    MeterSample,
    location_zone,
)
from evgi.settlement.tariff import (
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffRestrictions,
)
from evgi.settlement.tariff_restrictions import (
    Moment,
    boundary_times,
    restrictions_match,
    unrestricted_match,
)

ENERGY = TariffDimensionType.ENERGY
FLAT = TariffDimensionType.FLAT
TIME = TariffDimensionType.TIME
PARKING_TIME = TariffDimensionType.PARKING_TIME

_METERED = (ENERGY, TIME, PARKING_TIME)
_REPORT_ORDER = (FLAT, ENERGY, TIME, PARKING_TIME)
# Volume units (Wh, s) per priced unit (kWh, hour); FLAT is priced per session.
_PER_PRICED_UNIT = {ENERGY: 1000, TIME: 3600, PARKING_TIME: 3600, FLAT: 1}
_US = 10**6  # the clock's resolution: datetimes carry microseconds
_ONE_US = timedelta(microseconds=1)
_ZERO = Fraction(0)


class PriceLimit(StrEnum):
    MIN_PRICE = "min_price"
    MAX_PRICE = "max_price"


@dataclass(frozen=True)
class CostLine:
    """One price component over consecutive time: an invoice row, a CDR charging period."""

    dimension: TariffDimensionType
    reservation: bool  # part of the reservation before the session
    element_index: int  # position in Tariff.elements
    start: datetime
    volume: Decimal  # Wh, seconds, or 1 for FLAT; after step_size; to 0.001
    price: Decimal  # excl. VAT, per kWh, per hour, or per session
    vat: Decimal | None
    amount_excl_vat: Money
    amount_incl_vat: Money


@dataclass(frozen=True)
class DimensionCost:
    """A dimension's total, as a CDR reports it (total_energy, total_energy_cost, ...)."""

    dimension: TariffDimensionType
    reservation: bool
    volume: Decimal
    amount_excl_vat: Money
    amount_incl_vat: Money


@dataclass(frozen=True)
class CostBreakdown:
    tariff_id: str
    currency: str
    lines: tuple[CostLine, ...]
    dimensions: tuple[DimensionCost, ...]
    total_excl_vat: Money
    total_incl_vat: Money
    price_limit: PriceLimit | None  # set when min_price or max_price changed a total

    def dimension(
        self, dimension: TariffDimensionType, reservation: bool = False
    ) -> DimensionCost | None:
        for cost in self.dimensions:
            if cost.dimension is dimension and cost.reservation is reservation:
                return cost
        return None


@dataclass
class _Use:
    """A price component billing one dimension; grows while the same element keeps applying."""

    dimension: TariffDimensionType
    element_index: int
    component: PriceComponent
    start: Fraction
    end: Fraction
    volume: Fraction


@dataclass(frozen=True)
class _Reading:
    at: Fraction
    energy_wh: Fraction
    power_w: int | None
    current_a: Decimal | None


class _Timeline:
    """One phase (reservation or session) on an exact clock: Fraction seconds since its start."""

    def __init__(
        self,
        start: datetime,
        end: datetime,
        zone: ZoneInfo,
        reservation: ReservationRestrictionType | None,
        samples: Sequence[MeterSample] = (),
        charging: Sequence[Interval] = (),
    ) -> None:
        self.origin = start.astimezone(UTC)
        self.zone = zone
        self.reservation = reservation
        self.length = self.offset(end)
        self.readings = [
            _Reading(self.offset(s.at), Fraction(s.energy_wh), s.power_w, s.current_a)
            for s in samples
        ]
        self._times = [r.at for r in self.readings]
        self.charging = [(self.offset(i.start), self.offset(i.end)) for i in charging]
        self._base = self._register(_ZERO)
        self._energy: dict[Fraction, Fraction] = {}

    def offset(self, at: datetime) -> Fraction:
        return Fraction((at - self.origin) // _ONE_US, _US)

    def instant(self, offset: Fraction) -> datetime:
        # floor(offset * _US) in integers
        return self.origin + timedelta(microseconds=offset.numerator * _US // offset.denominator)

    def _register(self, t: Fraction) -> Fraction:
        """Energy register at t: linear between readings, held outside them."""
        if not self.readings:
            return _ZERO
        i = bisect_right(self._times, t)
        if i == 0:
            return self.readings[0].energy_wh
        if i == len(self.readings):
            return self.readings[-1].energy_wh
        a, b = self.readings[i - 1], self.readings[i]
        if a.at == t:
            return a.energy_wh  # most cuts are readings
        return a.energy_wh + (b.energy_wh - a.energy_wh) * (t - a.at) / (b.at - a.at)

    def energy(self, t: Fraction) -> Fraction:
        """Delivered since the start; kept per instant, as each cut bounds two pieces."""
        known = self._energy.get(t)
        if known is None:
            known = self._energy[t] = self._register(t) - self._base
        return known

    def _power(self, t: Fraction) -> Fraction | None:
        i = bisect_right(self._times, t) - 1
        if i < 0:
            return None
        reading = self.readings[i]
        if reading.power_w is not None:
            return Fraction(reading.power_w)
        if i + 1 == len(self.readings):
            return None
        following = self.readings[i + 1]
        return (following.energy_wh - reading.energy_wh) * 3600 / (following.at - reading.at)

    def _current(self, t: Fraction) -> Fraction | None:
        i = bisect_right(self._times, t) - 1
        current = self.readings[i].current_a if i >= 0 else None
        return None if current is None else Fraction(current)

    def moment(self, t: Fraction) -> Moment:
        return Moment(
            local=self.instant(t).astimezone(self.zone),
            energy_wh=self.energy(t),
            power_w=self._power(t),
            current_a=self._current(t),
            duration_s=t,
            reservation=self.reservation,
        )

    def volumes(self, a: Fraction, b: Fraction) -> dict[TariffDimensionType, Fraction]:
        """What [a, b) consumed: reserved time is TIME; otherwise charging time or parking time."""
        duration = b - a
        if self.reservation is not None:
            return {ENERGY: _ZERO, TIME: duration, PARKING_TIME: _ZERO}
        mid = (a + b) / 2
        charging = any(start <= mid < end for start, end in self.charging)
        return {
            ENERGY: self.energy(b) - self.energy(a),
            TIME: duration if charging else _ZERO,
            PARKING_TIME: _ZERO if charging else duration,
        }

    def cuts(self, tariff: Tariff) -> list[Fraction]:
        """Every instant where a restriction's outcome or a consumption rate can change."""
        points = {Fraction(0), self.length, *self._times}
        for start, end in self.charging:
            points.update((start, end))
        for element in tariff.elements:
            restrictions = element.restrictions
            if restrictions is not None:
                points.update(
                    Fraction(d)
                    for d in (restrictions.min_duration, restrictions.max_duration)
                    if d is not None
                )
                for kwh in (restrictions.min_kwh, restrictions.max_kwh):
                    if kwh is not None:
                        points.update(self._crossings(Fraction(kwh) * 1000))
        if any(element.restrictions is not None for element in tariff.elements):
            # local times of day and UTC offset changes only move restrictions' outcomes
            points.update(self._local_cuts(tariff))
            points.update(self._offset_changes())
        return sorted(p for p in points if 0 <= p <= self.length)

    def _crossings(self, energy_wh: Fraction) -> Iterable[Fraction]:
        target = self._base + energy_wh
        for a, b in pairwise(self.readings):
            if a.energy_wh < target < b.energy_wh:
                yield a.at + (target - a.energy_wh) * (b.at - a.at) / (b.energy_wh - a.energy_wh)

    def _local_cuts(self, tariff: Tariff) -> Iterable[Fraction]:
        """Local times of day as instants, both readings of an ambiguous or skipped local time."""
        first = self.instant(Fraction(0)).astimezone(self.zone).date() - timedelta(days=1)
        last = self.instant(self.length).astimezone(self.zone).date() + timedelta(days=1)
        times = boundary_times(tariff.elements)
        for day in range((last - first).days + 1):
            for moment in times:
                local = datetime.combine(first + timedelta(days=day), moment, tzinfo=self.zone)
                for fold in (0, 1):
                    yield self.offset(local.replace(fold=fold))

    def _utcoffset(self, microseconds: int) -> timedelta | None:
        at = self.origin + timedelta(microseconds=microseconds)
        return at.astimezone(self.zone).utcoffset()

    def _offset_changes(self) -> Iterable[Fraction]:
        """Instants where the zone's UTC offset changes (DST), found hour by hour, then bisected."""
        end = math.ceil(self.length * _US)
        step = 3600 * _US
        for low in range(0, end, step):
            high = min(low + step, end)
            before = self._utcoffset(low)
            if before == self._utcoffset(high):
                continue
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if self._utcoffset(mid) == before else (low, mid)
            yield Fraction(high, _US)


_Option = tuple[int, TariffRestrictions | None, PriceComponent]  # element index, its terms
_Candidates = dict[TariffDimensionType, list[_Option]]


def _candidates(tariff: Tariff) -> _Candidates:
    """Per dimension, in tariff order, each element's first price component of that dimension."""
    found: _Candidates = {dimension: [] for dimension in TariffDimensionType}
    for index, element in enumerate(tariff.elements):
        for dimension in TariffDimensionType:
            component = next((c for c in element.price_components if c.type is dimension), None)
            if component is not None:
                found[dimension].append((index, element.restrictions, component))
    return found


def _applicable(
    options: list[_Option], reservation: ReservationRestrictionType | None, moment: Moment | None
) -> tuple[int, PriceComponent] | None:
    """The first option that applies; `moment` is None only when no option is restricted."""
    for index, restrictions, component in options:
        if restrictions is None:
            applies = unrestricted_match(reservation)
        else:
            assert moment is not None
            applies = restrictions_match(restrictions, moment)
        if applies:
            return index, component
    return None


def _bill(tariff: Tariff, timeline: _Timeline) -> list[_Use]:
    candidates = _candidates(tariff)
    uses: list[_Use] = []
    latest: dict[TariffDimensionType, _Use] = {}
    reservation = timeline.reservation
    # Without restrictions no element needs to know the moment, the costly part of a piece.
    restricted = any(element.restrictions is not None for element in tariff.elements)
    for a, b in pairwise(timeline.cuts(tariff)):
        moment = timeline.moment((a + b) / 2) if restricted else None
        if FLAT not in latest:
            flat = _applicable(candidates[FLAT], reservation, moment)
            if flat is not None:
                latest[FLAT] = _Use(FLAT, flat[0], flat[1], a, b, Fraction(1))
                uses.append(latest[FLAT])
        for dimension, volume in timeline.volumes(a, b).items():
            found = _applicable(candidates[dimension], reservation, moment) if volume else None
            if found is None:
                continue
            use = latest.get(dimension)
            if use is not None and use.element_index == found[0]:
                use.volume += volume
                use.end = b
            else:
                latest[dimension] = _Use(dimension, found[0], found[1], a, b, volume)
                uses.append(latest[dimension])
    _apply_step_sizes(uses, latest)
    return uses


def _apply_step_sizes(uses: list[_Use], latest: dict[TariffDimensionType, _Use]) -> None:
    """Round each dimension's total up to the last period's step; that period bills the rest."""
    parking = latest.get(PARKING_TIME)
    for dimension in _METERED:
        last = latest.get(dimension)
        if last is None or last.component.step_size == 0:
            continue
        if dimension is TIME and parking is not None and parking.end > last.end:
            continue  # charging time followed by parking time: only the parking is rounded
        step = last.component.step_size
        total = sum((u.volume for u in uses if u.dimension is dimension), Fraction(0))
        last.volume += math.ceil(total / step) * step - total


@lru_cache(maxsize=1024)
def _exact(value: Decimal) -> Fraction:
    """A tariff's decimal as a fraction, converted once per distinct value (prices and VAT
    rates are few)."""
    return Fraction(value)


def _amounts(use: _Use) -> tuple[Fraction, Fraction]:
    excl = use.volume * _exact(use.component.price) / _PER_PRICED_UNIT[use.dimension]
    vat = use.component.vat
    return excl, excl if vat is None else excl * (100 + _exact(vat)) / 100


def _money(currency: str, amount: Fraction) -> Money:
    """Half-up (ties away from zero) to the currency's minor unit: the one rounding step."""
    n, d = abs(amount.numerator) * 10 ** MINOR_UNITS[currency], amount.denominator
    whole = (2 * n + d) // (2 * d)  # floor(|amount| * 10^minor + 1/2), in integers
    return Money(currency, whole if amount.numerator >= 0 else -whole)


def _volume(value: Fraction) -> Decimal:
    # floor(value * 1000 + 1/2) in integers: Python's // floors, and denominators are positive
    thousandths = (2000 * value.numerator + value.denominator) // (2 * value.denominator)
    return Decimal(thousandths).scaleb(-3)


def _limit(
    tariff: Tariff, excl: Fraction, incl: Fraction
) -> tuple[Fraction, Fraction, PriceLimit | None]:
    """Hold each total, excl. and incl. VAT separately, within min_price and max_price."""
    low, high = tariff.min_price, tariff.max_price
    limit = None
    bounded = []
    for value, lower, upper in (
        (excl, low.excl_vat if low else None, high.excl_vat if high else None),
        (incl, low.incl_vat if low else None, high.incl_vat if high else None),
    ):
        if lower is not None and value < Fraction(lower):
            value, limit = Fraction(lower), PriceLimit.MIN_PRICE
        if upper is not None and value > Fraction(upper):
            value, limit = Fraction(upper), PriceLimit.MAX_PRICE
        bounded.append(value)
    return bounded[0], bounded[1], limit


def _breakdown(tariff: Tariff, phases: Sequence[tuple[_Timeline, list[_Use]]]) -> CostBreakdown:
    currency = tariff.currency
    if currency not in MINOR_UNITS:
        raise ValidationError(f"tariff {tariff.id} is in {currency}, which evgi does not settle")
    lines: list[CostLine] = []
    sums: dict[tuple[bool, TariffDimensionType], list[Fraction]] = {}
    exact_excl = exact_incl = Fraction(0)
    for timeline, uses in phases:
        reserved = timeline.reservation is not None
        for use in uses:
            excl, incl = _amounts(use)
            exact_excl += excl
            exact_incl += incl
            totals = sums.setdefault((reserved, use.dimension), [Fraction(0)] * 3)
            for i, value in enumerate((use.volume, excl, incl)):
                totals[i] += value
            lines.append(
                CostLine(
                    dimension=use.dimension,
                    reservation=reserved,
                    element_index=use.element_index,
                    start=timeline.instant(use.start),
                    volume=_volume(use.volume),
                    price=use.component.price,
                    vat=use.component.vat,
                    amount_excl_vat=_money(currency, excl),
                    amount_incl_vat=_money(currency, incl),
                )
            )
    dimensions = tuple(
        DimensionCost(
            dimension,
            reserved,
            _volume(sums[reserved, dimension][0]),
            _money(currency, sums[reserved, dimension][1]),
            _money(currency, sums[reserved, dimension][2]),
        )
        for reserved in (True, False)
        for dimension in _REPORT_ORDER
        if (reserved, dimension) in sums
    )
    total_excl, total_incl, limit = _limit(tariff, exact_excl, exact_incl)
    return CostBreakdown(
        tariff_id=tariff.id,
        currency=currency,
        lines=tuple(lines),
        dimensions=dimensions,
        total_excl_vat=_money(currency, total_excl),
        total_incl_vat=_money(currency, total_incl),
        price_limit=limit,
    )


def _check_valid(tariff: Tariff, at: datetime) -> None:
    """The tariff in force when the driver accepted it is the one that prices the session."""
    if (tariff.start_date_time is not None and at < tariff.start_date_time) or (
        tariff.end_date_time is not None and at > tariff.end_date_time
    ):
        raise ValidationError(f"tariff {tariff.id} is not valid at {at.isoformat()}")


def price_session(tariff: Tariff, session: ChargingSession) -> CostBreakdown:
    """What the session costs under the tariff, including a reservation that led to it."""
    zone = location_zone(session.time_zone)
    _check_valid(tariff, session.reservation_start or session.start)
    phases = []
    if session.reservation_start is not None:
        reservation = _Timeline(
            session.reservation_start, session.start, zone, ReservationRestrictionType.RESERVATION
        )
        phases.append((reservation, _bill(tariff, reservation)))
    timeline = _Timeline(session.start, session.end, zone, None, session.samples, session.charging)
    phases.append((timeline, _bill(tariff, timeline)))
    return _breakdown(tariff, phases)


def price_expired_reservation(
    tariff: Tariff, start: datetime, expiry: datetime, time_zone: str
) -> CostBreakdown:
    """What a reservation costs when it expired without a charging session (RESERVATION_EXPIRES)."""
    Interval(start, expiry)  # refuses naive times and an expiry before the start
    _check_valid(tariff, start)
    timeline = _Timeline(
        start, expiry, location_zone(time_zone), ReservationRestrictionType.RESERVATION_EXPIRES
    )
    return _breakdown(tariff, [(timeline, _bill(tariff, timeline))])

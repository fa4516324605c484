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

Arithmetic is exact (integers, and rational numbers where a cut falls between readings or clock
ticks) to the end. Each Money is then rounded once, half-up (ties away from zero), to the
currency's minor unit; the totals are rounded from the exact sum, not summed from rounded lines,
so lines may differ from a total by rounding: the total is what is owed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from itertools import pairwise
from typing import NamedTuple
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
_US = 10**6  # the clock's resolution: datetimes carry microseconds
_ONE_US = timedelta(microseconds=1)
# Internal volume units (Wh, microseconds) per priced unit (kWh, hour) and per reported unit
# (Wh, s); FLAT is priced and reported per session.
_PER_PRICED_UNIT = {ENERGY: 1000, TIME: 3600 * _US, PARKING_TIME: 3600 * _US, FLAT: 1}
_PER_REPORTED_UNIT = {ENERGY: 1, TIME: _US, PARKING_TIME: _US, FLAT: 1}
_MINOR_SCALE = {currency: 10**digits for currency, digits in MINOR_UNITS.items()}
# An exact quantity: an integer wherever a cut falls on a reading or a clock tick (the common
# case, and cheap), a Fraction where it falls between.
Exact = int | Fraction


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


@dataclass(frozen=True)
class _Rate:
    """A price component's exact price per internal unit (Wh, microsecond, session)."""

    component: PriceComponent
    unit: int  # internal units per priced unit
    excl_vat: Fraction
    vat_factor: Fraction | None  # incl. / excl. VAT; None without VAT

    @classmethod
    def of(cls, component: PriceComponent) -> _Rate:
        vat = None if component.vat is None else (100 + Fraction(component.vat)) / 100
        unit = _PER_PRICED_UNIT[component.type]
        return cls(component, unit, Fraction(component.price) / unit, vat)


@dataclass
class _Use:
    """A price component billing one dimension; grows while the same element keeps applying."""

    dimension: TariffDimensionType
    element_index: int
    rate: _Rate
    start: Exact  # microseconds into the phase
    end: Exact
    volume: Exact  # Wh, microseconds, or 1 for FLAT


class _Reading(NamedTuple):
    at: int  # microseconds into the phase
    energy_wh: int
    power_w: int | None
    current_a: Decimal | None


_Option = tuple[int, TariffRestrictions | None, _Rate]  # element index, its terms


class TariffPricing:
    """What pricing needs of a tariff, worked out once: a station's locked tariff prices every
    session started under it, and its candidates, exact rates and cut points do not change."""

    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        # Per dimension, in tariff order, each element's first price component of that dimension.
        self.candidates: dict[TariffDimensionType, list[_Option]] = {
            dimension: [] for dimension in TariffDimensionType
        }
        for index, element in enumerate(tariff.elements):
            for dimension in TariffDimensionType:
                component = next((c for c in element.price_components if c.type is dimension), None)
                if component is not None:
                    self.candidates[dimension].append(
                        (index, element.restrictions, _Rate.of(component))
                    )
        restrictions = [e.restrictions for e in tariff.elements if e.restrictions is not None]
        # Without restrictions no element needs to know the moment, the costly part of a piece.
        self.restricted = bool(restrictions)
        self.boundary_times = boundary_times(tariff.elements) if restrictions else set()
        self.duration_cuts = {
            d * _US for r in restrictions for d in (r.min_duration, r.max_duration) if d is not None
        }
        self.energy_cuts = {
            Fraction(kwh) * 1000
            for r in restrictions
            for kwh in (r.min_kwh, r.max_kwh)
            if kwh is not None
        }
        low, high = tariff.min_price, tariff.max_price
        self.limits = (
            (_bound(low.excl_vat if low else None), _bound(high.excl_vat if high else None)),
            (_bound(low.incl_vat if low else None), _bound(high.incl_vat if high else None)),
        )

    def price(self, session: ChargingSession) -> CostBreakdown:
        """What the session costs under the tariff, including a reservation that led to it."""
        zone = location_zone(session.time_zone)
        self._check_valid(session.reservation_start or session.start)
        phases = []
        if session.reservation_start is not None:
            reservation = _Timeline(
                session.reservation_start,
                session.start,
                zone,
                ReservationRestrictionType.RESERVATION,
            )
            phases.append((reservation, self._bill(reservation)))
        timeline = _Timeline(
            session.start, session.end, zone, None, session.samples, session.charging
        )
        phases.append((timeline, self._bill(timeline)))
        return self._breakdown(phases)

    def price_expired_reservation(
        self, start: datetime, expiry: datetime, time_zone: str
    ) -> CostBreakdown:
        Interval(start, expiry)  # refuses naive times and an expiry before the start
        self._check_valid(start)
        timeline = _Timeline(
            start, expiry, location_zone(time_zone), ReservationRestrictionType.RESERVATION_EXPIRES
        )
        return self._breakdown([(timeline, self._bill(timeline))])

    def _check_valid(self, at: datetime) -> None:
        """The tariff in force when the driver accepted it is the one that prices the session."""
        tariff = self.tariff
        if (tariff.start_date_time is not None and at < tariff.start_date_time) or (
            tariff.end_date_time is not None and at > tariff.end_date_time
        ):
            raise ValidationError(f"tariff {tariff.id} is not valid at {at.isoformat()}")

    def _bill(self, timeline: _Timeline) -> list[_Use]:
        candidates = self.candidates
        uses: list[_Use] = []
        latest: dict[TariffDimensionType, _Use] = {}
        reservation = timeline.reservation
        for a, b in pairwise(timeline.cuts(self)):
            moment = timeline.moment(Fraction(a + b, 2)) if self.restricted else None
            if FLAT not in latest:
                flat = _applicable(candidates[FLAT], reservation, moment)
                if flat is not None:
                    latest[FLAT] = _Use(FLAT, flat[0], flat[1], a, b, 1)
                    uses.append(latest[FLAT])
            for dimension, volume in timeline.volumes(a, b):
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

    def _breakdown(self, phases: Sequence[tuple[_Timeline, list[_Use]]]) -> CostBreakdown:
        tariff = self.tariff
        currency = tariff.currency
        if currency not in MINOR_UNITS:
            raise ValidationError(
                f"tariff {tariff.id} is in {currency}, which evgi does not settle"
            )
        lines: list[CostLine] = []
        # per dimension: its exact volume and amounts, and its line while it has only one
        sums: dict[tuple[bool, TariffDimensionType], tuple[list[Exact], CostLine | None]] = {}
        exact_excl: Exact = 0
        exact_incl: Exact = 0
        for timeline, uses in phases:
            reserved = timeline.reservation is not None
            for use in uses:
                rate = use.rate
                excl = use.volume * rate.excl_vat
                incl = excl if rate.vat_factor is None else excl * rate.vat_factor
                exact_excl += excl
                exact_incl += incl
                line = CostLine(
                    dimension=use.dimension,
                    reservation=reserved,
                    element_index=use.element_index,
                    start=timeline.instant(use.start),
                    volume=_volume(use.volume, _PER_REPORTED_UNIT[use.dimension]),
                    price=rate.component.price,
                    vat=rate.component.vat,
                    amount_excl_vat=_money(currency, excl),
                    amount_incl_vat=_money(currency, incl),
                )
                lines.append(line)
                known = sums.get((reserved, use.dimension))
                if known is None:
                    sums[reserved, use.dimension] = ([use.volume, excl, incl], line)
                else:
                    totals = known[0]
                    totals[0] += use.volume
                    totals[1] += excl
                    totals[2] += incl
                    sums[reserved, use.dimension] = (totals, None)
        dimensions = tuple(
            _dimension_cost(dimension, reserved, *sums[reserved, dimension], currency)
            for reserved in (True, False)
            for dimension in _REPORT_ORDER
            if (reserved, dimension) in sums
        )
        total_excl, total_incl, limit = self._limit(exact_excl, exact_incl)
        return CostBreakdown(
            tariff_id=tariff.id,
            currency=currency,
            lines=tuple(lines),
            dimensions=dimensions,
            total_excl_vat=_money(currency, total_excl),
            total_incl_vat=_money(currency, total_incl),
            price_limit=limit,
        )

    def _limit(self, excl: Exact, incl: Exact) -> tuple[Exact, Exact, PriceLimit | None]:
        """Hold each total, excl. and incl. VAT separately, within min_price and max_price."""
        limit = None
        bounded = []
        for value, (lower, upper) in zip((excl, incl), self.limits, strict=True):
            if lower is not None and value < lower:
                value, limit = lower, PriceLimit.MIN_PRICE
            if upper is not None and value > upper:
                value, limit = upper, PriceLimit.MAX_PRICE
            bounded.append(value)
        return bounded[0], bounded[1], limit


def _dimension_cost(
    dimension: TariffDimensionType,
    reserved: bool,
    totals: list[Exact],
    line: CostLine | None,
    currency: str,
) -> DimensionCost:
    """A dimension's total; a dimension billed by one line has that line's figures (the same
    amounts, rounded the same way)."""
    if line is not None:
        return DimensionCost(
            dimension, reserved, line.volume, line.amount_excl_vat, line.amount_incl_vat
        )
    return DimensionCost(
        dimension,
        reserved,
        _volume(totals[0], _PER_REPORTED_UNIT[dimension]),
        _money(currency, totals[1]),
        _money(currency, totals[2]),
    )


def _bound(amount: Decimal | None) -> Fraction | None:
    return None if amount is None else Fraction(amount)


class _Timeline:
    """One phase (reservation or session) on an exact clock: microseconds since its start,
    integers wherever a cut falls on the clock's ticks, Fractions between them."""

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
            _Reading(self.offset(s.at), s.energy_wh, s.power_w, s.current_a) for s in samples
        ]
        self._times = [r.at for r in self.readings]
        self.charging = [(self.offset(i.start), self.offset(i.end)) for i in charging]
        self._base = self._register(0)
        self._energy: dict[Exact, Exact] = {}

    def offset(self, at: datetime) -> int:
        return (at - self.origin) // _ONE_US

    def instant(self, offset: Exact) -> datetime:
        return self.origin + timedelta(microseconds=math.floor(offset))

    def _register(self, t: Exact) -> Exact:
        """Energy register at t: linear between readings, held outside them."""
        if not self.readings:
            return 0
        i = bisect_right(self._times, t)
        if i == 0:
            return self.readings[0].energy_wh
        if i == len(self.readings):
            return self.readings[-1].energy_wh
        a, b = self.readings[i - 1], self.readings[i]
        if a.at == t:
            return a.energy_wh  # most cuts are readings
        return a.energy_wh + Fraction((b.energy_wh - a.energy_wh) * (t - a.at), b.at - a.at)

    def energy(self, t: Exact) -> Exact:
        """Delivered since the start; kept per instant, as each cut bounds two pieces."""
        known = self._energy.get(t)
        if known is None:
            known = self._energy[t] = self._register(t) - self._base
        return known

    def _power(self, t: Exact) -> Fraction | None:
        i = bisect_right(self._times, t) - 1
        if i < 0:
            return None
        reading = self.readings[i]
        if reading.power_w is not None:
            return Fraction(reading.power_w)
        if i + 1 == len(self.readings):
            return None
        following = self.readings[i + 1]
        # Wh per microsecond, in W
        return Fraction(
            (following.energy_wh - reading.energy_wh) * 3600 * _US, following.at - reading.at
        )

    def _current(self, t: Exact) -> Fraction | None:
        i = bisect_right(self._times, t) - 1
        current = self.readings[i].current_a if i >= 0 else None
        return None if current is None else Fraction(current)

    def moment(self, t: Exact) -> Moment:
        return Moment(
            local=self.instant(t).astimezone(self.zone),
            energy_wh=Fraction(self.energy(t)),
            power_w=self._power(t),
            current_a=self._current(t),
            duration_s=Fraction(t, _US),
            reservation=self.reservation,
        )

    def volumes(self, a: Exact, b: Exact) -> tuple[tuple[TariffDimensionType, Exact], ...]:
        """What [a, b) consumed: reserved time is TIME; otherwise charging time or parking time."""
        duration = b - a
        if self.reservation is not None:
            return (ENERGY, 0), (TIME, duration), (PARKING_TIME, 0)
        twice_mid = a + b
        charging = any(2 * start <= twice_mid < 2 * end for start, end in self.charging)
        return (
            (ENERGY, self.energy(b) - self.energy(a)),
            (TIME, duration if charging else 0),
            (PARKING_TIME, 0 if charging else duration),
        )

    def cuts(self, pricing: TariffPricing) -> list[Exact]:
        """Every instant where a restriction's outcome or a consumption rate can change."""
        points: set[Exact] = {0, self.length, *self._times, *pricing.duration_cuts}
        for start, end in self.charging:
            points.update((start, end))
        for energy_wh in pricing.energy_cuts:
            points.update(self._crossings(energy_wh))
        if pricing.restricted:
            # local times of day and UTC offset changes only move restrictions' outcomes
            points.update(self._local_cuts(pricing.boundary_times))
            points.update(self._offset_changes())
        return sorted(p for p in points if 0 <= p <= self.length)

    def _crossings(self, energy_wh: Fraction | int) -> Iterable[Exact]:
        target = self._base + energy_wh
        for a, b in pairwise(self.readings):
            if a.energy_wh < target < b.energy_wh:
                yield a.at + Fraction(
                    (target - a.energy_wh) * (b.at - a.at), b.energy_wh - a.energy_wh
                )

    def _local_cuts(self, times: set[time]) -> Iterable[int]:
        """Local times of day as instants, both readings of an ambiguous or skipped local time."""
        first = self.instant(0).astimezone(self.zone).date() - timedelta(days=1)
        last = self.instant(self.length).astimezone(self.zone).date() + timedelta(days=1)
        for day in range((last - first).days + 1):
            for moment in times:
                local = datetime.combine(first + timedelta(days=day), moment, tzinfo=self.zone)
                for fold in (0, 1):
                    yield self.offset(local.replace(fold=fold))

    def _utcoffset(self, microseconds: int) -> timedelta | None:
        at = self.origin + timedelta(microseconds=microseconds)
        return at.astimezone(self.zone).utcoffset()

    def _offset_changes(self) -> Iterable[int]:
        """Instants where the zone's UTC offset changes (DST), found hour by hour, then bisected."""
        step = 3600 * _US
        for low in range(0, self.length, step):
            high = min(low + step, self.length)
            before = self._utcoffset(low)
            if before == self._utcoffset(high):
                continue
            while high - low > 1:
                mid = (low + high) // 2
                low, high = (mid, high) if self._utcoffset(mid) == before else (low, mid)
            yield high


def _applicable(
    options: list[_Option], reservation: ReservationRestrictionType | None, moment: Moment | None
) -> tuple[int, _Rate] | None:
    """The first option that applies; `moment` is None only when no option is restricted."""
    for index, restrictions, rate in options:
        if restrictions is None:
            applies = unrestricted_match(reservation)
        else:
            assert moment is not None
            applies = restrictions_match(restrictions, moment)
        if applies:
            return index, rate
    return None


def _apply_step_sizes(uses: list[_Use], latest: dict[TariffDimensionType, _Use]) -> None:
    """Round each dimension's total up to the last period's step; that period bills the rest."""
    parking = latest.get(PARKING_TIME)
    for dimension in _METERED:
        last = latest.get(dimension)
        if last is None or last.rate.component.step_size == 0:
            continue
        if dimension is TIME and parking is not None and parking.end > last.end:
            continue  # charging time followed by parking time: only the parking is rounded
        step = last.rate.component.step_size * _PER_REPORTED_UNIT[dimension]
        total: Exact = 0
        for use in uses:
            if use.dimension is dimension:
                total += use.volume
        last.volume += -(-total // step) * step - total  # up to a whole step, exactly


def _money(currency: str, amount: Exact) -> Money:
    """Half-up (ties away from zero) to the currency's minor unit: the one rounding step."""
    n, d = abs(amount.numerator) * _MINOR_SCALE[currency], amount.denominator
    whole = (2 * n + d) // (2 * d)  # floor(|amount| * 10^minor + 1/2), in integers
    return Money(currency, whole if amount.numerator >= 0 else -whole)


def _volume(value: Exact, unit: int = 1) -> Decimal:
    """`value` counted in `unit`s, to the thousandth, half up."""
    # floor(value / unit * 1000 + 1/2) in integers: // floors, and denominators are positive
    d = value.denominator * unit
    thousandths = (2000 * value.numerator + d) // (2 * d)
    return Decimal(thousandths).scaleb(-3)


def price_session(tariff: Tariff, session: ChargingSession) -> CostBreakdown:
    """What the session costs under the tariff, including a reservation that led to it."""
    return TariffPricing(tariff).price(session)


def price_expired_reservation(
    tariff: Tariff, start: datetime, expiry: datetime, time_zone: str
) -> CostBreakdown:
    """What a reservation costs when it expired without a charging session (RESERVATION_EXPIRES)."""
    return TariffPricing(tariff).price_expired_reservation(start, expiry, time_zone)

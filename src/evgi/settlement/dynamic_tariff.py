"""Time-dependent and smart energy tariffs, written as plain OCPI 2.2.1 Tariffs.

Time-of-use bands and day-ahead prices per 15-minute slot become Tariff Elements restricted to
local times (and dates), so any OCPI party can price them with the ordinary tariff rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from evgi.core.errors import ValidationError
from evgi.settlement.charging_session import location_zone
from evgi.settlement.tariff import (
    PriceComponent,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
    parse_tariff,
)

_SLOT = timedelta(minutes=15)
_DAY_MINUTES = 24 * 60


@dataclass(frozen=True)
class TimeBand:
    """A price per kWh (excl. VAT) for a range of local time, every day."""

    start: time  # inclusive
    end: time  # exclusive; before `start` runs past midnight; 00:00 is the end of the day
    price: Decimal


@dataclass(frozen=True)
class SlotPrice:
    """A day-ahead price per kWh (excl. VAT) for the 15 minutes from `start`."""

    start: datetime  # timezone-aware, on a UTC quarter hour
    price: Decimal


def _energy(price: Decimal, vat: Decimal | None, step_size: int) -> tuple[PriceComponent, ...]:
    return (
        PriceComponent(type=TariffDimensionType.ENERGY, price=price, vat=vat, step_size=step_size),
    )


def _tariff(
    country_code: str,
    party_id: str,
    tariff_id: str,
    currency: str,
    tariff_type: TariffType | None,
    elements: tuple[TariffElement, ...],
    last_updated: datetime,
) -> Tariff:
    """Through the OCPI parser, so a bad id or currency is refused in OCPI terms."""
    return parse_tariff(
        {
            "country_code": country_code,
            "party_id": party_id,
            "id": tariff_id,
            "currency": currency,
            "type": tariff_type,
            "elements": elements,
            "last_updated": last_updated,
        }
    )


def _minutes(moment: time) -> int:
    if moment.second or moment.microsecond or moment.tzinfo is not None:
        raise ValidationError(f"band time {moment} is not a whole local minute (OCPI HH:MM)")
    return moment.hour * 60 + moment.minute


def tariff_from_time_bands(
    bands: Sequence[TimeBand],
    *,
    country_code: str,
    party_id: str,
    tariff_id: str,
    currency: str,
    last_updated: datetime,
    vat: Decimal | None = None,
    step_size: int = 1,
    tariff_type: TariffType | None = None,
) -> Tariff:
    """One element per band; the bands must tile the day, so every moment has exactly one price."""
    spans: list[tuple[int, int]] = []
    for band in bands:
        start, end = _minutes(band.start), _minutes(band.end) or _DAY_MINUTES
        spans += [(start, end)] if start < end else [(start, _DAY_MINUTES), (0, end)]
    covered = 0
    for start, end in sorted(spans):
        if start != covered:
            problem = "overlap" if start < covered else "leave a gap"
            raise ValidationError(
                f"time bands {problem} at minute {min(start, covered)} of the day"
            )
        covered = end
    if covered != _DAY_MINUTES:
        raise ValidationError(f"time bands leave a gap at minute {covered} of the day")
    elements = tuple(
        TariffElement(
            price_components=_energy(band.price, vat, step_size),
            restrictions=TariffRestrictions(
                start_time=band.start.strftime("%H:%M"), end_time=band.end.strftime("%H:%M")
            ),
        )
        for band in bands
    )
    return _tariff(country_code, party_id, tariff_id, currency, tariff_type, elements, last_updated)


@dataclass
class _Run:
    """Adjacent slots of one local date at one price, merged into one element."""

    local_start: datetime  # naive local wall-clock time
    local_end: datetime
    utc_end: datetime
    price: Decimal


def tariff_from_day_ahead(
    curve: Sequence[SlotPrice],
    *,
    time_zone: str,
    fallback_price: Decimal,
    country_code: str,
    party_id: str,
    tariff_id: str,
    currency: str,
    last_updated: datetime,
    vat: Decimal | None = None,
    step_size: int = 1,
    tariff_type: TariffType | None = None,
) -> Tariff:
    """Elements per run of equal prices, restricted to local date and time; then a fallback.

    The fallback (an element without restrictions, as OCPI advises) prices any time the curve
    does not cover. OCPI restrictions use local time, so in the hour repeated when clocks go back
    the first of the two prices applies to both.
    """
    zone = location_zone(time_zone)
    runs: list[_Run] = []
    previous: datetime | None = None
    for slot in curve:
        if slot.start.tzinfo is None:
            raise ValidationError(f"slot start {slot.start} is not timezone-aware")
        at = slot.start.astimezone(UTC)
        if at.minute % 15 or at.second or at.microsecond:
            raise ValidationError(f"slot start {at} is not on a quarter hour")
        if previous is not None and at <= previous:
            raise ValidationError("day-ahead slots must be in strictly increasing time order")
        previous = at
        local = at.astimezone(zone).replace(tzinfo=None)
        run = runs[-1] if runs else None
        if (
            run is not None
            and run.utc_end == at
            and run.local_end == local
            and run.price == slot.price
            and run.local_start.date() == local.date()
        ):
            run.local_end, run.utc_end = local + _SLOT, at + _SLOT
        else:
            runs.append(_Run(local, local + _SLOT, at + _SLOT, slot.price))
    elements = [
        TariffElement(
            price_components=_energy(run.price, vat, step_size),
            restrictions=TariffRestrictions(
                start_date=run.local_start.date().isoformat(),
                end_date=(run.local_start.date() + timedelta(days=1)).isoformat(),
                start_time=run.local_start.strftime("%H:%M"),
                end_time=run.local_end.strftime("%H:%M"),
            ),
        )
        for run in runs
    ]
    elements.append(TariffElement(price_components=_energy(fallback_price, vat, step_size)))
    return _tariff(
        country_code, party_id, tariff_id, currency, tariff_type, tuple(elements), last_updated
    )

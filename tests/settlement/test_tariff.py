"""OCPI 2.2.1 tariffs priced as the specification prices its own examples.

Tariff JSON is the specification's (ocpi/ocpi, tag 2.2.1, examples/*.json, shown in
mod_tariffs.asciidoc); totals are the ones its example text gives for the example sessions.
Money is rounded once, half-up, to cents, so where the text gives tenths of a cent the expected
Money is that amount rounded half-up.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evgi.core import IntegrityError, Money, ValidationError
from evgi.settlement import (
    ChargingSession,
    CostBreakdown,
    Interval,
    InvalidTariff,
    LockedTariff,
    MeterSample,
    PriceLimit,
    SessionPlan,
    SlotPrice,
    Tariff,
    TariffDimensionType,
    TimeBand,
    parse_tariff,
    price_expired_reservation,
    price_session,
    quote_session,
    tariff_digest,
    tariff_from_day_ahead,
    tariff_from_time_bands,
)

ENERGY = TariffDimensionType.ENERGY
FLAT = TariffDimensionType.FLAT
TIME = TariffDimensionType.TIME
PARKING_TIME = TariffDimensionType.PARKING_TIME
BERLIN = "Europe/Berlin"
MINUTE = timedelta(minutes=1)


def eur(text: str) -> Money:
    return Money.parse(f"{text} EUR")


def tariff(elements: str, **extra: str) -> Tariff:
    """A spec example: its `elements` JSON, with the spec's header fields around it."""
    fields = "".join(f', "{key}": {value}' for key, value in extra.items())
    return parse_tariff(
        '{"country_code": "DE", "party_id": "ALL", "id": "12", "currency": "EUR",'
        f' "last_updated": "2018-12-17T11:16:55Z", "elements": {elements}{fields}}}'
    )


Leg = tuple[timedelta, int, int | None, Decimal | None]  # duration, Wh, W, A


def session(
    local_start: str,
    legs: Sequence[Leg] = (),
    parking: timedelta = timedelta(0),
    *,
    reserved: timedelta | None = None,
    time_zone: str = BERLIN,
) -> ChargingSession:
    """Charging in legs of steady power (one meter reading per leg), then parking."""
    start = datetime.fromisoformat(local_start).replace(tzinfo=ZoneInfo(time_zone))
    samples, at, energy = [], start, 0
    for duration, wh, power, current in legs:
        samples.append(MeterSample(at.astimezone(UTC), energy, power, current))
        at, energy = at + duration, energy + wh
    if legs:
        zero = None if legs[-1][3] is None else Decimal(0)
        samples.append(MeterSample(at.astimezone(UTC), energy, 0, zero))
    return ChargingSession(
        start=start.astimezone(UTC),
        end=(at + parking).astimezone(UTC),
        time_zone=time_zone,
        samples=tuple(samples),
        charging=(Interval(start.astimezone(UTC), at.astimezone(UTC)),) if legs else (),
        reservation_start=None if reserved is None else (start - reserved).astimezone(UTC),
    )


def steady(duration: timedelta, wh: int, current: Decimal | None = None) -> list[Leg]:
    return [(duration, wh, wh * 3600 // int(duration.total_seconds()), current)]


def minutes(count: int) -> Decimal:
    """A billed time volume, in seconds."""
    return Decimal(count * 60)


def totals(cost: CostBreakdown) -> tuple[Money, Money]:
    return cost.total_excl_vat, cost.total_incl_vat


def volume(cost: CostBreakdown, dimension: TariffDimensionType) -> Decimal:
    found = cost.dimension(dimension)
    assert found is not None, f"no {dimension} in the breakdown"
    return found.volume


SIMPLE_025_KWH = tariff(  # examples/tariff_8_simple_025kwh.json
    '[{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}]}]'
)
START_FEE = (
    '{"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1},'
    ' {"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}'
)
COMPLEX = tariff(  # examples/tariff_4_complex.json
    """[
    {"price_components": [{"type": "FLAT", "price": 2.50, "vat": 15.0, "step_size": 1}]},
    {"price_components": [{"type": "TIME", "price": 1.00, "vat": 20.0, "step_size": 900}],
     "restrictions": {"max_current": 32.00}},
    {"price_components": [{"type": "TIME", "price": 2.00, "vat": 20.0, "step_size": 600}],
     "restrictions": {"min_current": 32.00,
       "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
    {"price_components": [{"type": "TIME", "price": 1.25, "vat": 20.0, "step_size": 600}],
     "restrictions": {"min_current": 32.00, "day_of_week": ["SATURDAY", "SUNDAY"]}},
    {"price_components": [{"type": "PARKING_TIME", "price": 5.00, "vat": 10.0, "step_size": 300}],
     "restrictions": {"start_time": "09:00", "end_time": "18:00",
       "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
    {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 10.0, "step_size": 300}],
     "restrictions": {"start_time": "10:00", "end_time": "17:00", "day_of_week": ["SATURDAY"]}}
    ]""",
    type='"REGULAR"',
)
STEP_SIZE_SWITCH = tariff(  # examples/tariff_14_step_size.json
    """[
    {"price_components": [{"type": "TIME", "price": 1.20, "step_size": 1800},
                          {"type": "PARKING_TIME", "price": 1.00, "step_size": 900}],
     "restrictions": {"start_time": "00:00", "end_time": "17:00"}},
    {"price_components": [{"type": "TIME", "price": 2.40, "step_size": 900},
                          {"type": "PARKING_TIME", "price": 1.00, "step_size": 900}],
     "restrictions": {"start_time": "17:00", "end_time": "20:00"}},
    {"price_components": [{"type": "TIME", "price": 2.40, "step_size": 900}],
     "restrictions": {"start_time": "20:00", "end_time": "00:00"}}
    ]"""
)


def test_simple_tariff_025_euro_per_kwh() -> None:
    """OCPI 2.2.1 mod_tariffs, "Simple Tariff example 0.25 euro per kWh": 20 kWh cost 5.00 excl.,
    5.50 incl. VAT."""
    cost = price_session(
        SIMPLE_025_KWH, session("2024-01-15T10:00", steady(2 * 60 * MINUTE, 20_000))
    )
    assert totals(cost) == (eur("5.00"), eur("5.50"))
    assert volume(cost, ENERGY) == 20_000
    assert [(line.dimension, line.price) for line in cost.lines] == [(ENERGY, Decimal("0.25"))]


def test_025_euro_per_kwh_with_start_fee() -> None:
    """OCPI 2.2.1 mod_tariffs, "Tariff example 0.25 euro per kWh + start fee": 20 kWh cost 5.50
    excl., 6.10 incl."""
    cost = price_session(
        tariff(f'[{{"price_components": [{START_FEE}]}}]'),
        session("2024-01-15T10:00", steady(2 * 60 * MINUTE, 20_000)),
    )
    assert totals(cost) == (eur("5.50"), eur("6.10"))
    flat = cost.dimension(FLAT)
    assert flat is not None
    assert (flat.volume, flat.amount_excl_vat, flat.amount_incl_vat) == (
        Decimal(1),
        eur("0.50"),
        eur("0.60"),
    )


@pytest.mark.parametrize(
    ("wh", "excl", "incl", "limit"),
    [(20_000, "5.00", "5.50", None), (1_000, "0.50", "0.55", PriceLimit.MIN_PRICE)],
)
def test_025_euro_per_kwh_with_minimum_price(
    wh: int, excl: str, incl: str, limit: PriceLimit | None
) -> None:
    """OCPI 2.2.1 mod_tariffs, "Tariff example 0.25 euro per kWh + minimum price": 20 kWh cost 5.00
    / 5.50; under 2 kWh the minimum of 0.50 excl. / 0.55 incl. VAT is billed."""
    min_price = tariff(  # examples/tariff_12_025kwh_min_price.json
        '[{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 1}]}]',
        min_price='{"excl_vat": 0.50, "incl_vat": 0.55}',
    )
    cost = price_session(min_price, session("2024-01-15T10:00", steady(60 * MINUTE, wh)))
    assert totals(cost) == (eur(excl), eur(incl))
    assert cost.price_limit is limit


def test_025_euro_per_kwh_with_parking_fee_and_start_fee() -> None:
    """OCPI 2.2.1 mod_tariffs, "Tariff example 0.25 euro per kWh + parking fee + start fee": 20 kWh
    and 40 minutes of parking cost 7.00 excl., 7.90 incl. VAT; parking is billed for 45 minutes (per
    15)."""
    parking = tariff(  # examples/tariff_10_025kwh_parking_start.json
        f'[{{"price_components": [{START_FEE}, '
        '{"type": "PARKING_TIME", "price": 2.00, "vat": 20.0, "step_size": 900}]}]'
    )
    cost = price_session(
        parking, session("2024-01-15T10:00", steady(2 * 60 * MINUTE, 20_000), 40 * MINUTE)
    )
    assert totals(cost) == (eur("7.00"), eur("7.90"))
    assert volume(cost, PARKING_TIME) == 45 * 60


@pytest.mark.parametrize(
    ("wh", "excl", "incl", "limit"),
    [(50_000, "10.00", "11.00", PriceLimit.MAX_PRICE), (30_000, "8.00", "8.85", None)],
)
def test_025_euro_per_kwh_with_start_fee_and_max_price(
    wh: int, excl: str, incl: str, limit: PriceLimit | None
) -> None:
    """OCPI 2.2.1 mod_tariffs, "Tariff example 0.25 euro per kWh + start fee + max price + tariff
    end date": 50 kWh cost 10.00 / 11.00 (the limit), 30 kWh cost 8.00 / 8.85."""
    capped = tariff(  # examples/tariff_6_025kwh_start_max_price.json
        f'[{{"price_components": [{START_FEE}]}}]',
        max_price='{"excl_vat": 10.00, "incl_vat": 11.00}',
        end_date_time='"2019-06-30T23:59:59Z"',
    )
    cost = price_session(capped, session("2019-06-01T10:00", steady(4 * 60 * MINUTE, wh)))
    assert totals(cost) == (eur(excl), eur(incl))
    assert cost.price_limit is limit
    with pytest.raises(ValidationError, match="not valid"):
        price_session(capped, session("2019-07-01T10:00", steady(60 * MINUTE, wh)))


def test_simple_tariff_2_euro_per_hour() -> None:
    """OCPI 2.2.1 mod_tariffs, "Simple Tariff example 2 euro per hour": 2.5 hours of charging cost
    5.00 / 5.50."""
    per_hour = tariff(  # examples/tariff_1_simple_2hour.json
        '[{"price_components": [{"type": "TIME", "price": 2.00, "vat": 10.0, "step_size": 60}]}]'
    )
    cost = price_session(
        per_hour, session("2024-01-15T10:00", steady(150 * MINUTE, 20_000), 30 * MINUTE)
    )
    assert totals(cost) == (eur("5.00"), eur("5.50"))
    assert cost.dimension(PARKING_TIME) is None  # no PARKING_TIME component: parking is free


def test_simple_tariff_3_euro_per_hour_5_euro_per_hour_parking() -> None:
    """OCPI 2.2.1 mod_tariffs, "Simple Tariff example 3 euro per hour, 5 euro per hour parking": 150
    minutes charging and 42 parking cost 11.25 / 12.75; parking is billed for 45 minutes (per 5)."""
    time_and_parking = tariff(  # examples/tariff_13_simple_3hour_5parking.json
        '[{"price_components": [{"type": "TIME", "price": 3.00, "vat": 10.0, "step_size": 60},'
        ' {"type": "PARKING_TIME", "price": 5.00, "vat": 20.0, "step_size": 300}]}]'
    )
    cost = price_session(
        time_and_parking, session("2024-01-15T10:00", steady(150 * MINUTE, 30_000), 42 * MINUTE)
    )
    assert totals(cost) == (eur("11.25"), eur("12.75"))
    assert (volume(cost, TIME), volume(cost, PARKING_TIME)) == (minutes(150), minutes(45))


def test_ad_hoc_tariff_with_alternative_texts() -> None:
    """OCPI 2.2.1 mod_tariffs, "Ad-Hoc simple Tariff example with multiple languages": 2.5 hours at
    1.90 per hour cost 4.75 excl. and (4.997, to cents) 5.00 incl. 5.2% VAT."""
    ad_hoc = tariff(  # examples/tariff_2_alt_text.json
        '[{"price_components": [{"type": "TIME", "price": 1.90, "vat": 5.2, "step_size": 300}]}]',
        type='"AD_HOC_PAYMENT"',
        tariff_alt_text='[{"language": "en", "text": "2.00 euro p/hour including VAT."},'
        ' {"language": "nl", "text": "2.00 euro p/uur inclusief BTW."}]',
    )
    cost = price_session(ad_hoc, session("2024-01-15T10:00", steady(150 * MINUTE, 20_000)))
    assert totals(cost) == (eur("4.75"), eur("5.00"))
    assert [text.language for text in ad_hoc.tariff_alt_text] == ["en", "nl"]


def test_per_kwh_with_step_size_alternative_url() -> None:
    """OCPI 2.2.1 mod_tariffs, "Simple Tariff example with alternative URL": energy billed per 0.1
    kWh, so 20.45 kWh is billed as 20.5 kWh: energy 5.13 / 5.64, start fee 0.50 / 0.60, total 5.63 /
    6.24."""
    per_100_wh = tariff(  # examples/tariff_3_alt_url.json
        '[{"price_components": [{"type": "FLAT", "price": 0.50, "vat": 20.0, "step_size": 1},'
        ' {"type": "ENERGY", "price": 0.25, "vat": 10.0, "step_size": 100}]}]',
        type='"PROFILE_CHEAP"',
        tariff_alt_url='"https://company.com/tariffs/13"',
    )
    cost = price_session(per_100_wh, session("2024-01-15T10:00", steady(2 * 60 * MINUTE, 20_450)))
    energy = cost.dimension(ENERGY)
    assert energy is not None
    assert (energy.volume, energy.amount_excl_vat, energy.amount_incl_vat) == (
        Decimal(20_500),
        eur("5.13"),
        eur("5.64"),
    )
    assert totals(cost) == (eur("5.63"), eur("6.24"))


@pytest.mark.parametrize(
    ("step_size", "billed_wh", "excl"), [(1, 116, "0.03"), (25, 125, "0.03"), (500, 500, "0.13")]
)
def test_energy_step_size_note(step_size: int, billed_wh: int, excl: str) -> None:
    """PriceComponent `step_size` note: 115.2 Wh at 0.25 per kWh is billed as 116 Wh (0.029),
    as 125 Wh with step 25 (0.031) and as 500 Wh with step 500 (0.125)."""
    per_step = tariff(
        f'[{{"price_components": [{{"type": "ENERGY", "price": 0.25, "step_size": {step_size}}}]}}]'
    )
    # The register reads 0 and then 1152 Wh ten seconds later; the session ends after one.
    base = datetime(2024, 1, 15, 9, tzinfo=UTC)
    readings = (MeterSample(base, 0), MeterSample(base + timedelta(seconds=10), 1152))
    end = base + timedelta(seconds=1)
    cost = price_session(
        per_step, ChargingSession(base, end, BERLIN, readings, (Interval(base, end),))
    )
    assert volume(cost, ENERGY) == billed_wh
    assert cost.total_excl_vat == eur(excl)


def test_complex_tariff_monday_morning() -> None:
    """OCPI 2.2.1 mod_tariffs, "Complex Tariff example", first session: Monday 09:30, 165 minutes at
    16 A, then 42 minutes parking: 9.00 excl., 10.30 incl. VAT. Charging time is not rounded because
    parking follows; parking is billed for 45 minutes. The text's "147 minutes (charging)" is left
    over from OCPI 2.2, whose 8.75 / 10.00 billed 147 minutes as 150; 2.2.1-d2 says 165."""
    cost = price_session(
        COMPLEX,
        session("2024-01-15T09:30", steady(165 * MINUTE, 30_000, Decimal(16)), 42 * MINUTE),
    )
    assert totals(cost) == (eur("9.00"), eur("10.30"))
    assert (volume(cost, TIME), volume(cost, PARKING_TIME)) == (minutes(165), minutes(45))
    assert [(line.dimension, line.element_index) for line in cost.lines] == [
        (FLAT, 0),
        (TIME, 1),
        (PARKING_TIME, 4),
    ]


def test_complex_tariff_saturday_afternoon() -> None:
    """OCPI 2.2.1 mod_tariffs, "Complex Tariff example", second session: Saturday 13:30, 114 minutes
    at 43 A, then 71 minutes parking (billed as 75): 12.375 excl., 13.975 incl. VAT, that is 12.38 /
    13.98. (OCPI 2.2 rounded the charging to 120 minutes, 12.50 / 14.13; 2.2.1 no longer does.)"""
    cost = price_session(
        COMPLEX,
        session("2024-01-20T13:30", steady(114 * MINUTE, 50_000, Decimal(43)), 71 * MINUTE),
    )
    assert totals(cost) == (eur("12.38"), eur("13.98"))
    assert (volume(cost, TIME), volume(cost, PARKING_TIME)) == (minutes(114), minutes(75))
    time_cost = cost.dimension(TIME)
    assert time_cost is not None
    assert time_cost.amount_excl_vat == eur("2.38")  # 2.375
    assert [line.element_index for line in cost.lines] == [0, 3, 5]


def test_free_of_charge_tariff() -> None:
    """OCPI 2.2.1 mod_tariffs, "Free of Charge Tariff example": one FLAT component of 0.00
    (step_size 0) costs nothing."""
    free = tariff(  # examples/tariff_5_free_of_charge.json
        '[{"price_components": [{"type": "FLAT", "price": 0.00, "step_size": 0}]}]'
    )
    cost = price_session(free, session("2024-01-15T10:00", steady(60 * MINUTE, 11_000), MINUTE))
    assert totals(cost) == (eur("0.00"), eur("0.00"))
    assert [line.dimension for line in cost.lines] == [FLAT]


def test_first_hour_free_energy() -> None:
    """OCPI 2.2.1 mod_tariffs, "First hour free energy example": 20 kWh (the first kWh free, the
    rest at 0.20) and 2.75 hours of parking (the first hour free, then 2.00 per hour up to the
    third hour of the session, 3.00 after) cost 7.30 excl. VAT. `min_duration`/`max_duration`
    count the session's duration, so the text's total is that of a charge too short to move the
    parking hours (here one second); the example's JSON spells `restrictions` as
    `tariff_restrictions`, an error of the 2.2.1 examples. No VAT is given, so none is added."""
    first_hour_free = tariff(  # examples/tariff_7_first_hour_kwh_free.json
        """[
        {"price_components": [{"type": "PARKING_TIME", "price": 0.00, "step_size": 60}],
         "restrictions": {"min_duration": 0, "max_duration": 3600}},
        {"price_components": [{"type": "PARKING_TIME", "price": 2.00, "step_size": 60}],
         "restrictions": {"min_duration": 3600, "max_duration": 10800}},
        {"price_components": [{"type": "PARKING_TIME", "price": 3.00, "step_size": 60}],
         "restrictions": {"min_duration": 10800}},
        {"price_components": [{"type": "ENERGY", "price": 0.00, "step_size": 1}],
         "restrictions": {"max_kwh": 1.00}},
        {"price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}],
         "restrictions": {"min_kwh": 1.00}}
        ]"""
    )
    cost = price_session(
        first_hour_free,
        session("2024-01-15T10:00", steady(timedelta(seconds=1), 20_000), 165 * MINUTE),
    )
    assert totals(cost) == (eur("7.30"), eur("7.30"))
    assert [(line.dimension, line.element_index, line.amount_excl_vat) for line in cost.lines] == [
        (ENERGY, 3, eur("0.00")),
        (ENERGY, 4, eur("3.80")),
        (PARKING_TIME, 0, eur("0.00")),
        (PARKING_TIME, 1, eur("3.50")),
    ]
    # a real charge of 15 minutes moves 15 parking minutes into the paid hours: 4.00 for parking
    slower = price_session(
        first_hour_free,
        session("2024-01-15T10:00", steady(15 * MINUTE, 20_000), 165 * MINUTE),
    )
    assert slower.total_excl_vat == eur("7.80")


def test_step_size_switching_tariff_elements_1() -> None:
    """OCPI 2.2.1 mod_tariffs, "Example: switching to different Tariff Element #1": plug in at
    16:55, charge 10 minutes, park 2. Charging is 0.10 + 0.20; the 2 parking minutes are billed as
    15 (0.25), as the 2.2.1-d2 errata of this example computes it: 0.55. (The 2.2.1 text rounds
    charging and parking together to 15 minutes, 0.383, against its own mod_cdrs rule that charging
    time followed by parking is not rounded, and against the Complex Tariff example.)"""
    cost = price_session(
        STEP_SIZE_SWITCH, session("2024-01-15T16:55", steady(10 * MINUTE, 2_000), 2 * MINUTE)
    )
    assert [(line.dimension, line.volume, line.amount_excl_vat) for line in cost.lines] == [
        (TIME, minutes(5), eur("0.10")),
        (TIME, minutes(5), eur("0.20")),
        (PARKING_TIME, minutes(15), eur("0.25")),
    ]
    assert cost.total_excl_vat == eur("0.55")


def test_step_size_switching_tariff_elements_2() -> None:
    """OCPI 2.2.1 mod_tariffs, "Example: switching to different Tariff Element #2": plug in at
    16:35, charge 35 minutes, leave. The total of 35 minutes is rounded to 45 by the last element's
    step: 25 minutes before 17:00 (0.50) and 20 after (0.80), 1.30 in all."""
    cost = price_session(STEP_SIZE_SWITCH, session("2024-01-15T16:35", steady(35 * MINUTE, 6_000)))
    assert [(line.volume, line.amount_excl_vat) for line in cost.lines] == [
        (minutes(25), eur("0.50")),
        (minutes(20), eur("0.80")),
    ]
    assert cost.total_excl_vat == eur("1.30")


def test_step_size_switching_to_free_of_charge_element() -> None:
    """OCPI 2.2.1 mod_tariffs, "Example: switching to Free-of-Charge Tariff Element": plug in at
    19:40, charge 12 minutes (0.48, as the text says), park 20 of which only the 8 before 20:00 cost
    anything. Those are billed as 15 by the step of the last paid parking period (0.25): 0.73. The
    2.2.1 text bills 18 parking minutes by rounding charging and parking together (0.78); the
    2.2.1-d2 errata rounds the parking alone to 15 minutes, as here, but prices it at the charging
    rate. Both disagree with mod_cdrs `step_size`, which this module follows."""
    cost = price_session(
        STEP_SIZE_SWITCH, session("2024-01-15T19:40", steady(12 * MINUTE, 2_000), 20 * MINUTE)
    )
    assert [(line.dimension, line.volume, line.amount_excl_vat) for line in cost.lines] == [
        (TIME, minutes(12), eur("0.48")),
        (PARKING_TIME, minutes(15), eur("0.25")),
    ]
    assert cost.total_excl_vat == eur("0.73")


def test_max_power_restriction() -> None:
    """OCPI 2.2.1 mod_tariffs, "Example: Tariff with max_power Tariff Restrictions": 1 kWh at 6 kW
    (0.20), 40 kWh at 48 kW (20.00 from the fallback element) and 0.5 kWh at 4 kW (0.10): 20.30
    excl. VAT."""
    max_power = tariff(  # examples/tariffrestriction_example_max_power.json
        """[
        {"price_components": [{"type": "ENERGY", "price": 0.20, "vat": 20.0, "step_size": 1}],
         "restrictions": {"max_power": 16.00}},
        {"price_components": [{"type": "ENERGY", "price": 0.35, "vat": 20.0, "step_size": 1}],
         "restrictions": {"max_power": 32.00}},
        {"price_components": [{"type": "ENERGY", "price": 0.50, "vat": 20.0, "step_size": 1}]}
        ]""",
        type='"REGULAR"',
    )
    legs: list[Leg] = [
        (10 * MINUTE, 1_000, 6_000, None),
        (50 * MINUTE, 40_000, 48_000, None),
        (timedelta(minutes=7, seconds=30), 500, 4_000, None),
    ]
    cost = price_session(max_power, session("2024-01-15T10:00", legs))
    assert [(line.volume, line.amount_excl_vat) for line in cost.lines] == [
        (Decimal(1_000), eur("0.20")),
        (Decimal(40_000), eur("20.00")),
        (Decimal(500), eur("0.10")),
    ]
    assert totals(cost) == (eur("20.30"), eur("24.36"))


def test_max_duration_restriction() -> None:
    """OCPI 2.2.1 mod_tariffs, "Example: Tariff with max_duration Tariff Restrictions": 5 kWh free
    in the first 30 minutes, then 1.2 kWh at 0.25 per kWh in the next 10: 0.30 excl. VAT."""
    max_duration = tariff(  # examples/tariffrestriction_example_max_duration.json
        """[
        {"price_components": [{"type": "ENERGY", "price": 0.00, "vat": 20.0, "step_size": 1}],
         "restrictions": {"max_duration": 1800}},
        {"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 20.0, "step_size": 1}],
         "restrictions": {"max_duration": 3600}},
        {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 20.0, "step_size": 1}]}
        ]"""
    )
    legs: list[Leg] = [(30 * MINUTE, 5_000, None, None), (10 * MINUTE, 1_200, None, None)]
    cost = price_session(max_duration, session("2024-01-15T10:00", legs))
    assert [(line.volume, line.amount_excl_vat) for line in cost.lines] == [
        (Decimal(5_000), eur("0.00")),
        (Decimal(1_200), eur("0.30")),
    ]
    assert totals(cost) == (eur("0.30"), eur("0.36"))


def test_time_of_day_past_midnight() -> None:
    """TariffRestrictions `end_time`: "If end_time < start_time then the period wraps around to
    the next day." A 22:00-06:00 night price of 0.15 beside a 0.30 fallback: 21:00-01:00 at
    10 kW is 10 kWh at 0.30 and 30 kWh at 0.15 (7.50); 05:00-07:00 is 10 kWh at each (4.50)."""
    night = tariff(
        """[
        {"price_components": [{"type": "ENERGY", "price": 0.15, "step_size": 1}],
         "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]}
        ]"""
    )
    evening = price_session(night, session("2024-01-15T21:00", steady(4 * 60 * MINUTE, 40_000)))
    assert [(line.volume, line.price) for line in evening.lines] == [
        (Decimal(10_000), Decimal("0.3")),
        (Decimal(30_000), Decimal("0.15")),
    ]
    assert evening.total_excl_vat == eur("7.50")
    morning = price_session(night, session("2024-01-16T05:00", steady(2 * 60 * MINUTE, 20_000)))
    assert morning.total_excl_vat == eur("4.50")


@pytest.mark.parametrize(
    ("utc_start", "energy_prices"),
    [
        # 31 March: Berlin skips 02:00-03:00, so a price until 02:30 ends at 03:00 CEST.
        (datetime(2024, 3, 31, 0, tzinfo=UTC), ["0.1", "0.3"]),
        # 27 October: Berlin lives 02:00-03:00 twice, and the price applies in both 02:00-02:30.
        (datetime(2024, 10, 27, 0, tzinfo=UTC), ["0.1", "0.3", "0.1", "0.3"]),
    ],
)
def test_time_of_day_in_local_time_across_daylight_saving_change(
    utc_start: datetime, energy_prices: list[str]
) -> None:
    """TariffRestrictions `start_time` and `end_time` are local times, DST changes included."""
    early = tariff(
        """[
        {"price_components": [{"type": "ENERGY", "price": 0.10, "step_size": 1}],
         "restrictions": {"start_time": "00:00", "end_time": "02:30"}},
        {"price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}]}
        ]"""
    )
    end = utc_start + timedelta(hours=2)
    readings = (MeterSample(utc_start, 0, 3_600), MeterSample(end, 7_200, 3_600))
    cost = price_session(
        early, ChargingSession(utc_start, end, BERLIN, readings, (Interval(utc_start, end),))
    )
    share = Decimal(7_200 // len(energy_prices))
    assert [(line.volume, line.price) for line in cost.lines] == [
        (share, Decimal(price)) for price in energy_prices
    ]


@pytest.mark.parametrize(
    ("charging", "parking", "step", "billed_time", "billed_parking"),
    [
        (21, 7, 300, 21 * 60, 10 * 60),  # "After 21 minutes of charging ... 7 more minutes"
        (21, 16, 600, 21 * 60, 20 * 60),  # "charges 21 minutes ... another 16 minutes"
        (28, 0, 600, 30 * 60, None),  # no parking follows: charging time is rounded
    ],
)
def test_cdr_step_size_for_charging_and_parking_time(
    charging: int, parking: int, step: int, billed_time: int, billed_parking: int | None
) -> None:
    """mod_cdrs `step_size`: charging time followed by parking is not rounded; the parking is."""
    time_and_parking = tariff(
        '[{"price_components": [{"type": "TIME", "price": 1.00, "step_size": '
        f'{step}}}, {{"type": "PARKING_TIME", "price": 2.00, "step_size": {step}}}]}}]'
    )
    cost = price_session(
        time_and_parking,
        session("2024-01-15T10:00", steady(charging * MINUTE, 5_000), parking * MINUTE),
    )
    assert volume(cost, TIME) == billed_time
    found = cost.dimension(PARKING_TIME)
    assert (found.volume if found else None) == billed_parking


def test_cdr_step_size_uses_the_session_total() -> None:
    """mod_cdrs `step_size`: 4.3 kWh before 17:00 and 1.1 kWh after, both per 500 Wh, are 5.5 kWh
    in all (not 4.3 + 1.5); 6 minutes before and 22 after, per 10 minutes, are 30 in all."""
    energy = tariff(
        """[
        {"price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 500}],
         "restrictions": {"end_time": "17:00"}},
        {"price_components": [{"type": "ENERGY", "price": 0.27, "step_size": 500}]}
        ]"""
    )
    legs: list[Leg] = [(30 * MINUTE, 4_300, None, None), (30 * MINUTE, 1_100, None, None)]
    cost = price_session(energy, session("2024-01-15T16:30", legs))
    assert [line.volume for line in cost.lines] == [4_300, 1_200]
    time = tariff(
        """[
        {"price_components": [{"type": "TIME", "price": 5, "step_size": 600}],
         "restrictions": {"end_time": "17:00"}},
        {"price_components": [{"type": "TIME", "price": 7, "step_size": 600}]}
        ]"""
    )
    cost = price_session(time, session("2024-01-15T16:54", steady(28 * MINUTE, 5_000)))
    assert [line.volume for line in cost.lines] == [6 * 60, 24 * 60]
    assert cost.total_excl_vat == eur("3.30")


RESERVATION_ENERGY = '{"price_components": [' + START_FEE + "]}"


@pytest.mark.parametrize(
    ("example", "reservation_elements", "reserved", "billed", "excl", "incl"),
    [
        (
            "Tariff example with reservation price",  # tariff_15
            '{"price_components": [{"type": "TIME", "price": 5.00, "vat": 20.0, "step_size": 60}],'
            ' "restrictions": {"reservation": "RESERVATION"}}',
            15,
            15,
            "6.75",
            "7.60",
        ),
        (
            "Tariff example with reservation price and fee",  # tariff_16
            '{"price_components": [{"type": "FLAT", "price": 2.00, "vat": 20.0, "step_size": 1},'
            ' {"type": "TIME", "price": 5.00, "vat": 20.0, "step_size": 300}],'
            ' "restrictions": {"reservation": "RESERVATION"}}',
            13,
            15,
            "8.75",
            "10.00",
        ),
        (
            "Tariff example with reservation price and expire fee",  # tariff_17
            '{"price_components": [{"type": "FLAT", "price": 4.00, "vat": 20.0, "step_size": 1}],'
            ' "restrictions": {"reservation": "RESERVATION_EXPIRES"}},'
            ' {"price_components": [{"type": "TIME", "price": 2.00, "vat": 20.0,'
            ' "step_size": 600}],'
            ' "restrictions": {"reservation": "RESERVATION"}}',
            22,
            30,
            "6.50",
            "7.30",
        ),
        (
            "Tariff example with reservation time and expire time",  # tariff_18
            '{"price_components": [{"type": "TIME", "price": 6.00, "vat": 20.0, "step_size": 600}],'
            ' "restrictions": {"reservation": "RESERVATION_EXPIRES"}},'
            ' {"price_components": [{"type": "TIME", "price": 3.00, "vat": 20.0,'
            ' "step_size": 600}],'
            ' "restrictions": {"reservation": "RESERVATION"}}',
            22,
            30,
            "7.00",
            "7.90",
        ),
    ],
)
def test_reservation_followed_by_a_session(
    example: str, reservation_elements: str, reserved: int, billed: int, excl: str, incl: str
) -> None:
    """The reservation examples of mod_tariffs (named in `example`): a session of 20 kWh started
    `reserved` minutes after the reservation, whose time is billed as `billed` minutes."""
    reservation = tariff(f"[{reservation_elements}, {RESERVATION_ENERGY}]")
    cost = price_session(
        reservation,
        session("2024-01-15T10:00", steady(2 * 60 * MINUTE, 20_000), reserved=reserved * MINUTE),
    )
    assert totals(cost) == (eur(excl), eur(incl)), example
    reserved_time = cost.dimension(TIME, reservation=True)
    assert reserved_time is not None
    assert reserved_time.volume == billed * 60


@pytest.mark.parametrize(
    ("reservation_elements", "minutes", "excl", "incl"),
    [
        (  # "Tariff example with reservation price and expire fee": expired after 1 hour
            '{"price_components": [{"type": "FLAT", "price": 4.00, "vat": 20.0, "step_size": 1}],'
            ' "restrictions": {"reservation": "RESERVATION_EXPIRES"}},'
            ' {"price_components": [{"type": "TIME", "price": 2.00, "vat": 20.0,'
            ' "step_size": 600}],'
            ' "restrictions": {"reservation": "RESERVATION"}}',
            60,
            "6.00",
            "7.20",
        ),
        (  # "Tariff example with reservation time and expire time": expired after 1.5 hours
            '{"price_components": [{"type": "TIME", "price": 6.00, "vat": 20.0, "step_size": 600}],'
            ' "restrictions": {"reservation": "RESERVATION_EXPIRES"}},'
            ' {"price_components": [{"type": "TIME", "price": 3.00, "vat": 20.0,'
            ' "step_size": 600}],'
            ' "restrictions": {"reservation": "RESERVATION"}}',
            90,
            "9.00",
            "10.80",
        ),
    ],
)
def test_expired_reservation(reservation_elements: str, minutes: int, excl: str, incl: str) -> None:
    """Expired reservations of examples tariff_17 and tariff_18: no session, no start fee."""
    reservation = tariff(f"[{reservation_elements}, {RESERVATION_ENERGY}]")
    start = datetime(2024, 1, 15, 9, tzinfo=UTC)
    expiry = start + minutes * MINUTE
    cost = price_expired_reservation(reservation, start, expiry, BERLIN)
    assert totals(cost) == (eur(excl), eur(incl))
    assert all(line.reservation for line in cost.lines)


# Parsing and validation


def test_parse_keeps_prices_exact_and_canonical() -> None:
    parsed = tariff(
        '[{"price_components": [{"type": "ENERGY", "price": 0.30000000000000000001, '
        '"step_size": 1}, {"type": "TIME", "price": 2.50, "step_size": 60}]}]'
    )
    energy, time_component = parsed.elements[0].price_components
    assert energy.price == Decimal("0.30000000000000000001")
    assert str(time_component.price) == "2.5"
    assert parsed.last_updated.tzinfo is UTC


def test_naive_ocpi_datetime_is_utc() -> None:
    parsed = tariff(
        '[{"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}]}]',
        start_date_time='"2019-01-28T12:00:00"',
    )
    assert parsed.start_date_time == datetime(2019, 1, 28, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("elements", "where"),
    [
        (
            '[{"price_components": [{"type": "ENERGY", "price": 1, "step_size": -1}]}]',
            "elements[0].price_components[0].step_size",
        ),
        (
            '[{"price_components": [{"type": "VOLUME", "price": 1, "step_size": 1}]}]',
            "elements[0].price_components[0].type",
        ),
        (
            '[{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}],'
            ' "restrictions": {"start_time": "24:00"}}]',
            "elements[0].restrictions.start_time",
        ),
        (
            '[{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}],'
            ' "restrictions": {"start_date": "2019-02-30"}}]',
            "elements[0].restrictions.start_date",
        ),
        (
            '[{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}],'
            ' "restrictions": {"reservation": "RESERVATION"}}]',
            "elements[0]",
        ),
        ('[{"price_components": []}]', "elements[0].price_components"),
        ("[]", "elements"),
    ],
)
def test_invalid_tariff_is_refused_in_ocpi_terms(elements: str, where: str) -> None:
    with pytest.raises(InvalidTariff, match=r"^2001 Invalid or missing parameters") as caught:
        tariff(elements)
    assert f"{where}:" in caught.value.message
    assert caught.value.ocpi_status_code == 2001


def test_missing_field_and_bad_json_are_refused() -> None:
    with pytest.raises(InvalidTariff, match="last_updated"):
        parse_tariff(
            {
                "country_code": "DE",
                "party_id": "ALL",
                "id": "1",
                "currency": "EUR",
                "elements": [{"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}]}],
            }
        )
    with pytest.raises(InvalidTariff, match="not JSON"):
        parse_tariff(b"{")


def test_session_input_is_validated() -> None:
    start = datetime(2024, 1, 15, 9, tzinfo=UTC)
    with pytest.raises(ValidationError, match="timezone-aware"):
        ChargingSession(start.replace(tzinfo=None), start, BERLIN)
    with pytest.raises(ValidationError, match="fell"):
        ChargingSession(
            start, start + MINUTE, BERLIN, (MeterSample(start, 10), MeterSample(start + MINUTE, 9))
        )
    with pytest.raises(ValidationError, match="within the session"):
        ChargingSession(
            start, start + MINUTE, BERLIN, charging=(Interval(start, start + 2 * MINUTE),)
        )
    with pytest.raises(ValidationError, match="time zone"):
        ChargingSession(start, start, "Mars/Olympus_Mons")


# Price quotes on locked tariffs


def test_quote_for_a_planned_session() -> None:
    """20 kWh at 11 kW take 109 min 5.45 s of a 3 hour stay; under the parking + start fee
    example the remaining 70.9 minutes of parking are billed as 75: 0.50 + 5.00 + 2.50."""
    parking = tariff(
        f'[{{"price_components": [{START_FEE}, '
        '{"type": "PARKING_TIME", "price": 2.00, "vat": 20.0, "step_size": 900}]}]'
    )
    start = datetime(2024, 1, 15, 9, tzinfo=UTC)
    quote = quote_session(parking, SessionPlan(start, 20_000, timedelta(hours=3), 11_000, BERLIN))
    assert totals(quote.cost) == (eur("8.00"), eur("9.10"))
    assert volume(quote.cost, PARKING_TIME) == 75 * 60
    assert quote.locked.tariff == parking
    assert quote.locked.digest == tariff_digest(parking)
    with pytest.raises(ValidationError, match="longer than"):
        quote_session(parking, SessionPlan(start, 40_000, timedelta(hours=3), 11_000, BERLIN))


def test_locked_tariff_refuses_a_digest_of_another_tariff() -> None:
    locked = LockedTariff.of(SIMPLE_025_KWH)
    assert locked.digest.startswith("0x") and len(locked.digest) == 66
    other = tariff(
        '[{"price_components": [{"type": "ENERGY", "price": 0.26, "vat": 10.0, "step_size": 1}]}]'
    )
    with pytest.raises(IntegrityError, match="hashes to"):
        LockedTariff(other, locked.digest)


# Time-dependent and day-ahead tariffs


def test_time_of_use_tariff_with_a_night_band_past_midnight() -> None:
    peak_and_night = tariff_from_time_bands(
        [
            TimeBand(time(7), time(23), Decimal("0.40")),
            TimeBand(time(23), time(7), Decimal("0.20")),
        ],
        country_code="DE",
        party_id="EVG",
        tariff_id="tou-1",
        currency="EUR",
        last_updated=datetime(2024, 1, 1, tzinfo=UTC),
        vat=Decimal(19),
    )
    restrictions = [element.restrictions for element in peak_and_night.elements]
    assert [(r.start_time, r.end_time) for r in restrictions if r] == [
        ("07:00", "23:00"),
        ("23:00", "07:00"),
    ]
    cost = price_session(
        peak_and_night, session("2024-01-15T22:00", steady(2 * 60 * MINUTE, 20_000))
    )
    assert cost.total_excl_vat == eur("6.00")  # 10 kWh at 0.40, 10 kWh at 0.20
    assert cost.total_incl_vat == eur("7.14")


@pytest.mark.parametrize(
    ("bands", "problem"),
    [
        ([TimeBand(time(0), time(12), Decimal(1))], "gap"),
        (
            [TimeBand(time(0), time(13), Decimal(1)), TimeBand(time(12), time(0), Decimal(1))],
            "overlap",
        ),
        ([TimeBand(time(0, 0, 30), time(0), Decimal(1))], "whole local minute"),
    ],
)
def test_time_bands_must_tile_the_day(bands: list[TimeBand], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        tariff_from_time_bands(
            bands,
            country_code="DE",
            party_id="EVG",
            tariff_id="tou-2",
            currency="EUR",
            last_updated=datetime(2024, 1, 1, tzinfo=UTC),
        )


def test_day_ahead_tariff_prices_each_quarter_hour() -> None:
    """Four slots 21:00-22:00 UTC (22:00-23:00 in Berlin), the middle two at one price and so one
    element; a session across them and past the curve meets the fallback price."""
    base = datetime(2024, 1, 15, 21, tzinfo=UTC)
    prices = ["0.10", "0.20", "0.20", "0.05"]
    smart = tariff_from_day_ahead(
        [SlotPrice(base + i * timedelta(minutes=15), Decimal(p)) for i, p in enumerate(prices)],
        time_zone=BERLIN,
        fallback_price=Decimal("0.50"),
        country_code="DE",
        party_id="EVG",
        tariff_id="da-1",
        currency="EUR",
        last_updated=base,
    )
    restrictions = [element.restrictions for element in smart.elements]
    assert [(r.start_date, r.end_date, r.start_time, r.end_time) for r in restrictions if r] == [
        ("2024-01-15", "2024-01-16", "22:00", "22:15"),
        ("2024-01-15", "2024-01-16", "22:15", "22:45"),
        ("2024-01-15", "2024-01-16", "22:45", "23:00"),
    ]
    assert smart.elements[-1].restrictions is None
    # 3.6 kW from 22:00 to 23:15 local: 900 Wh per quarter hour.
    cost = price_session(smart, session("2024-01-15T22:00", steady(75 * MINUTE, 4_500)))
    assert [line.price for line in cost.lines] == [
        Decimal("0.1"),
        Decimal("0.2"),
        Decimal("0.05"),
        Decimal("0.5"),
    ]
    assert cost.total_excl_vat == eur("0.95")  # 0.09 + 0.36 + 0.045 + 0.45 = 0.945


def test_day_ahead_slots_must_be_quarter_hours_in_order() -> None:
    base = datetime(2024, 1, 15, 21, tzinfo=UTC)

    def day_ahead(curve: list[SlotPrice]) -> Tariff:
        return tariff_from_day_ahead(
            curve,
            time_zone=BERLIN,
            fallback_price=Decimal("0.5"),
            country_code="DE",
            party_id="EVG",
            tariff_id="da-2",
            currency="EUR",
            last_updated=base,
        )

    with pytest.raises(ValidationError, match="quarter hour"):
        day_ahead([SlotPrice(base + MINUTE, Decimal(1))])
    with pytest.raises(ValidationError, match="increasing"):
        day_ahead([SlotPrice(base, Decimal(1)), SlotPrice(base, Decimal(2))])


# Properties

prices = st.decimals(min_value=0, max_value=2, places=2)
steps = st.sampled_from([0, 1, 10, 60, 100, 300, 500, 900, 1000, 3600])


@settings(max_examples=60, deadline=None)
@given(
    tiers=st.lists(st.tuples(st.integers(1, 60), prices), min_size=1, max_size=4),
    step=steps,
    power_kw=st.integers(1, 150),
    energies=st.tuples(st.integers(1, 80_000), st.integers(1, 80_000)),
)
def test_cost_is_monotonic_in_energy(
    tiers: list[tuple[int, Decimal]], step: int, power_kw: int, energies: tuple[int, int]
) -> None:
    """ENERGY-only tariffs, kWh tiers whose price does not fall and one step_size: more energy
    never costs less. (With a cheaper later tier or a different step per tier, OCPI's rule of
    billing the rounding at the last period's price can make a little more energy cheaper.)"""
    bounds = sorted({kwh for kwh, _ in tiers})
    rates = sorted(price for _, price in tiers)[: len(bounds)]
    elements = []
    for i, (bound, rate) in enumerate(zip(bounds, rates, strict=True)):
        limits = {"max_kwh": bound} | ({"min_kwh": bounds[i - 1]} if i else {})
        component = {"type": "ENERGY", "price": str(rate), "step_size": step}
        elements.append({"price_components": [component], "restrictions": limits})
    elements.append(
        {"price_components": [{"type": "ENERGY", "price": str(rates[-1]), "step_size": step}]}
    )
    tiered = tariff(json.dumps(elements))
    low, high = sorted(energies)

    def cost(wh: int) -> Money:
        duration = timedelta(seconds=wh * 3600 / (power_kw * 1000))
        legs: list[Leg] = [(duration, wh, power_kw * 1000, None)]
        return price_session(tiered, session("2024-01-15T10:00", legs)).total_excl_vat

    assert cost(low) <= cost(high)


@settings(max_examples=60, deadline=None)
@given(
    energy_step=steps,
    time_step=steps,
    parking_step=steps,
    wh=st.integers(0, 100_000),
    charging_s=st.integers(1, 20_000),
    parking_s=st.integers(0, 20_000),
)
def test_step_rounding_never_decreases_volume(
    energy_step: int, time_step: int, parking_step: int, wh: int, charging_s: int, parking_s: int
) -> None:
    """Billed volumes are the measured ones rounded up by less than one step, never down."""
    all_dimensions = tariff(
        '[{"price_components": ['
        f'{{"type": "ENERGY", "price": 0.3, "step_size": {energy_step}}},'
        f'{{"type": "TIME", "price": 1.2, "step_size": {time_step}}},'
        f'{{"type": "PARKING_TIME", "price": 2, "step_size": {parking_step}}}]}}]'
    )
    legs: list[Leg] = [(timedelta(seconds=charging_s), wh, None, None)]
    cost = price_session(
        all_dimensions, session("2024-01-15T10:00", legs, timedelta(seconds=parking_s))
    )
    time_rounded = time_step if not parking_s else 0  # charging time before parking is exact
    for dimension, measured, step in (
        (ENERGY, wh, energy_step),
        (TIME, charging_s, time_rounded),
        (PARKING_TIME, parking_s, parking_step),
    ):
        found = cost.dimension(dimension)
        billed = found.volume if found else Decimal(0)
        assert measured <= billed < measured + max(step, 1) if measured else billed == 0


@settings(max_examples=60, deadline=None)
@given(
    bands=st.lists(prices, min_size=1, max_size=6),
    vat=st.one_of(st.none(), st.decimals(min_value=0, max_value=30, places=1)),
    wh=st.integers(0, 60_000),
    start_minute=st.integers(0, 24 * 60 - 1),
    minutes=st.integers(10, 600),
)
def test_money_totals_are_integer_minor_units(
    bands: list[Decimal], vat: Decimal | None, wh: int, start_minute: int, minutes: int
) -> None:
    """Totals are whole cents, and VAT never lowers a total of non-negative prices."""
    hours = [time(24 * i // len(bands)) for i in range(len(bands))]
    by_time = tariff_from_time_bands(
        [TimeBand(hours[i], hours[(i + 1) % len(hours)], price) for i, price in enumerate(bands)],
        country_code="DE",
        party_id="EVG",
        tariff_id="p",
        currency="EUR",
        last_updated=datetime(2024, 1, 1, tzinfo=UTC),
        vat=vat,
    )
    start = datetime(2024, 1, 15, tzinfo=UTC) + timedelta(minutes=start_minute)
    cost = quote_session(
        by_time, SessionPlan(start, wh, timedelta(minutes=minutes), 400_000, BERLIN)
    ).cost
    for money in (cost.total_excl_vat, cost.total_incl_vat):
        assert type(money.minor) is int
        assert money.currency == "EUR"
    assert cost.total_excl_vat <= cost.total_incl_vat


@settings(max_examples=30, deadline=None)
@given(price=st.decimals(min_value=0, max_value=100, places=4), zeros=st.integers(0, 3))
def test_digest_ignores_number_spelling_and_key_order(price: Decimal, zeros: int) -> None:
    """The lock hashes what the tariff says, not how its JSON happened to be written."""
    plain = parse_tariff(
        '{"country_code": "DE", "party_id": "ALL", "id": "1", "currency": "EUR",'
        ' "last_updated": "2024-01-01T00:00:00Z", "elements": [{"price_components":'
        f' [{{"type": "ENERGY", "price": {price}, "step_size": 1}}]}}]}}'
    )
    padded = f"{price:.{4 + zeros}f}"
    reordered = parse_tariff(
        '{"elements": [{"price_components": [{"step_size": 1, "price": '
        f'{padded}, "type": "ENERGY"}}]}}], "last_updated": "2024-01-01T00:00:00",'
        ' "currency": "EUR", "id": "1", "party_id": "ALL", "country_code": "DE"}'
    )
    assert tariff_digest(plain) == tariff_digest(reordered)

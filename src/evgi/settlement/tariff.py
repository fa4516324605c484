"""OCPI 2.2.1 Tariff objects, parsed exactly as the specification names their fields.

Prices are `Decimal`, never float: JSON numbers are read with `parse_float=Decimal`, and every
number is kept in one canonical spelling (0.50 -> 0.5) so a tariff hashes the same however it was
written. Naive OCPI DateTimes mean UTC (OCPI 2.2.1 types, DateTime).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from evgi.core.errors import ValidationError

# OCPI status code for a request whose content does not follow the specification.
OCPI_INVALID_PARAMETERS = 2001


class InvalidTariff(ValidationError):
    """A Tariff that breaks OCPI 2.2.1; `ocpi_status_code` is the code to answer with."""

    ocpi_status_code = OCPI_INVALID_PARAMETERS


def _canonical_number(value: Decimal) -> Decimal:
    """One spelling per value, so 0.50 and 0.5 hash alike."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    canonical = Decimal(text)
    return canonical if canonical else Decimal(0)


def _utc(value: datetime) -> datetime:
    """OCPI DateTimes are UTC; one without a designator is UTC too."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _real_date(value: str) -> str:
    date.fromisoformat(value)  # refuses days a month does not have, such as 2019-02-30
    return value


Number = Annotated[Decimal, AfterValidator(_canonical_number)]
NonNegative = Annotated[Decimal, Field(ge=0), AfterValidator(_canonical_number)]
DateTime = Annotated[datetime, AfterValidator(_utc)]
TimeOfDay = Annotated[str, Field(pattern=r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")]
LocalDate = Annotated[
    str,
    Field(pattern=r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
    AfterValidator(_real_date),
]


def _ci_string(length: int) -> Any:
    """OCPI CiString(n): printable ASCII, case-insensitive, at most n characters."""
    return Field(min_length=1, max_length=length, pattern=r"^[\x20-\x7e]*$")


class _Ocpi(BaseModel):
    # Unknown fields are ignored so newer peers stay readable; objects never change once parsed.
    model_config = ConfigDict(frozen=True, extra="ignore")


class TariffDimensionType(StrEnum):
    ENERGY = "ENERGY"  # per kWh; step_size in Wh
    FLAT = "FLAT"  # once per session
    PARKING_TIME = "PARKING_TIME"  # per hour not charging; step_size in seconds
    TIME = "TIME"  # per hour charging (or reserved); step_size in seconds


class DayOfWeek(StrEnum):
    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"


class ReservationRestrictionType(StrEnum):
    RESERVATION = "RESERVATION"
    RESERVATION_EXPIRES = "RESERVATION_EXPIRES"


class TariffType(StrEnum):
    AD_HOC_PAYMENT = "AD_HOC_PAYMENT"
    PROFILE_CHEAP = "PROFILE_CHEAP"
    PROFILE_FAST = "PROFILE_FAST"
    PROFILE_GREEN = "PROFILE_GREEN"
    REGULAR = "REGULAR"


class EnergySourceCategory(StrEnum):
    NUCLEAR = "NUCLEAR"
    GENERAL_FOSSIL = "GENERAL_FOSSIL"
    COAL = "COAL"
    GAS = "GAS"
    GENERAL_GREEN = "GENERAL_GREEN"
    SOLAR = "SOLAR"
    WIND = "WIND"
    WATER = "WATER"


class EnvironmentalImpactCategory(StrEnum):
    NUCLEAR_WASTE = "NUCLEAR_WASTE"
    CARBON_DIOXIDE = "CARBON_DIOXIDE"


class DisplayText(_Ocpi):
    language: str = Field(min_length=2, max_length=2)
    text: str = Field(max_length=512)


class Price(_Ocpi):
    excl_vat: NonNegative
    incl_vat: NonNegative | None = None


class EnergySource(_Ocpi):
    source: EnergySourceCategory
    percentage: Annotated[Decimal, Field(ge=0, le=100), AfterValidator(_canonical_number)]


class EnvironmentalImpact(_Ocpi):
    category: EnvironmentalImpactCategory
    amount: NonNegative


class EnergyMix(_Ocpi):
    is_green_energy: bool
    energy_sources: tuple[EnergySource, ...] = ()
    environ_impact: tuple[EnvironmentalImpact, ...] = ()
    supplier_name: str | None = Field(default=None, max_length=64)
    energy_product_name: str | None = Field(default=None, max_length=64)


class PriceComponent(_Ocpi):
    """Price per unit of one dimension, excl. VAT; negative prices are allowed (day-ahead)."""

    type: TariffDimensionType
    price: Number
    vat: NonNegative | None = None  # percent; absent means no VAT applies, unlike 0
    step_size: int = Field(ge=0)


class TariffRestrictions(_Ocpi):
    """When an element applies; all set restrictions must hold (logical AND)."""

    start_time: TimeOfDay | None = None
    end_time: TimeOfDay | None = None  # before start_time: runs past midnight; 00:00: day's end
    start_date: LocalDate | None = None  # inclusive, local date
    end_date: LocalDate | None = None  # exclusive, local date
    min_kwh: NonNegative | None = None  # inclusive
    max_kwh: NonNegative | None = None  # exclusive
    min_current: NonNegative | None = None  # A, sum over phases, inclusive
    max_current: NonNegative | None = None  # exclusive
    min_power: NonNegative | None = None  # kW, inclusive
    max_power: NonNegative | None = None  # exclusive
    min_duration: int | None = Field(default=None, ge=0)  # s, inclusive
    max_duration: int | None = Field(default=None, ge=0)  # s, exclusive
    day_of_week: tuple[DayOfWeek, ...] = ()
    reservation: ReservationRestrictionType | None = None


class TariffElement(_Ocpi):
    price_components: tuple[PriceComponent, ...] = Field(min_length=1)
    restrictions: TariffRestrictions | None = None

    @model_validator(mode="after")
    def _reservation_dimensions(self) -> TariffElement:
        if self.restrictions is not None and self.restrictions.reservation is not None:
            allowed = {TariffDimensionType.FLAT, TariffDimensionType.TIME}
            if any(c.type not in allowed for c in self.price_components):
                raise ValueError("a reservation element may only price FLAT and TIME")
        return self


class Tariff(_Ocpi):
    country_code: str = _ci_string(2)
    party_id: str = _ci_string(3)
    id: str = _ci_string(36)
    currency: str = Field(pattern=r"^[A-Z]{3}$")  # ISO 4217
    type: TariffType | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: tuple[TariffElement, ...] = Field(min_length=1)
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: EnergyMix | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _validity(self) -> Tariff:
        if (
            self.start_date_time is not None
            and self.end_date_time is not None
            and self.end_date_time < self.start_date_time
        ):
            raise ValueError("end_date_time is before start_date_time")
        return self


def _location(loc: tuple[int | str, ...]) -> str:
    """('elements', 0, 'vat') -> 'elements[0].vat', the way OCPI documents name fields."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "Tariff"


def parse_tariff(data: bytes | str | Mapping[str, Any]) -> Tariff:
    """Parse an OCPI Tariff; numbers never pass through float. Raises InvalidTariff (2001)."""
    document: Any = data
    if isinstance(data, bytes | str):
        try:
            document = json.loads(data, parse_float=Decimal)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidTariff(f"{OCPI_INVALID_PARAMETERS} Tariff is not JSON: {exc}") from exc
    try:
        return Tariff.model_validate(document)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{_location(error['loc'])}: {re.sub(r'^Value error, ', '', error['msg'])}"
            for error in exc.errors()
        )
        raise InvalidTariff(
            f"{OCPI_INVALID_PARAMETERS} Invalid or missing parameters in Tariff: {problems}"
        ) from exc

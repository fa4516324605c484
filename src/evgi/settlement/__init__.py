"""Settlement: OCPI 2.2.1 tariffs, session costs, price quotes on locked tariffs, and dynamic
(time-of-use and day-ahead) tariffs; pure computation that CDRs and invoices are built from.
"""

from evgi.settlement.charging_session import ChargingSession, Interval, MeterSample
from evgi.settlement.dynamic_tariff import (
    SlotPrice,
    TimeBand,
    tariff_from_day_ahead,
    tariff_from_time_bands,
)
from evgi.settlement.price_quote import (
    LockedTariff,
    Quote,
    SessionPlan,
    quote_session,
    tariff_digest,
)
from evgi.settlement.session_cost import (
    CostBreakdown,
    CostLine,
    DimensionCost,
    PriceLimit,
    price_expired_reservation,
    price_session,
)
from evgi.settlement.tariff import (
    DayOfWeek,
    DisplayText,
    EnergyMix,
    EnergySource,
    EnergySourceCategory,
    EnvironmentalImpact,
    EnvironmentalImpactCategory,
    InvalidTariff,
    Price,
    PriceComponent,
    ReservationRestrictionType,
    Tariff,
    TariffDimensionType,
    TariffElement,
    TariffRestrictions,
    TariffType,
    parse_tariff,
)

__all__ = [
    "ChargingSession",
    "CostBreakdown",
    "CostLine",
    "DayOfWeek",
    "DimensionCost",
    "DisplayText",
    "EnergyMix",
    "EnergySource",
    "EnergySourceCategory",
    "EnvironmentalImpact",
    "EnvironmentalImpactCategory",
    "Interval",
    "InvalidTariff",
    "LockedTariff",
    "MeterSample",
    "Price",
    "PriceComponent",
    "PriceLimit",
    "Quote",
    "ReservationRestrictionType",
    "SessionPlan",
    "SlotPrice",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffRestrictions",
    "TariffType",
    "TimeBand",
    "parse_tariff",
    "price_expired_reservation",
    "price_session",
    "quote_session",
    "tariff_digest",
    "tariff_from_day_ahead",
    "tariff_from_time_bands",
]

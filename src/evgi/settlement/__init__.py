"""Settlement: OCPI 2.2.1 tariffs, session costs, price quotes on locked tariffs, dynamic
(time-of-use and day-ahead) tariffs, and the CDRs, Merkle anchors, proofs and invoices built on
them.
"""

from evgi.settlement.anchoring import (
    CdrAnchoring,
    SessionProof,
    VerifiedSession,
    batch_root,
    session_proof,
    verify_session_proof,
)
from evgi.settlement.cdr import Cdr, build_cdr, cdr_digest, id_token_digest, session_id_of
from evgi.settlement.charging_session import ChargingSession, Interval, MeterSample
from evgi.settlement.core_client import CoreClient, escrow_id_of
from evgi.settlement.dynamic_tariff import (
    SlotPrice,
    TimeBand,
    tariff_from_day_ahead,
    tariff_from_time_bands,
)
from evgi.settlement.export_payment import ExportPayments, exported_wh
from evgi.settlement.invoice import Invoice, build_invoice
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
    TariffPricing,
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
from evgi.settlement.terms import SettlementTerms
from evgi.settlement.wallet import HistoryEntry, InsufficientFunds, Wallets, token_symbol
from evgi.storage.export_payment import ExportPayment

__all__ = [
    "Cdr",
    "CdrAnchoring",
    "ChargingSession",
    "CoreClient",
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
    "ExportPayment",
    "ExportPayments",
    "HistoryEntry",
    "InsufficientFunds",
    "Interval",
    "InvalidTariff",
    "Invoice",
    "LockedTariff",
    "MeterSample",
    "Price",
    "PriceComponent",
    "PriceLimit",
    "Quote",
    "ReservationRestrictionType",
    "SessionPlan",
    "SessionProof",
    "SettlementTerms",
    "SlotPrice",
    "Tariff",
    "TariffDimensionType",
    "TariffElement",
    "TariffPricing",
    "TariffRestrictions",
    "TariffType",
    "TimeBand",
    "VerifiedSession",
    "Wallets",
    "batch_root",
    "build_cdr",
    "build_invoice",
    "cdr_digest",
    "escrow_id_of",
    "exported_wh",
    "id_token_digest",
    "parse_tariff",
    "price_expired_reservation",
    "price_session",
    "quote_session",
    "session_id_of",
    "session_proof",
    "tariff_digest",
    "tariff_from_day_ahead",
    "tariff_from_time_bands",
    "token_symbol",
    "verify_session_proof",
]

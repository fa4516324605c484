"""Price transparency before charging: an estimate for a planned session, on a locked tariff.

The lock is the tariff with the Keccak-256 hash of its canonical JSON (RFC 8785), so the price a
driver accepted at the start can be anchored and proven when the session is settled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from evgi.core.canonical import canonical_json
from evgi.core.digest import keccak256, to_hex
from evgi.core.errors import IntegrityError, ValidationError
from evgi.settlement.charging_session import ChargingSession, Interval, MeterSample
from evgi.settlement.session_cost import CostBreakdown, TariffPricing
from evgi.settlement.tariff import Tariff


def tariff_digest(tariff: Tariff) -> str:
    """0x-hex Keccak-256 of the tariff's canonical JSON, defaults left out."""
    document = tariff.model_dump(mode="json", exclude_defaults=True)
    return to_hex(keccak256(canonical_json(document)))


@dataclass(frozen=True)
class LockedTariff:
    """A tariff fixed at a session's start; a digest that does not match it is refused."""

    tariff: Tariff
    digest: str
    pricing: TariffPricing = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        actual = tariff_digest(self.tariff)
        if self.digest != actual:
            raise IntegrityError(
                f"tariff {self.tariff.id} hashes to {actual}, not the locked {self.digest}"
            )
        object.__setattr__(self, "pricing", TariffPricing(self.tariff))

    @classmethod
    def of(cls, tariff: Tariff) -> LockedTariff:
        return cls(tariff, tariff_digest(tariff))


@dataclass(frozen=True)
class SessionPlan:
    """What a driver expects: charge `energy_wh` at `max_power_w`, leave after `duration`."""

    start: datetime
    energy_wh: int
    duration: timedelta
    max_power_w: int
    time_zone: str  # of the Location
    current_a: Decimal | None = None  # for tariffs with current restrictions


@dataclass(frozen=True)
class Quote:
    cost: CostBreakdown
    locked: LockedTariff


def quote_session(tariff: Tariff, plan: SessionPlan) -> Quote:
    """Estimate by charging at full power from the start, then parking for the rest of the stay."""
    if plan.energy_wh < 0 or plan.max_power_w <= 0 or plan.duration < timedelta(0):
        raise ValidationError("a plan needs energy >= 0 Wh, power > 0 W and duration >= 0")
    charge_us = math.ceil(Fraction(plan.energy_wh * 3600, plan.max_power_w) * 10**6)
    charge_end = plan.start + timedelta(microseconds=charge_us)
    end = plan.start + plan.duration
    if charge_end > end:
        raise ValidationError(
            f"{plan.energy_wh} Wh at {plan.max_power_w} W take longer than the {plan.duration} stay"
        )
    session = ChargingSession(
        start=plan.start,
        end=end,
        time_zone=plan.time_zone,
        samples=(
            MeterSample(plan.start, 0, plan.max_power_w, plan.current_a),
            MeterSample(
                charge_end, plan.energy_wh, 0, None if plan.current_a is None else Decimal(0)
            ),
        )
        if plan.energy_wh
        else (),
        charging=(Interval(plan.start, charge_end),) if plan.energy_wh else (),
    )
    locked = LockedTariff.of(tariff)
    return Quote(locked.pricing.price(session), locked)

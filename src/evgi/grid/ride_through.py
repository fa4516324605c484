"""Trip, ride-through, momentary cessation and enter service (IEEE 1547-2018 clauses 4.10,
6.4 and 6.5) over a time series of voltage and frequency.

A trip setting is a threshold and a clearing time: beyond the threshold for that long, the DER
trips and ceases to energize until enter service conditions hold for the intentional delay; then
output ramps back over the enter service period. Between the momentary cessation bounds and the
trip thresholds the DER rides through; beyond the cessation bounds it stops energizing at once
but does not trip, and resumes when the voltage returns.

Frequency settings are in Hz of a system of `nominal_hz`, the 1547 defaults for 60 Hz;
`at_nominal` carries them to another system (grid/nominal_frequency.py says how). Voltages are
per unit of VN and need no scaling.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from evgi.core.errors import ValidationError
from evgi.grid.nominal_frequency import TABLE_HZ, rescaled


@dataclass(frozen=True)
class TripSetting:
    name: str
    threshold: float
    clearing_s: float
    over: bool

    def beyond(self, value: float) -> bool:
        return value > self.threshold if self.over else value < self.threshold


# 1547 table 16, frequency trip defaults, the same for every abnormal category (Hz at 60 Hz).
FREQUENCY_TRIPS = (
    TripSetting("OF2", 62.0, 0.16, True),
    TripSetting("OF1", 61.2, 300.0, True),
    TripSetting("UF1", 58.5, 300.0, False),
    TripSetting("UF2", 56.5, 0.16, False),
)


@dataclass(frozen=True)
class AbnormalCategory:
    """Voltage trip defaults (per unit of VN) and momentary cessation bounds of one abnormal
    performance category (1547 tables 11, 12, 14, 15); frequency trips in Hz of a system of
    `nominal_hz`."""

    name: str
    voltage_trips: tuple[TripSetting, ...]
    cessation_low_pu: float
    cessation_high_pu: float
    frequency_trips: tuple[TripSetting, ...] = FREQUENCY_TRIPS
    nominal_hz: float = TABLE_HZ

    def at_nominal(self, nominal_hz: float) -> AbnormalCategory:
        """The category on a system of `nominal_hz`, frequency trips at the same per unit."""
        ratio = rescaled(nominal_hz, self.nominal_hz)
        trips = tuple(replace(s, threshold=s.threshold * ratio) for s in self.frequency_trips)
        return replace(self, frequency_trips=trips, nominal_hz=nominal_hz)

    def overridden(
        self, voltage: tuple[TripSetting, ...], frequency: tuple[TripSetting, ...]
    ) -> AbnormalCategory:
        """The category with the grid operator's must-trip settings in place of the defaults
        on the same side (over or under) of the same quantity."""

        def merged(
            defaults: tuple[TripSetting, ...], given: tuple[TripSetting, ...]
        ) -> tuple[TripSetting, ...]:
            sides = {setting.over for setting in given}
            return tuple(s for s in defaults if s.over not in sides) + given

        return replace(
            self,
            voltage_trips=merged(self.voltage_trips, voltage),
            frequency_trips=merged(self.frequency_trips, frequency),
        )


CATEGORY_II = AbnormalCategory(
    "II",
    (
        TripSetting("OV2", 1.20, 0.16, True),
        TripSetting("OV1", 1.10, 2.0, True),
        TripSetting("UV1", 0.70, 10.0, False),
        TripSetting("UV2", 0.45, 0.16, False),
    ),
    0.30,
    1.20,
)

CATEGORY_III = AbnormalCategory(
    "III",
    (
        TripSetting("OV2", 1.20, 0.16, True),
        TripSetting("OV1", 1.10, 13.0, True),
        TripSetting("UV1", 0.88, 21.0, False),
        TripSetting("UV2", 0.50, 2.0, False),
    ),
    0.50,
    1.10,
)


@dataclass(frozen=True)
class EnterService:
    """1547 table 4 defaults: the window voltage and frequency must stay in (frequencies in Hz
    of a system of `nominal_hz`), the intentional delay and the period over which output ramps
    back."""

    voltage_low_pu: float = 0.917
    voltage_high_pu: float = 1.05
    frequency_low_hz: float = 59.5
    frequency_high_hz: float = 60.1
    delay_s: float = 300.0
    ramp_s: float = 300.0
    nominal_hz: float = TABLE_HZ

    def __post_init__(self) -> None:
        if self.delay_s < 0 or self.ramp_s < 0:
            raise ValidationError("enter service delay and ramp cannot be negative")

    def at_nominal(self, nominal_hz: float) -> EnterService:
        """The window on a system of `nominal_hz`, at the same per unit of nominal."""
        ratio = rescaled(nominal_hz, self.nominal_hz)
        return replace(
            self,
            frequency_low_hz=self.frequency_low_hz * ratio,
            frequency_high_hz=self.frequency_high_hz * ratio,
            nominal_hz=nominal_hz,
        )

    def permits(self, voltage_pu: float, frequency_hz: float) -> bool:
        return (
            self.voltage_low_pu <= voltage_pu <= self.voltage_high_pu
            and self.frequency_low_hz <= frequency_hz <= self.frequency_high_hz
        )


class Condition(enum.StrEnum):
    IN_SERVICE = "in service"
    MOMENTARY_CESSATION = "momentary cessation"
    TRIPPED = "tripped"
    CEASED = "ceased to energize"
    ENTERING_SERVICE = "entering service"


@dataclass
class RideThrough:
    """The protection state of one DER, fed measurements in time order."""

    category: AbnormalCategory = CATEGORY_III
    enter_service: EnterService = field(default_factory=EnterService)
    condition: Condition = Condition.IN_SERVICE
    tripped_by: str | None = None
    _beyond_since: dict[str, datetime] = field(default_factory=dict)
    _permitted_since: datetime | None = None
    _last: datetime | None = None

    def observe(
        self, at: datetime, voltage_pu: float, frequency_hz: float, energize: bool = True
    ) -> float:
        """The fraction of its output the DER may give now (0 while out of service, rising
        during the enter service ramp, 1 in service)."""
        if at.tzinfo is None:
            raise ValidationError("measurements need timezone-aware UTC times")
        if self._last is not None and at < self._last:
            raise ValidationError(f"measurement at {at} is older than the last one")
        self._last = at
        if not energize:
            self._out_of_service(Condition.CEASED, "cease to energize")
            return 0.0
        if self.condition in (Condition.IN_SERVICE, Condition.MOMENTARY_CESSATION):
            return self._riding(at, voltage_pu, frequency_hz)
        return self._entering(at, voltage_pu, frequency_hz)

    def _riding(self, at: datetime, voltage_pu: float, frequency_hz: float) -> float:
        settings = [(s, voltage_pu) for s in self.category.voltage_trips] + [
            (s, frequency_hz) for s in self.category.frequency_trips
        ]
        for setting, value in settings:
            if not setting.beyond(value):
                self._beyond_since.pop(setting.name, None)
                continue
            since = self._beyond_since.setdefault(setting.name, at)
            if (at - since).total_seconds() >= setting.clearing_s:
                self._out_of_service(Condition.TRIPPED, setting.name)
                return 0.0
        ceasing = not (
            self.category.cessation_low_pu <= voltage_pu <= self.category.cessation_high_pu
        )
        self.condition = Condition.MOMENTARY_CESSATION if ceasing else Condition.IN_SERVICE
        return 0.0 if ceasing else 1.0

    def _entering(self, at: datetime, voltage_pu: float, frequency_hz: float) -> float:
        rule = self.enter_service
        if not rule.permits(voltage_pu, frequency_hz):
            self._permitted_since = None
            if self.condition == Condition.ENTERING_SERVICE:
                self.condition = Condition.CEASED
            return 0.0
        if self._permitted_since is None:
            self._permitted_since = at
        waited = (at - self._permitted_since).total_seconds()
        if waited < rule.delay_s:
            return 0.0
        ramped = 1.0 if rule.ramp_s == 0 else (waited - rule.delay_s) / rule.ramp_s
        if ramped >= 1.0:
            self.condition = Condition.IN_SERVICE
            self.tripped_by = None
            self._permitted_since = None
            return 1.0
        self.condition = Condition.ENTERING_SERVICE
        return ramped

    def _out_of_service(self, condition: Condition, cause: str) -> None:
        if self.condition in (Condition.IN_SERVICE, Condition.MOMENTARY_CESSATION):
            self.tripped_by = cause
            self._beyond_since.clear()
        if self.condition != Condition.TRIPPED or condition == Condition.TRIPPED:
            self.condition = condition
        self._permitted_since = None

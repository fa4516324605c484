"""The active power responses of IEEE 1547-2018: volt-watt (clause 5.4) and frequency droop
(frequency-watt, clause 6.5.2.7), with the Category B defaults, and the frequency-watt curve
2030.5 offers for the same response (opModFreqWatt).

Active power is in per unit of the rated active power, positive when injecting (discharging),
negative when absorbing (charging).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from evgi.core.errors import ValidationError
from evgi.grid.curve import Curve
from evgi.grid.nominal_frequency import TABLE_HZ, rescaled

# 1547 table 13, Category B, for a DER that can absorb active power (P'2 = 0): injection falls
# from rated output at 1.06 VN to none at 1.10 VN; charging is left alone.
CATEGORY_B_VOLT_WATT = Curve(((1.06, 1.0), (1.10, 0.0)))


@dataclass(frozen=True)
class VoltWatt:
    curve: Curve = CATEGORY_B_VOLT_WATT
    response_s: float = 10.0

    def injection_cap_pu(self, voltage_pu: float) -> float:
        return self.curve(voltage_pu)


@dataclass(frozen=True)
class FrequencyDroop:
    """1547 table 24 defaults: 36 mHz dead bands, 5 % droop, 5 s open-loop response; dead
    bands in Hz of a system of `nominal_hz`."""

    nominal_hz: float = TABLE_HZ
    deadband_over_hz: float = 0.036
    deadband_under_hz: float = 0.036
    droop_over: float = 0.05
    droop_under: float = 0.05
    response_s: float = 5.0

    def __post_init__(self) -> None:
        if self.droop_over <= 0 or self.droop_under <= 0:
            raise ValidationError("frequency droop must be positive")
        if self.deadband_over_hz < 0 or self.deadband_under_hz < 0:
            raise ValidationError("frequency droop dead bands cannot be negative")

    def at_nominal(self, nominal_hz: float) -> FrequencyDroop:
        """The droop on a system of `nominal_hz`, dead bands at the same per unit."""
        ratio = rescaled(nominal_hz, self.nominal_hz)
        return replace(
            self,
            nominal_hz=nominal_hz,
            deadband_over_hz=self.deadband_over_hz * ratio,
            deadband_under_hz=self.deadband_under_hz * ratio,
        )

    def active(self, frequency_hz: float) -> bool:
        return (
            frequency_hz > self.nominal_hz + self.deadband_over_hz
            or frequency_hz < self.nominal_hz - self.deadband_under_hz
        )

    def adjust_pu(self, before_pu: float, frequency_hz: float, upward_room_pu: float) -> float:
        """Output from the pre-disturbance output: down with over-frequency, up with
        under-frequency but never past `upward_room_pu` (what the resource may give)."""
        over = frequency_hz - (self.nominal_hz + self.deadband_over_hz)
        if over > 0:
            return before_pu - over / (self.nominal_hz * self.droop_over)
        under = (self.nominal_hz - self.deadband_under_hz) - frequency_hz
        if under > 0:
            raised = before_pu + under / (self.nominal_hz * self.droop_under)
            return min(raised, max(before_pu, upward_room_pu))
        return before_pu


@dataclass(frozen=True)
class FrequencyWatt:
    """2030.5's opModFreqWatt: active power against frequency as a curve (x in Hz, y in per
    unit of setMaxW), in force instead of the droop parameters. The curve caps output at every
    frequency: falling with over-frequency it curtails injection, and below zero it makes the
    DER absorb. It never forces injection; 2030.5's hysteresis is not modelled (the curve is
    read as one piecewise-linear function both ways)."""

    curve: Curve
    response_s: float = 5.0

    def cap_pu(self, frequency_hz: float) -> float:
        return self.curve(frequency_hz)

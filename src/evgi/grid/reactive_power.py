"""The reactive power modes of IEEE 1547-2018 (clause 5.3): constant power factor, volt-var,
watt-var and constant var, with the Category B defaults.

One mode is in force at a time, chosen by the area EPS operator. Reactive power is in per unit
of the nameplate apparent power, positive when injecting (over-excited), as 1547 counts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from evgi.core.errors import ValidationError
from evgi.grid.curve import Curve

# Category B must inject or absorb 44 % of nameplate apparent power (1547 table 7).
CATEGORY_B_REACTIVE_PU = 0.44

# 1547 table 8, Category B, with VRef = VN.
CATEGORY_B_VOLT_VAR = Curve(((0.92, 0.44), (0.98, 0.0), (1.02, 0.0), (1.08, -0.44)))

# 1547 table 10, Category B: P in per unit of Prated; absorbing reactive power at full output.
CATEGORY_B_WATT_VAR = Curve(((0.2, 0.0), (0.5, 0.0), (1.0, -0.44)))


@dataclass(frozen=True)
class ConstantPowerFactor:
    """The default mode of 1547 (clause 5.3.1), at unity unless the operator says otherwise."""

    power_factor: float = 1.0
    injecting: bool = True
    response_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.power_factor <= 1.0:
            raise ValidationError(f"power factor must be in (0, 1], got {self.power_factor}")

    def var_pu(self, active_pu: float, voltage_pu: float) -> float:
        magnitude = abs(active_pu) * math.tan(math.acos(self.power_factor))
        return magnitude if self.injecting else -magnitude


@dataclass(frozen=True)
class VoltVar:
    curve: Curve = CATEGORY_B_VOLT_VAR
    response_s: float = 5.0

    def var_pu(self, active_pu: float, voltage_pu: float) -> float:
        return self.curve(voltage_pu)


@dataclass(frozen=True)
class WattVar:
    """Reactive power follows active output; while charging (absorbing active power) the
    default P' curve of 1547 asks for none."""

    curve: Curve = CATEGORY_B_WATT_VAR
    absorbing_curve: Curve = field(default_factory=lambda: Curve(((0.2, 0.0), (1.0, 0.0))))
    response_s: float = 10.0

    def var_pu(self, active_pu: float, voltage_pu: float) -> float:
        if active_pu >= 0:
            return self.curve(active_pu)
        return self.absorbing_curve(-active_pu)


@dataclass(frozen=True)
class ConstantVar:
    reactive_pu: float
    response_s: float = 10.0

    def var_pu(self, active_pu: float, voltage_pu: float) -> float:
        return self.reactive_pu


ReactivePowerMode = ConstantPowerFactor | VoltVar | WattVar | ConstantVar

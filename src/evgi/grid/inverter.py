"""A simulated bidirectional EV inverter under IEEE 1547-2018, and the clamp that keeps the
consumer layer inside the grid's limits.

Whatever the consumer layer asks (charge, discharge, reactive power) passes through `dispatch`
before it reaches the power stage: the limits of the grid control in force (an active DERControl
or the DefaultDERControl), the 1547 curves at the measured voltage and frequency and the
protection state all bound it, so the grid side always wins.

Seed 001's two cases: with DC charging the inverter sits in the EVSE and applies the settings
itself; with AC charging it sits in the vehicle and the EVSE relays the settings to it, and a
vehicle that cannot receive 1547 functions may charge but never discharge.

The 1547 defaults follow the rating's nominal frequency (grid/nominal_frequency.py), so one
inverter serves a 50 Hz system as well as a 60 Hz one.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from evgi.core.errors import ValidationError
from evgi.grid.active_power import FrequencyDroop, FrequencyWatt, VoltWatt
from evgi.grid.curve import Curve
from evgi.grid.reactive_power import (
    CATEGORY_B_REACTIVE_PU,
    ConstantPowerFactor,
    ConstantVar,
    ReactivePowerMode,
    VoltVar,
    WattVar,
)
from evgi.grid.resources import ControlBase, DerCurve
from evgi.grid.ride_through import (
    CATEGORY_III,
    AbnormalCategory,
    Condition,
    EnterService,
    RideThrough,
    TripSetting,
)

# 2030.5 DERUnitRefType values that put a curve's y axis in reactive power.
_VAR_REFERENCES = {2, 3}
# Must-trip curves: each point (clearing time in s, threshold) is one trip setting; voltage
# thresholds are percent of VRef, frequency thresholds are Hz.
_MUST_TRIP = {
    "opModHVRTMustTrip": ("HV", True, True),
    "opModLVRTMustTrip": ("LV", False, True),
    "opModHFRTMustTrip": ("HF", True, False),
    "opModLFRTMustTrip": ("LF", False, False),
}


class Coupling(enum.StrEnum):
    AC = "ac"  # inverter in the vehicle, settings relayed by the EVSE
    DC = "dc"  # inverter in the EVSE


@dataclass(frozen=True)
class Rating:
    """Nameplate of the inverter; 2030.5's setMaxW is `max_discharge_w`."""

    max_charge_w: float
    max_discharge_w: float
    apparent_va: float
    nominal_v: float = 240.0
    nominal_hz: float = 60.0
    reactive_pu: float = CATEGORY_B_REACTIVE_PU

    def __post_init__(self) -> None:
        if min(self.max_charge_w, self.max_discharge_w) < 0:
            raise ValidationError("rated charge and discharge power cannot be negative")
        if self.apparent_va <= 0 or self.nominal_v <= 0 or self.nominal_hz <= 0:
            raise ValidationError("apparent power, nominal voltage and frequency must be positive")

    @property
    def rated_w(self) -> float:
        """Per-unit base of droop and watt-var, which act on charging and discharging alike."""
        return max(self.max_charge_w, self.max_discharge_w, 1.0)

    @property
    def max_var(self) -> float:
        return self.reactive_pu * self.apparent_va


@dataclass(frozen=True)
class GridControl:
    """The grid's settings in force: which functions run and the limits they set."""

    energize: bool = True
    max_limit_pu: float | None = None
    target_w: float | None = None
    # None only when the operator leaves reactive power to the site; 1547's default is unity
    # power factor, which leaves the consumer layer no reactive power at all.
    reactive: ReactivePowerMode | None = field(default_factory=ConstantPowerFactor)
    volt_watt: VoltWatt | None = None
    droop: FrequencyDroop = field(default_factory=FrequencyDroop)
    # A frequency-watt curve, when the operator gives one, stands in for the droop.
    freq_watt: FrequencyWatt | None = None
    voltage_trips: tuple[TripSetting, ...] = ()
    frequency_trips: tuple[TripSetting, ...] = ()
    # 2030.5 rampTms: the time the move from the previous settings to these takes.
    ramp_s: float | None = None

    @classmethod
    def defaults(cls, rating: Rating) -> GridControl:
        """1547's defaults on the rating's system, before any 2030.5 control."""
        return cls(droop=FrequencyDroop().at_nominal(rating.nominal_hz))

    def droops(self, frequency_hz: float) -> bool:
        """Whether the droop parameters act now (never while a frequency-watt curve rules)."""
        return self.freq_watt is None and self.droop.active(frequency_hz)

    @classmethod
    def from_control_base(
        cls,
        base: ControlBase,
        curves: Mapping[str, DerCurve],
        rating: Rating,
        under: GridControl | None = None,
    ) -> GridControl:
        """The settings a 2030.5 DERControlBase puts in force over `under` (the defaults
        when none); `curves` maps the hrefs of the program's DERCurves to the curves."""
        control = under or cls.defaults(rating)

        def curve(name: str, y_scale: float = 1.0) -> Curve:
            der_curve = _linked_curve(base, name, curves)
            per_unit = Curve.from_der_curve(der_curve)
            if der_curve.y_ref_type in _VAR_REFERENCES:
                y_scale = rating.reactive_pu
            return Curve(tuple((x, y * y_scale) for x, y in per_unit.points))

        energize = bool(base.get("opModConnect", True)) and bool(base.get("opModEnergize", True))
        # rampTms is about the move into this control alone; absent, the change is immediate.
        ramp_s = _number(base["rampTms"]) / 100 if "rampTms" in base else None
        control = replace(control, energize=energize, ramp_s=ramp_s)
        if "opModMaxLimW" in base:
            control = replace(control, max_limit_pu=_number(base["opModMaxLimW"]) / 10000)
        if "opModFixedW" in base:
            share = _number(base["opModFixedW"]) / 10000
            rated = rating.max_discharge_w if share >= 0 else rating.max_charge_w
            control = replace(control, target_w=share * rated)
        if "opModTargetW" in base:
            control = replace(control, target_w=_scaled(base["opModTargetW"]))
        for name in ("opModFixedPFInjectW", "opModFixedPFAbsorbW"):
            if name in base:
                value = _parts(base[name], name)
                factor = _number(value.get("displacement")) * _power_of_ten(
                    value.get("multiplier", 0)
                )
                injecting = not bool(value.get("excitation", False))
                control = replace(control, reactive=ConstantPowerFactor(factor, injecting))
        if "opModFixedVar" in base:
            share = _number(_parts(base["opModFixedVar"], "opModFixedVar").get("value")) / 10000
            control = replace(control, reactive=ConstantVar(share * rating.reactive_pu))
        if "opModTargetVar" in base:
            var = _scaled(base["opModTargetVar"])
            control = replace(control, reactive=ConstantVar(var / rating.apparent_va))
        if "opModVoltVar" in base:
            control = replace(control, reactive=VoltVar(curve("opModVoltVar")))
        if "opModWattVar" in base:
            control = replace(control, reactive=WattVar(curve("opModWattVar")))
        if "opModVoltWatt" in base:
            control = replace(control, volt_watt=VoltWatt(curve("opModVoltWatt")))
        if "opModFreqDroop" in base:
            droop = _parts(base["opModFreqDroop"], "opModFreqDroop")
            control = replace(
                control,
                droop=FrequencyDroop(
                    nominal_hz=rating.nominal_hz,
                    deadband_over_hz=_number(droop.get("dBOF")) / 1000,
                    deadband_under_hz=_number(droop.get("dBUF")) / 1000,
                    droop_over=_number(droop.get("kOF")) / 1000,
                    droop_under=_number(droop.get("kUF")) / 1000,
                    response_s=_number(droop.get("openLoopTms")) / 100,
                ),
                freq_watt=None,
            )
        if "opModFreqWatt" in base:
            linked = _linked_curve(base, "opModFreqWatt", curves)
            frequency_watt = Curve.from_der_curve(linked, x_in_percent=False)
            control = replace(
                control, freq_watt=FrequencyWatt(frequency_watt, control.droop.response_s)
            )
        return _with_trips(control, base, curves)


def _with_trips(
    control: GridControl, base: ControlBase, curves: Mapping[str, DerCurve]
) -> GridControl:
    """Must-trip curves as trip settings, each point (clearing time, threshold) one setting."""
    for name, (prefix, over, voltage) in _MUST_TRIP.items():
        if name not in base:
            continue
        curve = _linked_curve(base, name, curves)
        x_scale = _power_of_ten(curve.x_multiplier)
        y_scale = _power_of_ten(curve.y_multiplier) / (100 if voltage else 1)
        settings = tuple(
            TripSetting(f"{prefix}{i}", y * y_scale, x * x_scale, over)
            for i, (x, y) in enumerate(curve.points, 1)
        )
        if voltage:
            kept = tuple(s for s in control.voltage_trips if s.over != over)
            control = replace(control, voltage_trips=kept + settings)
        else:
            kept = tuple(s for s in control.frequency_trips if s.over != over)
            control = replace(control, frequency_trips=kept + settings)
    return control


def _linked_curve(base: ControlBase, name: str, curves: Mapping[str, DerCurve]) -> DerCurve:
    link = base[name]
    href = str(link["href"]) if isinstance(link, dict) else ""
    if href not in curves:
        raise ValidationError(f"{name} refers to {href!r}, which is not a DERCurve")
    return curves[href]


def _parts(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must carry its parts")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"expected a number, got {value!r}")
    return float(value)


def _scaled(value: object) -> float:
    """ActivePower / ReactivePower: value times ten to the multiplier."""
    parts = _parts(value, "power")
    return _number(parts.get("value")) * _power_of_ten(parts.get("multiplier", 0))


def _power_of_ten(multiplier: object) -> float:
    return float(10.0 ** _number(multiplier))


@dataclass(frozen=True)
class Setpoint:
    """What the consumer layer asks: positive W discharges, negative W charges; its reactive
    power counts only where the grid's control sets no reactive power mode."""

    active_w: float
    reactive_var: float = 0.0


@dataclass(frozen=True)
class Command:
    """What reaches the power stage, with the active power envelope in force at the time."""

    active_w: float
    reactive_var: float
    active_low_w: float
    active_high_w: float


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def dispatch(
    rating: Rating,
    control: GridControl,
    setpoint: Setpoint,
    voltage_pu: float,
    frequency_hz: float,
    *,
    may_discharge: bool = True,
    follow_target: bool = True,
    fraction: float = 1.0,
) -> Command:
    """The power stage command for `setpoint` under `control` at the measured voltage and
    frequency: `fraction` is what protection allows (0 tripped or ceased, ramping on entry)."""
    if not control.energize:
        fraction = 0.0
    high = rating.max_discharge_w if may_discharge else 0.0
    if control.max_limit_pu is not None:
        high = min(high, max(control.max_limit_pu, 0.0) * rating.max_discharge_w)
    if control.volt_watt is not None:
        cap = control.volt_watt.injection_cap_pu(voltage_pu)
        high = min(high, max(cap, 0.0) * rating.max_discharge_w)
    low = -rating.max_charge_w * fraction
    high *= fraction
    if control.freq_watt is not None:
        cap = control.freq_watt.cap_pu(frequency_hz) * rating.max_discharge_w
        high = _clamp(cap, low, high)
    asked = setpoint.active_w
    if control.target_w is not None and follow_target:
        asked = control.target_w
    active = _clamp(asked, low, high)
    # The reactive mode works from the dispatched output; the droop's fast response then moves
    # active power within what apparent power leaves, so it never pushes the other way.
    if control.reactive is None:
        reactive = setpoint.reactive_var
    else:
        reactive = control.reactive.var_pu(active / rating.rated_w, voltage_pu) * rating.apparent_va
    reactive = _clamp(reactive, -rating.max_var, rating.max_var) * fraction
    if control.droops(frequency_hz):
        room = high if active > 0 else 0.0
        adjusted = control.droop.adjust_pu(
            active / rating.rated_w, frequency_hz, room / rating.rated_w
        )
        active = _clamp(adjusted * rating.rated_w, low, high)
    # Reactive power has priority: active power gives way within the apparent power rating.
    room = math.sqrt(max(rating.apparent_va**2 - reactive**2, 0.0))
    low, high = max(low, -room), min(high, room)
    high = max(high, low)
    return Command(_clamp(active, low, high), reactive, low, high)


@dataclass(frozen=True)
class Output:
    at: datetime
    active_w: float
    reactive_var: float
    condition: Condition
    command: Command


def _approach(value: float, target: float, dt_s: float, response_s: float) -> float:
    """First-order response that covers 90 % of a step in `response_s` (1547's open-loop
    response time)."""
    if response_s <= 0 or dt_s <= 0:
        return target if response_s <= 0 else value
    return target + (value - target) * math.exp(-dt_s * math.log(10) / response_s)


@dataclass
class _Ramp:
    """A move to new settings over 2030.5's rampTms, from the output when they came."""

    from_active_w: float
    from_reactive_var: float
    duration_s: float
    started: datetime | None = None

    def progress(self, at: datetime) -> float:
        if self.started is None:
            self.started = at
        return (at - self.started).total_seconds() / self.duration_s


class Inverter:
    """One inverter fed measurements in time order; see the module docstring for AC and DC.
    The 1547 defaults of `category` and `enter_service` are carried to the rating's nominal
    frequency."""

    def __init__(
        self,
        rating: Rating,
        coupling: Coupling = Coupling.DC,
        *,
        accepts_grid_functions: bool = True,
        category: AbnormalCategory = CATEGORY_III,
        enter_service: EnterService | None = None,
        setpoint_response_s: float = 1.0,
    ) -> None:
        self.rating = rating
        self.coupling = coupling
        self.accepts_grid_functions = accepts_grid_functions
        self.category = category.at_nominal(rating.nominal_hz)
        self.protection = RideThrough(
            self.category, (enter_service or EnterService()).at_nominal(rating.nominal_hz)
        )
        self.setpoint_response_s = setpoint_response_s
        self.control = GridControl.defaults(rating)
        self.setpoint = Setpoint(0.0)
        self.opted_out = False
        self.active_w = 0.0
        self.reactive_var = 0.0
        self._last: datetime | None = None
        self._ramp: _Ramp | None = None

    @property
    def may_discharge(self) -> bool:
        """An AC vehicle that cannot take 1547 settings from the EVSE must not discharge."""
        return self.coupling is Coupling.DC or self.accepts_grid_functions

    def apply(self, control: GridControl) -> None:
        """Put `control` in force. A change that carries a ramp time (rampTms) moves the
        output there linearly over that time, limits included; without one, at once."""
        if control != self.control:
            self._ramp = None
            if control.ramp_s:
                self._ramp = _Ramp(self.active_w, self.reactive_var, control.ramp_s)
        self.control = control
        self.protection.category = self.category.overridden(
            control.voltage_trips, control.frequency_trips
        )

    def relayed_control(self) -> GridControl | None:
        """What the EVSE passes on to the vehicle (AC only; a DC EVSE applies it itself)."""
        if self.coupling is Coupling.AC and self.accepts_grid_functions:
            return self.control
        return None

    def request(self, setpoint: Setpoint) -> None:
        """The consumer layer's ask, clamped on every command."""
        self.setpoint = setpoint

    def decline_dispatch(self, opted_out: bool) -> None:
        """The driver opted out of the grid's dispatch: it frees the target, never the limits."""
        self.opted_out = opted_out

    def command(self, voltage_v: float, frequency_hz: float, fraction: float = 1.0) -> Command:
        return dispatch(
            self.rating,
            self.control,
            self.setpoint,
            voltage_v / self.rating.nominal_v,
            frequency_hz,
            may_discharge=self.may_discharge,
            follow_target=not self.opted_out,
            fraction=fraction,
        )

    def step(self, at: datetime, voltage_v: float, frequency_hz: float) -> Output:
        """Advance to `at` with the measured voltage and frequency."""
        voltage_pu = voltage_v / self.rating.nominal_v
        fraction = self.protection.observe(at, voltage_pu, frequency_hz, self.control.energize)
        dt_s = 0.0 if self._last is None else (at - self._last).total_seconds()
        self._last = at
        target = self.command(voltage_v, frequency_hz, fraction)
        # Limits that do not depend on the curves hold at once; curve responses take their
        # open-loop response time.
        hard = dispatch(
            self.rating,
            replace(self.control, volt_watt=None, freq_watt=None),
            self.setpoint,
            voltage_pu,
            self.rating.nominal_hz,
            may_discharge=self.may_discharge,
            fraction=fraction,
        )
        ramp = self._ramp
        progress = 1.0 if ramp is None else ramp.progress(at)
        if ramp is not None and progress < 1.0:
            # Protection still acts at once; the control's own limits follow the ramp.
            active = ramp.from_active_w + (target.active_w - ramp.from_active_w) * progress
            reactive = (
                ramp.from_reactive_var + (target.reactive_var - ramp.from_reactive_var) * progress
            )
            low = -self.rating.max_charge_w * fraction
            high = (self.rating.max_discharge_w if self.may_discharge else 0.0) * fraction
        else:
            self._ramp = None
            active = _approach(
                self.active_w, target.active_w, dt_s, self._response_s(target, hard, frequency_hz)
            )
            mode = self.control.reactive
            reactive_response_s = self.setpoint_response_s if mode is None else mode.response_s
            reactive = _approach(self.reactive_var, target.reactive_var, dt_s, reactive_response_s)
            low, high = hard.active_low_w, hard.active_high_w
        limit_var = self.rating.max_var * fraction
        reactive = _clamp(reactive, -limit_var, limit_var)
        room = math.sqrt(max(self.rating.apparent_va**2 - reactive**2, 0.0))
        self.active_w = _clamp(active, max(low, -room), min(high, room))
        self.reactive_var = reactive
        return Output(at, self.active_w, self.reactive_var, self.protection.condition, target)

    def _response_s(self, target: Command, hard: Command, frequency_hz: float) -> float:
        """Open-loop response of the function that moves output now: the droop, or the
        slowest curve that bounds it, else the setpoint's own."""
        control = self.control
        if control.droops(frequency_hz):
            return control.droop.response_s
        if target.active_high_w < hard.active_high_w or target.active_low_w > hard.active_low_w:
            curves = (control.volt_watt, control.freq_watt)
            return max(
                (c.response_s for c in curves if c is not None), default=self.setpoint_response_s
            )
        return self.setpoint_response_s

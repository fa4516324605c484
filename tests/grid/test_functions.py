"""The IEEE 1547-2018 functions against worked points of their Category B default curves, and
trip, ride-through and enter service over voltage and frequency time series."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from evgi.core.errors import ValidationError
from evgi.grid.active_power import FrequencyDroop, VoltWatt
from evgi.grid.curve import Curve
from evgi.grid.reactive_power import ConstantPowerFactor, ConstantVar, VoltVar, WattVar
from evgi.grid.ride_through import CATEGORY_II, CATEGORY_III, Condition, EnterService, RideThrough

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("voltage_pu", "var_pu"),
    [
        (0.85, 0.44),
        (0.92, 0.44),
        (0.95, 0.22),
        (0.98, 0.0),
        (1.0, 0.0),
        (1.05, -0.22),
        (1.2, -0.44),
    ],
)
def test_volt_var_category_b(voltage_pu: float, var_pu: float) -> None:
    assert VoltVar().var_pu(0.5, voltage_pu) == pytest.approx(var_pu)


@pytest.mark.parametrize(
    ("voltage_pu", "cap_pu"), [(1.0, 1.0), (1.06, 1.0), (1.07, 0.75), (1.08, 0.5), (1.12, 0.0)]
)
def test_volt_watt_category_b(voltage_pu: float, cap_pu: float) -> None:
    assert VoltWatt().injection_cap_pu(voltage_pu) == pytest.approx(cap_pu)


@pytest.mark.parametrize(
    ("active_pu", "var_pu"), [(0.1, 0.0), (0.5, 0.0), (0.75, -0.22), (1.0, -0.44), (-0.8, 0.0)]
)
def test_watt_var_category_b(active_pu: float, var_pu: float) -> None:
    assert WattVar().var_pu(active_pu, 1.0) == pytest.approx(var_pu)


def test_constant_power_factor_and_constant_var() -> None:
    assert ConstantPowerFactor().var_pu(1.0, 1.0) == 0.0
    injecting = ConstantPowerFactor(0.9, injecting=True).var_pu(-1.0, 1.0)
    assert injecting == pytest.approx(math.tan(math.acos(0.9)))
    assert ConstantPowerFactor(0.9, injecting=False).var_pu(0.5, 1.0) == pytest.approx(
        -0.5 * math.tan(math.acos(0.9))
    )
    assert ConstantVar(-0.3).var_pu(0.7, 1.1) == -0.3
    with pytest.raises(ValidationError, match="power factor"):
        ConstantPowerFactor(1.2)


def test_frequency_droop_worked_points() -> None:
    droop = FrequencyDroop()
    # 0.5 Hz past the 36 mHz dead band at 5 % droop is 0.5 / 3 per unit less output.
    assert droop.adjust_pu(1.0, 60.536, 1.0) == pytest.approx(1.0 - 0.5 / 3)
    assert droop.adjust_pu(0.5, 59.464, 1.0) == pytest.approx(0.5 + 0.5 / 3)
    # Under-frequency never asks for more than the resource may give.
    assert droop.adjust_pu(0.5, 57.0, 0.6) == pytest.approx(0.6)
    assert droop.adjust_pu(0.4, 60.03, 1.0) == 0.4
    assert not droop.active(60.036) and droop.active(60.04)
    with pytest.raises(ValidationError):
        FrequencyDroop(droop_over=0)


def test_curve_is_flat_beyond_its_ends_and_refuses_bad_points() -> None:
    curve = Curve(((1.0, 2.0), (2.0, 4.0)))
    assert (curve(0.0), curve(1.5), curve(9.0)) == (2.0, 3.0, 4.0)
    with pytest.raises(ValidationError, match="strictly increase"):
        Curve(((1.0, 0.0), (1.0, 1.0)))
    with pytest.raises(ValidationError, match="two points"):
        Curve(((1.0, 0.0),))


def run(monitor: RideThrough, series: list[tuple[float, float, float]]) -> list[float]:
    """Feed (seconds, voltage pu, frequency Hz) samples; the allowed output fractions."""
    return [monitor.observe(T0 + timedelta(seconds=s), v, f) for s, v, f in series]


def test_category_ii_over_voltage_rides_through_then_trips() -> None:
    monitor = RideThrough(CATEGORY_II)
    fractions = run(monitor, [(0, 1.0, 60), (1, 1.15, 60), (2.9, 1.15, 60)])
    assert fractions == [1.0, 1.0, 1.0] and monitor.condition is Condition.IN_SERVICE
    assert run(monitor, [(3.0, 1.15, 60)]) == [0.0]
    assert monitor.condition is Condition.TRIPPED and monitor.tripped_by == "OV1"


def test_category_iii_momentary_cessation_then_recovery_without_trip() -> None:
    monitor = RideThrough(CATEGORY_III)
    fractions = run(monitor, [(0, 1.0, 60), (0.1, 0.4, 60), (1.5, 0.4, 60), (1.6, 0.95, 60)])
    assert fractions == [1.0, 0.0, 0.0, 1.0]
    assert monitor.condition is Condition.IN_SERVICE and monitor.tripped_by is None


def test_category_iii_deep_sag_trips_uv2_and_long_sag_trips_uv1() -> None:
    deep = RideThrough(CATEGORY_III)
    run(deep, [(0, 0.4, 60), (2.0, 0.4, 60)])
    assert deep.condition is Condition.TRIPPED and deep.tripped_by == "UV2"
    long = RideThrough(CATEGORY_III)
    assert run(long, [(0, 0.8, 60), (20.9, 0.8, 60)]) == [1.0, 1.0]
    run(long, [(21.0, 0.8, 60)])
    assert long.tripped_by == "UV1"


def test_frequency_ride_through_and_trips() -> None:
    monitor = RideThrough()
    assert run(monitor, [(0, 1.0, 61.5), (299, 1.0, 61.5)]) == [1.0, 1.0]
    run(monitor, [(300, 1.0, 61.5)])
    assert monitor.tripped_by == "OF1"
    fast = RideThrough()
    run(fast, [(0, 1.0, 62.1), (0.1, 1.0, 62.1), (0.2, 1.0, 62.1)])
    assert fast.tripped_by == "OF2"
    # A short excursion that returns before the clearing time resets the timer.
    brief = RideThrough()
    run(brief, [(0, 1.0, 56.0), (0.1, 1.0, 60.0), (0.2, 1.0, 56.0), (0.3, 1.0, 56.0)])
    assert brief.condition is Condition.IN_SERVICE


def test_settings_carry_to_a_50_hz_system_at_the_same_per_unit() -> None:
    category = CATEGORY_III.at_nominal(50.0)
    trips = {s.name: s.threshold for s in category.frequency_trips}
    expected = {"OF2": 62.0 * 5 / 6, "OF1": 51.0, "UF1": 48.75, "UF2": 56.5 * 5 / 6}
    assert trips == pytest.approx(expected)
    assert category.at_nominal(50.0) == category
    back = {s.name: s.threshold for s in category.at_nominal(60.0).frequency_trips}
    assert back == pytest.approx({s.name: s.threshold for s in CATEGORY_III.frequency_trips})
    window = EnterService().at_nominal(50.0)
    assert (window.frequency_low_hz, window.frequency_high_hz) == pytest.approx(
        (59.5 * 5 / 6, 60.1 * 5 / 6)
    )
    droop = FrequencyDroop().at_nominal(50.0)
    assert (droop.nominal_hz, droop.deadband_over_hz) == pytest.approx((50.0, 0.030))
    # At its nominal frequency a 50 Hz DER stays in service; 60 Hz settings would trip it.
    fifty = RideThrough(category, window)
    assert run(fifty, [(0, 1.0, 50.0), (1, 1.0, 50.0)]) == [1.0, 1.0]
    sixty = RideThrough()
    run(sixty, [(0, 1.0, 50.0), (1, 1.0, 50.0)])
    assert sixty.tripped_by == "UF2"
    run(fifty, [(2, 1.0, 51.8), (2.2, 1.0, 51.8)])
    assert fifty.tripped_by == "OF2"
    # Enter service after a trip waits for the 50 Hz window, not the 60 Hz one.
    assert run(fifty, [(3, 1.0, 50.0), (303, 1.0, 50.0), (603, 1.0, 50.0)])[2] == 1.0
    with pytest.raises(ValidationError, match="positive"):
        EnterService().at_nominal(0.0)


def test_enter_service_waits_the_delay_then_ramps() -> None:
    monitor = RideThrough(CATEGORY_II, EnterService())
    run(monitor, [(0, 1.25, 60), (0.2, 1.25, 60)])
    assert monitor.condition is Condition.TRIPPED
    # Outside the enter service window (1.06 > 1.05 pu) nothing happens however long.
    assert run(monitor, [(10, 1.06, 60), (1000, 1.06, 60)]) == [0.0, 0.0]
    fractions = run(
        monitor, [(1001, 1.0, 60), (1300, 1.0, 60.05), (1451, 1.0, 60), (1601, 1.0, 60)]
    )
    assert fractions[:2] == [0.0, 0.0]
    assert fractions[2] == pytest.approx(0.5)
    assert fractions[3] == 1.0 and monitor.condition is Condition.IN_SERVICE


def test_cease_to_energize_needs_enter_service_again() -> None:
    monitor = RideThrough(enter_service=EnterService(delay_s=10, ramp_s=0))
    assert monitor.observe(T0, 1.0, 60, energize=False) == 0.0
    assert monitor.condition is Condition.CEASED
    assert monitor.observe(T0 + timedelta(seconds=1), 1.0, 60) == 0.0
    assert monitor.observe(T0 + timedelta(seconds=11), 1.0, 60) == 1.0


def test_measurements_must_be_aware_and_in_order() -> None:
    monitor = RideThrough()
    with pytest.raises(ValidationError, match="timezone-aware"):
        monitor.observe(datetime(2026, 1, 1), 1.0, 60)
    monitor.observe(T0, 1.0, 60)
    with pytest.raises(ValidationError, match="older"):
        monitor.observe(T0 - timedelta(seconds=1), 1.0, 60)
    assert monitor.condition is Condition.IN_SERVICE

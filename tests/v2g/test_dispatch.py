"""Real-time dispatch, property-based: the setpoint is met whenever the vehicles can meet it, no
vehicle leaves its limits or its grid cap, and vehicles without consent never export."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evgi.core.errors import ValidationError
from evgi.v2g import VehicleStates, dispatch, share

INTERVAL_S = 60.0
SLACK_W = 1e-6


@st.composite
def fleets(draw: st.DrawFn) -> VehicleStates:
    n = draw(st.integers(1, 40))

    def watts(high: float) -> np.ndarray:
        return draw(arrays(np.float64, n, elements=st.floats(0, high)))

    capacity = draw(arrays(np.float64, n, elements=st.floats(10_000, 100_000)))
    floor = capacity * draw(arrays(np.float64, n, elements=st.floats(0, 0.5)))
    soc = capacity * draw(arrays(np.float64, n, elements=st.floats(0, 1)))
    return VehicleStates(
        soc_wh=soc,
        floor_wh=floor,
        capacity_wh=capacity,
        max_charge_w=watts(22_000),
        max_discharge_w=watts(22_000),
        grid_import_cap_w=watts(30_000),
        grid_export_cap_w=watts(30_000),
        discharge_allowed=draw(arrays(np.bool_, n)),
        charge_efficiency=draw(arrays(np.float64, n, elements=st.floats(0.8, 1))),
        discharge_efficiency=draw(arrays(np.float64, n, elements=st.floats(0.8, 1))),
    )


setpoints = st.floats(-500_000, 500_000)


@settings(max_examples=150, deadline=None)
@given(fleets(), setpoints, st.floats(0, 400_000), st.floats(0, 400_000))
def test_dispatch_meets_feasible_setpoints_within_every_limit(
    vehicles: VehicleStates, setpoint: float, import_cap: float, export_cap: float
) -> None:
    result = dispatch(
        setpoint,
        vehicles,
        interval_s=INTERVAL_S,
        feeder_import_cap_w=import_cap,
        feeder_export_cap_w=export_cap,
    )
    power = result.power_w
    lower, upper = vehicles.limits(INTERVAL_S)
    assert np.all(power >= lower - SLACK_W) and np.all(power <= upper + SLACK_W)
    assert np.all(power <= vehicles.max_charge_w + SLACK_W)
    assert np.all(power <= vehicles.grid_import_cap_w + SLACK_W)
    assert np.all(-power <= vehicles.max_discharge_w + SLACK_W)
    assert np.all(-power <= vehicles.grid_export_cap_w + SLACK_W)
    assert np.all(power[~vehicles.discharge_allowed] >= 0)
    # Discharging never takes a vehicle below its floor within the interval.
    hours = INTERVAL_S / 3600
    after = vehicles.soc_wh + np.minimum(power, 0) * hours / vehicles.discharge_efficiency
    assert np.all(after >= np.minimum(vehicles.floor_wh, vehicles.soc_wh) - 1e-6)
    total = power.sum()
    assert -export_cap - SLACK_W <= total <= import_cap + SLACK_W
    reachable = min(max(setpoint, lower.sum(), -export_cap), upper.sum(), import_cap)
    assert total == pytest.approx(reachable, rel=1e-9, abs=1e-6)
    # No vehicle charges while another exports, or the other way round.
    assert not (np.any(power > SLACK_W) and np.any(power < -SLACK_W))


@settings(max_examples=100, deadline=None)
@given(
    arrays(np.float64, 20, elements=st.floats(-20_000, 0)),
    arrays(np.float64, 20, elements=st.floats(0, 20_000)),
    setpoints,
)
def test_shares_are_proportional_to_headroom(
    lower: np.ndarray, upper: np.ndarray, setpoint: float
) -> None:
    power = share(np.array([setpoint]), lower, upper)
    headroom = upper if setpoint >= 0 else -lower
    used = np.abs(power)
    # Every vehicle uses the same fraction of its headroom in the setpoint's direction.
    fraction = used.sum() / headroom.sum() if headroom.sum() > 0 else 0.0
    np.testing.assert_allclose(used, fraction * headroom, rtol=1e-9, atol=1e-6)


def test_grouped_share_meets_each_group_and_forced_charging_stays() -> None:
    lower = np.array([1_000.0, -5_000.0, 0.0, -2_000.0])
    upper = np.array([5_000.0, 5_000.0, 3_000.0, 2_000.0])
    groups = np.array([0, 0, 1, 1], dtype=np.intp)
    power = share(np.array([-3_000.0, 4_000.0]), lower, upper, groups)
    assert power[0] == pytest.approx(1_000.0)  # forced charge kept although group exports
    assert power[:2].sum() == pytest.approx(-3_000.0)
    assert power[2:].sum() == pytest.approx(4_000.0)


def test_bad_dispatch_input_is_refused() -> None:
    ok = dict(
        soc_wh=np.array([30_000.0]),
        floor_wh=np.array([10_000.0]),
        capacity_wh=np.array([60_000.0]),
        max_charge_w=np.array([11_000.0]),
        max_discharge_w=np.array([11_000.0]),
        grid_import_cap_w=np.array([11_000.0]),
        grid_export_cap_w=np.array([11_000.0]),
        discharge_allowed=np.array([True]),
        charge_efficiency=np.array([0.95]),
        discharge_efficiency=np.array([0.95]),
    )
    vehicles = VehicleStates(**ok)
    with pytest.raises(ValidationError, match="finite"):
        dispatch(float("nan"), vehicles)
    with pytest.raises(ValidationError, match="interval"):
        dispatch(1_000, vehicles, interval_s=0)
    with pytest.raises(ValidationError, match="same length"):
        VehicleStates(**{**ok, "soc_wh": np.array([1.0, 2.0])})
    with pytest.raises(ValidationError, match="within"):
        VehicleStates(**{**ok, "soc_wh": np.array([70_000.0])})
    with pytest.raises(ValidationError, match="efficiency"):
        VehicleStates(**{**ok, "charge_efficiency": np.array([0.0])})

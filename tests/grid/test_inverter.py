"""The simulated inverter: the grid side always wins over the consumer layer's setpoints, the
AC and DC cases of seed 001, open-loop responses and 2030.5 controls as 1547 settings."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evgi.core.errors import ValidationError
from evgi.grid.active_power import FrequencyDroop, FrequencyWatt, VoltWatt
from evgi.grid.curve import Curve
from evgi.grid.inverter import (
    Coupling,
    GridControl,
    Inverter,
    Rating,
    Setpoint,
    dispatch,
)
from evgi.grid.reactive_power import ConstantPowerFactor, ConstantVar, VoltVar, WattVar
from evgi.grid.resources import DerCurve
from evgi.grid.ride_through import Condition, EnterService

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
RATING = Rating(max_charge_w=11_000, max_discharge_w=9_600, apparent_va=11_500)
EPS = 1e-6


def test_limit_active_power_clamps_discharge_not_charge() -> None:
    control = GridControl(max_limit_pu=0.5)
    discharge = dispatch(RATING, control, Setpoint(9_000), 1.0, 60.0)
    assert discharge.active_w == pytest.approx(4_800)
    charge = dispatch(RATING, control, Setpoint(-11_000), 1.0, 60.0)
    assert charge.active_w == pytest.approx(-11_000)


def test_volt_watt_reduces_injection_at_high_voltage() -> None:
    control = GridControl(volt_watt=VoltWatt())
    command = dispatch(RATING, control, Setpoint(9_600), 1.08, 60.0)
    assert command.active_w == pytest.approx(0.5 * RATING.max_discharge_w)


def test_grid_target_wins_unless_the_driver_opted_out_yet_limits_always_hold() -> None:
    control = GridControl(target_w=6_000, max_limit_pu=0.5)
    assert dispatch(RATING, control, Setpoint(-3_000), 1.0, 60.0).active_w == pytest.approx(4_800)
    opted_out = dispatch(RATING, control, Setpoint(7_000), 1.0, 60.0, follow_target=False)
    assert opted_out.active_w == pytest.approx(4_800)


def test_frequency_droop_cuts_output_and_raises_it_within_room() -> None:
    over = dispatch(RATING, GridControl(), Setpoint(9_600), 1.0, 60.536)
    assert over.active_w == pytest.approx(9_600 - RATING.rated_w / 6)
    # A charging vehicle under-frequency gives up its charge, but is not made to discharge.
    under = dispatch(RATING, GridControl(), Setpoint(-1_000), 1.0, 59.0)
    assert under.active_w == 0.0


def test_reactive_power_has_priority_within_apparent_power() -> None:
    rating = Rating(max_charge_w=11_000, max_discharge_w=9_600, apparent_va=10_000)
    control = GridControl(reactive=VoltVar())
    # The consumer's own reactive ask gives way to the grid's mode.
    command = dispatch(rating, control, Setpoint(9_600, reactive_var=3_000), 0.90, 60.0)
    assert command.reactive_var == pytest.approx(4_400)
    assert command.active_w == pytest.approx(math.sqrt(10_000**2 - 4_400**2))


def test_ac_vehicle_without_1547_may_charge_but_never_discharge() -> None:
    inverter = Inverter(RATING, Coupling.AC, accepts_grid_functions=False)
    assert not inverter.may_discharge and inverter.relayed_control() is None
    inverter.request(Setpoint(7_000))
    assert inverter.command(240, 60).active_w == 0.0
    inverter.request(Setpoint(-7_000))
    assert inverter.command(240, 60).active_w == -7_000
    relaying = Inverter(RATING, Coupling.AC)
    relaying.apply(GridControl(max_limit_pu=0.25))
    assert relaying.relayed_control() == GridControl(max_limit_pu=0.25)
    assert Inverter(RATING, Coupling.DC).relayed_control() is None


def test_open_loop_response_reaches_ninety_percent_in_the_response_time() -> None:
    inverter = Inverter(RATING, setpoint_response_s=2.0)
    inverter.request(Setpoint(5_000))
    inverter.step(T0, 240, 60)
    output = inverter.step(T0 + timedelta(seconds=2), 240, 60)
    assert output.active_w == pytest.approx(4_500)
    # Volt-var follows its own 5 s response time.
    inverter.apply(GridControl(reactive=VoltVar()))
    output = inverter.step(T0 + timedelta(seconds=7), 0.92 * 240, 60)
    assert output.reactive_var == pytest.approx(0.9 * 0.44 * RATING.apparent_va)


def test_hard_limits_hold_at_once_and_trips_stop_output() -> None:
    inverter = Inverter(RATING, enter_service=EnterService(delay_s=5, ramp_s=10))
    inverter.request(Setpoint(9_000))
    inverter.step(T0, 240, 60)
    inverter.step(T0 + timedelta(seconds=60), 240, 60)
    inverter.apply(GridControl(max_limit_pu=0.1))
    assert inverter.step(T0 + timedelta(seconds=60.1), 240, 60).active_w <= 960 + EPS
    tripped = inverter.step(T0 + timedelta(seconds=61), 1.3 * 240, 60)
    tripped = inverter.step(T0 + timedelta(seconds=61.2), 1.3 * 240, 60)
    assert tripped.condition is Condition.TRIPPED and tripped.active_w == 0.0
    assert inverter.step(T0 + timedelta(seconds=62), 240, 60).active_w == 0.0
    inverter.apply(GridControl())
    ramping = inverter.step(T0 + timedelta(seconds=72), 240, 60)
    assert ramping.condition is Condition.ENTERING_SERVICE
    assert 0 < ramping.active_w <= 0.5 * RATING.max_discharge_w + EPS


def test_ramp_time_moves_output_linearly_to_the_new_control() -> None:
    inverter = Inverter(RATING)
    inverter.request(Setpoint(9_600))
    inverter.step(T0, 240, 60)
    assert inverter.step(T0 + timedelta(seconds=30), 240, 60).active_w == pytest.approx(9_600)
    inverter.apply(GridControl(max_limit_pu=0.5, ramp_s=10.0))
    outputs = [
        inverter.step(T0 + timedelta(seconds=30 + s), 240, 60).active_w
        for s in (0, 2.5, 5, 7.5, 10, 11)
    ]
    assert outputs == pytest.approx([9_600, 8_400, 7_200, 6_000, 4_800, 4_800])
    # The same control again is no new change; a change without a ramp time holds at once.
    inverter.apply(GridControl(max_limit_pu=0.5, ramp_s=10.0))
    inverter.apply(GridControl(max_limit_pu=0.25))
    assert inverter.step(T0 + timedelta(seconds=41.1), 240, 60).active_w == pytest.approx(2_400)
    # Protection never waits for a ramp: ceasing to energize stops output at once.
    inverter.apply(GridControl(energize=False, ramp_s=60.0))
    assert inverter.step(T0 + timedelta(seconds=42), 240, 60).active_w == 0.0


def test_frequency_watt_curve_caps_output_in_place_of_the_droop() -> None:
    freq_watt = DerCurve("/derp/1/dc/3", "C3", "fw", 0, T0, ((6000, 100), (6200, -50)), -2, 0, 1)
    curves = {"/derp/1/dc/3": freq_watt}
    base = {"opModFreqWatt": {"href": "/derp/1/dc/3"}, "rampTms": 250}
    control = GridControl.from_control_base(base, curves, RATING)
    assert control.ramp_s == 2.5 and control.freq_watt is not None
    # 61 Hz: a quarter of setMaxW; from 62 Hz the DER absorbs half of it.
    assert dispatch(RATING, control, Setpoint(9_600), 1.0, 61.0).active_w == pytest.approx(2_400)
    assert dispatch(RATING, control, Setpoint(0), 1.0, 62.5).active_w == pytest.approx(-4_800)
    # Under-frequency the curve asks nothing, where the droop would have stopped the charging.
    assert dispatch(RATING, control, Setpoint(-1_000), 1.0, 59.0).active_w == -1_000
    droop = {"dBOF": 36, "dBUF": 36, "kOF": 50, "kUF": 50, "openLoopTms": 500}
    back = GridControl.from_control_base({"opModFreqDroop": droop}, curves, RATING, control)
    assert back.freq_watt is None and back.ramp_s is None
    assert dispatch(RATING, back, Setpoint(-1_000), 1.0, 59.0).active_w == 0.0
    inverter = Inverter(RATING)
    inverter.apply(control)
    inverter.request(Setpoint(9_600))
    assert inverter.step(T0, 240, 61.0).active_w == 0.0
    # The curve takes the droop's 5 s open-loop response time to 90 % of the step.
    output = inverter.step(T0 + timedelta(seconds=5), 240, 61.0)
    assert output.active_w == pytest.approx(0.9 * 2_400)


def test_inverter_on_a_50_hz_system() -> None:
    rating = Rating(11_000, 9_600, 11_500, nominal_v=230.0, nominal_hz=50.0)
    inverter = Inverter(rating)
    assert inverter.control == GridControl.defaults(rating)
    inverter.request(Setpoint(9_600))
    inverter.step(T0, 230, 50.0)
    output = inverter.step(T0 + timedelta(seconds=30), 230, 50.0)
    assert output.condition is Condition.IN_SERVICE
    assert output.active_w == pytest.approx(9_600)
    # 5 % droop of 50 Hz beyond a 30 mHz dead band.
    expected = 9_600 - (50.53 - 50.03) / 2.5 * rating.rated_w
    assert inverter.command(230, 50.53).active_w == pytest.approx(expected)
    # 51.8 Hz is past the OF2 trip of a 50 Hz system (51.67 Hz) though far below 62 Hz.
    inverter.step(T0 + timedelta(seconds=31), 230, 51.8)
    tripped = inverter.step(T0 + timedelta(seconds=31.2), 230, 51.8)
    assert tripped.condition is Condition.TRIPPED and inverter.protection.tripped_by == "OF2"


def test_rating_refuses_nonsense() -> None:
    with pytest.raises(ValidationError):
        Rating(max_charge_w=-1, max_discharge_w=0, apparent_va=1)
    with pytest.raises(ValidationError):
        Rating(max_charge_w=1, max_discharge_w=1, apparent_va=0)


def test_control_base_from_2030_5() -> None:
    volt_var = DerCurve("/derp/1/dc/1", "C1", "vv", 11, T0, ((9200, 30), (10800, -30)), -2, 0, 2)
    base = {
        "opModMaxLimW": 5000,
        "opModFixedPFInjectW": {"displacement": 95, "multiplier": -2, "excitation": True},
        "opModFreqDroop": {"dBOF": 36, "dBUF": 36, "kOF": 40, "kUF": 40, "openLoopTms": 300},
        "opModVoltVar": {"href": "/derp/1/dc/1"},
        "opModVoltWatt": {"href": "/derp/1/dc/1"},
        "opModConnect": True,
    }
    control = GridControl.from_control_base(base, {"/derp/1/dc/1": volt_var}, RATING)
    assert control.max_limit_pu == 0.5
    assert control.droop == FrequencyDroop(60.0, 0.036, 0.036, 0.04, 0.04, 3.0)
    assert isinstance(control.reactive, VoltVar)
    assert control.reactive.var_pu(0, 0.92) == pytest.approx(0.3 * 0.44)
    assert control.volt_watt is not None and control.volt_watt.injection_cap_pu(
        1.0
    ) == pytest.approx(0, abs=1e-9)
    pf = GridControl.from_control_base(
        {"opModFixedPFAbsorbW": {"displacement": 90, "multiplier": -2, "excitation": True}},
        {},
        RATING,
    )
    assert pf.reactive == ConstantPowerFactor(0.9, injecting=False)
    fixed = GridControl.from_control_base(
        {"opModFixedW": -5000, "opModEnergize": False}, {}, RATING
    )
    assert fixed.target_w == -5_500 and not fixed.energize
    target = GridControl.from_control_base(
        {"opModTargetW": {"multiplier": 3, "value": 4}, "opModFixedVar": {"value": -5000}},
        {},
        RATING,
    )
    assert target.target_w == 4_000 and target.reactive == ConstantVar(-0.22)
    with pytest.raises(ValidationError, match="not a DERCurve"):
        GridControl.from_control_base({"opModVoltVar": {"href": "/nowhere"}}, {}, RATING)


# -- property: no consumer setpoint ever pushes output past the grid limit in force ----------

curves = st.builds(
    lambda v1, width, p2: Curve(((v1, 1.0), (v1 + width, p2))),
    st.floats(0.95, 1.1),
    st.floats(0.01, 0.1),
    st.floats(0.0, 1.0),
)
# Frequency-watt curves falling from full output somewhere above 60 Hz (x in Hz).
frequency_curves = st.builds(
    lambda f1, width, p2: Curve(((f1, 1.0), (f1 + width, p2))),
    st.floats(60.0, 61.0),
    st.floats(0.1, 2.0),
    st.floats(-1.0, 1.0),
)
reactive_modes = st.one_of(
    st.none(),
    st.builds(ConstantPowerFactor, st.floats(0.5, 1.0), st.booleans()),
    st.just(VoltVar()),
    st.just(WattVar()),
    st.builds(ConstantVar, st.floats(-1.0, 1.0)),
)
controls = st.builds(
    GridControl,
    energize=st.booleans(),
    max_limit_pu=st.none() | st.floats(0.0, 1.2),
    target_w=st.none() | st.floats(-20_000, 20_000),
    reactive=reactive_modes,
    volt_watt=st.none() | st.builds(VoltWatt, curves),
    freq_watt=st.none() | st.builds(FrequencyWatt, frequency_curves),
)
setpoints = st.builds(Setpoint, st.floats(-50_000, 50_000), st.floats(-50_000, 50_000))
voltages = st.floats(0.0, 1.5)
frequencies = st.floats(55.0, 65.0)


def assert_within(
    control: GridControl,
    voltage_pu: float,
    active_w: float,
    reactive_var: float,
    discharge: bool,
    frequency_hz: float | None = None,
) -> None:
    if not control.energize:
        assert active_w == 0.0 and reactive_var == 0.0
    assert -RATING.max_charge_w - EPS <= active_w <= RATING.max_discharge_w + EPS
    if not discharge:
        assert active_w <= EPS
    if control.max_limit_pu is not None:
        assert active_w <= max(control.max_limit_pu, 0) * RATING.max_discharge_w + EPS
    if control.volt_watt is not None:
        cap = max(control.volt_watt.curve(voltage_pu), 0.0) * RATING.max_discharge_w
        assert active_w <= cap + EPS
    if control.freq_watt is not None and frequency_hz is not None and control.energize:
        # Below the charging rating, or what apparent power leaves, the cap gives way.
        room = math.sqrt(max(RATING.apparent_va**2 - reactive_var**2, 0.0))
        cap = control.freq_watt.cap_pu(frequency_hz) * RATING.max_discharge_w
        assert active_w <= max(cap, -RATING.max_charge_w, -room) + EPS
    assert abs(reactive_var) <= RATING.max_var + EPS
    assert active_w**2 + reactive_var**2 <= RATING.apparent_va**2 * (1 + 1e-9)


@settings(max_examples=400, deadline=None)
@given(controls, setpoints, voltages, frequencies, st.booleans(), st.booleans())
def test_command_never_passes_the_grid_limit(
    control: GridControl,
    setpoint: Setpoint,
    voltage_pu: float,
    frequency_hz: float,
    discharge: bool,
    opted_out: bool,
) -> None:
    command = dispatch(
        RATING,
        control,
        setpoint,
        voltage_pu,
        frequency_hz,
        may_discharge=discharge,
        follow_target=not opted_out,
    )
    assert_within(
        control, voltage_pu, command.active_w, command.reactive_var, discharge, frequency_hz
    )
    if control.reactive is not None:
        # The grid's reactive mode decides; the consumer's reactive ask changes nothing.
        silent = dispatch(
            RATING,
            control,
            Setpoint(setpoint.active_w),
            voltage_pu,
            frequency_hz,
            may_discharge=discharge,
            follow_target=not opted_out,
        )
        assert command.reactive_var == silent.reactive_var
    if frequency_hz > 60.036 + EPS:
        without = dispatch(
            RATING,
            control,
            setpoint,
            voltage_pu,
            60.0,
            may_discharge=discharge,
            follow_target=not opted_out,
        )
        assert command.active_w <= without.active_w + EPS


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.01, 30.0), controls, setpoints, st.floats(0.85, 1.15), frequencies),
        min_size=1,
        max_size=12,
    ),
    st.booleans(),
)
def test_output_over_time_stays_within_the_hard_limits(
    steps: list[tuple[float, GridControl, Setpoint, float, float]], accepts: bool
) -> None:
    inverter = Inverter(RATING, Coupling.AC, accepts_grid_functions=accepts)
    at = T0
    inverter.step(at, 240, 60)
    for dt_s, control, setpoint, voltage_pu, frequency_hz in steps:
        at += timedelta(seconds=dt_s)
        inverter.apply(control)
        inverter.request(setpoint)
        output = inverter.step(at, voltage_pu * 240, frequency_hz)
        hard = GridControl(
            energize=control.energize, max_limit_pu=control.max_limit_pu, reactive=control.reactive
        )
        assert_within(hard, voltage_pu, output.active_w, output.reactive_var, accepts)
        if output.condition in (Condition.TRIPPED, Condition.CEASED):
            assert (output.active_w, output.reactive_var) == (0.0, 0.0)
    if inverter.protection.condition is Condition.IN_SERVICE:
        # Held long enough, the output settles on the command, curves included.
        settled = inverter.step(at + timedelta(seconds=1_000), 240, 60)
        assert settled.active_w == pytest.approx(settled.command.active_w, abs=1e-3)
        assert settled.reactive_var == pytest.approx(settled.command.reactive_var, abs=1e-3)


def test_consumer_reactive_power_only_where_the_grid_sets_no_mode() -> None:
    unity = dispatch(RATING, GridControl(), Setpoint(5_000, reactive_var=2_000), 1.0, 60.0)
    assert unity.reactive_var == 0.0
    free = GridControl(reactive=None)
    asked = dispatch(RATING, free, Setpoint(5_000, reactive_var=2_000), 1.0, 60.0)
    assert asked.reactive_var == 2_000
    capped = dispatch(RATING, free, Setpoint(5_000, reactive_var=-9_000), 1.0, 60.0)
    assert capped.reactive_var == pytest.approx(-RATING.max_var)


def test_must_trip_curves_replace_the_default_trip_settings_on_their_side() -> None:
    must_trip = DerCurve("/derp/1/dc/2", "C2", "hv", 5, T0, ((16, 12000), (200, 11000)), -2, -2)
    control = GridControl.from_control_base(
        {"opModHVRTMustTrip": {"href": "/derp/1/dc/2"}}, {"/derp/1/dc/2": must_trip}, RATING
    )
    assert [(s.name, s.threshold, s.clearing_s) for s in control.voltage_trips] == [
        ("HV1", pytest.approx(1.2), pytest.approx(0.16)),
        ("HV2", pytest.approx(1.1), pytest.approx(2.0)),
    ]
    inverter = Inverter(RATING)  # Category III: 13 s at 1.10 pu by default
    inverter.apply(control)
    names = {s.name for s in inverter.protection.category.voltage_trips}
    assert names == {"HV1", "HV2", "UV1", "UV2"}
    inverter.step(T0, 240, 60)
    inverter.step(T0 + timedelta(seconds=1), 1.15 * 240, 60)
    output = inverter.step(T0 + timedelta(seconds=3), 1.15 * 240, 60)
    assert output.condition is Condition.TRIPPED and inverter.protection.tripped_by == "HV2"

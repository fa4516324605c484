"""The day-ahead fleet plan against an exact LP written independently here (per vehicle,
state of charge as cumulative sums), and every plan checked for feasibility."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from evgi.core.errors import ValidationError
from evgi.v2g import Fleet, Grid, Plan, day_ahead, plan_fleet, soc_at_departure

TOLERANCE_WH = 1e-3


def gain_row(
    fleet: Fleet, i: int, slots: int, dt: float, upto: int, sign: float
) -> dict[int, float]:
    """Vehicle i's energy gained over its first `upto` slots, as an LP row (times `sign`)."""
    c0, g0 = 2 * i * slots, 2 * i * slots + slots
    row = {c0 + k: sign * dt * float(fleet.charge_efficiency[i]) for k in range(upto)}
    row.update({g0 + k: -sign * dt / float(fleet.discharge_efficiency[i]) for k in range(upto)})
    return row


def exact_optimum(fleet: Fleet, grid: Grid, weight_per_mwh: float) -> float:
    """min cost of the whole fleet, one (charge, discharge) pair per vehicle and slot."""
    n, slots, dt = len(fleet), grid.slots, grid.slot_h
    size = 2 * n * slots + n  # charge W, discharge W, shortfall Wh per vehicle
    cost = np.zeros(size)
    bounds: list[tuple[float, float | None]] = []
    rows: list[dict[int, float]] = []
    rhs: list[float] = []
    for i in range(n):
        for t in range(slots):
            plugged = fleet.arrival_slot[i] <= t < fleet.departure_slot[i]
            bounds.append((0.0, float(fleet.max_charge_w[i]) if plugged else 0.0))
        for t in range(slots):
            plugged = fleet.arrival_slot[i] <= t < fleet.departure_slot[i]
            bounds.append((0.0, float(fleet.max_discharge_w[i]) if plugged else 0.0))
    bounds += [(0.0, None)] * n
    for i in range(n):
        c0, g0 = 2 * i * slots, 2 * i * slots + slots
        cost[c0 : c0 + slots] = grid.buy_price * dt / 1e6
        cost[g0 : g0 + slots] = -grid.sell_price * dt / 1e6
        cost[2 * n * slots + i] = weight_per_mwh / 1e6
        floor = min(fleet.floor_wh[i], fleet.soc_wh[i])

        for t in range(slots):
            rows.append(gain_row(fleet, i, slots, dt, t + 1, 1.0))  # soc0 + gain <= capacity
            rhs.append(fleet.capacity_wh[i] - fleet.soc_wh[i])
            rows.append(gain_row(fleet, i, slots, dt, t + 1, -1.0))  # soc0 + gain >= floor
            rhs.append(fleet.soc_wh[i] - floor)
        departing = max(min(int(fleet.departure_slot[i]), slots), 0)
        reach = gain_row(fleet, i, slots, dt, departing, -1.0)
        reach[2 * n * slots + i] = -1.0
        rows.append(reach)  # soc0 + gain + shortfall >= target
        rhs.append(fleet.soc_wh[i] - fleet.target_wh[i])
    for t in range(slots):
        net = {2 * i * slots + t: 1.0 for i in range(n)}
        net.update({2 * i * slots + slots + t: -1.0 for i in range(n)})
        rows += [net, {k: -v for k, v in net.items()}]
        rhs += [grid.import_limit_w[t], grid.export_limit_w[t]]
    matrix = sparse.lil_array((len(rows), size))
    for r, row in enumerate(rows):
        for k, v in row.items():
            matrix[r, k] = v
    lower = np.array([low for low, _ in bounds])
    upper = np.array([np.inf if high is None else high for _, high in bounds])
    result = milp(
        cost,
        constraints=LinearConstraint(matrix.tocsr(), -np.inf, np.array(rhs)),
        bounds=Bounds(lower, upper),
    )
    assert result.status == 0 and result.fun is not None, result.message
    return float(result.fun)


def weight_of(grid: Grid) -> float:
    prices = np.concatenate([grid.buy_price, grid.sell_price])
    return 1000.0 * max(1.0, float(np.abs(prices).max()))


def assert_feasible(plan: Plan, fleet: Fleet, grid: Grid) -> None:
    """Power within limits and only while plugged in, state of charge within [floor,
    capacity] and consistent with the power, the feeder limit never exceeded."""
    power, dt = plan.power_w, grid.slot_h
    slots = np.arange(grid.slots)
    plugged = (fleet.arrival_slot[:, None] <= slots) & (slots < fleet.departure_slot[:, None])
    assert np.all(power[~plugged] == 0)
    assert np.all(power <= fleet.max_charge_w[:, None] + 1e-6)
    assert np.all(-power <= fleet.max_discharge_w[:, None] + 1e-6)
    gain = np.where(
        power > 0,
        power * fleet.charge_efficiency[:, None],
        power / fleet.discharge_efficiency[:, None],
    )
    soc = fleet.soc_wh[:, None] + np.cumsum(gain * dt, axis=1)
    np.testing.assert_allclose(plan.soc_wh, soc, atol=TOLERANCE_WH)
    floor = np.minimum(fleet.floor_wh, fleet.soc_wh)[:, None]
    assert np.all(soc >= floor - TOLERANCE_WH)
    assert np.all(soc <= fleet.capacity_wh[:, None] + TOLERANCE_WH)
    feeder = power.sum(axis=0)
    assert np.all(feeder <= grid.import_limit_w + 1e-6)
    assert np.all(feeder >= -grid.export_limit_w - 1e-6)


def small_day(vehicles: int, seed: int, slots: int = 24) -> tuple[Fleet, Grid]:
    """A short day (hourly-ish slots) so the dense exact LP stays small."""
    rng = np.random.default_rng(seed)
    capacity = rng.choice([40_000.0, 60_000.0, 80_000.0], vehicles)
    fleet = Fleet.of(
        arrival_slot=rng.integers(0, 8, vehicles),
        departure_slot=rng.integers(16, slots + 1, vehicles),
        soc_wh=np.round(capacity * rng.uniform(0.2, 0.7, vehicles)),
        capacity_wh=capacity,
        floor_wh=capacity * 0.2,
        target_wh=capacity * 0.8,
        max_charge_w=11_000,
        max_discharge_w=11_000,
        charge_efficiency=rng.choice([0.9, 0.95], vehicles),
        discharge_efficiency=0.95,
    )
    buy = rng.integers(10_000, 35_000, slots)
    grid = Grid.of(
        import_limit_w=0.4 * vehicles * 11_000,
        export_limit_w=0.2 * vehicles * 11_000,
        buy_price=buy,
        sell_price=buy - 1_000,
        slots=slots,
        slot_s=3600,
    )
    return fleet, grid


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plan_is_feasible_and_its_bound_brackets_the_exact_optimum(seed: int) -> None:
    fleet, grid = small_day(12, seed)
    plan = plan_fleet(fleet, grid)
    optimum = exact_optimum(fleet, grid, weight_of(grid))
    assert_feasible(plan, fleet, grid)
    assert plan.lower_bound_minor <= optimum + 1e-6 * abs(optimum) + 1e-6
    assert plan.objective_minor >= optimum - 1e-6 * abs(optimum) - 1e-6
    assert (plan.objective_minor - optimum) / abs(optimum) <= plan.gap + 1e-9
    assert np.all(plan.shortfall_wh <= TOLERANCE_WH)  # every target here can be met


def test_day_ahead_plan_is_close_to_the_exact_optimum() -> None:
    """Six shared plug-in windows, so vehicles are pooled and the plan has to be handed down."""
    day, grid = day_ahead(30, seed=3)
    rng = np.random.default_rng(3)
    fleet = Fleet.of(
        arrival_slot=rng.choice([16, 20, 24], len(day)),
        departure_slot=rng.choice([76, 84], len(day)),
        soc_wh=day.soc_wh,
        capacity_wh=day.capacity_wh,
        floor_wh=day.floor_wh,
        target_wh=day.target_wh,
        max_charge_w=day.max_charge_w,
        max_discharge_w=day.max_discharge_w,
    )
    plan = plan_fleet(fleet, grid)
    optimum = exact_optimum(fleet, grid, weight_of(grid))
    assert_feasible(plan, fleet, grid)
    assert plan.lower_bound_minor <= optimum + 1e-6 * abs(optimum)
    assert (plan.objective_minor - optimum) / abs(optimum) < 0.05
    departing = soc_at_departure(plan.soc_wh, fleet, grid)
    assert np.all(departing >= fleet.target_wh - TOLERANCE_WH)


def test_feeder_limit_holds_when_it_binds_hard() -> None:
    fleet, grid = small_day(20, 4)
    tight = Grid.of(
        import_limit_w=25_000,
        export_limit_w=5_000,
        buy_price=grid.buy_price,
        sell_price=grid.sell_price,
        slots=grid.slots,
        slot_s=grid.slot_s,
    )
    plan = plan_fleet(fleet, tight)
    assert_feasible(plan, fleet, tight)
    assert plan.power_w.sum(axis=0).max() == pytest.approx(25_000, rel=1e-6)


def test_unreachable_targets_are_reported_with_their_shortfall() -> None:
    fleet, grid = small_day(6, 5)
    # Vehicle 0 stays two slots and wants to go from 20% to 100% of 80 kWh.
    fleet = Fleet.of(
        arrival_slot=np.r_[10, fleet.arrival_slot[1:]],
        departure_slot=np.r_[12, fleet.departure_slot[1:]],
        soc_wh=np.r_[16_000, fleet.soc_wh[1:]],
        capacity_wh=np.r_[80_000, fleet.capacity_wh[1:]],
        floor_wh=np.r_[16_000, fleet.floor_wh[1:]],
        target_wh=np.r_[80_000, fleet.target_wh[1:]],
        max_charge_w=11_000,
        max_discharge_w=11_000,
        charge_efficiency=fleet.charge_efficiency,
        discharge_efficiency=fleet.discharge_efficiency,
    )
    plan = plan_fleet(fleet, grid)
    assert_feasible(plan, fleet, grid)
    assert plan.unreachable.tolist() == [0]
    best = 16_000 + 2 * 11_000 * float(fleet.charge_efficiency[0])
    assert plan.shortfall_wh[0] == pytest.approx(80_000 - best, abs=1e-3)
    assert np.all(plan.shortfall_wh[1:] <= TOLERANCE_WH)


def test_feeder_too_small_for_the_targets_misses_them_but_never_the_limit() -> None:
    fleet, grid = small_day(10, 6)
    starved = Grid.of(
        import_limit_w=2_000,
        export_limit_w=0,
        buy_price=grid.buy_price,
        sell_price=grid.sell_price,
        slots=grid.slots,
        slot_s=grid.slot_s,
    )
    plan = plan_fleet(fleet, starved)
    assert_feasible(plan, fleet, starved)
    assert plan.shortfall_wh.sum() > 0
    assert plan.unreachable.size == 0  # each alone could make it: the feeder is what is short


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"departure_slot": 0}, "departs before it arrives"),
        ({"soc_wh": 90_000}, "more energy than its capacity"),
        ({"target_wh": 90_000}, "target above its capacity"),
        ({"charge_efficiency": 1.2}, "efficiency"),
        ({"max_charge_w": -1}, "negative charging power"),
        ({"arrival_slot": 1.5}, "whole slot numbers"),
    ],
)
def test_bad_vehicles_are_refused_by_name(change: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "arrival_slot": [2],
        "departure_slot": [10],
        "soc_wh": [20_000],
        "capacity_wh": [60_000],
        "floor_wh": [12_000],
        "target_wh": [48_000],
        "max_charge_w": 11_000,
        "max_discharge_w": 11_000,
    }
    values.update({key: [value] for key, value in change.items()})
    with pytest.raises(ValidationError, match=message):
        Fleet.of(**values)


def test_bad_grid_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="one value per slot"):
        Grid.of(import_limit_w=[1, 2], export_limit_w=0, buy_price=1, sell_price=1)
    with pytest.raises(ValidationError, match="not be negative"):
        Grid.of(import_limit_w=-1, export_limit_w=0, buy_price=1, sell_price=1)
    with pytest.raises(ValidationError, match="whole minor units"):
        Grid.of(import_limit_w=1, export_limit_w=0, buy_price=1.5, sell_price=1)

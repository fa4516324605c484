"""Day-ahead fleet plan: charge and discharge per 15-minute slot for every vehicle, under a
feeder import/export limit per slot, at least cost (energy bought minus energy sold).

The exact model is one linear program over every vehicle and slot; at 10,000 vehicles a
general LP solver needs minutes. The plan exploits the structure instead:

1. Vehicles that share a plug-in window and charger efficiencies are pooled into one virtual
   battery (summed state of charge, bounds, power limits and targets). Any plan of the real
   vehicles is a plan of the pools, so the pooled LP is a relaxation: its optimum is a
   certified lower bound on the exact optimum, and it is a few hundred units instead of
   thousands.
2. Slot by slot, the pools' plans are handed down to the vehicles. Each pool steers its
   members towards the pool's planned state of charge, in the slots its plan charges or
   discharges in; the least lax members (fewest planned charging slots to spare before they
   must charge flat out) charge first and the most lax discharge first, and no member charges
   past its target unless its pool sells energy later. What members cannot take, the rest of
   the fleet takes in the same slot, so the feeder total follows the pooled plan. Bounds keep
   every vehicle between its floor and capacity, within its power limits and able to reach
   its target; the feeder limit is checked for every slot and always wins.

The plan's cost over the lower bound is the reported gap: the distance from the exact
optimum is never more than that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from evgi.core.errors import ValidationError
from evgi.v2g.dispatch import share

SLOT_S = 900
SLOTS_PER_DAY = 96
# Each Wh a departure target is missed by costs this many times the dearest energy price, so
# the plan only misses a target when no plan can meet it.
SHORTFALL_WEIGHT = 1000.0
# Rounding in sums of thousands of powers is not a feeder overload.
FEEDER_SLACK_W = 1e-6

Array = NDArray[np.float64]
Indices = NDArray[np.intp]


def _floats(values: object, name: str) -> Array:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValidationError(f"{name} must be a 1-D array of finite numbers")
    return array


@dataclass(frozen=True)
class Fleet:
    """The vehicles to plan, one array entry per vehicle.

    A vehicle is plugged in from `arrival_slot` up to, not including, `departure_slot`.
    Energies in Wh, powers in W, efficiencies in (0, 1].
    """

    arrival_slot: Indices
    departure_slot: Indices
    soc_wh: Array
    capacity_wh: Array
    floor_wh: Array
    target_wh: Array
    max_charge_w: Array
    max_discharge_w: Array
    charge_efficiency: Array
    discharge_efficiency: Array

    @classmethod
    def of(
        cls,
        *,
        arrival_slot: object,
        departure_slot: object,
        soc_wh: object,
        capacity_wh: object,
        floor_wh: object,
        target_wh: object,
        max_charge_w: object,
        max_discharge_w: object,
        charge_efficiency: object = 0.95,
        discharge_efficiency: object = 0.95,
    ) -> Fleet:
        """A validated fleet; scalars are repeated for every vehicle."""
        arrival = np.asarray(arrival_slot)
        size = arrival.shape[0] if arrival.ndim == 1 else 0
        if size == 0:
            raise ValidationError("a fleet has a 1-D array of at least one arrival slot")

        def column(value: object, name: str) -> Array:
            array = np.asarray(value, dtype=np.float64)
            return _floats(np.broadcast_to(array, (size,)).copy(), name)

        arrival_f = column(arrival_slot, "arrival_slot")
        departure_f = column(departure_slot, "departure_slot")
        for name, slots in (("arrival_slot", arrival_f), ("departure_slot", departure_f)):
            if np.any(slots != np.round(slots)) or np.any(slots < 0):
                raise ValidationError(f"{name} must hold non-negative whole slot numbers")
        fleet = cls(
            arrival_slot=arrival_f.astype(np.intp),
            departure_slot=departure_f.astype(np.intp),
            soc_wh=column(soc_wh, "soc_wh"),
            capacity_wh=column(capacity_wh, "capacity_wh"),
            floor_wh=column(floor_wh, "floor_wh"),
            target_wh=column(target_wh, "target_wh"),
            max_charge_w=column(max_charge_w, "max_charge_w"),
            max_discharge_w=column(max_discharge_w, "max_discharge_w"),
            charge_efficiency=column(charge_efficiency, "charge_efficiency"),
            discharge_efficiency=column(discharge_efficiency, "discharge_efficiency"),
        )
        fleet.check()
        return fleet

    def __len__(self) -> int:
        return int(self.soc_wh.shape[0])

    def check(self) -> None:
        """Refuse values no vehicle can have, naming the first offending vehicle."""
        rules: list[tuple[NDArray[np.bool_], str]] = [
            (self.departure_slot < self.arrival_slot, "departs before it arrives"),
            (self.capacity_wh <= 0, "has no battery capacity"),
            (self.soc_wh < 0, "has a negative state of charge"),
            (self.soc_wh > self.capacity_wh, "arrives with more energy than its capacity"),
            (self.floor_wh < 0, "has a negative state-of-charge floor"),
            (self.floor_wh > self.capacity_wh, "has a floor above its capacity"),
            (self.target_wh > self.capacity_wh, "has a departure target above its capacity"),
            (self.max_charge_w < 0, "has a negative charging power limit"),
            (self.max_discharge_w < 0, "has a negative discharging power limit"),
            (
                (self.charge_efficiency <= 0) | (self.charge_efficiency > 1),
                "has a charging efficiency outside (0, 1]",
            ),
            (
                (self.discharge_efficiency <= 0) | (self.discharge_efficiency > 1),
                "has a discharging efficiency outside (0, 1]",
            ),
        ]
        for broken, what in rules:
            if np.any(broken):
                raise ValidationError(f"vehicle {int(np.argmax(broken))} {what}")

    @property
    def effective_floor_wh(self) -> Array:
        """A vehicle arriving below its floor is never discharged below its arrival level."""
        return np.minimum(self.floor_wh, self.soc_wh)


@dataclass(frozen=True)
class Grid:
    """Feeder limits (W) and energy prices (integer minor units per MWh) for every slot."""

    import_limit_w: Array
    export_limit_w: Array
    buy_price: NDArray[np.int64]
    sell_price: NDArray[np.int64]
    slot_s: int = SLOT_S

    @classmethod
    def of(
        cls,
        *,
        import_limit_w: object,
        export_limit_w: object,
        buy_price: object,
        sell_price: object,
        slots: int = SLOTS_PER_DAY,
        slot_s: int = SLOT_S,
    ) -> Grid:
        def column(value: object, name: str) -> Array:
            try:
                array = np.broadcast_to(np.asarray(value, dtype=np.float64), (slots,))
            except ValueError as exc:
                raise ValidationError(f"{name} must have one value per slot ({slots})") from exc
            return _floats(array.copy(), name)

        imports = column(import_limit_w, "import_limit_w")
        exports = column(export_limit_w, "export_limit_w")
        if np.any(imports < 0) or np.any(exports < 0):
            raise ValidationError("feeder limits must not be negative")
        buy, sell = column(buy_price, "buy_price"), column(sell_price, "sell_price")
        if np.any(buy != np.round(buy)) or np.any(sell != np.round(sell)):
            raise ValidationError("prices are whole minor units per MWh")
        if slot_s <= 0:
            raise ValidationError("a slot lasts a positive number of seconds")
        return cls(imports, exports, buy.astype(np.int64), sell.astype(np.int64), slot_s)

    @property
    def slots(self) -> int:
        return int(self.import_limit_w.shape[0])

    @property
    def slot_h(self) -> float:
        return self.slot_s / 3600.0


@dataclass(frozen=True)
class LinearProgram:
    """min cost·x with row_lower <= A x <= row_upper and col_lower <= x <= col_upper.

    Columns: charge power (kW) per active vehicle-slot, then discharge power (kW), then state
    of charge at the end of the slot (kWh), then the target shortfall (kWh) per unit.
    """

    cost: Array
    matrix: sparse.csr_array
    row_lower: Array
    row_upper: Array
    col_lower: Array
    col_upper: Array
    unit: Indices
    slot: Indices

    def solve(self) -> tuple[float, Array]:
        """Optimum and solution by HiGHS (through scipy; with no integer column, milp solves
        the LP and takes the ranged rows as they are)."""
        result = milp(
            self.cost,
            constraints=LinearConstraint(self.matrix, self.row_lower, self.row_upper),
            bounds=Bounds(self.col_lower, self.col_upper),
        )
        if result.status != 0 or result.x is None:
            raise ValidationError(f"the fleet LP has no solution: {result.message}")
        return float(result.fun), np.asarray(result.x, dtype=np.float64)

    def trajectory(self, x: Array, units: int, slots: int) -> tuple[Array, Array]:
        """Net power (W) and state of charge at the end of each slot (Wh, NaN while unplugged)
        per unit and slot, from a solution."""
        active = self.unit.shape[0]
        power = np.zeros((units, slots))
        soc = np.full((units, slots), np.nan)
        power[self.unit, self.slot] = (x[:active] - x[active : 2 * active]) * 1000.0
        soc[self.unit, self.slot] = x[2 * active : 3 * active] * 1000.0
        return power, soc


def fleet_lp(fleet: Fleet, grid: Grid) -> LinearProgram:
    """The exact LP of the day-ahead plan, one unit per vehicle (also used for pools)."""
    dt = grid.slot_h
    arrival = np.minimum(fleet.arrival_slot, grid.slots)
    departure = np.minimum(fleet.departure_slot, grid.slots)
    span = np.maximum(departure - arrival, 0)
    units = len(fleet)
    active = int(span.sum())
    unit = np.repeat(np.arange(units), span)
    starts = np.cumsum(span) - span
    slot = arrival[unit] + (np.arange(active) - starts[unit])
    first = np.zeros(active, dtype=bool)
    first[starts[span > 0]] = True
    last = starts[span > 0] + span[span > 0] - 1

    eta_c = fleet.charge_efficiency[unit]
    eta_d = fleet.discharge_efficiency[unit]
    m = np.arange(active)
    c_col, g_col, s_col = m, active + m, 2 * active + m
    u_col = 3 * active + np.arange(units)
    columns = 3 * active + units

    # Dynamics: S_t - S_{t-1} - dt (eta_c C_t - G_t / eta_d) = S_0 on a unit's first slot, else 0.
    later = ~first
    dyn_rows = np.concatenate([m, m, m, m[later]])
    dyn_cols = np.concatenate([s_col, c_col, g_col, s_col[later] - 1])
    dyn_vals = np.concatenate(
        [np.ones(active), -dt * eta_c, dt / eta_d, -np.ones(int(later.sum()))]
    )
    dyn_rhs = np.where(first, fleet.soc_wh[unit] / 1000.0, 0.0)

    # Targets: S at departure + shortfall >= target.
    planned = np.flatnonzero(span > 0)
    tgt_rows = active + np.concatenate([planned, np.arange(units)])
    tgt_cols = np.concatenate([s_col[last], u_col])
    tgt_vals = np.ones(planned.shape[0] + units)
    # A vehicle with no slot keeps its arrival energy: its shortfall row reads U >= target - S0.
    tgt_lower = fleet.target_wh / 1000.0 - np.where(span > 0, 0.0, fleet.soc_wh / 1000.0)

    # Feeder: -export <= sum (C - G) <= import, in every slot.
    feed_rows = active + units + np.concatenate([slot, slot])
    feed_cols = np.concatenate([c_col, g_col])
    feed_vals = np.concatenate([np.ones(active), -np.ones(active)])

    matrix = sparse.csr_array(
        (
            np.concatenate([dyn_vals, tgt_vals, feed_vals]),
            (
                np.concatenate([dyn_rows, tgt_rows, feed_rows]),
                np.concatenate([dyn_cols, tgt_cols, feed_cols]),
            ),
        ),
        shape=(active + units + grid.slots, columns),
    )
    row_lower = np.concatenate([dyn_rhs, tgt_lower, -grid.export_limit_w / 1000.0])
    row_upper = np.concatenate([dyn_rhs, np.full(units, np.inf), grid.import_limit_w / 1000.0])

    col_lower = np.concatenate(
        [np.zeros(2 * active), fleet.effective_floor_wh[unit] / 1000.0, np.zeros(units)]
    )
    col_upper = np.concatenate(
        [
            fleet.max_charge_w[unit] / 1000.0,
            fleet.max_discharge_w[unit] / 1000.0,
            fleet.capacity_wh[unit] / 1000.0,
            np.full(units, np.inf),
        ]
    )
    # Prices are per MWh; a kW held for dt hours is dt/1000 MWh.
    buy = grid.buy_price.astype(np.float64)
    sell = grid.sell_price.astype(np.float64)
    weight = SHORTFALL_WEIGHT * max(1.0, float(np.abs(np.concatenate([buy, sell])).max()))
    cost = np.concatenate(
        [
            buy[slot] * dt / 1000.0,
            -sell[slot] * dt / 1000.0,
            np.zeros(active),
            np.full(units, weight / 1000.0),
        ]
    )
    return LinearProgram(cost, matrix, row_lower, row_upper, col_lower, col_upper, unit, slot)


@dataclass(frozen=True)
class Plan:
    """Power per vehicle and slot (W, import positive) and what it costs.

    `cost_minor` is energy bought minus energy sold, in minor units; `lower_bound_minor` is a
    certified lower bound on the exact optimum's objective, so `gap` bounds how far the plan is
    from it. `shortfall_wh` is how far each vehicle's departure energy falls short of its target:
    zero wherever the target can be met.
    """

    power_w: Array
    soc_wh: Array
    cost_minor: int
    objective_minor: float
    lower_bound_minor: float
    shortfall_wh: Array
    pools: int
    unreachable: Indices = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    @property
    def gap(self) -> float:
        """Plan objective over the lower bound, relative to the bound's magnitude."""
        scale = max(abs(self.lower_bound_minor), 1.0)
        return max(self.objective_minor - self.lower_bound_minor, 0.0) / scale

    @property
    def feeder_w(self) -> Array:
        total: Array = self.power_w.sum(axis=0)
        return total


def _pools(fleet: Fleet) -> tuple[Fleet, Indices]:
    """One virtual battery per plug-in window and pair of efficiencies."""
    keys = np.column_stack(
        [
            fleet.arrival_slot.astype(np.float64),
            fleet.departure_slot.astype(np.float64),
            fleet.charge_efficiency,
            fleet.discharge_efficiency,
        ]
    )
    unique, first, member_of = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    member_of = member_of.reshape(-1).astype(np.intp)
    size = unique.shape[0]

    def total(values: Array) -> Array:
        return np.bincount(member_of, values, minlength=size).astype(np.float64)

    pooled = Fleet(
        arrival_slot=fleet.arrival_slot[first],
        departure_slot=fleet.departure_slot[first],
        soc_wh=total(fleet.soc_wh),
        capacity_wh=total(fleet.capacity_wh),
        floor_wh=total(fleet.effective_floor_wh),
        target_wh=total(fleet.target_wh),
        max_charge_w=total(fleet.max_charge_w),
        max_discharge_w=total(fleet.max_discharge_w),
        charge_efficiency=fleet.charge_efficiency[first],
        discharge_efficiency=fleet.discharge_efficiency[first],
    )
    return pooled, member_of


def _share_by_laxity(
    setpoint: Array, lower: Array, upper: Array, laxity: Array, groups: Indices
) -> Array:
    """Meet each group's setpoint from its members' idle points, raising the least lax first
    and lowering the most lax first, each member within [lower, upper]."""
    idle: Array = np.clip(0.0, lower, upper)
    size = setpoint.shape[0]
    wanted = setpoint - np.bincount(groups, idle, minlength=size)
    power: Array = idle.copy()
    for direction, room in ((1.0, upper - idle), (-1.0, idle - lower)):
        order = np.lexsort((direction * laxity, groups))
        sorted_room = room[order]
        sorted_groups = groups[order]
        before = np.cumsum(sorted_room) - sorted_room
        starts = np.searchsorted(sorted_groups, np.arange(size))
        base = np.concatenate([before, [0.0]])[starts]
        before = before - base[sorted_groups]
        demand = np.maximum(direction * wanted, 0.0)[sorted_groups]
        moved = np.clip(demand - before, 0.0, sorted_room)
        power[order] += direction * moved
    return power


def reachable_wh(fleet: Fleet, grid: Grid) -> Array:
    """The most energy each vehicle can hold at departure, charging flat out from arrival."""
    slots = np.minimum(fleet.departure_slot, grid.slots) - np.minimum(
        fleet.arrival_slot, grid.slots
    )
    gain = np.maximum(slots, 0) * fleet.max_charge_w * fleet.charge_efficiency * grid.slot_h
    reachable: Array = np.minimum(fleet.soc_wh + gain, fleet.capacity_wh)
    return reachable


def plan_fleet(fleet: Fleet, grid: Grid) -> Plan:
    """The day-ahead plan of `fleet` under `grid`'s limits and prices (see the module notes)."""
    pooled, member_of = _pools(fleet)
    program = fleet_lp(pooled, grid)
    bound, solution = program.solve()
    setpoints, planned_soc = program.trajectory(solution, len(pooled), grid.slots)

    dt = grid.slot_h
    eta_c, eta_d = fleet.charge_efficiency, fleet.discharge_efficiency
    floor, capacity = fleet.effective_floor_wh, fleet.capacity_wh
    target = np.minimum(fleet.target_wh, reachable_wh(fleet, grid))
    departure = np.minimum(fleet.departure_slot, grid.slots)
    soc = fleet.soc_wh.copy()
    power = np.zeros((len(fleet), grid.slots))
    history = np.zeros((len(fleet), grid.slots))
    # Slots from each slot on in which a pool's plan charges: the cheap energy still to come.
    charging_slots = np.cumsum((setpoints > 0)[:, ::-1], axis=1)[:, ::-1].astype(np.float64)
    sells_later = np.cumsum((setpoints < 0)[:, ::-1], axis=1)[:, ::-1] > 0
    for t in range(grid.slots):
        plugged = (fleet.arrival_slot <= t) & (t < departure)
        if not plugged.any():
            history[:, t] = soc
            continue
        lower_bare = -np.minimum(fleet.max_discharge_w, (soc - floor) * eta_d / dt)
        upper = np.minimum(fleet.max_charge_w, (capacity - soc) / (eta_c * dt))
        # The least energy to hold after this slot and still reach the target flat out.
        later = (departure - t - 1) * fleet.max_charge_w * eta_c * dt
        need = target - later
        needed = np.where(need > soc, (need - soc) / (eta_c * dt), -(soc - need) * eta_d / dt)
        lower = np.where(plugged, np.minimum(np.maximum(lower_bare, needed), upper), 0.0)
        lower_bare = np.where(plugged, lower_bare, 0.0)
        upper = np.where(plugged, np.maximum(upper, 0.0), 0.0)
        # Laxity: the pool's planned charging slots still to come, less those the vehicle needs
        # flat out to reach its target. The least lax charge first, the most lax discharge
        # first.
        flat_out = fleet.max_charge_w * eta_c * dt
        short = np.maximum(target - soc, 0.0)
        laxity = charging_slots[member_of, t] - np.divide(
            short, flat_out, out=np.where(short > 0, np.inf, 0.0), where=flat_out > 0
        )
        # Each pool steers its members towards the pool's planned state of charge, so energy
        # its members took for another pool (below) is not bought twice.
        behind = planned_soc[:, t] - np.bincount(member_of, soc, minlength=len(pooled))
        steer = np.where(
            behind > 0,
            behind / (pooled.charge_efficiency * dt),
            behind * pooled.discharge_efficiency / dt,
        )
        # A pool catches up only in slots its plan charges or discharges in anyway: catching up
        # in a slot the plan left alone would buy dear energy the plan avoided.
        plan_now = setpoints[:, t]
        steer = np.where(
            plan_now > 0,
            np.maximum(steer, 0.0),
            np.where(plan_now < 0, np.minimum(steer, 0.0), 0.0),
        )
        steer = np.where(np.isnan(steer), 0.0, steer)
        # Energy passed from car to car through the feeder only loses: in a slot its pool (or
        # the fleet) imports, no vehicle discharges to make up for another's forced charging.
        lower_pool = np.where(steer[member_of] >= 0, np.maximum(lower, 0.0), lower)
        # Energy past a vehicle's target is only worth storing if its pool sells some later.
        towards_target = (target - soc) / (eta_c * dt)
        upper_pool = np.where(
            sells_later[member_of, t], upper, np.clip(towards_target, lower_pool, upper)
        )
        slot_power = _share_by_laxity(steer, lower_pool, upper_pool, laxity, member_of)
        # What a pool's members cannot take, the rest of the fleet takes within its headroom:
        # the cost depends on the feeder total per slot, not on which vehicle draws it.
        wanted = setpoints[:, t].sum()
        lower_fleet = np.minimum(np.maximum(lower, 0.0) if wanted >= 0 else lower, slot_power)
        # Taking over another pool's energy never carries a vehicle past its own target.
        slot_power += _share_by_laxity(
            np.array([wanted - slot_power.sum()]),
            lower_fleet - slot_power,
            np.clip(towards_target, slot_power, upper) - slot_power,
            laxity,
            np.zeros(len(fleet), dtype=np.intp),
        )
        total = slot_power.sum()
        ceiling, floor_w = grid.import_limit_w[t], -grid.export_limit_w[t]
        if total > ceiling + FEEDER_SLACK_W or total < floor_w - FEEDER_SLACK_W:
            # Forced charging beyond the feeder: the feeder wins and targets are missed.
            bounded = np.array([min(max(total, floor_w), ceiling)])
            forced = lower if lower.sum() <= ceiling else lower_bare
            slot_power = share(bounded, forced, np.maximum(upper_pool, forced))
        power[:, t] = slot_power
        soc = soc + dt * (eta_c * np.maximum(slot_power, 0.0) + np.minimum(slot_power, 0.0) / eta_d)
        soc = np.clip(soc, floor, capacity)
        history[:, t] = soc

    imported = np.maximum(power, 0.0).sum(axis=0)
    exported = np.maximum(-power, 0.0).sum(axis=0)
    cost = float(((grid.buy_price * imported - grid.sell_price * exported) * dt / 1e6).sum())
    shortfall = np.maximum(fleet.target_wh - soc_at_departure(history, fleet, grid), 0.0)
    weight = SHORTFALL_WEIGHT * max(
        1.0, float(np.abs(np.concatenate([grid.buy_price, grid.sell_price])).max())
    )
    objective = cost + weight * shortfall.sum() / 1e6
    unreachable = np.flatnonzero(reachable_wh(fleet, grid) < fleet.target_wh)
    return Plan(
        power_w=power,
        soc_wh=history,
        cost_minor=round(cost),
        objective_minor=objective,
        lower_bound_minor=bound,
        shortfall_wh=shortfall,
        pools=len(pooled),
        unreachable=unreachable.astype(np.intp),
    )


def soc_at_departure(history: Array, fleet: Fleet, grid: Grid) -> Array:
    """Energy each vehicle leaves with: the end of its last plugged-in slot."""
    departure = np.minimum(fleet.departure_slot, grid.slots)
    plugged = departure > np.minimum(fleet.arrival_slot, grid.slots)
    index = np.clip(departure - 1, 0, grid.slots - 1)
    leaving = history[np.arange(len(fleet)), index]
    energy: Array = np.where(plugged, leaving, fleet.soc_wh)
    return energy

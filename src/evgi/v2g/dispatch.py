"""Real-time dispatch: one feeder setpoint shared across vehicles in proportion to headroom.

The same sharing rule disaggregates the fleet scheduler's plan, so a vehicle is treated alike
whether its power comes from the day-ahead plan or from a setpoint sent a second ago.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from evgi.core.errors import ValidationError

Array = NDArray[np.float64]
Groups = NDArray[np.intp]


def share(
    setpoint: Array,
    lower: Array,
    upper: Array,
    groups: Groups | None = None,
) -> Array:
    """Split each group's setpoint (W, import positive) across its members within [lower, upper].

    Every member starts from its idle point, 0 clipped into its range (a forced minimum charge
    stays forced), and then moves towards its bound in the setpoint's direction by the same
    fraction of its remaining headroom as every other member of the group. A setpoint outside
    what the members can do is met as far as they can: no member ever leaves its range.
    `setpoint` has one entry per group (one entry and no `groups` for a single feeder).
    """
    idle = np.clip(0.0, lower, upper)
    up = upper - idle
    down = idle - lower
    if groups is None:
        idle_sum = np.array([idle.sum()])
        up_sum = np.array([up.sum()])
        down_sum = np.array([down.sum()])
    else:
        size = setpoint.shape[0]
        idle_sum = np.bincount(groups, idle, minlength=size)
        up_sum = np.bincount(groups, up, minlength=size)
        down_sum = np.bincount(groups, down, minlength=size)
    wanted = setpoint - idle_sum
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # clipped to [0, 1]
        raise_by = np.where(up_sum > 0, np.clip(wanted / up_sum, 0.0, 1.0), 0.0)
        lower_by = np.where(down_sum > 0, np.clip(-wanted / down_sum, 0.0, 1.0), 0.0)
    index = np.zeros(idle.shape[0], dtype=np.intp) if groups is None else groups
    power: Array = idle + raise_by[index] * up - lower_by[index] * down
    return power


@dataclass(frozen=True)
class VehicleStates:
    """What the dispatcher knows of each plugged-in vehicle, one array entry per vehicle.

    `grid_import_cap_w` and `grid_export_cap_w` are the grid security layer's limits for the
    vehicle's EVSE (for example an IEEE 1547 active-power limit): they cap whatever the
    consumer layer asks for. `discharge_allowed` is the driver's consent and the agreement to
    discharge; a vehicle without it can still charge but never exports.
    """

    soc_wh: Array
    floor_wh: Array
    capacity_wh: Array
    max_charge_w: Array
    max_discharge_w: Array
    grid_import_cap_w: Array
    grid_export_cap_w: Array
    discharge_allowed: NDArray[np.bool_]
    charge_efficiency: Array
    discharge_efficiency: Array

    def __post_init__(self) -> None:
        sizes = {np.shape(value) for value in vars(self).values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1:
            raise ValidationError("every vehicle state must be a 1-D array of the same length")
        for name in (
            "floor_wh",
            "capacity_wh",
            "max_charge_w",
            "max_discharge_w",
            "grid_import_cap_w",
            "grid_export_cap_w",
        ):
            if np.any(getattr(self, name) < 0):
                raise ValidationError(f"{name} must not be negative")
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            if np.any((value <= 0) | (value > 1)):
                raise ValidationError(f"{name} must be in (0, 1]")
        if np.any(self.soc_wh < 0) or np.any(self.soc_wh > self.capacity_wh):
            raise ValidationError("state of charge must lie within [0, capacity]")

    def limits(self, interval_s: float) -> tuple[Array, Array]:
        """Lowest and highest power (W) each vehicle can hold for `interval_s` seconds."""
        hours = interval_s / 3600.0
        above_floor = np.maximum(self.soc_wh - self.floor_wh, 0.0)
        room = np.maximum(self.capacity_wh - self.soc_wh, 0.0)
        discharge = np.minimum(self.max_discharge_w, self.grid_export_cap_w)
        discharge = np.minimum(discharge, above_floor * self.discharge_efficiency / hours)
        discharge = np.where(self.discharge_allowed, discharge, 0.0)
        charge = np.minimum(self.max_charge_w, self.grid_import_cap_w)
        charge = np.minimum(charge, room / (self.charge_efficiency * hours))
        return -discharge, charge


@dataclass(frozen=True)
class Dispatch:
    """Power per vehicle (W, import positive) and how much of the setpoint it meets."""

    power_w: Array
    requested_w: float
    achieved_w: float

    @property
    def shortfall_w(self) -> float:
        return self.requested_w - self.achieved_w


def dispatch(
    setpoint_w: float,
    vehicles: VehicleStates,
    *,
    interval_s: float = 60.0,
    feeder_import_cap_w: float = float("inf"),
    feeder_export_cap_w: float = float("inf"),
) -> Dispatch:
    """Share a feeder setpoint (W; positive import, negative export) for the next interval.

    The feeder caps come from the grid security layer and bound the setpoint before it is
    shared; each vehicle's own limits, floor and consent bound its share.
    """
    if not np.isfinite(setpoint_w):
        raise ValidationError("the setpoint must be a finite number of watts")
    if interval_s <= 0:
        raise ValidationError("the dispatch interval must be positive")
    if feeder_import_cap_w < 0 or feeder_export_cap_w < 0:
        raise ValidationError("feeder caps must not be negative")
    lower, upper = vehicles.limits(interval_s)
    bounded = min(max(setpoint_w, -feeder_export_cap_w), feeder_import_cap_w)
    power = share(np.array([bounded]), lower, upper)
    return Dispatch(power_w=power, requested_w=float(setpoint_w), achieved_w=float(power.sum()))

"""A low-voltage radial feeder for the V2G evening: households and EVSEs along one line from the
substation transformer, so the voltage an EVSE's inverter measures depends on what every node
draws and on the reactive power the inverters give back.

Voltage drop follows the linearised DistFlow equations: each segment lowers the voltage by
(R·P + X·Q) / V² of the power flowing through it, P and Q counted positive into the loads.
That is accurate to a fraction of a per cent at these loadings and needs no iteration, so a
whole evening at one-minute steps solves in milliseconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from evgi.core.errors import ValidationError

Array = NDArray[np.float64]

# Diversified demand of one household over the day (W at each full hour, local time): a low
# night, a morning bump, and the evening peak when people come home, cook and wash.
_HOUSEHOLD_W = (
    420, 360, 330, 320, 330, 380, 620, 900, 820, 700, 680, 720,
    780, 740, 700, 760, 980, 1500, 2100, 2350, 2200, 1800, 1200, 700,
)  # fmt: skip
_HOUSEHOLD_POWER_FACTOR = 0.95


@dataclass(frozen=True)
class Feeder:
    """Nodes 0..n-1 along the line; segment k joins node k-1 (the transformer for k = 0) to
    node k. Voltages are per unit of `nominal_v` (line-to-line, balanced three-phase)."""

    resistance_ohm: tuple[float, ...]
    reactance_ohm: tuple[float, ...]
    households: tuple[int, ...]
    nominal_v: float = 400.0
    source_pu: float = 1.03

    def __post_init__(self) -> None:
        size = len(self.resistance_ohm)
        if size == 0 or len(self.reactance_ohm) != size or len(self.households) != size:
            raise ValidationError("a feeder needs R, X and households for every node")
        if min(self.resistance_ohm) < 0 or min(self.reactance_ohm) < 0:
            raise ValidationError("line impedances cannot be negative")

    @classmethod
    def cable(
        cls,
        households: tuple[int, ...],
        segment_m: float,
        ohm_per_km: tuple[float, float] = (0.21, 0.08),
    ) -> Feeder:
        """Equal cable segments of `segment_m` metres with the given R and X per kilometre."""
        r, x = (value * segment_m / 1000 for value in ohm_per_km)
        size = len(households)
        return cls((r,) * size, (x,) * size, households)

    @property
    def nodes(self) -> int:
        return len(self.households)

    def voltages(self, load_w: Array, load_var: Array) -> Array:
        """Per-unit voltage at every node for the net load (W, var) drawn at each node."""
        through_w = np.cumsum(load_w[::-1])[::-1]
        through_var = np.cumsum(load_var[::-1])[::-1]
        drop = (
            np.asarray(self.resistance_ohm) * through_w
            + np.asarray(self.reactance_ohm) * through_var
        ) / self.nominal_v**2
        voltage: Array = self.source_pu - np.cumsum(drop)
        return voltage

    def household_load(self, at: datetime, utc_offset_h: int, seed: int = 0) -> tuple[Array, Array]:
        """The households' W and var at each node at `at`, with a little noise of their own
        (a kettle here, an oven there), the same for the same minute and seed."""
        hours = (at.hour + utc_offset_h + at.minute / 60) % 24
        low = int(hours)
        share = hours - low
        per_house = (1 - share) * _HOUSEHOLD_W[low] + share * _HOUSEHOLD_W[(low + 1) % 24]
        minute = int(at.timestamp() // 60)
        noise = np.random.default_rng([seed, minute]).normal(1.0, 0.06, self.nodes)
        watts: Array = np.asarray(self.households, dtype=np.float64) * per_house * noise
        vars_: Array = watts * math.tan(math.acos(_HOUSEHOLD_POWER_FACTOR))
        return watts, vars_

"""Piecewise-linear curves of IEEE 1547-2018 functions (volt-var, volt-watt, watt-var), in per
unit, and their form as IEEE 2030.5 DERCurves.

A curve is flat beyond its end points: 1547 holds a function at its last setting rather than
extrapolating, so a measurement far out of range never asks for more than the curve's extremes.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from itertools import pairwise

from evgi.core.errors import ValidationError
from evgi.grid.resources import DerCurve


@dataclass(frozen=True)
class Curve:
    """(x, y) points with strictly increasing x; both axes in per unit."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValidationError("a curve needs at least two points")
        xs = [x for x, _ in self.points]
        if any(b <= a for a, b in pairwise(xs)):
            raise ValidationError(f"curve x values must strictly increase, got {xs}")

    def __call__(self, x: float) -> float:
        xs = [point[0] for point in self.points]
        if x <= xs[0]:
            return self.points[0][1]
        if x >= xs[-1]:
            return self.points[-1][1]
        i = bisect_right(xs, x)
        (x0, y0), (x1, y1) = self.points[i - 1], self.points[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    @property
    def lowest(self) -> float:
        return min(y for _, y in self.points)

    @property
    def highest(self) -> float:
        return max(y for _, y in self.points)

    @classmethod
    def from_der_curve(cls, curve: DerCurve, x_in_percent: bool = True) -> Curve:
        """2030.5 carries curve axes as percent (of VRef, setMaxW, setMaxVar...) scaled by
        powers of ten; per unit is that percent over 100. A frequency axis is in Hz
        (`x_in_percent=False`) and keeps its unit."""
        x_scale = 10.0**curve.x_multiplier / (100 if x_in_percent else 1)
        y_scale = 10.0**curve.y_multiplier / 100
        return cls(tuple((x * x_scale, y * y_scale) for x, y in curve.points))

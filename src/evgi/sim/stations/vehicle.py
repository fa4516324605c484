"""The EV at a connector, as far as a station sees it: a battery that accepts less when full."""

from __future__ import annotations

from dataclasses import dataclass

from evgi.core.units import Watts

# DC charging tapers linearly from this state of charge down to no power at 100 %.
TAPER_FROM_PERCENT = 80


@dataclass
class Vehicle:
    """Battery capacity, stored energy and the most power the EV draws."""

    capacity_wh: int
    energy_wh: int
    max_power_w: int

    def __post_init__(self) -> None:
        if not 0 <= self.energy_wh <= self.capacity_wh or self.capacity_wh <= 0:
            raise ValueError("stored energy must lie between empty and the battery capacity")
        if self.max_power_w < 0:
            raise ValueError("an EV's maximum power cannot be negative")

    @classmethod
    def at_soc(cls, capacity_wh: int, soc_percent: int, max_power_w: int) -> Vehicle:
        return cls(capacity_wh, capacity_wh * soc_percent // 100, max_power_w)

    @property
    def soc_percent(self) -> int:
        return self.energy_wh * 100 // self.capacity_wh

    @property
    def full(self) -> bool:
        return self.energy_wh >= self.capacity_wh

    def acceptance_w(self) -> Watts:
        """What the battery takes now: full power up to the taper point, then less and less."""
        taper_start = self.capacity_wh * TAPER_FROM_PERCENT // 100
        if self.energy_wh <= taper_start:
            return Watts(self.max_power_w)
        remaining = self.capacity_wh - self.energy_wh
        return Watts(self.max_power_w * remaining // (self.capacity_wh - taper_start))

    def store(self, energy_wh: int) -> None:
        self.energy_wh = min(self.capacity_wh, self.energy_wh + energy_wh)

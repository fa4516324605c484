"""The station's energy meter: power integrated over simulated time into whole watt-hours,
imported and exported energy on registers of their own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from evgi.core.units import WattHours, Watts

AC_VOLTAGE_V = 230
DC_VOLTAGE_V = 400

# Measurands a simulated station can sample, by their OCPP names (identical in 1.6 and 2.x).
ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE = "Voltage"
SOC = "SoC"
MEASURANDS = (ENERGY, POWER, CURRENT, VOLTAGE, SOC)

_MICROSECONDS_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class Sample:
    """One sampled value in the form every OCPP version reports: measurand, value, unit, phase."""

    measurand: str
    value: float
    unit: str
    phase: str | None = None


@dataclass(frozen=True)
class Reading:
    """The meter at one instant."""

    timestamp: datetime
    energy_wh: WattHours
    power_w: Watts
    voltage_v: int
    currents_a: tuple[float, ...]  # per phase L1.. for AC, one value for DC
    dc: bool
    soc_percent: int | None = None

    def samples(self, measurands: list[str]) -> list[Sample]:
        """The configured measurands; SoC only where an EV reports it (DC charging)."""
        out: list[Sample] = []
        for measurand in measurands:
            if measurand == ENERGY:
                out.append(Sample(ENERGY, self.energy_wh, "Wh"))
            elif measurand == POWER:
                out.append(Sample(POWER, self.power_w, "W"))
            elif measurand == VOLTAGE:
                out.append(Sample(VOLTAGE, self.voltage_v, "V"))
            elif measurand == CURRENT and self.dc:
                out.append(Sample(CURRENT, self.currents_a[0], "A"))
            elif measurand == CURRENT:
                out.extend(
                    Sample(CURRENT, current, "A", f"L{i}")
                    for i, current in enumerate(self.currents_a, start=1)
                )
            elif measurand == SOC and self.soc_percent is not None:
                out.append(Sample(SOC, self.soc_percent, "Percent"))
        return out


class Meter:
    """Integrates power over time exactly (in watt-microseconds) and registers whole Wh.

    Integer arithmetic keeps the register free of float drift however many short steps a
    simulated session is cut into.
    """

    def __init__(self, phases: int = 3, dc: bool = False, register_wh: int = 0) -> None:
        if not dc and phases not in (1, 2, 3):
            raise ValueError("an AC meter measures 1, 2 or 3 phases")
        self.phases = 1 if dc else phases
        self.dc = dc
        self.voltage_v = DC_VOLTAGE_V if dc else AC_VOLTAGE_V
        self._energy_wus = register_wh * _MICROSECONDS_PER_HOUR
        self._export_wus = 0
        self._power_w = 0

    @property
    def register_wh(self) -> WattHours:
        return WattHours(self._energy_wus // _MICROSECONDS_PER_HOUR)

    @property
    def export_register_wh(self) -> WattHours:
        return WattHours(self._export_wus // _MICROSECONDS_PER_HOUR)

    @property
    def power_w(self) -> Watts:
        return Watts(self._power_w)

    def run(self, power_w: int, duration: timedelta) -> WattHours:
        """Meter `power_w` flowing for `duration`; returns the Wh the register moved by."""
        if power_w < 0:
            raise ValueError("this meter registers imported energy only")
        if duration < timedelta(0):
            raise ValueError("time does not run backwards")
        before = self.register_wh
        self._power_w = power_w
        self._energy_wus += power_w * (duration // timedelta(microseconds=1))
        return WattHours(self.register_wh - before)

    def export(self, power_w: int, duration: timedelta) -> WattHours:
        """Meter `power_w` sent back to the grid for `duration` on the export register; the
        import register stands still. Returns the Wh the export register moved by."""
        if power_w < 0:
            raise ValueError("exported power is counted positive")
        if duration < timedelta(0):
            raise ValueError("time does not run backwards")
        before = self.export_register_wh
        self._power_w = 0
        self._export_wus += power_w * (duration // timedelta(microseconds=1))
        return WattHours(self.export_register_wh - before)

    def idle(self) -> None:
        """No current flows any more (the session ended or the EV stopped drawing)."""
        self._power_w = 0

    def current_a(self, power_w: int) -> float:
        """Current per phase for a power, to one decimal as meters display it."""
        return round(power_w / (self.voltage_v * self.phases), 1)

    def reading(self, at: datetime, soc_percent: int | None = None) -> Reading:
        current = self.current_a(self._power_w)
        return Reading(
            timestamp=at,
            energy_wh=self.register_wh,
            power_w=self.power_w,
            voltage_v=self.voltage_v,
            currents_a=(current,) * self.phases,
            dc=self.dc,
            soc_percent=soc_percent if self.dc else None,
        )

"""A typical residential day ahead: vehicles plugged in from the evening to the next morning on
one feeder, with an evening price peak and cheap night energy. The demo, the bench and the
tests plan this day at whatever size they need.
"""

from __future__ import annotations

import numpy as np

from evgi.v2g.schedule import SLOTS_PER_DAY, Fleet, Grid

# The planning day starts at noon, so an evening-to-morning plug-in fits in one day of slots.
HOUR = 4  # slots per hour


def day_ahead(vehicles: int, *, seed: int = 0, charger_w: int = 11_000) -> tuple[Fleet, Grid]:
    """`vehicles` plugged-in cars behind one feeder, with bidirectional `charger_w` chargers."""
    rng = np.random.default_rng(seed)
    arrival = rng.integers(4 * HOUR, 10 * HOUR, vehicles)  # 16:00 to 22:00
    departure = rng.integers(18 * HOUR, 22 * HOUR, vehicles)  # 06:00 to 10:00 next day
    capacity = rng.choice([40_000.0, 60_000.0, 77_000.0, 100_000.0], vehicles)
    soc = capacity * rng.uniform(0.25, 0.7, vehicles)
    floor = capacity * 0.2
    target = capacity * rng.choice([0.8, 0.9], vehicles)
    fleet = Fleet.of(
        arrival_slot=arrival,
        departure_slot=departure,
        soc_wh=np.round(soc),
        capacity_wh=capacity,
        floor_wh=floor,
        target_wh=target,
        max_charge_w=charger_w,
        max_discharge_w=charger_w,
        charge_efficiency=0.95,
        discharge_efficiency=0.95,
    )
    hours = (12 + np.arange(SLOTS_PER_DAY) / HOUR) % 24
    # EUR cents per MWh: 12 ct/kWh at night, 30 ct/kWh in the 17:00-21:00 peak, 20 ct otherwise.
    buy = np.where((hours >= 17) & (hours < 21), 30_000, np.where(hours < 6, 12_000, 20_000))
    buy = buy + rng.integers(-1_500, 1_500, SLOTS_PER_DAY)
    sell = buy - 2_000
    # The feeder carries about a third of the fleet's charging power at once, both ways.
    limit = 0.35 * vehicles * charger_w
    grid = Grid.of(
        import_limit_w=limit,
        export_limit_w=0.2 * vehicles * charger_w,
        buy_price=buy,
        sell_price=sell,
    )
    return fleet, grid

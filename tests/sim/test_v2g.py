"""The V2G evening on its own: the real 2030.5 server over mutual TLS on loopback, the EVSEs'
grid clients and inverters, the agreement rules, the fleet plan and the dispatcher."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from evgi.config import Settings
from evgi.grid.client import COMPLETED, OPTED_OUT, STARTED
from evgi.sim.feeder import Feeder
from evgi.sim.v2g import EVENT_LIMIT, RATING, RESIDENTS, Evening, V2gEvening
from evgi.storage import open_database
from evgi.v2g import Refusal
from tests.grid.conftest import SEP_XSD


@pytest.fixture(scope="module")
def evening(tmp_path_factory: pytest.TempPathFactory) -> Evening:
    folder: Path = tmp_path_factory.mktemp("v2g")
    url = f"sqlite:///{folder / 'evgi.db'}"
    settings = Settings(
        data_dir=folder / "data",
        database_url=url,
        grid_schema=SEP_XSD if SEP_XSD.exists() else None,
    )
    db = open_database(url)
    try:
        return V2gEvening(settings, db, day=date(2026, 11, 20)).run()
    finally:
        db.dispose()


def test_every_check_of_the_evening_holds(evening: Evening) -> None:
    failures = [failure for ok, failure in evening.checks() if not ok]
    assert failures == []


def test_consenting_vehicles_discharge_and_the_others_are_refused_with_reasons(
    evening: Evening,
) -> None:
    final = {vehicle: decisions[-1] for vehicle, decisions in evening.decisions.items()}
    assert {v for v, d in final.items() if d.agreed} == {"vehicle-1", "vehicle-3", "vehicle-4"}
    assert final["vehicle-2"].refusals == (Refusal.EV_CANNOT_RECEIVE_1547,)
    assert final["vehicle-5"].refusals == (Refusal.EV_BELOW_SOC_FLOOR,)
    assert final["vehicle-6"].refusals == (Refusal.DRIVER_OPTED_OUT,)
    for index, resident in enumerate(RESIDENTS):
        exported = evening.exported_wh(index)
        assert (exported > 1_000) is final[resident.vehicle].agreed, resident.vehicle
    # The opted-out driver's EVSE told the utility so; the others ran the event to its end.
    assert OPTED_OUT in evening.responses["vehicle-6"]
    assert {STARTED, COMPLETED} <= evening.responses["vehicle-1"]


def test_the_grid_limits_bound_every_output(evening: Evening) -> None:
    limit = RATING.max_discharge_w * EVENT_LIMIT / 10000
    begin, end = evening.event_window
    outside = np.array([not begin <= at < end for at in evening.times])
    assert evening.active_w.max() <= limit + 1e-6
    assert np.all(evening.active_w[outside] <= 1e-6)
    # Asked straight to discharge flat out mid-event, no inverter goes past the limit, and the
    # AC vehicle that cannot take 1547 functions gives nothing.
    assert max(evening.probe_w.values()) <= limit + 1e-6
    assert evening.probe_w["vehicle-2"] == 0.0


def test_v2g_lowers_the_peak_and_volt_var_answers_the_voltage(evening: Evening) -> None:
    assert evening.load_with_w.max() < 0.8 * evening.load_without_w.max()
    # Below the curve's knee at 0.98 pu the inverters inject reactive power the next minute.
    low = evening.voltage_with[:-1, :] < 0.98 - 1e-3
    assert low.any()
    assert np.all(evening.reactive_var[1:][low.any(axis=1)].sum(axis=1) > 0)


def test_the_feeder_voltage_falls_along_the_line_with_load() -> None:
    feeder = Feeder.cable((1, 1, 1), segment_m=100)
    idle = feeder.voltages(np.zeros(3), np.zeros(3))
    loaded = feeder.voltages(np.array([10_000.0, 10_000.0, 10_000.0]), np.zeros(3))
    injecting = feeder.voltages(np.array([10_000.0, 10_000.0, 10_000.0]), np.full(3, -5_000.0))
    assert np.allclose(idle, feeder.source_pu)
    assert loaded[0] > loaded[1] > loaded[2]
    assert np.all(injecting > loaded)

"""The V2G evening on its own: the real 2030.5 server over mutual TLS on loopback, the EVSEs'
grid clients and inverters, the agreement rules, the fleet plan and the dispatcher."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from evgi.app import Platform, open_platform
from evgi.config import Settings
from evgi.grid.client import COMPLETED, OPTED_OUT, STARTED
from evgi.settlement import Wallets
from evgi.sim.feeder import Feeder
from evgi.sim.settlement import CURRENCY
from evgi.sim.stations.v21 import EXPORT_REGISTER
from evgi.sim.v2g import (
    EVENT_LIMIT,
    EXPORT_PRICE,
    RATING,
    RESIDENTS,
    Evening,
    V2gEvening,
)
from evgi.storage import ChargingStore
from evgi.v2g import Refusal
from evgi.v2g.station_commands import DISCHARGE_UNSUPPORTED
from tests.grid.conftest import SEP_XSD


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Evening, Platform]]:
    folder: Path = tmp_path_factory.mktemp("v2g")
    settings = Settings(
        data_dir=folder / "data",
        database_url=f"sqlite:///{folder / 'evgi.db'}",
        grid_schema=SEP_XSD if SEP_XSD.exists() else None,
    )
    platform = open_platform(settings)
    try:
        yield V2gEvening(platform, day=date(2026, 11, 20)).run(), platform
    finally:
        platform.close()


@pytest.fixture(scope="module")
def evening(run: tuple[Evening, Platform]) -> Evening:
    return run[0]


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


def test_the_dispatch_reaches_the_stations_over_ocpp(evening: Evening) -> None:
    versions = {v: {s.version.value for s in sent} for v, sent in evening.sent.items()}
    assert versions == {r.vehicle: {f"ocpp{r.ocpp}"} for r in RESIDENTS}
    assert versions["vehicle-6"] == {"ocpp1.6"}
    assert all(s.status == "Accepted" for sent in evening.sent.values() for s in sent)
    # 2.1 EVs told their needs at plug-in; the one that cannot take 1547 functions asked for
    # no bidirectional transfer, so the CSMS has no V2X profile for it.
    assert evening.needs == {
        "vehicle-1": "Processing",
        "vehicle-2": "NoChargingProfile",
        "vehicle-3": "Processing",
        "vehicle-4": "Processing",
        "vehicle-5": "Processing",
    }
    setpoints = [
        period["setpoint"]
        for s in evening.sent["vehicle-1"]
        for period in s.body["chargingSchedule"][0]["chargingSchedulePeriod"]
        if period["operationMode"] == "CentralSetpoint"
    ]
    assert min(setpoints) < 0 < max(setpoints)
    # The plan the 1.6 station got at plug-in asked for discharge: a 0 W limit, and why.
    (plan,) = evening.sent["vehicle-6"][:1]
    assert plan.reason == DISCHARGE_UNSUPPORTED.format(version="ocpp1.6")
    limits = [p["limit"] for p in plan.body["chargingSchedule"]["chargingSchedulePeriod"]]
    assert 0.0 in limits and min(limits) >= 0.0
    assert evening.der_control == ("home-evse-1", "Accepted")
    assert evening.schema_violations == 0


def test_the_grid_limit_holds_an_overreach_and_the_stations_raise_der_alarms(
    evening: Evening,
) -> None:
    limit = RATING.max_discharge_w * EVENT_LIMIT / 10000
    assert evening.overreached == {"vehicle-1", "vehicle-3", "vehicle-4"}
    for vehicle, alarms in evening.alarms.items():
        if vehicle not in evening.overreached:
            assert alarms == [], vehicle
            continue
        raised, cleared = alarms
        assert (raised.control_type, raised.alarm_ended, cleared.alarm_ended) == (
            "LimitMaxDischarge",
            False,
            True,
        )
        assert raised.extra_info is not None
        assert f"{RATING.max_discharge_w:.0f} W held at {limit:.0f} W" in raised.extra_info
        asked = [
            p["setpoint"]
            for s in evening.sent[vehicle]
            for p in s.body["chargingSchedule"][0]["chargingSchedulePeriod"]
        ]
        assert -RATING.max_discharge_w in asked
    # What the stations metered never went past the limit, though they were asked to.
    assert evening.metered_w.max() == limit
    assert np.all(evening.metered_w <= evening.limit_w + 1)


def test_export_is_metered_apart_and_paid_to_the_driver(run: tuple[Evening, Platform]) -> None:
    evening, platform = run
    wallets = Wallets.for_platform(platform, CURRENCY)
    store = ChargingStore(platform.db)
    paid = set()
    for index, resident in enumerate(RESIDENTS):
        exported = evening.export_register_wh[resident.vehicle]
        payment = evening.payments.get(resident.vehicle)
        if not evening.agreed(resident.vehicle):
            assert exported == 0 and payment is None, resident.vehicle
            assert wallets.balance(resident.driver).minor == 0
            continue
        assert abs(exported - evening.exported_wh(index)) < 10
        assert payment is not None
        assert (payment.export_wh, payment.amount_minor) == (
            exported,
            exported * EXPORT_PRICE.minor // 1000,
        )
        assert wallets.balance(resident.driver).minor == payment.amount_minor
        assert platform.ledger.receipt(payment.tx_hash).ok
        # The CSMS stored both registers of the session, the import one charged as usual.
        transaction = store.run(store.find_transaction, resident.station_id, payment.transaction_id)
        assert transaction is not None
        samples = store.run(store.meter_samples, transaction_number=transaction.number)
        measurands = {s.sample.measurand for s in samples}
        assert {EXPORT_REGISTER, "Energy.Active.Import.Register"} <= measurands
        paid.add(resident.vehicle)
    assert paid == {"vehicle-1", "vehicle-3", "vehicle-4"}


def test_the_feeder_voltage_falls_along_the_line_with_load() -> None:
    feeder = Feeder.cable((1, 1, 1), segment_m=100)
    idle = feeder.voltages(np.zeros(3), np.zeros(3))
    loaded = feeder.voltages(np.array([10_000.0, 10_000.0, 10_000.0]), np.zeros(3))
    injecting = feeder.voltages(np.array([10_000.0, 10_000.0, 10_000.0]), np.full(3, -5_000.0))
    assert np.allclose(idle, feeder.source_pu)
    assert loaded[0] > loaded[1] > loaded[2]
    assert np.all(injecting > loaded)

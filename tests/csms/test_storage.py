"""The CSMS tables on SQLite and PostgreSQL: what is stored, batching, and a restart."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ocpp.v201 import call as c201
from sqlalchemy import Engine

from evgi.core.errors import NotFoundError, ValidationError
from evgi.csms import Csms
from evgi.csms.charging_sessions import TransactionChange
from evgi.storage import open_database
from evgi.storage.charging import ChargingStore, MeterSample, VariableRecord
from tests.csms.clients import station
from tests.csms.conftest import PASSWORD, Harness

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_tables_round_trip(db: Engine) -> None:
    store = ChargingStore(db)
    store.run(store.add_station, "S1", "scrypt$x", 1, "Accepted", NOW)
    with pytest.raises(ValidationError):
        store.run(store.add_station, "S1", None, 0, "Accepted", NOW)
    store.run(store.record_connector_status, "S1", 1, 1, "Available", NOW)
    store.run(store.record_connector_status, "S1", 1, 1, "Charging", NOW, "NoError")
    assert [(c.status, c.error_code) for c in store.run(store.connectors, "S1")] == [
        ("Charging", "NoError")
    ]
    store.run(store.set_operational_status, "S1", 1, "Inoperative", NOW)
    assert store.run(store.operational_status, "S1") == {1: "Inoperative"}

    store.run(
        store.put_token, "T1", "Accepted", NOW, expires_at=NOW + timedelta(days=1), group_id="G"
    )
    token = store.run(store.find_token, "T1")
    assert token is not None and token.expires_at == NOW + timedelta(days=1)
    store.run(store.record_local_list, "S1", 3, {"T1": "Accepted", "T2": "Blocked"}, True, NOW)
    store.run(store.record_local_list, "S1", 4, {"T2": None}, False, NOW)
    assert store.run(store.local_list, "S1") == {"T1": "Accepted"}
    assert store.run(store.local_list_version, "S1") == 4

    tx = store.run(
        store.start_transaction,
        "S1",
        None,
        NOW,
        NOW,
        evse_id=1,
        connector_id=1,
        id_token="T1",
        meter_start_wh=100,
    )
    assert tx.transaction_id == str(tx.number)
    # What a start returns is what reading the row back gives, whichever way it is read.
    assert tx == store.run(store.transaction_by_number, tx.number)
    paris = timezone(timedelta(hours=1))
    other = store.run(store.start_transaction, "S1", "abc", NOW.astimezone(paris), NOW)
    assert other.transaction_id == "abc" and other.started_at.tzinfo == UTC
    assert other == store.run(store.find_transaction, "S1", "abc")
    assert other == store.run(store.transactions, "S1")[-1]
    sample = MeterSample(NOW, "Energy.Active.Import.Register", 1.5, "kWh", signed='{"a":1}')
    store.run(store.add_meter_samples, "S1", 1, tx.number, [sample])
    assert store.run(store.meter_samples, "S1", tx.number)[0].sample == sample
    done = store.run(
        store.update_transaction, tx, state="ended", meter_stop_wh=1600, missing_seq_nos={4, 2}
    )
    assert done == store.run(store.transaction_by_number, tx.number)
    assert (done.energy_wh, done.missing) == (1500, [2, 4])

    profile = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile"}
    store.run(store.install_profile, "S1", 1, profile, "TxDefaultProfile", NOW)
    # Same purpose and stack level on the same EVSE: the new profile replaces the old one.
    store.run(store.install_profile, "S1", 1, {**profile, "id": 2}, "TxDefaultProfile", NOW)
    store.run(store.install_profile, "S1", 2, {**profile, "id": 3}, "TxDefaultProfile", NOW)
    assert [p.profile_id for p in store.run(store.profiles, "S1")] == [2, 3]
    assert store.run(store.clear_profiles, "S1", evse_id=2) == 1

    store.run(store.put_reservation, "S1", 9, 1, "T1", NOW, "Accepted", NOW)
    assert store.run(store.set_reservation_status, "S1", 9, "Used", NOW)
    assert store.run(store.reservations, "S1")[0].status == "Used"
    variable = VariableRecord("OCPPCommCtrlr", "HeartbeatInterval", "60", evse_id=None)
    store.run(store.record_variables, "S1", [variable], NOW)
    store.run(
        store.record_variables,
        "S1",
        [VariableRecord("OCPPCommCtrlr", "HeartbeatInterval", "90")],
        NOW,
    )
    assert [v.value for v in store.run(store.variables, "S1")] == ["90"]
    store.run(store.record_security_event, "S1", "FirmwareUpdated", NOW, None, NOW)
    store.run(store.record_firmware_log_status, "S1", "log", "Uploaded", NOW, 5)
    store.run(store.record_data_transfer, "S1", "in", "v", None, {"k": [1]}, "Accepted", NOW)
    assert store.run(store.data_transfers, "S1")[0]["data"] == {"k": [1]}
    assert [t.transaction_id for t in store.run(store.transactions, "S1", "ended")] == [
        str(tx.number)
    ]


def test_transaction_filters_pages_and_removal(db: Engine) -> None:
    """What the operator API reads (by token, by time open, in pages), and what a removal
    takes with it."""
    store = ChargingStore(db)
    for station_id in ("S1", "S2"):
        store.run(store.add_station, station_id, None, 0, "Accepted", NOW)
    hour = timedelta(hours=1)
    early = store.run(store.start_transaction, "S1", "a", NOW, NOW, id_token="T1")
    store.run(store.update_transaction, early, state="ended", stopped_at=NOW + hour)
    late = store.run(store.start_transaction, "S1", "b", NOW + 2 * hour, NOW, id_token="T2")
    store.run(store.start_transaction, "S2", "c", NOW, NOW, id_token="T1")

    def ids(**filters: Any) -> list[str]:
        return [t.transaction_id for t in store.run(store.transactions, **filters)]

    assert ids(id_token="T1") == ["a", "c"]
    assert ids(since=NOW + 1.5 * hour) == ["b", "c"]
    assert ids(until=NOW + hour) == ["a", "c"]
    assert ids(station_id="S1", since=NOW + hour, until=NOW + 3 * hour) == ["a", "b"]
    assert (ids(limit=2), ids(after=late.number)) == (["a", "b"], ["c"])

    store.run(
        store.add_meter_samples,
        "S1",
        1,
        early.number,
        [MeterSample(NOW, "Energy.Active.Import.Register", 1.0)],
    )
    store.run(store.delete_station, "S1")
    assert ids() == ["c"] and store.run(store.meter_samples, "S1") == []
    with pytest.raises(NotFoundError):
        store.run(store.delete_station, "S1")
    store.run(store.put_token, "T1", "Accepted", NOW)
    store.run(store.delete_token, "T1")
    assert store.run(store.find_token, "T1") is None
    with pytest.raises(NotFoundError):
        store.run(store.delete_token, "T1")


def test_batched_writes_fail_alone(db: Engine) -> None:
    store = ChargingStore(db)
    store.run(store.add_station, "S1", None, 0, "Accepted", NOW)

    async def scenario() -> list[object]:
        results = await asyncio.gather(
            *(
                store.apply(store.record_connector_status, "S1", 1, n, "Available", NOW)
                for n in range(20)
            ),
            store.apply(store.add_station, "S1", None, 0, "Accepted", NOW),  # fails
            return_exceptions=True,
        )
        store.close()
        return results

    results = asyncio.run(scenario())
    assert isinstance(results[-1], ValidationError)
    assert results[:-1] == [None] * 20
    assert len(store.run(store.connectors, "S1")) == 20


def test_sequence_bookkeeping(db: Engine, tmp_path: Path) -> None:
    harness = Harness(db, tmp_path)
    sessions = harness.csms.services.sessions
    harness.csms.add_station("S1")

    async def scenario() -> list[tuple[int, ...]]:
        missing = []
        # Updated arrives before its Started (lost): the transaction exists from then on.
        for kind, seq in (("update", 3), ("start", 0), ("update", 1), ("end", 6), ("update", 5)):
            outcome = await sessions.apply(
                TransactionChange("S1", kind, NOW, transaction_id="TX", seq_no=seq)
            )  # type: ignore[arg-type]
            missing.append(outcome.missing)
        harness.csms.store.close()
        return missing

    assert asyncio.run(scenario()) == [(0, 1, 2), (1, 2), (2,), (2, 4, 5), (2, 4)]
    tx = harness.csms.store.run(harness.csms.store.find_transaction, "S1", "TX")
    assert tx is not None and tx.state == "ended"


def test_restart_keeps_transactions_and_stations_resume(db_url: str, tmp_path: Path) -> None:
    engine = open_database(db_url)
    harness = Harness(engine, tmp_path)
    harness.csms.add_station("CS", PASSWORD)
    token = {"id_token": "T", "type": "ISO14443"}
    harness.csms.add_token("T")

    def event(kind: str, seq: int, wh: float) -> c201.TransactionEvent:
        return c201.TransactionEvent(
            event_type=kind,
            timestamp=NOW.isoformat(),
            trigger_reason="Authorized",
            seq_no=seq,
            transaction_info={"transaction_id": "TX-R"},
            id_token=token,
            evse={"id": 1},
            meter_value=[{"timestamp": NOW.isoformat(), "sampled_value": [{"value": wh}]}],
        )

    async def before() -> None:
        async with harness.serve() as url, station(url, "CS", "ocpp2.0.1", PASSWORD) as cp:
            await cp.call(
                c201.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                )
            )
            await cp.call(event("Started", 0, 100.0))

    async def after(csms: Csms) -> None:
        # The station reconnects without booting again and finishes its transaction.
        async with harness.serve() as url, station(url, "CS", "ocpp2.0.1", PASSWORD) as cp:
            await cp.call(c201.Heartbeat())
            await cp.call(event("Ended", 1, 2100.0))

    asyncio.run(before())
    engine.dispose()
    engine = open_database(db_url)
    harness.db = engine
    csms = harness.reopen()
    assert csms.store.run(csms.store.station, "CS").connected is False
    asyncio.run(after(csms))
    tx = csms.store.run(csms.store.find_transaction, "CS", "TX-R")
    assert tx is not None and (tx.state, tx.energy_wh) == ("ended", 2000)
    engine.dispose()

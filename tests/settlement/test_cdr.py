"""Charge Detail Records built from what the CSMS stored, kept once per session.

The helpers here (`record_transaction`, `make_cdr`) are shared by the anchoring, proof and
invoice tests: they write the CSMS's rows the way its handlers do, then price and build the CDR.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from evgi.core import Account, ValidationError
from evgi.core.canonical import canonical_json
from evgi.core.digest import keccak256, to_hex
from evgi.settlement import (
    Cdr,
    ChargingSession,
    Interval,
    LockedTariff,
    MeterSample,
    build_cdr,
    cdr_digest,
    id_token_digest,
    parse_tariff,
    price_session,
)
from evgi.settlement.cdr import meter_reading
from evgi.storage import CdrConflict, CdrStore, ChargingStore, ChargingTransaction
from evgi.storage import MeterSample as StoredSample
from evgi.storage.charging import StoredMeterSample

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TARIFF = parse_tariff(
    '{"country_code": "DE", "party_id": "EVG", "id": "T1", "currency": "EUR",'
    ' "last_updated": "2026-01-01T00:00:00Z", "elements": [{"price_components": ['
    '{"type": "FLAT", "price": 0.50, "vat": 19.0, "step_size": 1},'
    '{"type": "ENERGY", "price": 0.30, "vat": 19.0, "step_size": 1}]}]}'
)
OCMF = (
    'OCMF|{"FV":"1.0","GI":"EVG","RD":[{"TM":"2026-03-02T08:30:00,000+0000 S","RV":"7.5"}]}'
    '|{"SD":"3045"}'
)
PARTIES = {name: Account.generate().address for name in ("driver", "cpo", "emsp")}


def record_transaction(
    engine: Engine,
    station_id: str,
    transaction_id: str,
    start: datetime = T0,
    energy_wh: int = 7500,
    minutes: int = 60,
    id_token: str = "04A2B3C4D5",
) -> tuple[ChargingTransaction, list[StoredMeterSample]]:
    """A started, metered and ended transaction, as a 2.0.1 station's messages leave it."""
    store = ChargingStore(engine)
    if store.run(store.find_station, station_id) is None:
        store.run(store.add_station, station_id, None, 0, "Accepted", start)
    tx = store.run(
        store.start_transaction,
        station_id,
        transaction_id,
        start,
        start,
        evse_id=1,
        connector_id=1,
        id_token=id_token,
        meter_start_wh=100_000,
    )
    stop = start + timedelta(minutes=minutes)
    signed = base64.b64encode(OCMF.encode()).decode()
    samples = [
        StoredSample(
            start, "Energy.Active.Import.Register", 100_000.0, "Wh", 0, None, "Transaction.Begin"
        ),
        StoredSample(
            stop,
            "Energy.Active.Import.Register",
            float(100_000 + energy_wh),
            "Wh",
            context="Transaction.End",
            signed='{"encodingMethod":"OCMF","publicKey":"","signedMeterData":"' + signed + '",'
            '"signingMethod":"ECDSA-secp256r1-SHA256"}',
        ),
    ]
    store.run(store.add_meter_samples, station_id, 1, tx.number, samples)
    tx = store.run(
        store.update_transaction,
        tx,
        state="ended",
        stopped_at=stop,
        meter_stop_wh=100_000 + energy_wh,
        stop_reason="Local",
    )
    stored = store.run(store.meter_samples, transaction_number=tx.number)
    return tx, stored


def make_cdr(
    engine: Engine,
    station_id: str = "CS-1",
    transaction_id: str = "tx-1",
    start: datetime = T0,
    energy_wh: int = 7500,
    escrow_id: str | None = None,
) -> Cdr:
    tx, samples = record_transaction(engine, station_id, transaction_id, start, energy_wh)
    assert tx.stopped_at is not None
    session = ChargingSession(
        start=tx.started_at,
        end=tx.stopped_at,
        time_zone="Europe/Berlin",
        samples=(MeterSample(tx.started_at, 0), MeterSample(tx.stopped_at, energy_wh)),
        charging=(Interval(tx.started_at, tx.stopped_at),),
    )
    locked = LockedTariff.of(TARIFF)
    return build_cdr(
        tx,
        samples,
        price_session(locked.tariff, session),
        locked.digest,
        escrow_id=escrow_id,
        **PARTIES,
    )


def test_cdr_carries_the_session_without_the_token(db: Engine) -> None:
    cdr = make_cdr(db, escrow_id="CS-1:tx-1")
    assert cdr.session_id == "CS-1/tx-1"
    assert (cdr.evse_id, cdr.connector_id) == (1, 1)
    assert cdr.energy_wh == 7500
    # 0.50 + 7.5 kWh * 0.30 = 2.75 excl.; 19 % VAT -> 3.2725 -> 3.27
    assert cdr.cost["total_excl_vat"] == 275
    assert cdr.total_minor == cdr.cost["total_incl_vat"] == 327
    assert cdr.currency == "EUR"
    assert cdr.tariff_digest == LockedTariff.of(TARIFF).digest
    assert cdr.id_token_digest == id_token_digest("04A2B3C4D5")
    assert "04A2B3C4D5" not in canonical_json(cdr.to_json()).decode()
    signed = [mv for mv in cdr.meter_values if mv["signed"]]
    assert len(signed) == 1 and signed[0]["ocmf"] == OCMF
    # readings as exact decimal strings: no binary float in the hashed document
    assert [mv["value"] for mv in cdr.meter_values] == ["100000", "107500"]
    assert signed[0]["signed"].startswith('{"encodingMethod":"OCMF"')


def test_digest_is_keccak_of_canonical_json_and_survives_a_round_trip(db: Engine) -> None:
    cdr = make_cdr(db)
    assert cdr.digest() == to_hex(keccak256(canonical_json(cdr.to_json())))
    assert cdr_digest(cdr.to_json()) == cdr.digest()
    again = Cdr.from_json(cdr.to_json())
    assert again == cdr and again.digest() == cdr.digest()
    assert replace(cdr, total_minor=cdr.total_minor + 1).digest() != cdr.digest()


def test_store_keeps_one_cdr_per_session(db: Engine) -> None:
    store = CdrStore(db)
    cdr = make_cdr(db)
    saved = store.save(cdr)
    assert store.save(cdr) == saved  # idempotent
    assert store.get(cdr.session_id).digest == cdr.digest()
    assert Cdr.from_json(store.get(cdr.session_id).document) == cdr
    with pytest.raises(CdrConflict, match="already has CDR"):
        store.save(replace(cdr, total_minor=1))
    assert store.get(cdr.session_id).digest == cdr.digest()  # nothing lost
    assert [s.session_id for s in store.sessions()] == [cdr.session_id]


@pytest.mark.parametrize(
    "value, text",
    [
        (100_000.0, "100000"),
        (-0.0, "0"),
        (12.34, "12.34"),
        (0.1, "0.1"),
        (230.7, "230.7"),
        (1.5e-7, "0.00000015"),
        (float(2**53), "9007199254740992"),
        (1e22, "10000000000000000000000"),
        (None, None),
        (math.nan, None),
        (math.inf, None),
    ],
)
def test_meter_readings_are_the_shortest_exact_decimal(value: float | None, text: str) -> None:
    assert meter_reading(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_meter_readings_read_back_as_the_stored_value(value: float) -> None:
    text = meter_reading(value)
    assert text is not None and float(Decimal(text)) == value
    assert "e" not in text.lower()


def test_save_many_stores_a_batch_in_the_callers_transaction(db: Engine) -> None:
    store = CdrStore(db)
    cdrs = [make_cdr(db, transaction_id=f"tx-{i}", energy_wh=1000 * (i + 1)) for i in range(3)]
    with db.begin() as conn:
        assert store.save_many(conn, cdrs) == [cdr.digest() for cdr in cdrs]
    for cdr in cdrs:
        stored = store.get(cdr.session_id)
        assert stored.digest == cdr.digest() == cdr_digest(stored.document)
        assert canonical_json(stored.document) == cdr.canonical
    with db.begin() as conn:  # saving again changes nothing
        assert store.save_many(conn, cdrs[1:]) == [cdr.digest() for cdr in cdrs[1:]]
    assert len(store.sessions()) == 3
    with pytest.raises(CdrConflict, match="already has CDR"), db.begin() as conn:
        store.save_many(conn, [replace(cdrs[0], total_minor=1)])
    assert store.get(cdrs[0].session_id).digest == cdrs[0].digest()
    with db.begin() as conn:
        assert store.save_many(conn, []) == []


def test_a_failed_batch_stores_none_of_its_cdrs(db: Engine) -> None:
    store = CdrStore(db)
    first, second = (make_cdr(db, transaction_id=f"tx-{i}") for i in range(2))
    store.save(first)
    with pytest.raises(CdrConflict), db.begin() as conn:
        store.save_many(conn, [second, replace(first, total_minor=1)])
    assert [s.session_id for s in store.sessions()] == [first.session_id]


@dataclass(frozen=True)
class _Document:
    session_id: str
    station_id: str
    stop: datetime
    canonical: bytes

    def digest(self) -> str:
        return to_hex(keccak256(self.canonical))


def test_a_digest_is_stored_under_one_session_only(db: Engine) -> None:
    store = CdrStore(db)
    store.save(_Document("CS-1/a", "CS-1", T0, b'{"a":1}'))
    with pytest.raises(CdrConflict, match="under another session"):
        store.save(_Document("CS-1/b", "CS-1", T0, b'{"a":1}'))
    assert [s.session_id for s in store.sessions()] == ["CS-1/a"]


def test_a_transaction_still_running_has_no_cdr(db: Engine) -> None:
    store = ChargingStore(db)
    store.run(store.add_station, "CS-9", None, 0, "Accepted", T0)
    tx = store.run(store.start_transaction, "CS-9", "t", T0, T0, meter_start_wh=0)
    cost = price_session(TARIFF, ChargingSession(T0, T0, "UTC"))
    with pytest.raises(ValidationError, match="has not ended"):
        build_cdr(tx, [], cost, LockedTariff.of(TARIFF).digest, **PARTIES)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("driver"), "malformed CDR"),
        (lambda d: d.update(version=9), "unsupported CDR version"),
        (lambda d: d.update(start="yesterday"), "not an ISO 8601 time"),
        (lambda d: d.update(energy_wh=1), "energy_wh"),
    ],
)
def test_malformed_cdr_documents_are_refused(db: Engine, change: object, message: str) -> None:
    document = make_cdr(db).to_json()
    assert callable(change)
    change(document)
    with pytest.raises(ValidationError, match=message):
        Cdr.from_json(document)

"""Prepaid charging end to end: a driver tops up, sees the price, charges at a simulated station
over a real WebSocket, and the escrow pays the CPO exactly the tariff's amount from the CDR."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from evgi.app import Platform, open_platform
from evgi.config import Settings
from evgi.core.clock import SimulatedClock
from evgi.core.units import Money
from evgi.csms import Csms
from evgi.ledger import Receipt, SignedTransaction
from evgi.settlement import CoreClient, Tariff, parse_tariff, session_id_of
from evgi.settlement.closing import metered_session
from evgi.sim.stations import EvseSpec, Station, Vehicle, station_class
from evgi.storage import CdrStore, ChargingTransaction, StoredMeterSample
from evgi.storage import MeterSample as StoredSample

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
PASSWORD = "station-password-0001"
ALICE_CARD = "04A1B2C3D4E5F6"
BOB_CARD = "04B0B0B0B0B0B0"
POSTPAID_CARD = "04C0C0C0C0C0C0"


def energy_tariff(tariff_id: str, price: str) -> Tariff:
    return parse_tariff(
        f'{{"country_code": "DE", "party_id": "EVG", "id": "{tariff_id}", "currency": "EUR",'
        ' "last_updated": "2025-01-01T00:00:00Z", "elements": [{"price_components":'
        f' [{{"type": "ENERGY", "price": {price}, "step_size": 1}}]}}]}}'
    )


def cents(energy_wh: int, price_per_kwh: str) -> int:
    """The tariff's amount worked out by hand: price per kWh, half-up to the cent."""
    euros = Decimal(energy_wh) * Decimal(price_per_kwh) / 1000
    return int((euros * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Site:
    platform: Platform
    csms: Csms
    core: CoreClient
    url: str

    def station(self, version: str, station_id: str = "ST-1") -> Station:
        return station_class(version)(
            station_id,
            self.url,
            password=PASSWORD,
            clock=SimulatedClock(T0),
            evses=[EvseSpec(22_000)],
        )

    def balance(self, address: str) -> int:
        return self.core.wallets.balance_of(address).minor

    async def settled(self) -> None:
        assert await asyncio.to_thread(self.core.wait_idle, 20)


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url, settlement_fee_bp=100)
    opened = open_platform(settings)
    yield opened
    opened.close()


@asynccontextmanager
async def site(platform: Platform) -> AsyncIterator[Site]:
    csms = Csms(platform.settings, platform.db, platform.bus, platform.clock)
    csms.add_station("ST-1", PASSWORD)
    for card in (ALICE_CARD, BOB_CARD, POSTPAID_CARD):
        csms.add_token(card)
    core = CoreClient.for_platform(platform, csms.store)
    detach = core.attach(platform.bus, csms.authorization)
    core.start()
    try:
        async with csms.running("127.0.0.1", 0) as server:
            yield Site(platform, csms, core, f"ws://127.0.0.1:{server.port}/ocpp")
    finally:
        core.stop()
        detach()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_prepaid_session_pays_the_cpo_the_tariff_amount(platform: Platform, version: str) -> None:
    async def scenario() -> None:
        async with site(platform) as here:
            core, wallets = here.core, here.core.wallets
            core.set_tariff("ST-1", energy_tariff("AC-30", "0.30"), "Europe/Berlin")
            wallets.topup("alice", Money.parse("100.00 EUR"))
            wallets.link("alice", ALICE_CARD)
            alice = wallets.get("alice").address
            cpo, emsp = wallets.cpo.address, wallets.emsp.address

            # The price before the start, locked for this card's next start here...
            quote = core.quote("ST-1", ALICE_CARD, 10_000, timedelta(hours=1), 22_000)
            assert quote.cost.total_incl_vat == Money.parse("3.00 EUR")
            # ...so a tariff change before the plug-in does not reach this session.
            core.set_tariff("ST-1", energy_tariff("AC-45", "0.45"), "Europe/Berlin")

            station = here.station(version)
            await station.connect()
            await station.plug_in(vehicle=Vehicle.at_soc(60_000, 30, 11_000))
            assert await station.present_token(ALICE_CARD) == "Accepted"
            await here.settled()
            running = core.session("ST-1", station.session().transaction_id)
            assert running.state == "open" and running.tariff_digest == quote.locked.digest
            assert here.balance(alice) == 10_000 - 5_000  # the hold is in escrow
            assert platform.ledger.query("escrow", "total", symbol=wallets.symbol) == 5_000

            await station.charge_for(timedelta(minutes=40))
            session = await station.stop_charging()
            await station.unplug()
            await here.settled()

            energy = session.energy_wh
            assert energy > 0
            cost = cents(energy, "0.30")
            fee = cost // 100  # 100 basis points, on top of the cost
            settled = core.session("ST-1", session.transaction_id or "")
            assert (settled.state, settled.cost_minor, settled.payee_minor, settled.fee_minor) == (
                "settled",
                cost,
                cost,
                fee,
            )
            assert here.balance(cpo) == cost
            assert here.balance(emsp) == fee
            assert here.balance(alice) == 10_000 - cost - fee
            assert platform.ledger.query("escrow", "total", symbol=wallets.symbol) == 0
            escrow = platform.ledger.query("escrow", "get", escrow_id=settled.escrow_id)
            assert escrow["state"] == "settled" and escrow["payeeAmount"] == cost
            # The escrow cites the stored CDR, built from the station's meter values.
            cdr = CdrStore(platform.db).get(session_id_of("ST-1", session.transaction_id or ""))
            assert cdr.digest == escrow["recordHash"] == settled.record_hash
            assert cdr.document["total_minor"] == cost
            assert cdr.document["energy_wh"] == energy
            assert cdr.document["tariff_digest"] == quote.locked.digest
            # An end delivered again settles nothing twice.
            assert core.settle([settled.session_id]) == []
            assert here.balance(cpo) == cost
            await station.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(("version", "status"), [("1.6", "Invalid"), ("2.0.1", "NoCredit")])
def test_driver_without_funds_is_refused(platform: Platform, version: str, status: str) -> None:
    async def scenario() -> None:
        async with site(platform) as here:
            core, wallets = here.core, here.core.wallets
            core.set_tariff("ST-1", energy_tariff("AC-30", "0.30"), "Europe/Berlin")
            wallets.topup("bob", Money.parse("12.00 EUR"))
            wallets.link("bob", BOB_CARD)

            refusal = core.refusal("ST-1", BOB_CARD)
            assert refusal is not None and refusal.status == "NoCredit"
            assert "12.00 EUR" in refusal.reason and "50.00 EUR" in refusal.reason

            station = here.station(version)
            await station.connect()
            await station.plug_in()
            # 1.6 knows no NoCredit: the CSMS answers Invalid there.
            assert await station.present_token(BOB_CARD) == status
            assert station.session() is None
            await here.settled()
            assert core.sessions(BOB_CARD) == []
            assert here.balance(wallets.get("bob").address) == 1_200

            # A card without a wallet is not prepaid: it charges as before, no escrow.
            assert await station.present_token(POSTPAID_CARD) == "Accepted"
            await station.charge_for(timedelta(minutes=5))
            await station.stop_charging()
            await here.settled()
            assert core.sessions(POSTPAID_CARD) == []
            assert platform.ledger.query("escrow", "total", symbol=wallets.symbol) == 0
            await station.close()

    asyncio.run(scenario())


def test_station_without_tariff_refuses_prepaid_cards(platform: Platform) -> None:
    async def scenario() -> None:
        async with site(platform) as here:
            here.core.wallets.topup("alice", Money.parse("80.00 EUR"))
            here.core.wallets.link("alice", ALICE_CARD)
            refusal = here.core.refusal("ST-1", ALICE_CARD)
            assert refusal is not None and refusal.status == "NotAtThisLocation"
            station = here.station("2.0.1")
            await station.connect()
            await station.plug_in()
            assert await station.present_token(ALICE_CARD) == "NotAtThisLocation"
            await station.close()

    asyncio.run(scenario())


def test_a_batch_the_ledger_refused_leaves_no_nonce_gap(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails while the settlements' block is written: the sessions stay settling,
    and `recover` then settles them at the nonces the failed batch never used."""
    ledger = platform.ledger
    submit_many = ledger.submit_many
    failures: list[int] = []

    def fail_settlements(signed: list[SignedTransaction]) -> list[Receipt]:
        if signed[0].tx.method == "settle" and not failures:
            failures.append(len(signed))
            raise OperationalError("INSERT INTO ledger_blocks", {}, Exception("disk I/O error"))
        return submit_many(signed)

    async def scenario() -> None:
        async with site(platform) as here:
            core, wallets = here.core, here.core.wallets
            core.set_tariff("ST-1", energy_tariff("AC-30", "0.30"), "Europe/Berlin")
            wallets.topup("alice", Money.parse("100.00 EUR"))
            wallets.link("alice", ALICE_CARD)
            station = here.station("2.0.1")
            await station.connect()
            await station.plug_in(vehicle=Vehicle.at_soc(60_000, 30, 11_000))
            assert await station.present_token(ALICE_CARD) == "Accepted"
            await here.settled()
            await station.charge_for(timedelta(minutes=20))
            monkeypatch.setattr(ledger, "submit_many", fail_settlements)
            session = await station.stop_charging()
            await here.settled()
            session_id = session_id_of("ST-1", session.transaction_id or "")
            assert failures == [1]
            assert core.session("ST-1", session.transaction_id or "").state == "settling"
            core.recover()
            recovered = core.session("ST-1", session.transaction_id or "")
            assert (recovered.session_id, recovered.state) == (session_id, "settled")
            cost = cents(session.energy_wh, "0.30")
            assert here.balance(wallets.cpo.address) == cost
            await station.close()

    asyncio.run(scenario())


def test_metered_session_charges_where_the_register_rises() -> None:
    """The stored readings become the priced session: charging while the register rises,
    parking while it stands still; a reading that falls back is held at the highest so far."""
    start = T0
    transaction = ChargingTransaction(
        number=1,
        station_id="ST-1",
        transaction_id="TX-1",
        evse_id=1,
        connector_id=1,
        id_token=ALICE_CARD,
        group_id=None,
        state="ended",
        charging_state=None,
        started_at=start,
        stopped_at=start + timedelta(minutes=45),
        meter_start_wh=1_000,
        meter_stop_wh=3_000,
        stop_reason="Local",
        stop_id_token=None,
        last_seq_no=None,
        missing_seq_nos="[]",
        offline_messages=0,
        remote_start_id=None,
        reservation_id=None,
        updated_at=start,
    )
    register = "Energy.Active.Import.Register"
    readings = [
        (15, register, 3.0, "kWh"),  # kWh with the OCPP unit, not Wh
        (20, register, 2_500.0, "Wh"),  # a glitch below the last reading
        (30, register, 3_000.0, "Wh"),
        (30, "Power.Active.Import", 0.0, "W"),  # not an energy reading
        (60, register, 9_999.0, "Wh"),  # after the stop: not this session's
    ]
    samples = [
        StoredMeterSample("ST-1", 1, 1, StoredSample(start + timedelta(minutes=m), name, v, unit))
        for m, name, v, unit in readings
    ]
    session = metered_session(transaction, samples, "Europe/Berlin")
    assert [(s.at - start, s.energy_wh) for s in session.samples] == [
        (timedelta(0), 1_000),
        (timedelta(minutes=15), 3_000),
        (timedelta(minutes=20), 3_000),
        (timedelta(minutes=30), 3_000),
        (timedelta(minutes=45), 3_000),
    ]
    assert [(i.start - start, i.end - start) for i in session.charging] == [
        (timedelta(0), timedelta(minutes=15))
    ]

"""A V2G session over a real WebSocket with a simulated 2.1 station: its export register is
metered apart from its import register, and at its end the driver is paid exactly export Wh
times the export price from the CPO's account, in one ledger transaction, recorded in the
database: neither a restart, nor a second process, nor a crash between the ledger transfer and
its row pays a session twice."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from evgi.api import create_app
from evgi.app import Platform, open_platform
from evgi.config import Settings
from evgi.core.clock import SimulatedClock
from evgi.core.units import Money
from evgi.csms import Csms, TransactionEnded
from evgi.ledger import Transaction
from evgi.service import http_in_background
from evgi.settlement import ExportPayment, ExportPayments, Wallets, session_id_of
from evgi.sim.stations import EvseSpec, Station21, Vehicle
from evgi.storage import open_database
from evgi.storage.export_payment import claim_export_payment, export_payment, record_sending
from evgi.storage.settlement import SettlementStore
from tests.cli_runner import run_evgi
from tests.service_runner import free_port, running_service

T0 = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)
PASSWORD = "station-password-0001"
CARD = "04E0E0E0E0E0E0"
PRICE = Money.parse("0.25 EUR")
PAID_MINOR = 6_000 * 25 // 1000  # 6 kWh exported at 0.25 EUR/kWh


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    opened = open_platform(Settings(data_dir=tmp_path / "data", database_url=db_url))
    yield opened
    opened.close()


@pytest.fixture
def csms(platform: Platform) -> Csms:
    csms = Csms(platform.settings, platform.db, platform.bus, platform.clock)
    csms.add_station("V2G-1", PASSWORD)
    csms.add_token(CARD)
    return csms


@pytest.fixture
def wallets(platform: Platform) -> Wallets:
    """Dana's wallet (1.00 EUR, her card linked) and a CPO account holding 500.00 EUR."""
    wallets = Wallets.for_platform(platform, "EUR")
    wallets.topup("dana", Money.parse("1.00 EUR"))
    wallets.link("dana", CARD)
    issuer = wallets.submitter(wallets.emsp)
    issuer.call("token", "mint", symbol=wallets.symbol, to=wallets.cpo.address, amount=50_000)
    return wallets


async def plugged_in(url: str) -> Station21:
    """Station V2G-1 (2.1, 11 kW) connected to the CSMS at `url`, Dana's EV plugged in."""
    station = Station21(
        "V2G-1", url, password=PASSWORD, clock=SimulatedClock(T0), evses=[EvseSpec(11_000)]
    )
    await station.connect()
    await station.plug_in(vehicle=Vehicle.at_soc(60_000, 50, 11_000))
    return station


async def v2g_session(platform: Platform, csms: Csms) -> TransactionEnded:
    """Dana's EV charges 2 kWh, sends 6 kWh back and leaves; returns the CSMS's end event."""
    ended: list[TransactionEnded] = []
    stop = platform.bus.subscribe(TransactionEnded, ended.append)
    try:
        async with csms.running("127.0.0.1", 0) as server:
            station = await plugged_in(f"ws://127.0.0.1:{server.port}/ocpp")
            needs = {"requested_energy_transfer": "AC_BPT"}
            assert await station.notify_ev_charging_needs(1, needs) == "NoChargingProfile"
            assert await station.present_token(CARD) == "Accepted"
            imported = await station.charge_for(timedelta(minutes=30), 4_000)
            exported = await station.discharge_for(timedelta(hours=1), 6_000)
            session = await station.stop_charging()
            await station.unplug()
            assert (imported, exported) == (2_000, 6_000)
            # The import register still tells the charged energy alone.
            assert session.energy_wh == 2_000
            await station.close()
    finally:
        stop()
    (event,) = ended
    return event


def balances(wallets: Wallets) -> tuple[int, int]:
    return wallets.balance("dana").minor, wallets.balance_of(wallets.cpo.address).minor


def second_process(wallets: Wallets, db_url: str, engines: list[Engine]) -> Wallets:
    """The wallets as another process sees them: its own engine and its own nonce counters."""
    engines.append(open_database(db_url))
    store = SettlementStore(engines[-1])
    return Wallets(wallets.ledger, wallets.keystore, store, wallets.clock, "EUR", wallets.anchor)


def test_exported_energy_is_paid_once_and_kept(
    platform: Platform, csms: Csms, wallets: Wallets, db_url: str, tmp_path: Path
) -> None:
    payments = ExportPayments(wallets, csms.store, PRICE)
    detach = payments.attach(platform.bus)
    try:
        event = asyncio.run(v2g_session(platform, csms))
    finally:
        detach()
    session_id = session_id_of("V2G-1", event.transaction_id)
    paid = payments.payment(session_id)
    assert paid is not None and paid.state == "paid"
    assert (paid.export_wh, paid.amount_minor, paid.wallet) == (6_000, PAID_MINOR, "dana")
    assert balances(wallets) == (100 + PAID_MINOR, 50_000 - PAID_MINOR)
    assert paid.tx_hash is not None and platform.ledger.receipt(paid.tx_hash).ok
    assert payments.payments("dana") == [paid]

    # A restart, and another process on the same database: neither pays the session again.
    engines: list[Engine] = []
    try:
        for other in (wallets, second_process(wallets, db_url, engines)):
            again = ExportPayments(other, csms.store, PRICE)
            assert again.recover() == []
            assert again.pay(event) is None
        assert balances(wallets) == (100 + PAID_MINOR, 50_000 - PAID_MINOR)

        # The operator API reads the payment by session and by wallet.
        with (
            http_in_background(create_app(platform, csms)) as base,
            httpx.Client(base_url=base) as api,
        ):
            one = api.get(f"/api/export-payments/{session_id}")
            assert one.status_code == 200, one.text
            body = one.json()
            assert (body["state"], body["amount_minor"], body["tx_hash"]) == (
                "paid",
                PAID_MINOR,
                paid.tx_hash,
            )
            assert body["hashes"] == [paid.tx_hash]
            listed = api.get("/api/export-payments", params={"wallet": "dana"}).json()
            assert [p["session_id"] for p in listed] == [session_id]
            assert api.get("/api/export-payments", params={"wallet": "erin"}).json() == []
            missing = api.get("/api/export-payments/V2G-1/nothing")
            assert missing.status_code == 404
            assert missing.json()["detail"]["code"] == "not_found"
    finally:
        for engine in engines:
            engine.dispose()

    # And so does `evgi settlement export-payments`.
    options = ["--data-dir", str(tmp_path / "data"), "--db", db_url]
    listed = run_evgi(tmp_path, *options, "settlement", "export-payments", "--wallet", "dana")
    assert listed.returncode == 0, listed.stderr
    assert all(text in listed.stdout for text in ("dana", "6000", "1.50 EUR", "paid"))
    other = run_evgi(tmp_path, *options, "settlement", "export-payments", "--wallet", "erin")
    assert other.returncode == 0 and "dana" not in other.stdout


def test_two_processes_racing_pay_once(
    platform: Platform, csms: Csms, wallets: Wallets, db_url: str
) -> None:
    event = asyncio.run(v2g_session(platform, csms))
    engines: list[Engine] = []
    try:
        racers = [
            ExportPayments(wallets, csms.store, PRICE),
            ExportPayments(second_process(wallets, db_url, engines), csms.store, PRICE),
        ]
        start = threading.Barrier(len(racers))
        results: list[ExportPayment | None] = [None] * len(racers)

        def race(index: int) -> None:
            start.wait()
            results[index] = racers[index].pay(event)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(len(racers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for engine in engines:
            engine.dispose()
    winners = [result for result in results if result is not None]
    assert len(winners) == 1 and winners[0].state == "paid"
    assert balances(wallets) == (100 + PAID_MINOR, 50_000 - PAID_MINOR)
    # The database itself refuses a second payment row for the session.
    with pytest.raises(IntegrityError), platform.db.begin() as conn:
        claim_export_payment(conn, replace(winners[0], state="claimed"))


CRASHES = ["claimed", "signed", "transferred", "nonce_taken"]


@pytest.mark.parametrize("crash", CRASHES)
def test_a_restart_settles_what_a_crash_left(
    platform: Platform, csms: Csms, wallets: Wallets, crash: str
) -> None:
    """A process died at `crash`: after claiming the row; after recording the signed transfer
    but before sending it; after the transfer reached the ledger but before its row said so;
    or before sending, with the recorded nonce since taken by another transaction of the CPO.
    The next start pays each exactly once, and the row names the transfer on the ledger."""
    event = asyncio.run(v2g_session(platform, csms))
    session_id = session_id_of("V2G-1", event.transaction_id)
    dana = wallets.get("dana")
    claim = ExportPayment(
        session_id=session_id,
        station_id="V2G-1",
        transaction_id=event.transaction_id,
        id_token=CARD,
        wallet="dana",
        driver_address=dana.address,
        payer=wallets.cpo.address,
        export_wh=6_000,
        amount_minor=PAID_MINOR,
        currency="EUR",
        state="claimed",
        nonce=None,
        sent_hashes="",
        tx_hash=None,
        claimed_at=platform.clock.now(),
        paid_at=None,
        note=None,
    )
    with platform.db.begin() as conn:
        claim_export_payment(conn, claim)
    landed: str | None = None
    if crash != "claimed":
        # What the crashed process did before dying: the transfer signed at the CPO's next
        # nonce and recorded, and, for "transferred", sent.
        ledger = platform.ledger
        nonce = ledger.nonce(wallets.cpo.address)
        transfer = Transaction(
            ledger.chain_id,
            wallets.cpo.address,
            nonce,
            "token",
            "transfer",
            {"symbol": wallets.symbol, "to": dana.address, "amount": PAID_MINOR},
        )
        signed = ledger.sign(transfer, wallets.cpo)
        sent = replace(claim, state="sending", nonce=nonce, sent_hashes=signed.hash_hex)
        with platform.db.begin() as conn:
            assert record_sending(conn, claim, sent)
        if crash == "transferred":
            landed = ledger.submit(signed).raise_for_status().tx_hash
        if crash == "nonce_taken":
            wallets.submitter(wallets.cpo).call(
                "token", "transfer", symbol=wallets.symbol, to=wallets.emsp.address, amount=1
            )
    cpo_before = wallets.balance_of(wallets.cpo.address).minor

    restarted = ExportPayments(wallets, csms.store, PRICE)
    (settled,) = restarted.recover()
    assert settled.state == "paid" and settled.tx_hash is not None
    if landed is not None:
        assert settled.tx_hash == landed
    paid_now = 0 if crash == "transferred" else PAID_MINOR
    assert wallets.balance("dana").minor == 100 + PAID_MINOR
    assert wallets.balance_of(wallets.cpo.address).minor == cpo_before - paid_now
    receipt = platform.ledger.receipt(settled.tx_hash)
    assert receipt.ok and settled.tx_hash in settled.hashes
    # Settled once for good: a further start and the ended transaction change nothing.
    assert restarted.recover() == [] and restarted.pay(event) is None
    with platform.db.connect() as conn:
        assert export_payment(conn, session_id) == settled
    assert wallets.balance("dana").minor == 100 + PAID_MINOR


def test_evgi_serve_pays_export_from_the_configured_wallet(tmp_path: Path) -> None:
    """An operator sets the export price and the program's budget wallet in evgi.toml; the
    running `evgi serve` pays the driver when the V2G transaction ends."""
    (tmp_path / "evgi.toml").write_text(
        'settlement_export_price = "0.25 EUR"\nsettlement_export_payer = "program"\n'
    )
    data = ["--data-dir", str(tmp_path / "evgi-data")]

    def evgi(*args: str) -> str:
        done = run_evgi(tmp_path, *data, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    evgi("csms", "add-station", "V2G-1", "--password", PASSWORD)
    evgi("csms", "tokens", "add", CARD)
    tariff = (
        '{"country_code": "DE", "party_id": "EVG", "id": "V2G", "currency": "EUR", "last_updated":'
        ' "2025-01-01T00:00:00Z", "elements": [{"price_components": [{"type": "ENERGY",'
        ' "price": 0.30, "step_size": 1}]}]}'
    )
    evgi("wallet", "tariff", "V2G-1", tariff, "--time-zone", "Europe/Berlin")
    evgi("wallet", "topup", "dana", "60.00 EUR", "--id-token", CARD)
    evgi("wallet", "topup", "program", "20.00 EUR")
    ocpp_port = free_port()

    async def v2g() -> int:
        station = await plugged_in(f"ws://127.0.0.1:{ocpp_port}/ocpp")
        await station.notify_ev_charging_needs(1, {"requested_energy_transfer": "AC_BPT"})
        assert await station.present_token(CARD) == "Accepted"
        exported = await station.discharge_for(timedelta(hours=1), 6_000)
        await station.stop_charging()
        await station.unplug()
        await station.close()
        return exported

    with running_service(tmp_path, ocpp_port=ocpp_port) as base:
        assert asyncio.run(v2g()) == 6_000
        deadline = time.monotonic() + 20
        while not (paid := httpx.get(f"{base}/api/export-payments?wallet=dana").json()):
            assert time.monotonic() < deadline, "the export was not paid"
            time.sleep(0.25)
    ((payment,),) = (paid,)
    assert (payment["state"], payment["export_wh"], payment["amount_minor"]) == (
        "paid",
        6_000,
        PAID_MINOR,
    )
    program = json.loads(evgi("wallet", "balance", "program", "--json"))
    assert program["balance_minor"] == 2_000 - PAID_MINOR

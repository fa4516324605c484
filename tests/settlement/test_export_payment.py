"""A V2G session over a real WebSocket with a simulated 2.1 station: its export register is
metered apart from its import register, and at its end the driver is paid exactly export Wh
times the export price from the CPO's account, in one ledger transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from evgi.app import Platform, open_platform
from evgi.config import Settings
from evgi.core.clock import SimulatedClock
from evgi.core.units import Money
from evgi.csms import Csms
from evgi.settlement import ExportPayments, Wallets, session_id_of
from evgi.sim.stations import EvseSpec, Station21, Vehicle

T0 = datetime(2025, 6, 1, 18, 0, tzinfo=UTC)
PASSWORD = "station-password-0001"
CARD = "04E0E0E0E0E0E0"


@pytest.fixture
def platform(db_url: str, tmp_path: Path) -> Iterator[Platform]:
    opened = open_platform(Settings(data_dir=tmp_path / "data", database_url=db_url))
    yield opened
    opened.close()


def test_exported_energy_is_paid_to_the_driver(platform: Platform) -> None:
    async def scenario() -> None:
        csms = Csms(platform.settings, platform.db, platform.bus, platform.clock)
        csms.add_station("V2G-1", PASSWORD)
        csms.add_token(CARD)
        wallets = Wallets.for_platform(platform, "EUR")
        wallets.topup("dana", Money.parse("1.00 EUR"))
        wallets.link("dana", CARD)
        issuer = wallets.submitter(wallets.emsp)
        issuer.call("token", "mint", symbol=wallets.symbol, to=wallets.cpo.address, amount=50_000)
        payments = ExportPayments(wallets, csms.store, Money.parse("0.25 EUR"))
        detach = payments.attach(platform.bus)
        try:
            async with csms.running("127.0.0.1", 0) as server:
                station = Station21(
                    "V2G-1",
                    f"ws://127.0.0.1:{server.port}/ocpp",
                    password=PASSWORD,
                    clock=SimulatedClock(T0),
                    evses=[EvseSpec(11_000)],
                )
                await station.connect()
                await station.plug_in(vehicle=Vehicle.at_soc(60_000, 50, 11_000))
                needs = {"requested_energy_transfer": "AC_BPT"}
                assert await station.notify_ev_charging_needs(1, needs) == "NoChargingProfile"
                assert await station.present_token(CARD) == "Accepted"
                imported = await station.charge_for(timedelta(minutes=30), 4_000)
                exported = await station.discharge_for(timedelta(hours=1), 6_000)
                session = await station.stop_charging()
                await station.unplug()
                assert (imported, exported) == (2_000, 6_000)

                session_id = session_id_of("V2G-1", session.transaction_id or "")
                for _ in range(200):
                    if session_id in payments.payments:
                        break
                    await asyncio.sleep(0.05)
                paid = payments.payments[session_id]
                assert (paid.export_wh, paid.amount_minor) == (6_000, 6_000 * 25 // 1000)
                assert wallets.balance("dana").minor == 100 + 150
                assert wallets.balance_of(wallets.cpo.address).minor == 50_000 - 150
                receipt = platform.ledger.receipt(paid.tx_hash)
                assert receipt.ok
                # The import register still tells the charged energy alone.
                assert session.energy_wh == 2_000
                await station.close()
        finally:
            detach()

    asyncio.run(scenario())

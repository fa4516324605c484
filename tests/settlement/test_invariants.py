"""Settlement's invariants on the ledger: the supply is balances plus escrows after every block,
a session is settled once, replays are refused, the timeout rule closes forgotten sessions, and
the same sessions leave the same balances and escrows on the EVM engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, update

from evgi.core import Account, Money, SystemClock
from evgi.core.errors import NonceError, NotFoundError, ValidationError
from evgi.csms import TransactionEnded, TransactionStarted
from evgi.identity.keystore import Keystore
from evgi.ledger import Ledger
from evgi.ledger.journal import LocalLedger
from evgi.settlement import (
    CoreClient,
    SettlementTerms,
    Wallets,
    parse_tariff,
    session_id_of,
    tariff_digest,
)
from evgi.storage import ChargingStore, MeterSample
from evgi.storage.settlement import SESSIONS, SettlementStore
from tests.ledger.conftest import evm_ledger, evm_node

__all__ = ["evm_ledger", "evm_node"]  # the EVM fixtures, for the differential test

STATION = "ST-1"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HOLD = Money("EUR", 5_000)
TARIFF = parse_tariff(
    '{"country_code": "DE", "party_id": "EVG", "id": "AC", "currency": "EUR",'
    ' "last_updated": "2025-01-01T00:00:00Z", "elements": [{"price_components":'
    ' [{"type": "FLAT", "price": 0.50, "step_size": 1}, {"type": "ENERGY", "price": 0.30,'
    ' "step_size": 1}]}]}'
)


def expected_cost(energy_wh: int) -> int:
    """0.50 EUR a session plus 0.30 EUR a kWh, in cents, half-up (energy is whole Wh)."""
    return 50 + (energy_wh * 30 + 500) // 1000


@dataclass
class Site:
    core: CoreClient
    charging: ChargingStore

    @property
    def wallets(self) -> Wallets:
        return self.core.wallets

    def record(
        self, first: int, energies: Sequence[int | None], token: str = "CARD-0"
    ) -> tuple[list[TransactionStarted], list[TransactionEnded]]:
        """Transactions at the CSMS, from `first` on; None for one that never ends."""
        return self.charging.run(_record, self.charging, first, energies, token)

    def balance(self, address: str) -> int:
        return self.wallets.balance_of(address).minor


def _record(
    conn: Any, store: ChargingStore, first: int, energies: Sequence[int | None], token: str
) -> tuple[list[TransactionStarted], list[TransactionEnded]]:
    starts, ends = [], []
    for i, energy in enumerate(energies, start=first):
        started = T0 + timedelta(minutes=i)
        tx = store.start_transaction(
            conn, STATION, f"TX-{i}", started, started, 1, 1, token, meter_start_wh=0
        )
        if energy is not None:
            half = started + timedelta(minutes=20)
            store.add_meter_samples(
                conn,
                STATION,
                1,
                tx.number,
                [MeterSample(half, "Energy.Active.Import.Register", energy / 2, "Wh")],
            )
            stopped = started + timedelta(minutes=40)
            store.update_transaction(
                conn, tx, state="ended", stopped_at=stopped, meter_stop_wh=energy
            )
            ends.append(
                TransactionEnded(
                    STATION, tx.transaction_id, 1, 1, token, 0, energy, started, stopped, "Local"
                )
            )
        starts.append(TransactionStarted(STATION, tx.transaction_id, 1, 1, token, 0, started))
    return starts, ends


def make_site(
    db: Engine,
    ledger: Ledger,
    anchor: Account,
    keys: Path,
    drivers: int = 1,
    fee_bp: int = 0,
    closing_process: bool = False,
) -> Site:
    """A station with the tariff, and `drivers` wallets of 1,000 EUR linked to CARD-<i>."""
    clock = SystemClock()
    wallets = Wallets(ledger, Keystore(keys), SettlementStore(db), clock, "EUR", anchor)
    charging = ChargingStore(db)
    terms = SettlementTerms(HOLD, fee_bp=fee_bp)
    core = CoreClient(
        wallets, charging, terms, clock, batch_size=8, closing_process=closing_process
    )
    fund = getattr(ledger, "fund", None)
    for account in (wallets.emsp, wallets.cpo):
        if fund is not None:
            fund(account.address)
    if charging.run(charging.find_station, STATION) is None:
        charging.run(charging.add_station, STATION, None, 0, "Accepted", clock.now())
        core.set_tariff(STATION, TARIFF, "Europe/Berlin")
        for i in range(drivers):
            wallets.topup(f"driver-{i}", Money.parse("1000.00 EUR"))
            wallets.link(f"driver-{i}", f"CARD-{i}")
            if fund is not None:
                fund(wallets.get(f"driver-{i}").address)
    return Site(core, charging)


def check_books(ledger: LocalLedger, symbol: str) -> dict[str, int]:
    """Replay every block's receipts: after each block the supply must equal the balances plus
    what open escrows hold, and no balance may be negative; the end must match the state."""
    balances: dict[str, int] = {}
    escrows: dict[str, dict[str, Any]] = {}
    supply = escrowed = 0

    def add(owner: str, amount: int) -> None:
        balances[owner] = balances.get(owner, 0) + amount

    for header in ledger.iter_blocks():
        for _stx, receipt in ledger.block_transactions(header.height):
            for log in receipt.logs if receipt.ok else []:
                event = log["event"]
                if event == "Transfer" and log["symbol"] == symbol:
                    amount = int(log["amount"])
                    if log["from"] is None:
                        supply += amount
                    else:
                        add(log["from"], -amount)
                    if log["to"] is None:
                        supply -= amount
                    else:
                        add(log["to"], amount)
                elif event == "EscrowOpened" and log["symbol"] == symbol:
                    escrows[log["escrowId"]] = log
                    add(log["payer"], -int(log["amount"]))
                    escrowed += int(log["amount"])
                elif event == "EscrowSettled" and log["escrowId"] in escrows:
                    opened = escrows[log["escrowId"]]
                    add(opened["payee"], int(log["payeeAmount"]))
                    add(log["feePayee"], int(log["feeAmount"]))
                    add(opened["payer"], int(log["refund"]))
                    escrowed -= int(opened["amount"])
                elif event == "EscrowRefunded" and log["escrowId"] in escrows:
                    add(escrows[log["escrowId"]]["payer"], int(log["amount"]))
                    escrowed -= int(log["amount"])
        assert supply == sum(balances.values()) + escrowed, f"block {header.height}"
        assert all(v >= 0 for v in balances.values()), f"block {header.height}"
    assert escrowed == ledger.query("escrow", "total", symbol=symbol)
    assert supply == ledger.query("token", "info", symbol=symbol)["supply"]
    prefix = f"token/{symbol}/balance/"
    stored = {k.removeprefix(prefix): v for k, v in ledger.scan(prefix).items()}
    assert {k: v for k, v in stored.items() if v} == {k: v for k, v in balances.items() if v}
    return balances


@pytest.fixture
def site(db: Engine, ledger: LocalLedger, anchor: Account, tmp_path: Path) -> Site:
    return make_site(db, ledger, anchor, tmp_path / "keys", fee_bp=250)


def test_supply_is_balances_plus_escrows_after_every_block(site: Site, ledger: LocalLedger) -> None:
    core, wallets = site.core, site.wallets
    driver = wallets.get("driver-0").address
    energies = [0, 7_400, 12_345, 200_000, 1]  # 200 kWh costs more than the hold
    starts, ends = site.record(0, energies)
    for start, end in zip(starts, ends, strict=True):
        [opened] = core.open_sessions([start])
        assert opened.state == "open"
        check_books(ledger, wallets.symbol)
        [settled] = core.settle([session_id_of(end.station_id, end.transaction_id)])
        assert settled.state == "settled"
        check_books(ledger, wallets.symbol)
    wallets.withdraw("driver-0", Money.parse("10.00 EUR"))
    balances = check_books(ledger, wallets.symbol)

    costs = [min(expected_cost(e), HOLD.minor) for e in energies]
    fees = [
        min(expected_cost(e) * 250 // 10_000, HOLD.minor - paid)
        for e, paid in zip(energies, costs, strict=True)
    ]
    sessions = core.sessions()
    assert [s.payee_minor for s in sessions] == costs
    assert [s.fee_minor for s in sessions] == fees
    assert "capped" in (sessions[3].note or "")
    assert balances[wallets.cpo.address] == sum(costs)
    assert balances[wallets.emsp.address] == sum(fees)  # what drivers withdraw is burned
    assert site.balance(driver) == 100_000 - sum(costs) - sum(fees) - 1_000


def test_one_session_is_settled_once_and_replays_are_refused(
    site: Site, ledger: LocalLedger, db: Engine
) -> None:
    core, wallets = site.core, site.wallets
    starts, _ends = site.record(0, [10_000])
    [opened] = core.open_sessions(starts)
    [settled] = core.settle([opened.session_id])
    cpo_paid = site.balance(wallets.cpo.address)
    assert cpo_paid == expected_cost(10_000)
    # An end delivered twice, and the start too: nothing moves.
    assert core.settle([opened.session_id]) == []
    assert core.open_sessions(starts) == []
    # Even a session row that lost its progress cannot get paid twice: the ledger refuses.
    with db.begin() as conn:
        conn.execute(
            update(SESSIONS).where(SESSIONS.c.session_id == opened.session_id).values(state="open")
        )
    [again] = core.settle([opened.session_id])
    assert again.state == "settled" and again.record_hash == settled.record_hash
    assert site.balance(wallets.cpo.address) == cpo_paid
    escrow = ledger.query("escrow", "get", escrow_id=opened.escrow_id)
    refused = core.operator.call  # the CPO itself tries a second settlement
    with pytest.raises(Exception, match="already settled"):
        refused(
            "escrow",
            "settle",
            escrow_id=opened.escrow_id,
            payee_amount=1,
            fee_amount=0,
            fee_payee=wallets.emsp.address,
            record_hash=escrow["recordHash"],
        )
    # Replays of the signed transactions themselves are refused by nonce.
    for tx_hash in _escrow_transactions(ledger, opened.escrow_id):
        stx, _receipt = ledger.transaction(tx_hash)
        with pytest.raises(NonceError, match="replay rejected"):
            ledger.submit(stx)
    assert site.balance(wallets.cpo.address) == cpo_paid
    check_books(ledger, wallets.symbol)


def _escrow_transactions(ledger: LocalLedger, escrow_id: str) -> list[str]:
    found = []
    for header in ledger.iter_blocks():
        for stx, receipt in ledger.block_transactions(header.height):
            if stx.tx.module == "escrow" and stx.tx.args.get("escrow_id") == escrow_id:
                found.append(receipt.tx_hash)
    return found


def test_timeout_rule_settles_on_stored_readings_or_refunds(
    site: Site, ledger: LocalLedger
) -> None:
    core, wallets = site.core, site.wallets
    # Two sessions that never end: one metered half way, one never metered.
    metered, _ = site.charging.run(_never_ending, site.charging, "TX-M", 3_000)
    silent, _ = site.charging.run(_never_ending, site.charging, "TX-S", None)
    core.open_sessions([metered, silent])
    now = datetime.now(UTC)
    assert core.expire(now) == []  # not yet due
    closed = {s.transaction_id: s for s in core.expire(now + timedelta(hours=25))}
    assert closed["TX-M"].state == "settled" and closed["TX-M"].payee_minor == expected_cost(3_000)
    assert "timeout" in (closed["TX-M"].note or "")
    assert closed["TX-S"].state == "refunded" and "nothing was ever metered" in (
        closed["TX-S"].note or ""
    )
    assert site.balance(wallets.cpo.address) == expected_cost(3_000)
    fee = expected_cost(3_000) * 250 // 10_000
    assert site.balance(wallets.get("driver-0").address) == 100_000 - expected_cost(3_000) - fee
    assert ledger.query("escrow", "total", symbol=wallets.symbol) == 0
    check_books(ledger, wallets.symbol)


def _never_ending(
    conn: Any, store: ChargingStore, transaction_id: str, metered_wh: int | None
) -> tuple[TransactionStarted, None]:
    tx = store.start_transaction(conn, STATION, transaction_id, T0, T0, 1, 1, "CARD-0", None, 0)
    if metered_wh is not None:
        sample = MeterSample(
            T0 + timedelta(minutes=30), "Energy.Active.Import.Register", metered_wh, "Wh"
        )
        store.add_meter_samples(conn, STATION, 1, tx.number, [sample])
    return TransactionStarted(STATION, transaction_id, 1, 1, "CARD-0", 0, T0), None


def test_bad_input_is_refused_and_loses_nothing(site: Site, ledger: LocalLedger) -> None:
    core, wallets = site.core, site.wallets
    usd = TARIFF.model_copy(update={"currency": "USD"})
    with pytest.raises(ValidationError, match="wallets here hold EUR"):
        core.set_tariff(STATION, usd, "Europe/Berlin")
    with pytest.raises(ValidationError, match="unknown time zone"):
        core.set_tariff(STATION, TARIFF, "Mars/Olympus")
    with pytest.raises(NotFoundError, match="no tariff"):
        core.quote("ST-404", "CARD-0", 1_000, timedelta(hours=1), 11_000)
    with pytest.raises(ValidationError, match="longer than"):
        core.quote(STATION, "CARD-0", 100_000, timedelta(minutes=1), 11_000)
    with pytest.raises(ValidationError, match="already charges to wallet"):
        wallets.topup("mallory", Money.parse("1.00 EUR"))
        wallets.link("mallory", "CARD-0")
    assert wallets.find("driver-0") is not None
    assert site.balance(wallets.get("driver-0").address) == 100_000
    # The station's tariff is still the one set before.
    starts, _ends = site.record(0, [1_000])
    [opened] = core.open_sessions(starts)
    assert opened.tariff_digest == tariff_digest(TARIFF)
    check_books(ledger, wallets.symbol)


def test_sessions_leave_the_same_books_on_the_evm_engine(
    db: Engine, ledger: LocalLedger, anchor: Account, tmp_path: Path, evm_ledger: Any
) -> None:
    energies = [4_000, 0, 25_000]
    books = []
    for name, engine_ledger in (("local", ledger), ("evm", evm_ledger)):
        site = make_site(
            db if name == "local" else _fresh_db(tmp_path),
            engine_ledger,
            anchor,
            tmp_path / "keys",  # the same accounts on both engines
            fee_bp=100,
        )
        starts, ends = site.record(0, energies)
        site.core.open_sessions(starts[:2])
        site.core.settle([session_id_of(STATION, e.transaction_id) for e in ends[:1]])
        site.core.open_sessions(starts[2:])
        site.core.settle([session_id_of(STATION, e.transaction_id) for e in ends[1:]])
        wallets = site.wallets
        books.append(
            {
                "balances": [
                    site.balance(a)
                    for a in (
                        wallets.get("driver-0").address,
                        wallets.cpo.address,
                        wallets.emsp.address,
                    )
                ],
                "escrowed": engine_ledger.query("escrow", "total", symbol=wallets.symbol),
                "escrows": [
                    _escrow_outcome(engine_ledger, s.escrow_id) for s in site.core.sessions()
                ],
            }
        )
    assert books[0] == books[1]
    assert books[0]["escrowed"] == 0


def _escrow_outcome(ledger: Ledger, escrow_id: str) -> tuple[Any, ...]:
    escrow = ledger.query("escrow", "get", escrow_id=escrow_id)
    return (
        escrow["state"],
        escrow["amount"],
        escrow["payeeAmount"],
        escrow["feeAmount"],
        escrow["recordHash"],
    )


def _fresh_db(tmp_path: Path) -> Engine:
    from evgi.storage import open_database

    return open_database(f"sqlite:///{tmp_path / 'evm-settlement.db'}")

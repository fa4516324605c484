"""Prepaid sessions settled per second, end to end through the settlement core client.

Each session is a TransactionStarted and a TransactionEnded event handed to the core client as
the CSMS publishes them on a busy network: `--charging` sessions charge at once, so each start
comes after the end of the session started that many before it. The core client's worker locks
the tariff and opens the driver's escrow (signed by the driver's custodied key) at the start, and
at the end prices the stored meter values under the locked tariff, builds and stores the CDR and
settles the escrow (CPO paid, eMSP fee, driver refunded, CDR digest cited). The CSMS's
transaction rows and meter values are written before the clock starts: they are the CSMS's work,
not settlement's.

The same code runs on three ledgers in one run: evgi's local engine (escrows of a batch go in one
block; sessions are closed in the closing process beside the worker, as `evgi serve` does), the
escrow and token Vyper contracts on eth-tester's py-evm, and the same contracts on a Hardhat node
(`--rpc`, or EVGI_TEST_EVM_RPC; skipped with a note when no node answers).

Prints one JSON line to stdout; progress goes to stderr. Needs the `bench` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from evgi.core import Account, Money, SystemClock
from evgi.core.heap import settle_heap
from evgi.csms import TransactionEnded, TransactionStarted
from evgi.identity.keystore import Keystore
from evgi.ledger import Ledger, open_local_ledger
from evgi.settlement import CoreClient, SettlementTerms, Wallets, parse_tariff
from evgi.storage import ChargingStore, MeterSample, open_database
from evgi.storage.settlement import SettlementStore

CHAIN_ID = 1337
STATION = "BENCH-1"
HOLD = Money("EUR", 5_000)
GAS_MONEY = 10**19
TARIFF = parse_tariff(
    '{"country_code": "DE", "party_id": "EVG", "id": "AC-30", "currency": "EUR",'
    ' "last_updated": "2025-01-01T00:00:00Z", "elements": [{"price_components":'
    ' [{"type": "FLAT", "price": 0.50, "vat": 19.0, "step_size": 1},'
    ' {"type": "ENERGY", "price": 0.30, "vat": 19.0, "step_size": 1}]}]}'
)
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def progress(message: str) -> None:
    print(f"[settlement_throughput] {message}", file=sys.stderr, flush=True)


@dataclass
class Site:
    core: CoreClient
    starts: list[TransactionStarted]
    ends: list[TransactionEnded]


def _record_transactions(
    conn: Connection, store: ChargingStore, n: int, tokens: Sequence[str]
) -> tuple[list[TransactionStarted], list[TransactionEnded]]:
    """n ended transactions at the station, each with a start, two readings and a stop."""
    starts, ends = [], []
    for i in range(n):
        started = T0 + timedelta(seconds=i)
        stopped = started + timedelta(minutes=45)
        energy = 5_000 + (i % 997) * 7
        tx = store.start_transaction(
            conn,
            STATION,
            f"TX-{i}",
            started_at=started,
            now=started,
            evse_id=1,
            connector_id=1,
            id_token=tokens[i % len(tokens)],
            meter_start_wh=0,
        )
        store.add_meter_samples(
            conn,
            STATION,
            1,
            tx.number,
            [
                MeterSample(
                    started + timedelta(minutes=15), "Energy.Active.Import.Register", 2000, "Wh"
                ),
                MeterSample(
                    started + timedelta(minutes=30), "Energy.Active.Import.Register", 4000, "Wh"
                ),
            ],
        )
        store.update_transaction(
            conn, tx, state="ended", stopped_at=stopped, meter_stop_wh=energy, stop_reason="Local"
        )
        starts.append(TransactionStarted(STATION, tx.transaction_id, 1, 1, tx.id_token, 0, started))
        ends.append(
            TransactionEnded(
                STATION, tx.transaction_id, 1, 1, tx.id_token, 0, energy, started, stopped, "Local"
            )
        )
    return starts, ends


def build_site(
    db: Engine,
    ledger: Ledger,
    anchor: Account,
    keys: Path,
    n: int,
    drivers: int,
    batch_size: int,
    fund: Callable[[str], None] | None = None,
) -> Site:
    clock = SystemClock()
    wallets = Wallets(ledger, Keystore(keys), SettlementStore(db), clock, "EUR", anchor)
    charging = ChargingStore(db)
    terms = SettlementTerms(HOLD, fee_bp=50)
    core = CoreClient(
        wallets, charging, terms, clock, batch_size, closing_process=ledger.engine_name == "local"
    )
    if fund is not None:
        for account in (wallets.emsp, wallets.cpo):
            fund(account.address)
    core.set_tariff(STATION, TARIFF, "Europe/Berlin")
    charging.run(charging.add_station, STATION, None, 0, "Accepted", clock.now())
    tokens = []
    per_driver = Money("EUR", HOLD.minor * (n // drivers + 2))
    for i in range(drivers):
        name, token = f"driver-{i}", f"CARD{i:010d}"
        wallets.topup(name, per_driver)
        wallets.link(name, token)
        if fund is not None:
            fund(wallets.get(name).address)
        tokens.append(token)
    starts, ends = charging.run(_record_transactions, charging, n, tokens)
    return Site(core, starts, ends)


def run(site: Site, label: str, charging: int) -> float:
    """Sessions per second: every start and end through the core client's queue and worker,
    which runs, as in `evgi serve`, with the start-up heap settled out of the collector's way."""
    core = site.core
    wallets = core.wallets
    settle_heap()
    core.start()
    started = time.perf_counter()
    for i, event in enumerate(site.starts):
        if i >= charging:
            core.enqueue(site.ends[i - charging])
        core.enqueue(event)
    for event in site.ends[max(0, len(site.ends) - charging) :]:
        core.enqueue(event)
    if not core.wait_idle(3600):
        raise RuntimeError(f"{label}: the core client did not finish")
    elapsed = time.perf_counter() - started
    core.stop()
    sessions = core.sessions()
    unsettled = [s for s in sessions if s.state != "settled"]
    if len(sessions) != len(site.starts) or unsettled:
        problem = unsettled[0].note if unsettled else f"{len(sessions)} sessions"
        raise RuntimeError(f"{label}: not every session settled: {problem}")
    paid = sum(s.payee_minor or 0 for s in sessions)
    if wallets.balance_of(wallets.cpo.address).minor != paid:
        raise RuntimeError(f"{label}: the CPO holds other than the {paid} settled")
    if core.ledger.query("escrow", "total", symbol=wallets.symbol) != 0:
        raise RuntimeError(f"{label}: escrows left open")
    return len(sessions) / elapsed


def bench_local(n: int, drivers: int, block: int, charging: int) -> float:
    with tempfile.TemporaryDirectory(prefix="evgi-bench-") as tmp:
        db = open_database(f"sqlite:///{tmp}/evgi.db")
        anchor = Account.generate()
        ledger = open_local_ledger(db, CHAIN_ID, [anchor.address])
        try:
            progress(f"local: preparing {n} sessions of {drivers} drivers")
            site = build_site(db, ledger, anchor, Path(tmp) / "keys", n, drivers, block)
            progress("local: settling")
            return run(site, "local", charging)
        finally:
            ledger.close()
            db.dispose()


def bench_evm(web3: Any, label: str, n: int, drivers: int, charging: int) -> float:
    from evgi.ledger.evm import EvmLedger

    with tempfile.TemporaryDirectory(prefix="evgi-bench-") as tmp:
        db = open_database(f"sqlite:///{tmp}/evgi.db")
        anchor = Account.generate()
        ledger = EvmLedger(web3, anchor, Path(tmp) / "deployment.json", [anchor.address], GAS_MONEY)
        try:
            progress(f"{label}: preparing {n} sessions of {drivers} drivers")
            site = build_site(db, ledger, anchor, Path(tmp) / "keys", n, drivers, 1000, ledger.fund)
            progress(f"{label}: settling")
            return run(site, label, charging)
        finally:
            ledger.close()
            db.dispose()


def hardhat(rpc: str | None) -> tuple[Any, str | None]:
    """A Web3 on the node at `rpc`, or None and why not."""
    if not rpc:
        return None, "no node: pass --rpc or set EVGI_TEST_EVM_RPC"
    from web3 import HTTPProvider, Web3

    web3 = Web3(HTTPProvider(rpc, request_kwargs={"timeout": 10}))
    try:
        web3.eth.chain_id  # noqa: B018  # the cheapest call that proves the node answers
    except Exception as exc:
        return None, f"no node answers at {rpc}: {exc}"
    return web3, None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Prepaid sessions settled per second: local ledger vs py-evm vs Hardhat."
    )
    parser.add_argument("--n", type=int, default=10_000, help="sessions on the local engine")
    parser.add_argument(
        "--block", type=int, default=3000, help="events per worker batch (default 3000)"
    )
    parser.add_argument("--drivers", type=int, default=50, help="prepaid wallets (default 50)")
    parser.add_argument(
        "--charging", type=int, default=1000, help="sessions charging at once (default 1000)"
    )
    parser.add_argument("--n-evm", type=int, default=60, help="sessions on py-evm")
    parser.add_argument("--n-hardhat", type=int, default=200, help="sessions on Hardhat")
    parser.add_argument("--rpc", default=os.environ.get("EVGI_TEST_EVM_RPC"), help="Hardhat")
    args = parser.parse_args(argv)
    if min(args.n, args.block, args.drivers, args.charging, args.n_evm, args.n_hardhat) < 1:
        parser.error("counts must be positive")
    try:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import Web3
        from web3.providers.eth_tester import EthereumTesterProvider
    except ImportError as exc:
        raise SystemExit(
            f"the peers need the bench extra: pip install -e '.[bench]' ({exc})"
        ) from exc

    local = bench_local(args.n, args.drivers, args.block, args.charging)
    progress(f"local: {local:,.0f} sessions/s")
    tester = Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))
    evm = bench_evm(
        tester, "py-evm", args.n_evm, min(args.drivers, args.n_evm), min(args.charging, args.n_evm)
    )
    progress(f"py-evm: {evm:,.1f} sessions/s")
    node, why = hardhat(args.rpc)
    hardhat_rate = None
    if node is not None:
        hardhat_rate = bench_evm(
            node, "hardhat", args.n_hardhat, min(args.drivers, 20), min(args.charging, 20)
        )
        progress(f"hardhat: {hardhat_rate:,.1f} sessions/s")
    print(
        json.dumps(
            {
                "bench": "settlement_throughput",
                "evgi_local_sessions_per_s": round(local, 1),
                "py_evm_sessions_per_s": round(evm, 1),
                "hardhat_sessions_per_s": None if hardhat_rate is None else round(hardhat_rate, 1),
                "ratio_local_py_evm": round(local / evm, 2),
                "ratio_local_hardhat": None
                if hardhat_rate is None
                else round(local / hardhat_rate, 2),
                "hardhat_note": why,
                "n": args.n,
                "n_evm": args.n_evm,
                "n_hardhat": args.n_hardhat if node is not None else 0,
                "batch": args.block,
                "drivers": args.drivers,
                "charging": args.charging,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            }
        )
    )


if __name__ == "__main__":
    main()

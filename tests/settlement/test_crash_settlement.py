"""The core client killed with SIGKILL at random moments while it opens and settles escrows:
after a restart nothing is lost and nothing is paid twice.

Run as a module, this file is the child that gets killed:

    python -m tests.settlement.test_crash_settlement DB_URL KEYS_DIR ANCHOR_KEY

It recovers what the previous run left half done, then opens and settles the CSMS's ended
transactions a few at a time, printing a line per batch, and exits when none is left.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from evgi.core import Account
from evgi.csms import TransactionStarted
from evgi.ledger import open_local_ledger
from evgi.ledger.journal import LocalLedger
from evgi.settlement import session_id_of
from evgi.storage import open_database
from tests.conftest import CHAIN_ID, LedgerOpener
from tests.settlement.test_invariants import (
    HOLD,
    STATION,
    Site,
    check_books,
    expected_cost,
    make_site,
)

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = 48
DRIVERS = 3
BATCH = 3
KILLS = 5
# Each run is killed once it has printed a random number of lines (a line per half batch), then a
# random moment later: kill points follow the work's progress, not the clock, so a fast machine
# cannot finish the work before the kills (five runs print at most 30 of its 33 lines).
MAX_LINES_BEFORE_KILL = 6
MAX_DELAY_AFTER_LINE = 0.02  # seconds
STARTUP_TIMEOUT = 90.0


def energy_of(i: int) -> int:
    return 1_000 + 977 * i


def _starts(site: Site) -> list[TransactionStarted]:
    """The CSMS's transactions that settlement has not taken up yet, as their start events."""
    known = {s.session_id for s in site.core.sessions()}
    return [
        TransactionStarted(
            tx.station_id,
            tx.transaction_id,
            tx.evse_id,
            tx.connector_id,
            tx.id_token,
            tx.meter_start_wh,
            tx.started_at,
        )
        for tx in site.charging.run(site.charging.transactions, STATION)
        if session_id_of(tx.station_id, tx.transaction_id) not in known
    ]


def child(url: str, keys: str, anchor_key: str) -> None:
    db = open_database(url)
    ledger = open_local_ledger(db, CHAIN_ID, block_max_transactions=BATCH + 1)
    site = make_site(db, ledger, Account.from_hex(anchor_key), Path(keys), DRIVERS, fee_bp=100)
    recovered = site.core.recover()
    print(f"recovered {len(recovered)}", flush=True)
    starts = _starts(site)
    for first in range(0, len(starts), BATCH):
        batch = starts[first : first + BATCH]
        opened = site.core.open_sessions(batch)
        print(f"opened {len(opened)}", flush=True)
        settled = site.core.settle([s.session_id for s in opened])
        print(f"settled {len(settled)}", flush=True)
    print("done", flush=True)


def _run_child(argv: list[str], out: Path, err: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as stdout, err.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.settlement.test_crash_settlement", *argv],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )


@pytest.mark.slow
def test_killed_core_client_loses_nothing_and_pays_nothing_twice(
    db_url: str, open_ledger: LedgerOpener, anchor: Account, tmp_path: Path
) -> None:
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    ledger = open_ledger(block_max_transactions=BATCH + 1)
    keys = tmp_path / "keys"
    site = make_site(open_database(db_url), ledger, anchor, keys, DRIVERS, fee_bp=100)
    for driver in range(DRIVERS):
        site.record(
            driver * 1000,
            [energy_of(i) for i in range(driver, SESSIONS, DRIVERS)],
            token=f"CARD-{driver}",
        )
    argv = [db_url, str(keys), anchor.private_key.hex()]
    killed = 0
    for kill in range(KILLS + 1):
        out, err = tmp_path / f"child-{kill}.out", tmp_path / f"child-{kill}.err"
        child_process = _run_child(argv, out, err)
        context = f"seed {seed}, run {kill}"
        if kill == KILLS:  # the last run finishes the work
            assert child_process.wait(timeout=300) == 0, f"{context}: {err.read_text()[-3000:]}"
            break
        try:
            lines = rng.randint(1, MAX_LINES_BEFORE_KILL)
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while out.read_bytes().count(b"\n") < lines and child_process.poll() is None:
                assert time.monotonic() < deadline, f"{context}: the child printed too little"
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, MAX_DELAY_AFTER_LINE))
        finally:
            child_process.kill()
            child_process.wait()
        if child_process.returncode == 0:
            continue  # it finished before the kill: the next run has nothing left to do
        assert child_process.returncode == -signal.SIGKILL, f"{context}: {err.read_text()[-3000:]}"
        killed += 1
    assert killed, f"seed {seed}: every run finished before its kill"

    reopened = open_ledger(block_max_transactions=BATCH + 1)
    report = reopened.verify()
    assert report.ok, report.problem
    _check_paid_once(reopened, site, f"seed {seed}")


def _check_paid_once(ledger: LocalLedger, site: Site, context: str) -> None:
    wallets = site.wallets
    sessions = site.core.sessions()
    assert len(sessions) == SESSIONS, context
    assert {s.state for s in sessions} == {"settled"}, context
    counts: Counter[tuple[str, str]] = Counter()
    for header in ledger.iter_blocks():
        for _stx, receipt in ledger.block_transactions(header.height):
            for log in receipt.logs if receipt.ok else []:
                if log["event"].startswith("Escrow"):
                    counts[(log["event"], log["escrowId"])] += 1
    for session in sessions:
        assert counts[("EscrowOpened", session.escrow_id)] == 1, context
        assert counts[("EscrowSettled", session.escrow_id)] == 1, context
    costs = [expected_cost(energy_of(i)) for i in range(SESSIONS)]
    assert all(cost <= HOLD.minor for cost in costs)
    fees = [cost // 100 for cost in costs]
    balances = check_books(ledger, wallets.symbol)
    assert balances[wallets.cpo.address] == sum(costs), context
    assert balances[wallets.emsp.address] == sum(fees), context
    spent = sum(balances[wallets.get(f"driver-{d}").address] for d in range(DRIVERS))
    assert spent == DRIVERS * 100_000 - sum(costs) - sum(fees), context


if __name__ == "__main__":
    child(*sys.argv[1:])

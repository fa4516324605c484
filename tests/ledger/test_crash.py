"""A writer killed with SIGKILL at random moments loses nothing it reported as committed and
leaves no half-written block: the reopened ledger verifies, and its books balance."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evgi.core import Account
from tests.conftest import LedgerOpener
from tests.ledger.economy import check_books

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5
MAX_RUN_BEFORE_KILL = 0.5  # seconds after the writer's first committed block
STARTUP_TIMEOUT = 60.0


def _wait_for_first_block(child: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while out.stat().st_size == 0 and child.poll() is None:
        if time.monotonic() > deadline:
            pytest.fail(f"the writer committed nothing in {STARTUP_TIMEOUT:.0f} s")
        time.sleep(0.01)


def _reported(out: Path) -> dict[str, tuple[int, bool]]:
    """Receipts the writer printed: tx hash -> (block, ok); a line cut short promised nothing."""
    reported = {}
    for line in out.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            tx_hash, block, ok = line.split()
            reported[tx_hash] = (int(block), ok == "1")
    return reported


@pytest.mark.slow
def test_killed_writer_loses_nothing_it_reported(
    db_url: str, open_ledger: LedgerOpener, anchor: Account, tmp_path: Path
) -> None:
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    holders = [Account.generate() for _ in range(3)]
    chain_id = open_ledger().chain_id  # genesis, naming `anchor`, so every writer finds a chain
    reported: dict[str, tuple[int, bool]] = {}
    committed = 0
    for kill in range(KILLS):
        out, err = tmp_path / f"writer-{kill}.out", tmp_path / f"writer-{kill}.err"
        argv = [
            sys.executable,
            "-m",
            "tests.ledger.writer",
            db_url,
            str(chain_id),
            str(rng.randrange(2**32)),
            anchor.private_key.hex(),
            *(holder.private_key.hex() for holder in holders),
        ]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            child = subprocess.Popen(
                argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr
            )
            try:
                _wait_for_first_block(child, out)
                time.sleep(rng.uniform(0.0, MAX_RUN_BEFORE_KILL))
            finally:
                child.kill()
                child.wait()
        context = f"seed {seed}, kill {kill}"
        assert child.returncode == -signal.SIGKILL, f"{context}: {err.read_text()[-3000:]}"
        reported.update(_reported(out))

        ledger = open_ledger()
        report = ledger.verify()
        assert report.ok, f"{context}: {report.problem}"
        receipts = check_books(ledger)
        for tx_hash, (block, ok) in reported.items():
            assert tx_hash in receipts, f"{context}: reported {tx_hash} is not stored"
            assert (receipts[tx_hash].block, receipts[tx_hash].ok) == (block, ok), context
        assert len(receipts) > committed, f"{context}: the restarted writer committed nothing"
        committed = len(receipts)
        ledger.close()

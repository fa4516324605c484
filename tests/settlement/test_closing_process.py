"""The core client's worker with its sessions closed in a closing process: batches flow through
both, every session is settled once at the tariff's amount, a closing process killed outright
is started again without a session lost or paid twice, and one whose `evgi serve` is killed
outright stops by itself."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from evgi.core import Account
from evgi.csms import TransactionEnded, TransactionStarted
from evgi.ledger.journal import LocalLedger
from tests.service_runner import running_service
from tests.settlement.test_invariants import HOLD, Site, check_books, expected_cost, make_site

DRIVERS = 3
SESSIONS = 60
CHARGING = 10  # sessions charging at once: each start follows the end of the tenth before it


def energy_of(i: int) -> int:
    return 2_000 + 1_311 * i


def _events(
    site: Site, first: int, count: int
) -> tuple[list[TransactionStarted | TransactionEnded], dict[str, int]]:
    """Sessions `first` to `first + count` of the drivers in turn, their starts and ends
    interleaved as on a busy network; and each transaction's energy."""
    starts: list[TransactionStarted] = []
    ends: list[TransactionEnded] = []
    energies: dict[str, int] = {}
    for driver in range(DRIVERS):
        numbers = range(first + driver, first + count, DRIVERS)
        s, e = site.record(first + driver * 1000, [energy_of(i) for i in numbers], f"CARD-{driver}")
        starts += s
        ends += e
        for start, i in zip(s, numbers, strict=True):
            energies[start.transaction_id] = energy_of(i)
    events: list[TransactionStarted | TransactionEnded] = []
    for i, start in enumerate(starts):
        if i >= CHARGING:
            events.append(ends[i - CHARGING])
        events.append(start)
    return events + list(ends[len(ends) - CHARGING :]), energies


def _closing_processes() -> list[multiprocessing.process.BaseProcess]:
    return multiprocessing.active_children()


def _check_settled_once(site: Site, ledger: LocalLedger, count: int) -> None:
    sessions = site.core.sessions()
    assert len(sessions) == count
    assert {s.state for s in sessions} == {"settled"}
    opened: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    for header in ledger.iter_blocks():
        for _stx, receipt in ledger.block_transactions(header.height):
            for log in receipt.logs if receipt.ok else []:
                if log["event"] == "EscrowOpened":
                    opened[log["escrowId"]] += 1
                elif log["event"] == "EscrowSettled":
                    settled[log["escrowId"]] += 1
    assert all(opened[s.escrow_id] == settled[s.escrow_id] == 1 for s in sessions)
    balances = check_books(ledger, site.wallets.symbol)
    assert balances[site.wallets.cpo.address] == sum(s.payee_minor or 0 for s in sessions)


@pytest.fixture
def running(db: Engine, ledger: LocalLedger, anchor: Account, tmp_path: Path) -> Iterator[Site]:
    """A site whose core client's worker runs, with its closing process."""
    site = make_site(db, ledger, anchor, tmp_path / "keys", DRIVERS, 100, closing_process=True)
    site.core.start()
    try:
        yield site
    finally:
        site.core.stop()


def test_sessions_closed_in_the_closing_process_settle_at_the_tariff_amount(
    running: Site, ledger: LocalLedger
) -> None:
    core = running.core
    assert len(_closing_processes()) == 1
    events, energies = _events(running, 0, SESSIONS)
    for event in events:
        core.enqueue(event)
    assert core.wait_idle(120)
    core.stop()
    assert _closing_processes() == []
    _check_settled_once(running, ledger, SESSIONS)
    for session in core.sessions():
        cost = expected_cost(energies[session.transaction_id])
        assert cost <= HOLD.minor
        assert (session.cost_minor, session.payee_minor) == (cost, cost)
        assert session.fee_minor == cost // 100


def test_a_killed_closing_process_is_started_again_and_nothing_is_lost(
    running: Site, ledger: LocalLedger
) -> None:
    core = running.core
    for event in _events(running, 0, SESSIONS // 2)[0]:
        core.enqueue(event)
    assert core.wait_idle(120)
    [killed] = _closing_processes()
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    killed.join(10)
    for event in _events(running, SESSIONS // 2, SESSIONS // 2)[0]:
        core.enqueue(event)
    assert core.wait_idle(120)
    core.recover()  # what a sweep does: sessions whose closing died with the process
    [started] = _closing_processes()
    assert started.pid != killed.pid
    core.stop()
    _check_settled_once(running, ledger, SESSIONS)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended while being read
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _serve_pid(port: int) -> int:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(port).encode() in argv:
            return int(cmdline.parent.name)
    raise AssertionError(f"no evgi serve on port {port}")


def test_the_closing_process_of_a_killed_evgi_serve_stops_by_itself(tmp_path: Path) -> None:
    with running_service(tmp_path) as base:
        serve = _serve_pid(int(base.rsplit(":", 1)[1]))
        closing = [
            pid
            for pid in _children(serve)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(closing) == 1
        os.kill(serve, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while Path(f"/proc/{closing[0]}").exists():
            assert time.monotonic() < deadline, "the closing process outlived evgi serve"
            time.sleep(0.1)

"""The escrow module: sessions paid from locked funds, settled once, refunded after the deadline.

The invariant `supply == sum(balances) + open escrows` is checked after every block of random
traffic, and the escrow records are replayed from receipts to check that no session is paid twice.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event

from evgi.core import Account, NonceError
from evgi.core.clock import SimulatedClock
from evgi.core.digest import keccak256, to_hex
from evgi.ledger import Receipt, SignedTransaction, Submitter, open_local_ledger
from evgi.ledger.journal import LocalLedger
from tests.conftest import CHAIN_ID
from tests.ledger.economy import SYMBOL, balance, found_token, mint

HOUR = 3600


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def ledger(db: Engine, anchor: Account, clock: SimulatedClock) -> Iterator[LocalLedger]:
    """A ledger whose block times follow `clock`, so deadlines can be reached in a test."""
    opened = open_local_ledger(db, CHAIN_ID, [anchor.address], clock)
    assert isinstance(opened, LocalLedger)
    yield opened
    opened.close()


@pytest.fixture
def driver(ledger: LocalLedger, issuer: Submitter) -> Submitter:
    """A driver holding 10 000 minor units."""
    submitter = Submitter(ledger, Account.generate())
    ledger.submit(mint(issuer, submitter, 10_000)).raise_for_status()
    return submitter


@pytest.fixture
def cpo(ledger: LocalLedger) -> Submitter:
    return Submitter(ledger, Account.generate())


@pytest.fixture
def operator(ledger: LocalLedger) -> Submitter:
    """The settlement service that settles sessions and takes the fee."""
    return Submitter(ledger, Account.generate())


def cdr_hash(session: str) -> str:
    return to_hex(keccak256(session.encode()))


def open_tx(
    driver: Submitter,
    escrow_id: str,
    payee: Submitter,
    operator: Submitter,
    amount: int,
    timeout: int = HOUR,
) -> SignedTransaction:
    return driver.sign(
        "escrow",
        "open",
        escrow_id=escrow_id,
        symbol=SYMBOL,
        payee=payee.address,
        operator=operator.address,
        amount=amount,
        timeout=timeout,
    )


def settle_tx(
    operator: Submitter, escrow_id: str, payee_amount: int, fee_amount: int
) -> SignedTransaction:
    return operator.sign(
        "escrow",
        "settle",
        escrow_id=escrow_id,
        payee_amount=payee_amount,
        fee_amount=fee_amount,
        fee_payee=operator.address,
        record_hash=cdr_hash(escrow_id),
    )


def escrowed(ledger: LocalLedger) -> int:
    value: int = ledger.query("escrow", "total", symbol=SYMBOL)
    return value


def check_supply(ledger: LocalLedger) -> None:
    balances = ledger.scan(f"token/{SYMBOL}/balance/").values()
    assert all(value >= 0 for value in balances)
    supply = ledger.query("token", "info", symbol=SYMBOL)["supply"]
    open_records = [r for r in ledger.scan("escrow/id/").values() if r["state"] == "open"]
    assert escrowed(ledger) == sum(r["amount"] for r in open_records)
    assert supply == sum(balances) + escrowed(ledger)


def test_settle_pays_payee_and_fee_and_refunds_the_rest(
    ledger: LocalLedger, driver: Submitter, cpo: Submitter, operator: Submitter
) -> None:
    opened = ledger.submit(open_tx(driver, "session-1", cpo, operator, 3_000)).raise_for_status()
    assert opened.logs[0]["event"] == "EscrowOpened"
    assert (balance(ledger, driver), escrowed(ledger)) == (7_000, 3_000)
    record = ledger.query("escrow", "get", escrow_id="session-1")
    assert record["state"] == "open" and record["deadline"] == record["openedAt"] + HOUR
    assert (record["payer"], record["payee"], record["operator"]) == (
        driver.address,
        cpo.address,
        operator.address,
    )

    ledger.submit(settle_tx(operator, "session-1", 2_400, 100)).raise_for_status()
    assert balance(ledger, cpo) == 2_400
    assert balance(ledger, operator) == 100
    assert balance(ledger, driver) == 7_500
    assert escrowed(ledger) == 0
    record = ledger.query("escrow", "get", escrow_id="session-1")
    assert record["state"] == "settled"
    assert record["recordHash"] == cdr_hash("session-1")
    assert (record["payeeAmount"], record["feeAmount"]) == (2_400, 100)
    check_supply(ledger)


def test_a_session_is_settled_once(
    ledger: LocalLedger, driver: Submitter, cpo: Submitter, operator: Submitter
) -> None:
    ledger.submit(open_tx(driver, "s1", cpo, operator, 1_000)).raise_for_status()
    ledger.submit(settle_tx(operator, "s1", 900, 0)).raise_for_status()
    again = ledger.submit(settle_tx(operator, "s1", 900, 0))
    assert not again.ok and "already settled" in again.error
    assert balance(ledger, cpo) == 900

    ledger.submit(open_tx(driver, "s2", cpo, operator, 1_000)).raise_for_status()
    ledger.submit(operator.sign("escrow", "refund", escrow_id="s2")).raise_for_status()
    late = ledger.submit(settle_tx(operator, "s2", 500, 0))
    assert not late.ok and "already refunded" in late.error
    refund_again = ledger.submit(operator.sign("escrow", "refund", escrow_id="s2"))
    assert not refund_again.ok
    assert balance(ledger, cpo) == 900 and balance(ledger, driver) == 10_000 - 900
    check_supply(ledger)


def test_only_the_operator_settles_and_never_beyond_the_amount(
    ledger: LocalLedger, driver: Submitter, cpo: Submitter, operator: Submitter
) -> None:
    ledger.submit(open_tx(driver, "s1", cpo, operator, 1_000)).raise_for_status()
    by_payee = ledger.submit(
        cpo.sign(
            "escrow",
            "settle",
            escrow_id="s1",
            payee_amount=1_000,
            fee_amount=0,
            fee_payee=cpo.address,
            record_hash=cdr_hash("s1"),
        )
    )
    assert not by_payee.ok and "only the operator" in by_payee.error
    too_much = ledger.submit(settle_tx(operator, "s1", 950, 51))
    assert not too_much.ok and "holds 1000" in too_much.error
    negative = ledger.submit(settle_tx(operator, "s1", -1, 0))
    assert not negative.ok
    ledger.submit(settle_tx(operator, "s1", 950, 50)).raise_for_status()
    assert balance(ledger, driver) == 9_000
    check_supply(ledger)


def test_open_is_refused_when_duplicate_unfunded_or_empty(
    ledger: LocalLedger, driver: Submitter, cpo: Submitter, operator: Submitter
) -> None:
    ledger.submit(open_tx(driver, "s1", cpo, operator, 1_000)).raise_for_status()
    duplicate = ledger.submit(open_tx(driver, "s1", cpo, operator, 1_000))
    assert not duplicate.ok and "already exists" in duplicate.error
    unfunded = ledger.submit(open_tx(driver, "s2", cpo, operator, 9_001))
    assert not unfunded.ok
    assert unfunded.error == f"insufficient {SYMBOL} balance: 9000 < 9001"
    for amount in (0, -5):
        assert not ledger.submit(open_tx(driver, "s3", cpo, operator, amount)).ok
    assert not ledger.submit(open_tx(driver, "s4", cpo, operator, 10, timeout=0)).ok
    assert not ledger.submit(open_tx(driver, "bad/id", cpo, operator, 10)).ok
    unknown = ledger.submit(
        driver.sign(
            "escrow",
            "open",
            escrow_id="s5",
            symbol="USD",
            payee=cpo.address,
            operator=operator.address,
            amount=10,
            timeout=HOUR,
        )
    )
    assert not unknown.ok and "no token USD" in unknown.error
    assert ledger.query("escrow", "get", escrow_id="s2") is None
    assert (balance(ledger, driver), escrowed(ledger)) == (9_000, 1_000)
    check_supply(ledger)


def test_a_block_reads_its_new_escrows_in_one_query(
    ledger: LocalLedger, db: Engine, driver: Submitter, cpo: Submitter, operator: Submitter
) -> None:
    """A new escrow's record is in no cache: a block fetches all its escrows' records together
    rather than one round trip each, and still refuses an id that an earlier block opened."""
    ledger.submit(open_tx(driver, "s0", cpo, operator, 10)).raise_for_status()
    fresh = open_local_ledger(db, CHAIN_ID)  # a second process: nothing cached
    payer = Submitter(fresh, driver.account)
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "ledger_state" in statement:
            statements.append(statement)

    event.listen(db, "before_cursor_execute", count)
    try:
        receipts = fresh.submit_many(
            [open_tx(payer, f"s{i}", cpo, operator, 10) for i in range(30)]
            + [settle_tx(Submitter(fresh, operator.account), "s7", 5, 1)]
        )
    finally:
        event.remove(db, "before_cursor_execute", count)
        fresh.close()
    assert not receipts[0].ok and receipts[0].error == "escrow s0 already exists"
    assert all(r.ok for r in receipts[1:])
    assert len(statements) < 10  # the fetch, then one read per other key (nonces, balances)
    ledger.head()  # catch up with the block the other ledger wrote
    assert ledger.query("escrow", "get", escrow_id="s7")["state"] == "settled"
    assert ledger.verify().ok
    check_supply(ledger)


def test_anyone_refunds_after_the_deadline_only(
    ledger: LocalLedger,
    clock: SimulatedClock,
    driver: Submitter,
    cpo: Submitter,
    operator: Submitter,
) -> None:
    ledger.submit(open_tx(driver, "s1", cpo, operator, 1_000)).raise_for_status()
    early = ledger.submit(cpo.sign("escrow", "refund", escrow_id="s1"))
    assert not early.ok and "only its operator" in early.error
    clock.advance(timedelta(seconds=HOUR - 2))
    assert not ledger.submit(driver.sign("escrow", "refund", escrow_id="s1")).ok
    clock.advance(timedelta(seconds=2))
    refunded = ledger.submit(cpo.sign("escrow", "refund", escrow_id="s1")).raise_for_status()
    assert refunded.logs == [{"event": "EscrowRefunded", "escrowId": "s1", "amount": 1_000}]
    assert balance(ledger, driver) == 10_000
    assert ledger.query("escrow", "get", escrow_id="s1")["state"] == "refunded"
    check_supply(ledger)


def test_replayed_escrow_transactions_are_rejected(
    ledger: LocalLedger, driver: Submitter, cpo: Submitter, operator: Submitter
) -> None:
    opening = open_tx(driver, "s1", cpo, operator, 1_000)
    ledger.submit(opening).raise_for_status()
    with pytest.raises(NonceError, match="replay"):
        ledger.submit(opening)
    settling = settle_tx(operator, "s1", 600, 0)
    ledger.submit(settling).raise_for_status()
    with pytest.raises(NonceError, match="replay"):
        ledger.submit(settling)
    assert balance(ledger, cpo) == 600 and balance(ledger, driver) == 9_400
    check_supply(ledger)


class Sessions:
    """Random charging traffic: top-ups, opens (some unfunded), settles (some twice or too large),
    refunds by the operator, by strangers before and after the deadline, and time passing."""

    def __init__(
        self, ledger: LocalLedger, issuer: Submitter, clock: SimulatedClock, rng: random.Random
    ) -> None:
        self.ledger, self.issuer, self.clock, self.rng = ledger, issuer, clock, rng
        self.drivers = [Submitter(ledger, Account.generate()) for _ in range(3)]
        self.cpos = [Submitter(ledger, Account.generate()) for _ in range(2)]
        self.operator = Submitter(ledger, Account.generate())
        self.ids: list[str] = []

    def block(self) -> list[SignedTransaction]:
        rng, txs = self.rng, []
        for _ in range(rng.randint(1, 8)):
            roll = rng.random()
            if roll < 0.25:
                txs.append(mint(self.issuer, rng.choice(self.drivers), rng.randint(1, 8_000)))
            elif roll < 0.5 or not self.ids:
                escrow_id = f"session-{len(self.ids)}"
                self.ids.append(escrow_id)
                txs.append(
                    open_tx(
                        rng.choice(self.drivers),
                        escrow_id,
                        rng.choice(self.cpos),
                        self.operator,
                        rng.randint(1, 3_000),
                        rng.randint(1, 4) * HOUR,
                    )
                )
            elif roll < 0.8:
                amount = rng.randint(0, 1_500)
                fee = rng.randint(0, 150)
                txs.append(settle_tx(self.operator, rng.choice(self.ids), amount, fee))
            else:
                refunder = rng.choice([self.operator, *self.cpos, *self.drivers])
                txs.append(refunder.sign("escrow", "refund", escrow_id=rng.choice(self.ids)))
        return txs


def _replay_escrows(ledger: LocalLedger) -> dict[str, str]:
    """Escrow states replayed from receipts: each one opened once and closed at most once."""
    states: dict[str, str] = {}
    for header in ledger.iter_blocks():
        for _stx, receipt in ledger.block_transactions(header.height):
            for log in receipt.logs:
                escrow_id = log.get("escrowId")
                if log["event"] == "EscrowOpened":
                    assert escrow_id not in states
                    states[escrow_id] = "open"
                elif log["event"] in ("EscrowSettled", "EscrowRefunded"):
                    assert states[escrow_id] == "open", f"{escrow_id} closed twice"
                    states[escrow_id] = "settled" if log["event"] == "EscrowSettled" else "refunded"
    return states


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_sessions_keep_supply_equal_to_balances_plus_escrows(
    ledger: LocalLedger, issuer: Submitter, clock: SimulatedClock, seed: int
) -> None:
    sessions = Sessions(ledger, issuer, clock, random.Random(seed))
    receipts: list[Receipt] = []
    for _ in range(25):
        receipts += ledger.submit_many(sessions.block())
        check_supply(ledger)
        clock.advance(timedelta(seconds=sessions.rng.randint(0, 2 * HOUR)))
    assert any(r.ok for r in receipts) and any(not r.ok for r in receipts)
    states = _replay_escrows(ledger)
    for escrow_id, state in states.items():
        assert ledger.query("escrow", "get", escrow_id=escrow_id)["state"] == state
    assert ledger.verify().ok


def test_found_token_is_needed_before_escrow(ledger: LocalLedger, anchor: Account) -> None:
    """Opening before the token exists fails; after it is founded, the same payer succeeds."""
    payer = Submitter(ledger, anchor)
    first = ledger.submit(
        payer.sign(
            "escrow",
            "open",
            escrow_id="s1",
            symbol=SYMBOL,
            payee=anchor.address,
            operator=anchor.address,
            amount=1,
            timeout=HOUR,
        )
    )
    assert not first.ok and f"no token {SYMBOL}" in first.error
    found_token(payer)
    ledger.submit(mint(payer, payer, 5)).raise_for_status()
    assert ledger.submit(
        payer.sign(
            "escrow",
            "open",
            escrow_id="s1",
            symbol=SYMBOL,
            payee=anchor.address,
            operator=anchor.address,
            amount=5,
            timeout=HOUR,
        )
    ).ok
    check_supply(ledger)

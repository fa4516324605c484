"""Wallets through the real `evgi` command: top-ups minted by the eMSP, withdrawals burned, the
balance and the history read back from the ledger, bad amounts refused without loss, and a
prepaid session through `evgi serve` showing up in the driver's and the CPO's history. The same
operations leave the same history on the local engine and on an EVM network."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from evgi import cli
from evgi.core import Account, Money
from evgi.core.clock import SimulatedClock, SystemClock
from evgi.core.digest import keccak256, to_hex
from evgi.core.errors import ExecutionError
from evgi.identity.keystore import Keystore
from evgi.ledger import Ledger
from evgi.ledger.journal import LocalLedger
from evgi.settlement import HistoryEntry, InsufficientFunds, Wallets
from evgi.sim.stations import EvseSpec, station_class
from evgi.storage import open_database
from evgi.storage.settlement import SettlementStore
from tests.ledger.conftest import evm_ledger, evm_node
from tests.service_runner import free_port, running_service

__all__ = ["evm_ledger", "evm_node"]  # the EVM fixtures, for the differential test

CARD = "04A1B2C3D4E5F6"
PASSWORD = "station-password-0001"
TARIFF = (
    '{"country_code": "DE", "party_id": "EVG", "id": "AC-30", "currency": "EUR",'
    ' "last_updated": "2025-01-01T00:00:00Z", "elements": [{"price_components":'
    ' [{"type": "ENERGY", "price": 0.30, "step_size": 1}]}]}'
)


def run_evgi(cwd: Path, *args: str) -> Result:
    """The `evgi` command in-process, on the data folder `evgi serve` in `cwd` uses."""
    return CliRunner().invoke(
        cli.app, ["--data-dir", str(cwd / "evgi-data"), *args], env={"COLUMNS": "200"}
    )


def evgi_ok(cwd: Path, *args: str) -> str:
    done = run_evgi(cwd, *args)
    assert done.exit_code == 0, done.output
    return done.stdout


def balance(cwd: Path, name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(evgi_ok(cwd, "wallet", "balance", name, "--json"))
    return document


def history(cwd: Path, name: str) -> list[tuple[str, int]]:
    entries = json.loads(evgi_ok(cwd, "wallet", "history", name, "--json"))
    return [(e["kind"], e["amount_minor"]) for e in entries]


def test_topup_withdraw_balance_history(tmp_path: Path) -> None:
    out = evgi_ok(tmp_path, "wallet", "topup", "alice", "30.00 EUR", "--id-token", CARD)
    assert "balance 30.00 EUR" in out
    assert "balance 50.00 EUR" in evgi_ok(tmp_path, "wallet", "topup", "alice", "20")
    assert "balance 34.50 EUR" in evgi_ok(tmp_path, "wallet", "withdraw", "alice", "15.50 EUR")
    held = balance(tmp_path, "alice")
    assert (held["currency"], held["balance_minor"], held["id_tokens"]) == ("EUR", 3_450, [CARD])

    # Bad input: a clear error, and nothing already stored is lost.
    for args, message in [
        (("withdraw", "alice", "100.00 EUR"), "holds 34.50 EUR, less than 100.00 EUR"),
        (("topup", "alice", "--", "-5.00 EUR"), "must be positive"),
        (("topup", "alice", "12.345 EUR"), "at most 2 decimals"),
        (("topup", "alice", "10.00 USD"), "wallets hold EUR, not USD"),
        (("topup", "Alice!", "10.00 EUR"), "wallet name"),
        (("balance", "nobody"), "no wallet named 'nobody'"),
    ]:
        refused = run_evgi(tmp_path, "wallet", *args)
        assert refused.exit_code != 0, args
        assert message in " ".join(refused.output.split()), (args, refused.output)
    assert balance(tmp_path, "alice")["balance_minor"] == 3_450
    assert history(tmp_path, "alice") == [
        ("topup", 3_000),
        ("topup", 2_000),
        ("withdrawal", -1_550),
    ]
    table = evgi_ok(tmp_path, "wallet", "history", "alice")
    assert "withdrawal" in table and "-15.50 EUR" in table
    assert "ledger ok" in evgi_ok(tmp_path, "ledger", "verify")


def test_prepaid_session_through_evgi_serve(tmp_path: Path) -> None:
    evgi_ok(tmp_path, "csms", "add-station", "ST-1", "--password", PASSWORD)
    evgi_ok(tmp_path, "csms", "tokens", "add", CARD)
    evgi_ok(tmp_path, "wallet", "tariff", "ST-1", TARIFF, "--time-zone", "Europe/Berlin")
    evgi_ok(tmp_path, "wallet", "topup", "alice", "80.00", "--id-token", CARD)
    quoted = json.loads(
        evgi_ok(tmp_path, "wallet", "quote", "ST-1", CARD, "--kwh", "5.5", "--kw", "11", "--json")
    )
    assert (quoted["tariff_id"], quoted["total_incl_vat_minor"]) == ("AC-30", 165)
    refused = run_evgi(tmp_path, "wallet", "quote", "ST-9", CARD)
    assert refused.exit_code != 0 and "station ST-9 has no tariff" in refused.output
    ocpp_port = free_port()

    async def charge() -> int:
        station = station_class("2.0.1")(
            "ST-1",
            f"ws://127.0.0.1:{ocpp_port}/ocpp",
            password=PASSWORD,
            clock=SimulatedClock(),
            evses=[EvseSpec(11_000)],
        )
        await station.connect()
        session = await station.run_session(CARD, timedelta(minutes=30))
        await station.close()
        return session.energy_wh

    with running_service(tmp_path, ocpp_port=ocpp_port):
        energy = asyncio.run(charge())
        assert energy == 5_500
        cost = 165  # 5.5 kWh at 0.30 EUR
        deadline = 40
        while history(tmp_path, "alice")[-1][0] != "refund" and deadline:
            asyncio.run(asyncio.sleep(0.25))
            deadline -= 1
    assert history(tmp_path, "alice") == [
        ("topup", 8_000),
        ("escrow", -5_000),
        ("refund", 5_000 - cost),
    ]
    assert balance(tmp_path, "alice")["balance_minor"] == 8_000 - cost
    cdrs = evgi_ok(tmp_path, "settlement", "cdrs")
    assert "ST-1" in cdrs


def _operations(wallets: Wallets) -> None:
    """Top-ups, a transfer, a refused transfer, escrows settled (with a payment and a fee to
    another wallet), refunded and left open, and a withdrawal."""
    wallets.topup("alice", Money("EUR", 10_000))
    wallets.topup("bob", Money("EUR", 2_000))
    alice = wallets.get("alice").address
    bob = wallets.get("bob").address
    driver = wallets.submitter(wallets.account_at(alice))
    operator = wallets.submitter(wallets.cpo)
    driver.call("token", "transfer", symbol=wallets.symbol, to=bob, amount=500)
    with pytest.raises(ExecutionError):
        driver.call("token", "transfer", symbol=wallets.symbol, to=bob, amount=1_000_000)

    def escrow(escrow_id: str, payee: str, amount: int) -> None:
        driver.call(
            "escrow",
            "open",
            escrow_id=escrow_id,
            symbol=wallets.symbol,
            payee=payee,
            operator=operator.address,
            amount=amount,
            timeout=3600,
        )

    def settle(escrow_id: str, payee_amount: int, fee_amount: int, fee_payee: str) -> None:
        operator.call(
            "escrow",
            "settle",
            escrow_id=escrow_id,
            payee_amount=payee_amount,
            fee_amount=fee_amount,
            fee_payee=fee_payee,
            record_hash=to_hex(keccak256(escrow_id.encode())),
        )

    escrow("s1", wallets.cpo.address, 3_000)
    settle("s1", 1_234, 66, wallets.emsp.address)
    escrow("s2", bob, 1_000)
    settle("s2", 700, 100, bob)
    escrow("s3", wallets.cpo.address, 1_500)
    operator.call("escrow", "refund", escrow_id="s3")
    wallets.withdraw("alice", Money("EUR", 1_000))
    escrow("s4", wallets.cpo.address, 500)
    with pytest.raises(InsufficientFunds):
        wallets.withdraw("alice", Money("EUR", 100_000))


def _checked_history(ledger: Ledger, wallets: Wallets, name: str) -> list[tuple[str, int, str]]:
    """The wallet's history, after checking each entry against its transaction's receipt and
    block on the ledger, and its sum against the balance."""
    entries: list[HistoryEntry] = wallets.history(name)
    for entry in entries:
        receipt = ledger.receipt(entry.tx_hash)
        assert receipt.ok and receipt.block == entry.block
        assert entry.at.timestamp() == ledger.block(entry.block).timestamp
    assert [(e.block, e.at) for e in entries] == sorted((e.block, e.at) for e in entries)
    assert sum(e.amount_minor for e in entries) == wallets.balance(name).minor
    return [(e.kind, e.amount_minor, e.reference) for e in entries]


def test_history_is_the_same_on_the_local_and_evm_engines(
    db: Engine, ledger: LocalLedger, anchor: Account, tmp_path: Path, evm_ledger: Any
) -> None:
    outcomes = []
    for name, engine_ledger in (("local", ledger), ("evm", evm_ledger)):
        store = SettlementStore(
            db if name == "local" else open_database(f"sqlite:///{tmp_path / 'evm.db'}")
        )
        # The same keys on both engines: the same addresses in both histories.
        keys = Keystore(tmp_path / "keys")
        wallets = Wallets(engine_ledger, keys, store, SystemClock(), "EUR", anchor)
        _operations(wallets)
        outcomes.append(
            {
                "alice": _checked_history(engine_ledger, wallets, "alice"),
                "bob": _checked_history(engine_ledger, wallets, "bob"),
                "escrowed": [wallets.escrowed(n).minor for n in ("alice", "bob")],
            }
        )
        if name == "evm":
            store.engine.dispose()
    local, evm = outcomes
    assert local == evm
    bob, emsp, cpo = wallets.get("bob").address, wallets.emsp.address, wallets.cpo.address
    alice = wallets.get("alice").address
    assert local["alice"] == [
        ("topup", 10_000, ""),
        ("transfer-out", -500, bob),
        ("escrow", -3_000, "s1"),
        ("refund", 1_700, "s1"),
        ("escrow", -1_000, "s2"),
        ("refund", 200, "s2"),
        ("escrow", -1_500, "s3"),
        ("refund", 1_500, "s3"),
        ("withdrawal", -1_000, emsp),
        ("escrow", -500, "s4"),
    ]
    assert local["bob"] == [
        ("topup", 2_000, ""),
        ("transfer-in", 500, alice),
        ("payment", 700, "s2"),
        ("fee", 100, "s2"),
    ]
    assert local["escrowed"] == [500, 0]
    assert cpo not in {reference for _, _, reference in local["alice"]}

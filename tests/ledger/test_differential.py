"""One operation sequence through the local engine and the evm engine: the same outcome on both.

Tokens (create, grant, mint, transfer, burn), escrows (open, settle, refund, after a deadline),
DID owners, delegates and attributes, and anchors, with refusals of every kind mixed in. Each step
must succeed or fail on both engines alike, with the same events; at the end balances, supply,
escrows, DID records and anchors must agree. Block heights and times differ between the engines
(the EVM mines a block per transaction), so those fields are left out of the comparison.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from evgi.core import Account, ValidationError
from evgi.core.clock import SimulatedClock
from evgi.core.digest import keccak256, to_hex
from evgi.ledger import Ledger, Receipt, Submitter, open_local_ledger
from evgi.ledger.evm import EvmLedger
from evgi.ledger.journal import LocalLedger
from evgi.storage import open_database
from tests.conftest import CHAIN_ID
from tests.ledger.conftest import Node

ACTORS = ("issuer", "alice", "bob", "carol", "operator", "mallory")
HASH_1 = to_hex(keccak256(b"session batch 1"))
HASH_2 = to_hex(keccak256(b"entity certificate"))
OCPI = ("did/svc/OCPI", "https://carol.example/ocpi/versions")
OCPP = ("did/svc/OCPP", "wss://carol.example/ocpp")


def _open(escrow_id: str, amount: int, timeout: int = 3600) -> dict[str, Any]:
    return {
        "escrow_id": escrow_id,
        "symbol": "EUR",
        "payee": "carol",
        "operator": "operator",
        "amount": amount,
        "timeout": timeout,
    }


def _settle(escrow_id: str, payee_amount: int, fee_amount: int) -> dict[str, Any]:
    return {
        "escrow_id": escrow_id,
        "payee_amount": payee_amount,
        "fee_amount": fee_amount,
        "fee_payee": "operator",
        "record_hash": to_hex(keccak256(escrow_id.encode())),
    }


# (actor, module, method, arguments, expected ok); ("advance", seconds) moves both clocks.
# Actor names in argument values stand for their addresses.
SCRIPT: list[tuple[Any, ...]] = [
    ("anchor", "token", "create", {"symbol": "EUR", "currency": "EUR"}, True),
    ("mallory", "token", "create", {"symbol": "USD", "currency": "USD"}, False),
    ("anchor", "token", "create", {"symbol": "EUR", "currency": "EUR"}, False),
    ("anchor", "token", "create", {"symbol": "bad", "currency": "EUR"}, False),
    ("anchor", "token", "grant_issuer", {"symbol": "EUR", "issuer": "issuer"}, True),
    ("mallory", "token", "grant_issuer", {"symbol": "EUR", "issuer": "mallory"}, False),
    ("mallory", "token", "mint", {"symbol": "EUR", "to": "mallory", "amount": 100}, False),
    ("issuer", "token", "mint", {"symbol": "EUR", "to": "alice", "amount": 10_000}, True),
    ("alice", "token", "transfer", {"symbol": "EUR", "to": "bob", "amount": 300}, True),
    ("bob", "token", "transfer", {"symbol": "EUR", "to": "alice", "amount": 301}, False),
    ("bob", "token", "transfer", {"symbol": "EUR", "to": "bob", "amount": 100}, True),
    ("alice", "token", "transfer", {"symbol": "EUR", "to": "bob", "amount": 0}, False),
    ("alice", "token", "transfer", {"symbol": "GBP", "to": "bob", "amount": 1}, False),
    ("issuer", "token", "mint", {"symbol": "EUR", "to": "issuer", "amount": 50}, True),
    ("issuer", "token", "burn", {"symbol": "EUR", "amount": 20}, True),
    ("issuer", "token", "burn", {"symbol": "EUR", "amount": 31}, False),
    ("alice", "token", "burn", {"symbol": "EUR", "amount": 10}, False),
    ("alice", "escrow", "open", _open("s1", 3_000), True),
    ("alice", "escrow", "open", _open("s1", 3_000), False),
    ("bob", "escrow", "open", _open("s2", 1_000), False),
    ("bob", "escrow", "open", _open("s2", 200, timeout=0), False),
    ("carol", "escrow", "settle", _settle("s1", 3_000, 0), False),
    ("operator", "escrow", "settle", _settle("s1", 2_950, 51), False),
    ("operator", "escrow", "settle", _settle("s1", 2_400, 100), True),
    ("operator", "escrow", "settle", _settle("s1", 2_400, 100), False),
    ("operator", "escrow", "refund", {"escrow_id": "s1"}, False),
    ("alice", "escrow", "open", _open("s3", 1_000), True),
    ("carol", "escrow", "refund", {"escrow_id": "s3"}, False),
    ("operator", "escrow", "refund", {"escrow_id": "s3"}, True),
    ("operator", "escrow", "settle", _settle("s3", 10, 0), False),
    ("bob", "escrow", "open", _open("s4", 150, timeout=60), True),
    ("mallory", "escrow", "refund", {"escrow_id": "s4"}, False),
    ("alice", "escrow", "open", _open("s5", 700), True),
    ("advance", 120),
    ("mallory", "escrow", "refund", {"escrow_id": "s4"}, True),
    (
        "alice",
        "did",
        "set_attribute",
        {"identity": "alice", "name": OCPI[0], "value": OCPI[1], "validity": 3600},
        True,
    ),
    (
        "bob",
        "did",
        "set_attribute",
        {"identity": "alice", "name": OCPP[0], "value": OCPP[1], "validity": 3600},
        False,
    ),
    (
        "alice",
        "did",
        "set_attribute",
        {"identity": "alice", "name": "n" * 33, "value": "v", "validity": 3600},
        False,
    ),
    (
        "alice",
        "did",
        "add_delegate",
        {"identity": "alice", "delegate_type": "sigAuth", "delegate": "bob", "validity": 3600},
        True,
    ),
    (
        "alice",
        "did",
        "add_delegate",
        {"identity": "alice", "delegate_type": "veriKey", "delegate": "carol", "validity": 7200},
        True,
    ),
    (
        "alice",
        "did",
        "revoke_delegate",
        {"identity": "alice", "delegate_type": "sigAuth", "delegate": "bob"},
        True,
    ),
    (
        "alice",
        "did",
        "set_attribute",
        {"identity": "alice", "name": OCPP[0], "value": OCPP[1], "validity": 3600},
        True,
    ),
    (
        "alice",
        "did",
        "revoke_attribute",
        {"identity": "alice", "name": OCPP[0], "value": OCPP[1]},
        True,
    ),
    (
        "alice",
        "did",
        "revoke_attribute",
        {"identity": "alice", "name": OCPP[0], "value": "never set"},
        False,
    ),
    ("alice", "did", "change_owner", {"identity": "alice", "new_owner": "bob"}, True),
    (
        "alice",
        "did",
        "set_attribute",
        {"identity": "alice", "name": OCPP[0], "value": OCPP[1], "validity": 3600},
        False,
    ),
    (
        "bob",
        "did",
        "set_attribute",
        {"identity": "alice", "name": OCPP[0], "value": OCPP[1], "validity": 3600},
        True,
    ),
    (
        "carol",
        "anchor",
        "put",
        {"hash": HASH_1, "kind": "cdr.batch", "meta": {"sessions": "2", "operator": "carol"}},
        True,
    ),
    ("bob", "anchor", "put", {"hash": HASH_1, "kind": "cdr.batch"}, False),
    ("bob", "anchor", "put", {"hash": HASH_2, "kind": "ec"}, True),
    ("bob", "anchor", "put", {"hash": "0x1234", "kind": "ec"}, False),
]
ESCROWS = ("s1", "s2", "s3", "s4", "s5")
# Heights and times: each engine's own.
_TIMES = {
    "opened",
    "openedAt",
    "deadline",
    "closed",
    "validTo",
    "previousChange",
    "changed",
    "block",
    "timestamp",
}


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()


@pytest.fixture
def local(tmp_path: Path, anchor: Account, clock: SimulatedClock) -> Iterator[LocalLedger]:
    db = open_database(f"sqlite:///{tmp_path / 'local.db'}")
    ledger = open_local_ledger(db, CHAIN_ID, [anchor.address], clock)
    assert isinstance(ledger, LocalLedger)
    yield ledger
    ledger.close()
    db.dispose()


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _comparable_logs(module: str, receipt: Receipt | None) -> list[dict[str, Any]]:
    """Logs without times; on the EVM an escrow also moves tokens into and out of the escrow
    contract (Transfer events), where the local engine counts escrowed funds apart."""
    if receipt is None or not receipt.ok:
        return []
    logs = [log for log in receipt.logs if not (module == "escrow" and log["event"] == "Transfer")]
    return [_timeless(log) for log in logs]


def _run(
    ledger: Ledger, submitter: Submitter, module: str, method: str, args: dict[str, Any]
) -> Receipt | None:
    """The receipt, or None when the engine refused the call before it reached a block (the evm
    engine checks arguments before it signs, where the local engine keeps a failed receipt)."""
    try:
        return ledger.submit(submitter.sign(module, method, **args))
    except ValidationError:
        return None


def _state(ledger: Ledger, accounts: dict[str, Account]) -> dict[str, Any]:
    at = ledger.head().timestamp
    return {
        "balances": {
            name: ledger.query("token", "balance_of", symbol="EUR", owner=a.address)
            for name, a in accounts.items()
        },
        "token": ledger.query("token", "info", symbol="EUR"),
        "no token": ledger.query("token", "info", symbol="USD"),
        "escrowed": ledger.query("escrow", "total", symbol="EUR"),
        "escrows": {e: _timeless(ledger.query("escrow", "get", escrow_id=e)) for e in ESCROWS},
        "dids": {
            name: _timeless(ledger.query("did", "record", identity=a.address, at=at))
            for name, a in accounts.items()
        },
        "owner": ledger.query("did", "owner", identity=accounts["alice"].address),
        "delegates": [
            ledger.query(
                "did",
                "valid_delegate",
                identity=accounts["alice"].address,
                delegate_type=kind,
                delegate=accounts[who].address,
                at=at,
            )
            for kind, who in (("veriKey", "carol"), ("sigAuth", "bob"))
        ],
        "anchors": [_timeless(ledger.query("anchor", "get", hash=h)) for h in (HASH_1, HASH_2)],
    }


def test_local_and_evm_engines_agree(
    local: LocalLedger,
    evm_ledger: EvmLedger,
    evm_node: Node,
    clock: SimulatedClock,
    anchor: Account,
) -> None:
    accounts = {"anchor": anchor, **{name: Account.generate() for name in ACTORS}}
    engines: list[tuple[Ledger, dict[str, Submitter]]] = [
        (ledger, {name: Submitter(ledger, account) for name, account in accounts.items()})
        for ledger in (local, evm_ledger)
    ]

    def resolve(value: Any) -> Any:
        return accounts[value].address if isinstance(value, str) and value in accounts else value

    for step in SCRIPT:
        if step[0] == "advance":
            clock.advance(timedelta(seconds=step[1]))
            evm_node.advance(step[1])
            continue
        actor, module, method, args, expected = step
        resolved = {k: resolve(v) for k, v in args.items()}
        outcomes = [
            _run(ledger, submitters[actor], module, method, resolved)
            for ledger, submitters in engines
        ]
        label = f"{actor} {module}.{method} {args}"
        local_receipt, evm_receipt = outcomes
        assert local_receipt is not None, label  # the local engine keeps every call in a block
        assert local_receipt.ok is expected, f"local: {label}: {local_receipt.error}"
        evm_ok = evm_receipt is not None and evm_receipt.ok
        assert evm_ok is expected, f"evm: {label}: {evm_receipt and evm_receipt.error}"
        assert _comparable_logs(module, local_receipt) == _comparable_logs(module, evm_receipt)

    local_state, evm_state = _state(local, accounts), _state(evm_ledger, accounts)
    assert local_state == evm_state
    assert local_state["token"]["supply"] == 10_000 + 50 - 20
    assert local_state["escrowed"] == 700
    assert local_state["delegates"] == [True, False]
    assert local_state["owner"] == accounts["bob"].address
    # What the EVM holds for open escrows sits in the escrow contract's balance.
    escrow_contract = evm_ledger.addresses["escrow"]
    assert evm_ledger.query("token", "balance_of", symbol="EUR", owner=escrow_contract) == 700
    for ledger in (local, evm_ledger):
        record = ledger.query("escrow", "get", escrow_id="s4")
        assert record["deadline"] - record["openedAt"] == 60
        assert ledger.verify().ok

"""token.vy against the local `token` module: one operation sequence, the same outcome on both.

The seed of the differential tests between the `local` and `evm` engines. Runs with the `bench`
extra (vyper, eth-tester with py-evm); skipped without it.
"""

from __future__ import annotations

from typing import Any

import pytest

from evgi.core import Account, ValidationError, from_hex, keccak256
from evgi.ledger import Submitter
from evgi.ledger.contracts import compile_contract, contract_names, contract_source
from evgi.ledger.journal import LocalLedger

pytest.importorskip("vyper")
eth_tester = pytest.importorskip("eth_tester")
eth_abi = pytest.importorskip("eth_abi")
eth_account = pytest.importorskip("eth_account")

ZERO = "0x" + "00" * 20
TRANSFER_TOPIC = "0x" + keccak256(b"Transfer(address,address,uint256)").hex()

# (actor, method, arguments, expected ok): insufficient balances, missing rights and zero amounts
# must fail on both engines, and leave the same state behind.
SCRIPT: list[tuple[str, str, dict[str, Any], bool]] = [
    ("admin", "grant_issuer", {"issuer": "issuer"}, True),
    ("mallory", "grant_issuer", {"issuer": "mallory"}, False),
    ("mallory", "mint", {"to": "mallory", "amount": 100}, False),
    ("issuer", "mint", {"to": "alice", "amount": 1000}, True),
    ("alice", "transfer", {"to": "bob", "amount": 300}, True),
    ("bob", "transfer", {"to": "alice", "amount": 301}, False),
    ("bob", "transfer", {"to": "bob", "amount": 100}, True),
    ("alice", "transfer", {"to": "bob", "amount": 0}, False),
    ("issuer", "mint", {"to": "issuer", "amount": 50}, True),
    ("issuer", "burn", {"amount": 20}, True),
    ("issuer", "burn", {"amount": 31}, False),
    ("alice", "burn", {"amount": 10}, False),
    ("bob", "transfer", {"to": "issuer", "amount": 300}, True),
    ("issuer", "burn", {"amount": 330}, True),
]
ACTORS = ["admin", "issuer", "alice", "bob", "mallory"]


class EvmToken:
    """token.vy deployed on eth-tester's py-evm, driven by raw transactions like any EVM node."""

    def __init__(self, deployer: Account) -> None:
        self.contract = compile_contract("token")
        self.tester = eth_tester.EthereumTester(eth_tester.PyEVMBackend())
        self.chain_id = self.tester.backend.chain.chain_id
        self.nonces: dict[str, int] = {}
        self.faucet = self.tester.get_accounts()[0]
        args = eth_abi.encode(["string", "string", "uint8"], ["EUR", "EUR", 2]).hex()
        receipt = self.send(deployer, self.contract.bytecode + args, None)
        assert receipt["status"] == 1
        self.address = receipt["contract_address"]

    def calldata(self, function: str, *args: Any) -> str:
        entry = next(e for e in self.contract.abi if e.get("name") == function)
        types = [i["type"] for i in entry["inputs"]]
        selector = keccak256(f"{function}({','.join(types)})".encode())[:4]
        return "0x" + (selector + eth_abi.encode(types, list(args))).hex()

    def send(self, account: Account, data: str, to: str | None) -> dict[str, Any]:
        if account.address not in self.nonces:
            self.tester.send_transaction(
                {"from": self.faucet, "to": account.address, "value": 10**20, "gas": 21_000}
            )
            self.nonces[account.address] = 0
        tx: dict[str, Any] = {
            "type": 2, "chainId": self.chain_id, "nonce": self.nonces[account.address],
            "gas": 2_000_000, "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 1,
            "value": 0, "data": data,
        }
        if to is not None:
            tx["to"] = to
        signed = eth_account.Account.sign_transaction(tx, account.private_key)
        self.nonces[account.address] += 1
        tx_hash = self.tester.send_raw_transaction("0x" + signed.raw_transaction.hex())
        receipt: dict[str, Any] = self.tester.get_transaction_receipt(tx_hash)
        return receipt

    def view(self, function: str, *args: Any) -> Any:
        entry = next(e for e in self.contract.abi if e.get("name") == function)
        raw = self.tester.call(
            {"from": self.faucet, "to": self.address, "data": self.calldata(function, *args)}
        )
        return eth_abi.decode([o["type"] for o in entry["outputs"]], from_hex(raw))[0]


def _transfers_from_evm(receipt: dict[str, Any]) -> list[tuple[str, str, int]]:
    moves = []
    for entry in receipt["logs"]:
        topics = [t if isinstance(t, str) else "0x" + t.hex() for t in entry["topics"]]
        if topics[0] == TRANSFER_TOPIC:
            data = entry["data"] if isinstance(entry["data"], bytes) else from_hex(entry["data"])
            moves.append(("0x" + topics[1][-40:], "0x" + topics[2][-40:],
                          int.from_bytes(data, "big")))
    return moves


def _transfers_from_local(logs: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["from"] or ZERO, e["to"] or ZERO, e["amount"])
            for e in logs if e["event"] == "Transfer"]


def test_contract_and_local_module_agree(ledger: LocalLedger, anchor: Account) -> None:
    accounts = {"admin": anchor, **{a: Account.generate() for a in ACTORS[1:]}}
    submitters = {name: Submitter(ledger, account) for name, account in accounts.items()}
    submitters["admin"].call("token", "create", symbol="EUR", currency="EUR")
    evm = EvmToken(anchor)
    assert evm.view("admin") == anchor.address  # the same key is the same account on both
    assert (evm.view("symbol"), evm.view("currency"), evm.view("decimals")) == ("EUR", "EUR", 2)

    def resolve(value: Any) -> Any:
        return accounts[value].address if value in accounts else value

    for actor, method, args, expected in SCRIPT:
        local_args = {k: resolve(v) for k, v in args.items()}
        receipt = ledger.submit(
            submitters[actor].sign("token", method, symbol="EUR", **local_args)
        )
        evm_receipt = evm.send(
            accounts[actor], evm.calldata(method, *local_args.values()), evm.address
        )
        step = f"{actor} {method} {args}"
        assert receipt.ok is expected, f"local: {step}: {receipt.error}"
        assert (evm_receipt["status"] == 1) is expected, f"evm: {step}"
        assert _transfers_from_local(receipt.logs) == _transfers_from_evm(evm_receipt), step

    for name, account in accounts.items():
        local_balance = ledger.query("token", "balance_of", symbol="EUR", owner=account.address)
        assert evm.view("balanceOf", account.address) == local_balance, name
        local_issuer = bool(ledger.get(f"token/EUR/issuer/{account.address}"))
        assert evm.view("isIssuer", account.address) is local_issuer, name
    supply = ledger.query("token", "info", symbol="EUR")["supply"]
    assert evm.view("totalSupply") == supply == 1000 + 50 - 20 - 330


def test_compile_contract_gives_abi_and_bytecode() -> None:
    assert "token" in contract_names()
    compiled = compile_contract("token")
    assert compiled.bytecode.startswith("0x") and len(compiled.bytecode) > 100
    functions = {e["name"] for e in compiled.abi if e["type"] == "function"}
    assert {"grant_issuer", "mint", "burn", "transfer", "balanceOf", "totalSupply"} <= functions
    assert compile_contract("token") is compiled  # compiled once per process


@pytest.mark.parametrize("name", ["missing", "../contracts/token", "Token", ""])
def test_unknown_contract_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        contract_source(name)

"""Ledger fixtures: the trust anchor as the issuer of a founded EUR token, and EVM nodes for the
`evm` engine: eth-tester's py-evm in process always, a Hardhat node when `EVGI_TEST_EVM_RPC`
names one (.ci/run starts it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evgi.core import Account
from evgi.ledger import Submitter
from evgi.ledger.evm import EvmLedger
from evgi.ledger.journal import LocalLedger
from tests.ledger.economy import Holders, found_token


@pytest.fixture
def issuer(ledger: LocalLedger, anchor: Account) -> Submitter:
    """The trust anchor, after it created the EUR token and made itself its issuer (block 1)."""
    submitter = Submitter(ledger, anchor)
    found_token(submitter)
    return submitter


@pytest.fixture
def holders(ledger: LocalLedger) -> Holders:
    """Three account holders with no balance yet: alice, bob and carol."""
    alice, bob, carol = (Submitter(ledger, Account.generate()) for _ in range(3))
    return alice, bob, carol


EVM_RPC_ENV = "EVGI_TEST_EVM_RPC"
GAS_MONEY = 10**19  # wei from the node's first account to each test account

_NODES = [
    pytest.param("eth-tester", id="eth-tester"),
    pytest.param(
        "rpc",
        id="hardhat",
        marks=pytest.mark.skipif(
            not os.environ.get(EVM_RPC_ENV),
            reason=f"no EVM node: set {EVM_RPC_ENV} to a Hardhat JSON-RPC URL such as "
            "http://127.0.0.1:8545 (.ci/run starts one)",
        ),
    ),
]


class Node:
    """An EVM node and the one thing tests need beyond JSON-RPC's standard: moving its clock."""

    def __init__(self, web3: Any, kind: str) -> None:
        self.web3 = web3
        self.kind = kind

    def advance(self, seconds: int) -> None:
        if self.kind == "eth-tester":
            tester = self.web3.provider.ethereum_tester
            tester.time_travel(self.web3.eth.get_block("latest")["timestamp"] + seconds)
        else:
            self.web3.provider.make_request("evm_increaseTime", [seconds])
            self.web3.provider.make_request("evm_mine", [])

    def automine(self, on: bool) -> None:
        """Off: sent transactions wait in the node's pool until `mine`."""
        if self.kind == "eth-tester":
            tester = self.web3.provider.ethereum_tester
            (
                tester.enable_auto_mine_transactions
                if on
                else tester.disable_auto_mine_transactions
            )()
        else:
            self.web3.provider.make_request("evm_setAutomine", [on])

    def mine(self) -> None:
        if self.kind == "eth-tester":
            self.web3.provider.ethereum_tester.mine_blocks(1)
        else:
            self.web3.provider.make_request("evm_mine", [])


@pytest.fixture(params=_NODES)
def evm_node(request: pytest.FixtureRequest) -> Iterator[Node]:
    pytest.importorskip("vyper")
    from web3 import HTTPProvider, Web3

    if request.param == "eth-tester":
        eth_tester = pytest.importorskip("eth_tester")
        from web3.providers.eth_tester import EthereumTesterProvider

        tester = eth_tester.EthereumTester(eth_tester.PyEVMBackend())
        yield Node(Web3(EthereumTesterProvider(tester)), "eth-tester")
    else:
        yield Node(Web3(HTTPProvider(os.environ[EVM_RPC_ENV])), "rpc")


@pytest.fixture
def evm_ledger(evm_node: Node, anchor: Account, tmp_path: Path) -> Iterator[EvmLedger]:
    """Contracts freshly deployed by `anchor`, its one trust anchor; accounts get gas money from
    the node's first account when they first sign."""
    ledger = EvmLedger(
        evm_node.web3,
        anchor,
        tmp_path / "evm-deployment.json",
        [anchor.address],
        dev_funding_wei=GAS_MONEY,
    )
    yield ledger
    ledger.close()

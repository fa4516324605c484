"""The evm engine itself: signing, replays, receipts, transactions decoded back into calls,
Merkle-Patricia inclusion proofs, history checks, deployments, and how the platform opens it."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from evgi.app import open_platform
from evgi.config import Settings, load_settings
from evgi.core import Account, ConfigError, NonceError, ValidationError
from evgi.core.digest import keccak256, to_hex
from evgi.ledger import PatriciaProof, Submitter, Transaction
from evgi.ledger.evm import EvmLedger, EvmSignedTransaction, raw_transaction
from tests.cli_runner import run_evgi
from tests.ledger.conftest import EVM_RPC_ENV, GAS_MONEY, Node

needs_rpc = pytest.mark.skipif(
    not os.environ.get(EVM_RPC_ENV), reason=f"no EVM node: set {EVM_RPC_ENV} (.ci/run does)"
)


@pytest.fixture
def treasury(evm_ledger: EvmLedger, anchor: Account) -> Submitter:
    """The trust anchor, as creator and issuer of EUR."""
    submitter = Submitter(evm_ledger, anchor)
    submitter.call("token", "create", symbol="EUR", currency="EUR")
    submitter.call("token", "grant_issuer", symbol="EUR", issuer=anchor.address)
    return submitter


def test_transactions_are_ethereum_transactions_of_the_signer(
    evm_ledger: EvmLedger, treasury: Submitter
) -> None:
    alice = Account.generate()
    stx = treasury.sign("token", "mint", symbol="EUR", to=alice.address, amount=500)
    assert isinstance(stx, EvmSignedTransaction)
    stx.check_signature()
    assert stx.signer() == treasury.address
    receipt = evm_ledger.submit(stx).raise_for_status()
    assert receipt.tx_hash == stx.hash_hex
    assert receipt.logs == [
        {"event": "Transfer", "symbol": "EUR", "from": None, "to": alice.address, "amount": 500}
    ]

    decoded, again = evm_ledger.transaction(stx.hash_hex)
    assert decoded.tx == stx.tx
    assert decoded.encoded == stx.encoded and decoded.hash_hex == stx.hash_hex
    assert again == receipt == evm_ledger.receipt(stx.hash_hex)
    assert decoded.to_wire()["raw"] == to_hex(stx.encoded)


def test_replays_and_foreign_signatures_are_refused(
    evm_ledger: EvmLedger, treasury: Submitter, anchor: Account
) -> None:
    stx = treasury.sign("token", "mint", symbol="EUR", to=anchor.address, amount=5)
    evm_ledger.submit(stx).raise_for_status()
    with pytest.raises(NonceError, match="replay"):
        evm_ledger.submit(stx)
    local_form = Transaction(
        evm_ledger.chain_id,
        anchor.address,
        evm_ledger.nonce(anchor.address),
        "token",
        "burn",
        {"symbol": "EUR", "amount": 1},
    ).sign(anchor)
    with pytest.raises(ValidationError, match="signed by its own"):
        evm_ledger.submit(local_form)
    other_chain = Transaction(
        evm_ledger.chain_id + 1, anchor.address, 0, "token", "burn", {"symbol": "EUR", "amount": 1}
    )
    with pytest.raises(ValidationError, match="chain"):
        evm_ledger.sign(other_chain, anchor)
    assert evm_ledger.query("token", "balance_of", symbol="EUR", owner=anchor.address) == 5


def test_failed_calls_keep_the_revert_reason_and_the_nonce_moves_on(
    evm_ledger: EvmLedger, treasury: Submitter
) -> None:
    before = evm_ledger.nonce(treasury.address)
    receipt = evm_ledger.submit(treasury.sign("token", "burn", symbol="EUR", amount=1))
    assert not receipt.ok and receipt.error == "insufficient balance" and receipt.logs == []
    assert evm_ledger.nonce(treasury.address) == before + 1
    with pytest.raises(ValidationError, match=r"no contract for entity\.onboard"):
        treasury.sign(
            "entity", "onboard", subject=treasury.address, kind="user", ec_hash="0x" + "00" * 32
        )
    with pytest.raises(ValidationError, match="amount"):
        treasury.sign("token", "mint", symbol="EUR", to=treasury.address, amount=0)
    treasury.call("token", "mint", symbol="EUR", to=treasury.address, amount=3)  # no nonce gap


def test_batches_are_sent_in_order(evm_ledger: EvmLedger, treasury: Submitter) -> None:
    bob = Account.generate()
    receipts = evm_ledger.submit_many(
        [
            treasury.sign("token", "mint", symbol="EUR", to=treasury.address, amount=100),
            treasury.sign("token", "transfer", symbol="EUR", to=bob.address, amount=60),
            treasury.sign("token", "transfer", symbol="EUR", to=bob.address, amount=60),
        ]
    )
    assert [r.ok for r in receipts] == [True, True, False]
    assert evm_ledger.query("token", "balance_of", symbol="EUR", owner=bob.address) == 60


def test_a_sent_transaction_is_pending_until_mined(
    evm_ledger: EvmLedger, treasury: Submitter, evm_node: Node
) -> None:
    stx = treasury.sign("token", "mint", symbol="EUR", to=treasury.address, amount=5)
    assert isinstance(stx, EvmSignedTransaction)
    evm_node.automine(False)
    try:
        evm_node.web3.eth.send_raw_transaction(stx.encoded)
        assert evm_ledger.pending(stx.hash_hex)
        evm_node.mine()
    finally:
        evm_node.automine(True)
    assert not evm_ledger.pending(stx.hash_hex)
    assert evm_ledger.receipt(stx.hash_hex).ok
    assert not evm_ledger.pending("0x" + "ab" * 32)


def test_inclusion_proof_reaches_the_transactions_root(
    evm_ledger: EvmLedger, treasury: Submitter, anchor: Account
) -> None:
    receipt = treasury.call("anchor", "put", hash=to_hex(keccak256(b"batch")), kind="cdr.batch")
    proof = evm_ledger.proof(receipt.tx_hash)
    proof.check()
    assert proof.tx_hash == receipt.tx_hash
    assert proof.header.tx_root == evm_ledger.block(receipt.block).tx_root
    assert proof.header.compute_hash() == evm_ledger.block(receipt.block).compute_hash()
    assert json.loads(json.dumps(proof.to_json()))["index"] == receipt.position

    forged_tx = bytearray(proof.transaction)
    forged_tx[-1] ^= 1
    forged_root = dataclasses.replace(proof.header, tx_root=to_hex(keccak256(b"other")))
    for forged in (
        dataclasses.replace(proof, transaction=bytes(forged_tx)),
        dataclasses.replace(proof, header=forged_root),
        dataclasses.replace(proof, index=proof.index + 1),
        dataclasses.replace(proof, nodes=(*proof.nodes[:-1], b"\xc0")),
    ):
        with pytest.raises(ValidationError):
            forged.check()
    assert isinstance(proof, PatriciaProof)


@pytest.mark.parametrize(
    "fees",
    [
        {"gasPrice": 3 * 10**9},
        {"type": 1, "gasPrice": 3 * 10**9, "accessList": []},
        {"type": 2, "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9},
    ],
    ids=["legacy", "eip2930", "eip1559"],
)
def test_signed_bytes_are_rebuilt_from_what_the_node_returns(
    evm_ledger: EvmLedger, evm_node: Node, fees: dict[str, int]
) -> None:
    """The leaves of the transactions trie, whatever the transaction's type."""
    from eth_account import Account as EthAccount
    from web3 import Web3

    sender = Account.generate()
    evm_ledger.fund(sender.address)
    fields = {
        "chainId": evm_ledger.chain_id,
        "nonce": 0,
        "gas": 21_000,
        "value": 1,
        "to": Web3.to_checksum_address(Account.generate().address),
        "data": b"",
        **fees,
    }
    signed = EthAccount.sign_transaction(fields, sender.private_key)
    web3 = evm_node.web3
    tx_hash = web3.eth.send_raw_transaction(signed.raw_transaction)
    mined = web3.eth.wait_for_transaction_receipt(tx_hash)
    assert raw_transaction(web3.eth.get_transaction(tx_hash)) == bytes(signed.raw_transaction)
    block = web3.eth.get_block(mined["blockNumber"], full_transactions=True)
    assert raw_transaction(block["transactions"][0]) == bytes(signed.raw_transaction)
    evm_ledger.proof(to_hex(bytes(tx_hash))).check()


def test_history_check_and_head(evm_ledger: EvmLedger, treasury: Submitter) -> None:
    report = evm_ledger.verify()
    head = evm_ledger.head()
    assert report.ok, report.problem
    assert report.blocks == head.height + 1 - evm_ledger.first_block
    assert report.head_hash == head.compute_hash()
    assert head.prev_hash == evm_ledger.block(head.height - 1).compute_hash()


def test_a_recorded_deployment_is_attached_to(
    evm_ledger: EvmLedger, evm_node: Node, anchor: Account, tmp_path: Path
) -> None:
    deployment = tmp_path / "evm-deployment.json"
    again = EvmLedger(evm_node.web3, anchor, deployment)
    assert again.addresses == evm_ledger.addresses

    recorded = json.loads(deployment.read_text())
    recorded["contracts"]["anchors"] = "0x" + "11" * 20
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps(recorded))
    with pytest.raises(ConfigError, match="no code"):
        EvmLedger(evm_node.web3, anchor, moved)
    recorded["chainId"] += 1
    moved.write_text(json.dumps(recorded))
    with pytest.raises(ConfigError, match="chain"):
        EvmLedger(evm_node.web3, anchor, moved)


def test_settings_need_an_rpc_url_for_the_evm_engine(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rpc_url"):
        Settings(data_dir=tmp_path, ledger="evm")
    settings = load_settings(data_dir=tmp_path, ledger="evm", rpc_url="http://127.0.0.1:8545")
    assert settings.evm_deployment_file == tmp_path / "evm-deployment.json"


@needs_rpc
def test_platform_opens_the_evm_engine(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        ledger="evm",
        rpc_url=os.environ[EVM_RPC_ENV],
        evm_dev_funding_wei=GAS_MONEY,
    )
    platform = open_platform(settings)
    try:
        assert platform.ledger.engine_name == "evm"
        anchor = platform.submitter("trust-anchor")
        anchor.call("token", "create", symbol="EUR", currency="EUR")
        deployed = json.loads(settings.evm_deployment_file.read_text())
    finally:
        platform.close()
    platform = open_platform(settings)  # a restart attaches to the same contracts
    try:
        assert platform.ledger.query("token", "info", symbol="EUR")["admin"] == anchor.address
        assert json.loads(settings.evm_deployment_file.read_text()) == deployed
    finally:
        platform.close()


@needs_rpc
def test_cli_runs_on_the_evm_engine(tmp_path: Path) -> None:
    (tmp_path / "evgi.toml").write_text(f"evm_dev_funding_wei = {GAS_MONEY}\n")
    result = run_evgi(
        tmp_path, "--ledger", "evm", "--rpc", os.environ[EVM_RPC_ENV], "ledger", "show"
    )
    assert result.returncode == 0, result.stderr
    assert "engine evm" in result.stdout

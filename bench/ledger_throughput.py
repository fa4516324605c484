"""Token transfers per second: evgi's local ledger engine against py-evm (eth-tester), same run.

The local engine is measured end to end: the client signs, the ledger checks signatures, applies
the `token.transfer` method and commits each block to a fresh SQLite file. The peer is the same
token as an EVM contract (src/evgi/ledger/contracts/token.vy) on eth-tester's PyEVMBackend:
each transfer is signed with eth-account and sent as a raw transaction, which auto-mines a block.

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
from collections.abc import Sequence
from typing import Any

from evgi.core import Account
from evgi.core.digest import from_hex, keccak256
from evgi.ledger import Submitter, open_local_ledger
from evgi.ledger.contracts import CompiledContract, compile_contract
from evgi.storage import open_database

SYMBOL = "EUR"
CHAIN_ID = 1337
WARMUP_LOCAL = 200
WARMUP_EVM = 20
RECIPIENTS = 64


def progress(message: str) -> None:
    print(f"[ledger_throughput] {message}", file=sys.stderr, flush=True)


# -- evgi local engine ------------------------------------------------------------------------


def bench_local(n: int, block_size: int, senders: int, recipients: Sequence[str]) -> float:
    """Transfers per second through sign, submit, signature check, apply and SQLite commit."""
    with tempfile.TemporaryDirectory(prefix="evgi-bench-") as tmp:
        db = open_database(f"sqlite:///{tmp}/ledger.db")
        anchor = Account.generate()
        ledger = open_local_ledger(
            db, CHAIN_ID, [anchor.address], block_max_transactions=block_size
        )
        try:
            admin = Submitter(ledger, anchor)
            admin.call("token", "create", symbol=SYMBOL, currency="EUR")
            admin.call("token", "grant_issuer", symbol=SYMBOL, issuer=anchor.address)
            holders = [Submitter(ledger, Account.generate()) for _ in range(senders)]
            ledger.submit_many(
                [
                    admin.sign("token", "mint", symbol=SYMBOL, to=h.address, amount=10**12)
                    for h in holders
                ]
            )

            def run(count: int, offset: int) -> None:
                for start in range(0, count, block_size):
                    size = min(block_size, count - start)
                    batch = [
                        holders[(offset + start + i) % senders].sign(
                            "token",
                            "transfer",
                            symbol=SYMBOL,
                            to=recipients[(offset + start + i) % len(recipients)],
                            amount=1,
                        )
                        for i in range(size)
                    ]
                    failed = [r for r in ledger.submit_many(batch) if not r.ok]
                    if failed:
                        raise RuntimeError(f"local transfer failed: {failed[0].error}")

            progress(f"local: warm-up ({WARMUP_LOCAL} transfers)")
            run(WARMUP_LOCAL, 0)
            progress(f"local: {n} transfers in blocks of {block_size}")
            started = time.perf_counter()
            run(n, WARMUP_LOCAL)
            elapsed = time.perf_counter() - started

            moved = sum(
                ledger.query("token", "balance_of", symbol=SYMBOL, owner=r) for r in recipients
            )
            if moved != WARMUP_LOCAL + n:
                raise RuntimeError(f"local: recipients hold {moved}, expected {WARMUP_LOCAL + n}")
        finally:
            ledger.close()
            db.dispose()
    return n / elapsed


# -- py-evm through eth-tester ----------------------------------------------------------------


def calldata(contract: CompiledContract, function: str, *args: Any) -> str:
    """ABI-encoded call: selector of the ABI's own signature, then the encoded arguments."""
    from eth_abi import encode  # the bench extra; imported here so that --help works without it

    entry = next(e for e in contract.abi if e.get("type") == "function" and e["name"] == function)
    types = [i["type"] for i in entry["inputs"]]
    selector = keccak256(f"{function}({','.join(types)})".encode())[:4]
    return "0x" + (selector + encode(types, list(args))).hex()


def bench_evm(n: int, senders: int, recipients: Sequence[str]) -> float:
    """Transfers per second: eth-account signs, send_raw_transaction validates, executes, mines."""
    try:
        from eth_abi import decode, encode
        from eth_account import Account as EthAccount
        from eth_tester import EthereumTester, PyEVMBackend
    except ImportError as exc:
        hint = "the peer needs the bench extra: pip install -e '.[bench]'"
        raise SystemExit(f"{hint} ({exc})") from exc

    contract = compile_contract("token")
    tester = EthereumTester(PyEVMBackend())
    chain_id = tester.backend.chain.chain_id
    faucet = tester.get_accounts()[0]
    admin = EthAccount.create()
    holders = [EthAccount.create() for _ in range(senders)]
    nonces = {account.address: 0 for account in [admin, *holders]}
    for account in [admin, *holders]:
        tester.send_transaction(
            {"from": faucet, "to": account.address, "value": 10**21, "gas": 21_000}
        )

    def send(account: Any, data: str, to: str | None = None, gas: int = 120_000) -> str:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonces[account.address],
            "gas": gas,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 1,
            "value": 0,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        signed = account.sign_transaction(tx)
        nonces[account.address] += 1
        tx_hash: str = tester.send_raw_transaction("0x" + signed.raw_transaction.hex())
        return tx_hash

    def require_success(tx_hashes: Sequence[str]) -> dict[str, Any]:
        receipt: dict[str, Any] = {}
        for tx_hash in tx_hashes:
            receipt = tester.get_transaction_receipt(tx_hash)
            if receipt["status"] != 1:
                raise RuntimeError(f"py-evm transaction {tx_hash} reverted")
        return receipt

    constructor = encode(["address[]"], [[admin.address]]).hex()
    deployed = require_success([send(admin, contract.bytecode + constructor, gas=3_000_000)])
    token = deployed["contract_address"]
    setup = [send(admin, calldata(contract, "create", SYMBOL, "EUR", 2), token)]
    setup += [send(admin, calldata(contract, "grant_issuer", SYMBOL, admin.address), token)]
    setup += [
        send(admin, calldata(contract, "mint", SYMBOL, h.address, 10**12), token) for h in holders
    ]
    require_success(setup)

    def run(count: int, offset: int) -> None:
        for i in range(offset, offset + count):
            data = calldata(contract, "transfer", SYMBOL, recipients[i % len(recipients)], 1)
            send(holders[i % senders], data, token)

    progress(f"py-evm: warm-up ({WARMUP_EVM} transfers)")
    run(WARMUP_EVM, 0)
    progress(f"py-evm: {n} transfers, one auto-mined block each")
    started = time.perf_counter()
    run(n, WARMUP_EVM)
    elapsed = time.perf_counter() - started

    # Every transfer moves one unit, so the recipients' total proves none reverted (eth-tester
    # finds a receipt by scanning every block, too slow to ask for each of them).
    moved = sum(
        decode(
            ["uint256"],
            from_hex(
                tester.call(
                    {
                        "from": faucet,
                        "to": token,
                        "data": calldata(contract, "balanceOf", SYMBOL, r),
                    }
                )
            ),
        )[0]
        for r in recipients
    )
    if moved != WARMUP_EVM + n:
        raise RuntimeError(f"py-evm: recipients hold {moved}, expected {WARMUP_EVM + n}")
    return n / elapsed


# -- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Signed token transfers per second: evgi local ledger vs py-evm (eth-tester)."
    )
    parser.add_argument(
        "--n", type=int, default=20_000, help="transfers through the local engine (default 20000)"
    )
    parser.add_argument(
        "--block-size",
        type=int,
        default=1000,
        help="transactions per local block, submitted as one batch (default 1000)",
    )
    parser.add_argument(
        "--n-evm", type=int, default=1000, help="transfers through py-evm (default 1000)"
    )
    parser.add_argument(
        "--senders",
        type=int,
        default=16,
        help="sending accounts, used round-robin on both sides (default 16)",
    )
    args = parser.parse_args(argv)
    if min(args.n, args.block_size, args.n_evm, args.senders) < 1:
        parser.error("--n, --block-size, --n-evm and --senders must be positive")

    recipients = [Account.generate().address for _ in range(RECIPIENTS)]
    local = bench_local(args.n, args.block_size, args.senders, recipients)
    progress(f"local: {local:,.0f} tx/s")
    evm = bench_evm(args.n_evm, args.senders, recipients)
    progress(f"py-evm: {evm:,.0f} tx/s")
    print(
        json.dumps(
            {
                "bench": "ledger_throughput",
                "evgi_local_tx_per_s": round(local, 1),
                "py_evm_tx_per_s": round(evm, 1),
                "ratio": round(local / evm, 2),
                "n": args.n,
                "n_evm": args.n_evm,
                "block_size": args.block_size,
                "senders": args.senders,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            }
        )
    )


if __name__ == "__main__":
    main()

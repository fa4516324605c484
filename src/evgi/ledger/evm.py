"""The `evm` engine: the state machine's modules as Vyper contracts on any EVM JSON-RPC endpoint.

Each `(module, method, args)` becomes a call of the module's contract in an Ethereum transaction
signed with the same secp256k1 key (EIP-155 chain id, EIP-1559 fees where the node has them).
Arguments are validated by the local module's own type hints before signing, receipts keep the
local shape (revert reason as error, events decoded into the local log fields), and queries run
the local query functions over a view of the contracts' storage (`ContractState`), so both engines
answer in one format. Proofs are Merkle-Patricia paths to the block's transactionsRoot.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_abi.abi import decode as abi_decode
from eth_account import Account as EthAccount
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes
from trie import HexaryTrie
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, TransactionNotFound

from evgi.core.canonical import parse_json
from evgi.core.digest import keccak256, to_hex
from evgi.core.errors import ConfigError, NonceError, NotFoundError, ValidationError
from evgi.core.keys import Account, checksum_address, normalize_address
from evgi.ledger import registry
from evgi.ledger.audit import AuditReport
from evgi.ledger.block import BlockHeader
from evgi.ledger.contracts import compile_contract
from evgi.ledger.contracts.bindings import (
    BINDINGS,
    BY_FUNCTION,
    RENAMED_FIELDS,
    ZERO_ADDRESS,
    Kind,
    from_abi,
    log_value,
    to_abi,
)
from evgi.ledger.proof import PatriciaProof
from evgi.ledger.receipt import Receipt
from evgi.ledger.state import check_arguments, run_query
from evgi.ledger.transaction import SignedTransaction, Transaction

ZERO_HASH = bytes(32)
# Gas for a call whose estimate reverts: it is sent all the same, so that it is kept as a failed
# receipt as on the local engine (a batch may make it succeed); enough for the largest call.
_FALLBACK_GAS = 3_000_000
_RECEIPT_TIMEOUT = 120.0
_ERROR_DATA = re.compile(r"0x08c379a0((?:[0-9a-fA-F]{64})+)")


class EvmSignedTransaction(SignedTransaction):
    """A state-machine call inside a signed Ethereum transaction: `encoded` is the raw signed
    transaction (its keccak is its hash on the network), `signature` its r || s || v."""

    def compute_hash(self) -> bytes:
        return keccak256(self.encoded)

    def signer(self) -> str:
        return normalize_address(EthAccount.recover_transaction(self.encoded))

    def to_wire(self) -> dict[str, Any]:
        return {"body": self.tx.body(), "raw": to_hex(self.encoded)}


@dataclass(frozen=True)
class EvmBlockHeader(BlockHeader):
    """An EVM block in the local header's shape: `writes_root` is the state root, and the hash is
    the block's own hash on the network."""

    block_hash: str = ""

    def compute_hash(self) -> str:
        return self.block_hash


_TYPED_FIELDS = {
    1: ("chainId", "nonce", "gasPrice", "gas", "to", "value", "accessList"),
    2: (
        "chainId",
        "nonce",
        "maxPriorityFeePerGas",
        "maxFeePerGas",
        "gas",
        "to",
        "value",
        "accessList",
    ),
}


def raw_transaction(tx: Any) -> bytes:
    """The signed bytes of a transaction as a node returns it (JSON fields), the leaf of the
    block's transactions trie. Field names come in camelCase (JSON-RPC) or snake_case
    (eth-tester's full blocks)."""
    tx = {_camel(key): value for key, value in tx.items()}
    if "input" not in tx:
        tx["input"] = tx["data"]
    kind = _int(tx.get("type", 0))
    to = tx.get("to") or b""
    if kind == 0:
        unsigned = serializable_unsigned_transaction_from_dict(
            {
                "nonce": tx["nonce"],
                "gasPrice": tx["gasPrice"],
                "gas": tx["gas"],
                "to": to,
                "value": tx["value"],
                "data": tx["input"],
            }
        )
        return bytes(encode_transaction(unsigned, (tx["v"], _int(tx["r"]), _int(tx["s"]))))
    if kind not in _TYPED_FIELDS:
        raise ValidationError(f"transactions of type {kind} are not supported")
    fields = {name: tx[name] for name in _TYPED_FIELDS[kind] if name in tx}
    fields |= {
        "type": kind,
        "to": to,
        "data": tx["input"],
        "v": tx["v"],
        "r": tx["r"],
        "s": tx["s"],
        "accessList": tx.get("accessList") or [],
    }
    return bytes(TypedTransaction.from_dict(fields).encode())


def _revert_reason(exc: Exception) -> str:
    """The Error(string) a contract reverted with, wherever the provider put its ABI data."""
    found = _ERROR_DATA.search(f"{getattr(exc, 'data', '')} {exc}")
    if found:
        try:
            return str(abi_decode(["string"], bytes.fromhex(found.group(1)))[0])
        except Exception:  # truncated data: fall back to the provider's message
            pass
    return str(getattr(exc, "message", None) or exc).removeprefix("execution reverted: ")


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def _int(value: Any) -> int:
    return int.from_bytes(bytes(value), "big") if isinstance(value, bytes) else int(value)


class ContractState:
    """The local state machine's keys, read through the contracts' views and events, so that the
    local query functions answer on this engine too."""

    def __init__(self, ledger: EvmLedger) -> None:
        self.ledger = ledger

    def _call(self, contract: str, function: str, *args: Any) -> Any:
        return self.ledger.contracts[contract].functions[function](*args).call()

    def get(self, key: str) -> Any:
        parts = key.split("/")
        head, rest = parts[0], parts[1:]
        if head == "token" and len(rest) >= 2:
            return self._token(rest[0], rest[1], rest[2:])
        if head == "escrow" and len(rest) == 2:
            return self._escrow(*rest)
        if head == "anchor" and len(rest) == 1:
            return self._anchor(rest[0])
        if head == "did" and len(rest) >= 2:
            return self._did(rest[0], rest[1], rest[2:])
        if head == "entity" and rest[:1] == ["trust_anchor"] and len(rest) == 2:
            return self._call("token", "isTrustAnchor", checksum_address(rest[1])) or None
        raise ValidationError(f"the evm engine has no contract holding {key!r}")

    def _token(self, symbol: str, field: str, rest: list[str]) -> Any:
        if field == "meta":
            currency, decimals, admin = self._call("token", "tokens", symbol)
            if int(admin, 16) == 0:
                return None
            return {
                "symbol": symbol,
                "currency": currency,
                "decimals": decimals,
                "admin": admin.lower(),
            }
        if field == "supply":
            return self._call("token", "totalSupply", symbol)
        if field == "balance" and len(rest) == 1:
            return self._call("token", "balanceOf", symbol, checksum_address(rest[0]))
        if field == "issuer" and len(rest) == 1:
            return self._call("token", "isIssuer", symbol, checksum_address(rest[0])) or None
        raise ValidationError(f"the token contract has no field {field!r}")

    def _escrow(self, field: str, name: str) -> Any:
        if field == "total":
            return self._call("escrow", "total", name)
        if field != "id":
            raise ValidationError(f"the escrow contract has no field {field!r}")
        (
            payer,
            payee,
            operator,
            symbol,
            amount,
            opened,
            opened_at,
            deadline,
            state,
            payee_amount,
            fee_amount,
            fee_payee,
            record_hash,
            closed,
        ) = self._call("escrow", "escrows", name)
        if int(payer, 16) == 0:
            return None
        return {
            "payer": payer.lower(),
            "payee": payee.lower(),
            "operator": operator.lower(),
            "symbol": symbol,
            "amount": amount,
            "opened": opened,
            "openedAt": opened_at,
            "deadline": deadline,
            "state": {1: "open", 2: "settled", 4: "refunded"}[state],
            "payeeAmount": payee_amount,
            "feeAmount": fee_amount,
            "feePayee": fee_payee.lower() if int(fee_payee, 16) else None,
            "recordHash": to_hex(record_hash) if record_hash != ZERO_HASH else None,
            "closed": closed or None,
        }

    def _anchor(self, anchor_hash: str) -> Any:
        by, block, timestamp, kind, meta = self._call(
            "anchors", "anchors", bytes.fromhex(anchor_hash[2:])
        )
        if int(by, 16) == 0:
            return None
        return {
            "by": by.lower(),
            "block": block,
            "timestamp": timestamp,
            "kind": kind,
            "meta": parse_json(meta),
        }

    def _did(self, identity: str, field: str, rest: list[str]) -> Any:
        subject = checksum_address(identity)
        if field == "changed":
            return self._call("registry", "changed", subject) or None
        if field == "owner":
            owner = self._call("registry", "owners", subject).lower()
            if owner != ZERO_ADDRESS:
                return owner
            # Zero both for "never changed" and "changed to the zero address" (deactivated).
            return self.ledger.did_history(identity).get(f"did/{identity}/owner")
        if field == "delegate" and len(rest) == 2:
            kind = keccak256(rest[0].encode().ljust(32, b"\0"))
            valid_to = self._call("registry", "delegates", subject, kind, checksum_address(rest[1]))
            return valid_to or None
        raise ValidationError(f"the registry contract has no field {field!r}")

    def scan(self, prefix: str) -> dict[str, Any]:
        parts = prefix.split("/")
        if len(parts) == 4 and parts[0] == "did" and parts[2] in ("delegate", "attr"):
            history = self.ledger.did_history(parts[1])
            return {k: v for k, v in history.items() if k.startswith(prefix)}
        raise ValidationError(f"the evm engine cannot list {prefix!r}")


class EvmLedger:
    """The EVM ledger engine (see `evgi.ledger.engine.Ledger` for the contract)."""

    engine_name = "evm"

    def __init__(
        self,
        web3: Web3,
        deployer: Account,
        deployment_file: Path,
        trust_anchors: Sequence[str] = (),
        dev_funding_wei: int = 0,
    ) -> None:
        self.web3 = web3
        self.chain_id = int(web3.eth.chain_id)
        self._dev_funding_wei = dev_funding_wei
        self._funded: set[str] = set()
        self.first_block = 0
        self.addresses = self._attach_or_deploy(deployer, deployment_file, trust_anchors)
        self.contracts: dict[str, Contract] = {
            name: web3.eth.contract(
                address=Web3.to_checksum_address(address), abi=compile_contract(name).abi
            )
            for name, address in self.addresses.items()
        }
        self._by_address = {c.address.lower(): name for name, c in self.contracts.items()}
        self.state = ContractState(self)

    # -- deployment ------------------------------------------------------------------------

    def _attach_or_deploy(
        self, deployer: Account, path: Path, trust_anchors: Sequence[str]
    ) -> dict[str, str]:
        if path.exists():
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if recorded["chainId"] != self.chain_id:
                raise ConfigError(
                    f"{path} records chain {recorded['chainId']}, the node is on "
                    f"chain {self.chain_id}"
                )
            addresses: dict[str, str] = recorded["contracts"]
            self.first_block = int(recorded["block"])
            for name, address in addresses.items():
                if not self.web3.eth.get_code(Web3.to_checksum_address(address)):
                    raise ConfigError(
                        f"{path} names {name} at {address}, where this chain has "
                        "no code (a reset node?); remove the file to deploy anew"
                    )
            return addresses
        anchors = sorted({normalize_address(a) for a in trust_anchors} or {deployer.address})
        self.fund(deployer.address)
        self.first_block = int(self.web3.eth.block_number) + 1
        token = self._deploy(deployer, "token", anchors)
        escrow = self._deploy(deployer, "escrow", token)
        self._transact(deployer, token, compile_contract("token").abi, "set_escrow", escrow)
        addresses = {
            "token": token,
            "escrow": escrow,
            "registry": self._deploy(deployer, "registry"),
            "anchors": self._deploy(deployer, "anchors"),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "chainId": self.chain_id,
                    "block": self.first_block,
                    "trustAnchors": anchors,
                    "contracts": addresses,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        return addresses

    def _deploy(self, deployer: Account, name: str, *args: Any) -> str:
        compiled = compile_contract(name)
        factory = self.web3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        data = factory.constructor(*_checksummed(args)).data_in_transaction
        receipt = self._send_and_wait(deployer, None, data)
        if receipt["status"] != 1:
            raise ConfigError(f"deploying the {name} contract failed")
        return str(receipt["contractAddress"]).lower()

    def _transact(
        self, sender: Account, to: str, abi: list[dict[str, Any]], function: str, *args: Any
    ) -> None:
        contract = self.web3.eth.contract(address=Web3.to_checksum_address(to), abi=abi)
        data = contract.encode_abi(function, args=list(_checksummed(args)))
        if self._send_and_wait(sender, to, data)["status"] != 1:
            raise ConfigError(f"{function} on {to} failed")

    def _send_and_wait(self, sender: Account, to: str | None, data: str) -> Any:
        nonce = self.nonce(sender.address)
        raw, _ = self._sign_call(sender, nonce, to, data)
        tx_hash = self.web3.eth.send_raw_transaction(raw)
        return self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT)

    def fund(self, address: str) -> None:
        """On a development node (Hardhat, eth-tester, geth --dev) send gas money from its first
        unlocked account to an account that has none; a no-op unless dev funding is on."""
        address = normalize_address(address)
        if not self._dev_funding_wei or address in self._funded:
            return
        target = Web3.to_checksum_address(address)
        if self.web3.eth.get_balance(target) == 0:
            faucet = self.web3.eth.accounts[0]
            funding: Any = {"from": faucet, "to": target, "value": self._dev_funding_wei}
            tx_hash = self.web3.eth.send_transaction(funding)
            self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT)
        self._funded.add(address)

    # -- signing ---------------------------------------------------------------------------

    def sign(self, tx: Transaction, account: Account) -> SignedTransaction:
        """An Ethereum transaction calling the method's contract, signed by `account`."""
        if tx.chain_id != self.chain_id:
            raise ValidationError(
                f"transaction is for chain {tx.chain_id}, this is {self.chain_id}"
            )
        if normalize_address(account.address) != tx.sender:
            raise ValidationError(f"{account.address} cannot sign for {tx.sender}")
        binding = BINDINGS.get((tx.module, tx.method))
        if binding is None:
            raise ValidationError(f"the evm engine has no contract for {tx.module}.{tx.method}")
        args = check_arguments(tx.module, tx.method, tx.args)
        values = [to_abi(kind, args, name) for name, kind in binding.params]
        contract = self.contracts[binding.contract]
        data = contract.encode_abi(binding.function, args=values)
        self.fund(account.address)
        raw, signature = self._sign_call(account, tx.nonce, self.addresses[binding.contract], data)
        return EvmSignedTransaction(tx, raw, signature)

    def _sign_call(
        self, account: Account, nonce: int, to: str | None, data: str
    ) -> tuple[bytes, bytes]:
        fields: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": nonce,
            "value": 0,
            "data": data,
        }
        if to is not None:
            fields["to"] = Web3.to_checksum_address(to)
        sender = Web3.to_checksum_address(account.address)
        try:
            estimate: Any = {"from": sender, **fields}
            gas = self.web3.eth.estimate_gas(estimate)
            fields["gas"] = gas + gas // 4 + 10_000
        except Exception:  # a revert, raised as each provider likes (eth-tester has its own)
            fields["gas"] = _FALLBACK_GAS
        base_fee = self.web3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            fields["gasPrice"] = self.web3.eth.gas_price
        else:
            tip = 10**9
            fields |= {"type": 2, "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base_fee + tip}
        signed = EthAccount.sign_transaction(fields, account.private_key)
        signature = signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
        return bytes(signed.raw_transaction), signature

    # -- writes ----------------------------------------------------------------------------

    def submit(self, stx: SignedTransaction) -> Receipt:
        return self.submit_many([stx])[0]

    def submit_many(self, transactions: Sequence[SignedTransaction]) -> list[Receipt]:
        """Send every transaction, then wait for their receipts, in order.

        A transaction the node refuses (replayed nonce, no gas money) raises; those sent before it
        stay sent, as blocks committed before a refused one stay on the local engine.
        """
        hashes = [self._send(stx) for stx in transactions]
        return [
            self._receipt(
                self.web3.eth.wait_for_transaction_receipt(tx_hash, timeout=_RECEIPT_TIMEOUT)
            )
            for tx_hash in hashes
        ]

    def _send(self, stx: SignedTransaction) -> HexBytes:
        if not isinstance(stx, EvmSignedTransaction):
            raise ValidationError("the evm engine takes transactions signed by its own `sign`")
        try:
            return self.web3.eth.send_raw_transaction(stx.encoded)
        except Exception as exc:  # each provider raises its own kind (eth-tester: eth_utils')
            message = str(exc)
            if stx.hash_hex in message.lower():
                # Hardhat mines a reverting transaction, then answers with an error naming it.
                return HexBytes(stx.hash)
            if "nonce" in message.lower() or "known" in message.lower():
                raise NonceError(
                    f"replay rejected: the node refused nonce {stx.tx.nonce} of "
                    f"{stx.tx.sender} ({message})"
                ) from exc
            raise ValidationError(
                f"the node refused transaction {stx.hash_hex}: {message}"
            ) from exc

    def _receipt(self, receipt: Any) -> Receipt:
        ok = receipt["status"] == 1
        return Receipt(
            to_hex(bytes(receipt["transactionHash"])),
            int(receipt["blockNumber"]),
            int(receipt["transactionIndex"]),
            ok,
            None,
            "" if ok else self._revert_reason(receipt),
            self._logs(receipt) if ok else [],
        )

    def _revert_reason(self, receipt: Any) -> str:
        """The reason string of a failed call, by replaying it on the state before its block."""
        sent = self.web3.eth.get_transaction(receipt["transactionHash"])
        call: Any = {
            "from": sent["from"],
            "to": sent["to"],
            "data": sent["input"],
            "gas": sent["gas"],
        }
        try:
            self.web3.eth.call(call, block_identifier=int(receipt["blockNumber"]) - 1)
        except Exception as exc:  # web3, eth-tester and Hardhat each raise their own kind
            return _revert_reason(exc)
        return "reverted"

    def _logs(self, receipt: Any) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        for entry in receipt["logs"]:
            name = self._by_address.get(str(entry["address"]).lower())
            if name is None:
                continue
            contract = self.contracts[name]
            topic = bytes(entry["topics"][0])
            for event in contract.all_events():
                if HexBytes(event.topic) != topic:
                    continue
                decoded = event.process_log(entry)
                renamed = RENAMED_FIELDS.get(event.event_name, {})
                logs.append(
                    {"event": event.event_name}
                    | {
                        renamed.get(field, field): log_value(event.event_name, field, value)
                        for field, value in decoded["args"].items()
                    }
                )
        return logs

    # -- reads -----------------------------------------------------------------------------

    def query(self, module: str, name: str, **args: Any) -> Any:
        return run_query(self.state, module, name, args)

    def nonce(self, address: str) -> int:
        return int(
            self.web3.eth.get_transaction_count(
                Web3.to_checksum_address(normalize_address(address)), "pending"
            )
        )

    def did_history(self, identity: str) -> dict[str, Any]:
        """The `did` module's keys of one identity, replayed from its ERC-1056 events: walk back
        from `changed` through each event's `previousChange`, then apply them oldest first."""
        registry_contract = self.contracts["registry"]
        subject = Web3.to_checksum_address(identity)
        block = int(registry_contract.functions.changed(subject).call())
        topic = "0x" + "00" * 12 + identity[2:].lower()
        events: list[tuple[int, int, dict[str, Any]]] = []
        while block:
            entries = self.web3.eth.get_logs(
                {
                    "address": registry_contract.address,
                    "fromBlock": block,
                    "toBlock": block,
                    "topics": [None, topic],
                }
            )
            receipt = {"logs": entries}
            decoded = self._logs(receipt)
            events += [(block, i, log) for i, log in enumerate(decoded)]
            earlier = [log["previousChange"] for log in decoded if log["previousChange"] < block]
            block = min(earlier, default=0)
        state: dict[str, Any] = {}
        for height, _, log in sorted(events, key=lambda e: (e[0], e[1])):
            prefix = f"did/{identity}"
            if log["event"] == "DIDOwnerChanged":
                state[f"{prefix}/owner"] = log["owner"]
            elif log["event"] == "DIDDelegateChanged":
                state[f"{prefix}/delegate/{log['delegateType']}/{log['delegate']}"] = log["validTo"]
            elif log["event"] == "DIDAttributeChanged":
                key = registry.attribute_key(identity, log["name"], log["value"])
                state[key] = {"name": log["name"], "value": log["value"], "validTo": log["validTo"]}
            state[f"{prefix}/changed"] = height
        return state

    def event_transactions(self, contract: str, event: str, where: dict[str, str]) -> list[str]:
        """Hashes of the transactions, since the contracts were deployed, in which `contract`
        emitted `event` with the indexed addresses `where` names (by the local log's field
        names), oldest first: a node keeps no index of accounts' transactions, only of events'
        topics."""
        found = self.contracts[contract].events[event]
        local = RENAMED_FIELDS.get(event, {})
        indexed = [local.get(i["name"], i["name"]) for i in found.abi["inputs"] if i["indexed"]]
        unknown = set(where) - set(indexed)
        if unknown:
            raise ValidationError(f"{event} has no indexed field {', '.join(sorted(unknown))}")
        topics: list[Any] = [found.topic]
        topics += [
            "0x" + "00" * 12 + normalize_address(where[name])[2:] if name in where else None
            for name in indexed
        ]
        while topics[-1] is None:
            topics.pop()
        entries = self.web3.eth.get_logs(
            {
                "address": found.address,
                "fromBlock": self.first_block,
                "toBlock": "latest",
                "topics": topics,
            }
        )
        placed = {
            (int(e["blockNumber"]), int(e["transactionIndex"])): to_hex(bytes(e["transactionHash"]))
            for e in entries
        }
        return [placed[key] for key in sorted(placed)]

    def head(self) -> BlockHeader:
        return self._header(self.web3.eth.get_block("latest"))

    def block(self, height: int) -> BlockHeader:
        try:
            return self._header(self.web3.eth.get_block(height))
        except BlockNotFound as exc:
            raise NotFoundError(f"no block {height}") from exc

    @staticmethod
    def _header(block: Any) -> EvmBlockHeader:
        return EvmBlockHeader(
            height=int(block["number"]),
            prev_hash=to_hex(bytes(block["parentHash"])),
            timestamp=int(block["timestamp"]),
            tx_root=to_hex(bytes(block["transactionsRoot"])),
            receipts_root=to_hex(bytes(block["receiptsRoot"])),
            writes_root=to_hex(bytes(block["stateRoot"])),
            tx_count=len(block["transactions"]),
            block_hash=to_hex(bytes(block["hash"])),
        )

    def _sent(self, tx_hash: str) -> tuple[Any, Any]:
        try:
            key = HexBytes(tx_hash)
            return self.web3.eth.get_transaction(key), self.web3.eth.get_transaction_receipt(key)
        except TransactionNotFound as exc:
            raise NotFoundError(f"no transaction {tx_hash}") from exc

    def transaction(self, tx_hash: str) -> tuple[SignedTransaction, Receipt]:
        """The transaction decoded back into the state machine's call, with its receipt."""
        sent, receipt = self._sent(tx_hash)
        name = self._by_address.get(str(sent["to"] or "").lower())
        if name is None:
            raise NotFoundError(f"transaction {tx_hash} calls no evgi contract")
        function, values = self.contracts[name].decode_function_input(sent["input"])
        binding = BY_FUNCTION[(name, function.fn_name)]
        ordered = [values[i["name"]] for i in function.abi["inputs"]]
        args = {
            param: from_abi(kind, value)
            for (param, kind), value in zip(binding.params, ordered, strict=True)
            if kind is not Kind.DECIMALS
        }
        tx = Transaction(
            self.chain_id,
            str(sent["from"]).lower(),
            int(sent["nonce"]),
            binding.module,
            binding.method,
            args,
        )
        signature = (
            _int(sent["r"]).to_bytes(32, "big")
            + _int(sent["s"]).to_bytes(32, "big")
            + bytes([int(sent["v"])])
        )
        return EvmSignedTransaction(tx, raw_transaction(sent), signature), self._receipt(receipt)

    def receipt(self, tx_hash: str) -> Receipt:
        return self._receipt(self._sent(tx_hash)[1])

    def pending(self, tx_hash: str) -> bool:
        try:
            sent = self.web3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return sent.get("blockNumber") is None

    def _transactions_trie(self, block: Any) -> HexaryTrie:
        trie = HexaryTrie({})
        for index, tx in enumerate(block["transactions"]):
            trie[rlp.encode(index)] = raw_transaction(tx)
        return trie

    def proof(self, tx_hash: str) -> PatriciaProof:
        _, receipt = self._sent(tx_hash)
        block = self.web3.eth.get_block(receipt["blockNumber"], full_transactions=True)
        trie = self._transactions_trie(block)
        header = self._header(block)
        if to_hex(trie.root_hash) != header.tx_root:
            raise ValidationError(
                f"block {header.height}: its transactions do not rebuild its transactionsRoot"
            )
        key = rlp.encode(int(receipt["transactionIndex"]))
        nodes = tuple(rlp.encode(node) for node in trie.get_proof(key))
        return PatriciaProof(header, int(receipt["transactionIndex"]), trie[key], nodes)

    def verify(self, progress: Callable[[int, int], None] | None = None) -> AuditReport:
        """From the block that deployed the contracts on, check the chain's links and rebuild each
        block's transactionsRoot from its transactions (the node re-executes them itself, so
        state is not re-derived here). A genesis block is taken as the node made it: it has no
        transactions, and Hardhat gives it a root of its own."""
        head = int(self.web3.eth.block_number)
        report = AuditReport(ok=True)
        previous: EvmBlockHeader | None = None
        for height in range(self.first_block, head + 1):
            block = self.web3.eth.get_block(height, full_transactions=True)
            header = self._header(block)
            problem = ""
            if previous is not None and header.prev_hash != previous.block_hash:
                problem = f"block {height}: parentHash does not link to block {height - 1}"
            elif height and to_hex(self._transactions_trie(block).root_hash) != header.tx_root:
                problem = f"block {height}: transactions do not rebuild its transactionsRoot"
            if problem:
                report.ok, report.bad_block, report.problem = False, height, problem
                return report
            report.blocks += 1
            report.transactions += header.tx_count
            previous = header
            if progress is not None:
                progress(report.blocks, head + 1 - self.first_block)
        report.head_hash = previous.block_hash if previous else ""
        return report

    def close(self) -> None:
        """Nothing to release: the provider holds no connection between requests."""


def _checksummed(args: Sequence[Any]) -> list[Any]:
    def one(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
            return Web3.to_checksum_address(value)
        if isinstance(value, list):
            return [one(v) for v in value]
        return value

    return [one(v) for v in args]


def open_evm_ledger(
    rpc_url: str,
    deployer: Account,
    deployment_file: Path,
    trust_anchors: Sequence[str] = (),
    dev_funding_wei: int = 0,
    timeout: float = 30.0,
) -> EvmLedger:
    """Connect to a JSON-RPC endpoint and attach to (or deploy) the contracts."""
    from web3 import HTTPProvider

    web3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    started = time.monotonic()
    while not web3.is_connected():
        if time.monotonic() - started > timeout:
            raise ConfigError(f"no EVM node answers at {rpc_url}")
        time.sleep(0.5)
    return EvmLedger(web3, deployer, deployment_file, trust_anchors, dev_funding_wei)

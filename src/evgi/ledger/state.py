"""The deterministic state machine: modules register methods; blocks are executed through it.

The local engine and `evgi ledger verify` both execute blocks with `execute_block`, so what is
verified is exactly what was applied.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model, validate_call
from pydantic import ValidationError as PydanticValidationError

from evgi.core.errors import ExecutionError, NonceError, PermissionDenied, ValidationError
from evgi.ledger.receipt import Receipt
from evgi.ledger.transaction import SignedTransaction


class StateReader(Protocol):
    def get(self, key: str) -> Any: ...

    def scan(self, prefix: str) -> dict[str, Any]: ...


class DictState:
    """State held in memory: what verification re-derives from genesis."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.written_at: dict[str, int] = {}

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def scan(self, prefix: str) -> dict[str, Any]:
        return {k: v for k, v in self.values.items() if k.startswith(prefix)}

    def apply(self, writes: dict[str, Any], height: int) -> None:
        for key, value in writes.items():
            if value is None:
                self.values.pop(key, None)
            else:
                self.values[key] = value
            self.written_at[key] = height


class Overlay:
    """Uncommitted writes over a reader; `None` marks a deletion."""

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.writes: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        if key in self.writes:
            return self.writes[key]
        return self.base.get(key)

    def set(self, key: str, value: Any) -> None:
        self.writes[key] = value

    def delete(self, key: str) -> None:
        self.writes[key] = None

    def scan(self, prefix: str) -> dict[str, Any]:
        merged = self.base.scan(prefix)
        for key, value in self.writes.items():
            if key.startswith(prefix):
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
        return merged

    def merge_into(self, parent: Overlay) -> None:
        parent.writes.update(self.writes)


@dataclass
class Context:
    """What a method sees: the signer, the block, the state, and a place to emit logs."""

    sender: str
    height: int
    timestamp: int
    chain_id: int
    state: Overlay
    logs: list[dict[str, Any]] = field(default_factory=list)

    def emit(self, event: str, **data: Any) -> None:
        self.logs.append({"event": event, **data})

    def require(self, condition: bool, message: str) -> None:
        if not condition:
            raise ExecutionError(message)


Method = Callable[..., Any]
Query = Callable[..., Any]
# State keys a method will read, named from its arguments as signed (not yet validated).
Reads = Callable[[dict[str, Any]], Iterable[str]]
_METHODS: dict[tuple[str, str], Method] = {}
_READS: dict[tuple[str, str], Reads] = {}
_QUERIES: dict[tuple[str, str], Query] = {}
_STRICT = ConfigDict(strict=True)


def _validated(fn: Method) -> Method:
    """Validate keyword arguments by type hints; the first (context or state) passes as is."""
    first = next(iter(inspect.signature(fn).parameters))
    clone = types.FunctionType(
        fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )
    clone.__kwdefaults__ = fn.__kwdefaults__
    clone.__annotations__ = {**fn.__annotations__, first: Any}
    return validate_call(config=_STRICT)(clone)


def method(module: str, name: str, reads: Reads | None = None) -> Callable[[Method], Method]:
    """Register a state-changing method; its keyword arguments are validated from type hints.

    `reads` names keys the method reads that are often not cached (e.g. a new escrow's), so a
    block fetches them all in one query instead of one round trip each; it is only a hint.
    """

    def register(fn: Method) -> Method:
        _METHODS[(module, name)] = _validated(fn)
        if reads is not None:
            _READS[(module, name)] = reads
        return fn

    return register


def query(module: str, name: str) -> Callable[[Query], Query]:
    """Register a read-only query over committed state (a view function on the EVM engine)."""

    def register(fn: Query) -> Query:
        _QUERIES[(module, name)] = _validated(fn)
        return fn

    return register


@cache
def _arguments(module: str, name: str) -> type[BaseModel]:
    fn = _METHODS.get((module, name))
    if fn is None:
        raise ValidationError(f"unknown method {module}.{name}")
    hints = get_type_hints(fn, include_extras=True)
    parameters = list(inspect.signature(fn).parameters.values())[1:]
    fields: dict[str, Any] = {
        p.name: (hints[p.name], ... if p.default is p.empty else p.default) for p in parameters
    }
    return create_model(
        f"{module}.{name}", __config__=ConfigDict(strict=True, extra="forbid"), **fields
    )


def check_arguments(module: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """Validate a method's arguments without running it, as an engine that executes elsewhere
    (the EVM) must before it signs: the same rules refuse the same input on both engines."""
    try:
        return dict(_arguments(module, name).model_validate(args))
    except PydanticValidationError as exc:
        raise ValidationError(f"{module}.{name}: {_describe(exc)}") from exc


def run_query(state: StateReader, module: str, name: str, args: dict[str, Any]) -> Any:
    fn = _QUERIES.get((module, name))
    if fn is None:
        raise ValidationError(f"unknown query {module}.{name}")
    try:
        return fn(state, **args)
    except PydanticValidationError as exc:
        raise ValidationError(f"{module}.{name}: {_describe(exc)}") from exc


def _describe(exc: PydanticValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'args'}: {err['msg']}" for err in exc.errors()
    )


def nonce_key(address: str) -> str:
    return f"nonce/{address}"


def account_nonce(state: StateReader, address: str) -> int:
    value = state.get(nonce_key(address))
    return int(value) if value is not None else 0


def _execute(ctx: Context, stx: SignedTransaction) -> Any:
    fn = _METHODS.get((stx.tx.module, stx.tx.method))
    if fn is None:
        raise ExecutionError(f"unknown method {stx.tx.module}.{stx.tx.method}")
    try:
        return fn(ctx, **stx.tx.args)
    except PydanticValidationError as exc:
        raise ExecutionError(f"{stx.tx.module}.{stx.tx.method}: {_describe(exc)}") from exc


def block_reads(transactions: Iterable[SignedTransaction]) -> set[str]:
    """Keys the transactions' methods declare they will read, to be fetched together."""
    keys: set[str] = set()
    for stx in transactions:
        reads = _READS.get((stx.tx.module, stx.tx.method))
        if reads is not None:
            keys.update(reads(stx.tx.args))
    return keys


def check_nonce(state: StateReader, stx: SignedTransaction) -> None:
    expected = account_nonce(state, stx.tx.sender)
    if stx.tx.nonce < expected:
        raise NonceError(
            f"replay rejected: nonce {stx.tx.nonce} of {stx.tx.sender} was already used "
            f"(next is {expected})"
        )
    if stx.tx.nonce > expected:
        raise NonceError(
            f"nonce {stx.tx.nonce} of {stx.tx.sender} is ahead of the next one ({expected})"
        )


@dataclass
class BlockExecution:
    receipts: list[Receipt]
    writes: dict[str, Any]


def execute_block(
    base: StateReader,
    transactions: Iterable[SignedTransaction],
    height: int,
    timestamp: int,
    chain_id: int,
) -> BlockExecution:
    """Apply transactions in order. Nonce errors raise; a failed method is kept as a failed receipt.

    Signatures are checked by the caller (in parallel when a batch is large).
    """
    block = Overlay(base)
    receipts: list[Receipt] = []
    for position, stx in enumerate(transactions):
        if stx.tx.chain_id != chain_id:
            raise ValidationError(
                f"transaction {stx.hash_hex} is for chain {stx.tx.chain_id}, this is {chain_id}"
            )
        check_nonce(block, stx)
        tx_state = Overlay(block)
        ctx = Context(stx.tx.sender, height, timestamp, chain_id, tx_state)
        try:
            result = _execute(ctx, stx)
            tx_state.merge_into(block)
            receipt = Receipt(stx.hash_hex, height, position, True, result, "", ctx.logs)
        except (ExecutionError, PermissionDenied, ValidationError) as exc:
            receipt = Receipt(stx.hash_hex, height, position, False, None, exc.message, [])
        block.set(nonce_key(stx.tx.sender), stx.tx.nonce + 1)
        receipts.append(receipt)
    return BlockExecution(receipts, block.writes)

"""Escrows: a driver's funds held for one charging session until its operator settles it.

The payer locks an amount when the session starts; the operator settles it from the session's
CDR (paying the payee and a fee, refunding the rest) or refunds it; after the deadline anyone may
refund it, so funds never stay locked by an operator that went away. Locked funds leave the
payer's balance and are counted in a running total per symbol, so that
`supply == sum(balances) + escrow.total(symbol)` holds after every block and is cheap to check.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from evgi.core.keys import normalize_address
from evgi.ledger import token
from evgi.ledger.state import Context, StateReader, method, query

EscrowId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
Hash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
Share = Annotated[int, Field(ge=0)]
# A session escrow lives for hours; a year bounds what a typo can lock away.
Timeout = Annotated[int, Field(gt=0, le=365 * 86400)]

OPEN, SETTLED, REFUNDED = "open", "settled", "refunded"


def _key(escrow_id: str) -> str:
    return f"escrow/id/{escrow_id}"


def _total_key(symbol: str) -> str:
    return f"escrow/total/{symbol}"


def _record(state: StateReader, escrow_id: str) -> dict[str, Any] | None:
    record: dict[str, Any] | None = state.get(_key(escrow_id))
    return record


def _reads(args: dict[str, Any]) -> list[str]:
    """The escrow record a call reads: absent for every new escrow, so never in the cache."""
    escrow_id = args.get("escrow_id")
    return [_key(escrow_id)] if isinstance(escrow_id, str) else []


def _open_record(ctx: Context, escrow_id: str) -> dict[str, Any]:
    record = _record(ctx.state, escrow_id)
    ctx.require(record is not None, f"no escrow {escrow_id}")
    assert record is not None
    ctx.require(record["state"] == OPEN, f"escrow {escrow_id} is already {record['state']}")
    return record


def _close(ctx: Context, escrow_id: str, record: dict[str, Any], **changes: Any) -> None:
    ctx.state.set(_key(escrow_id), {**record, **changes, "closed": ctx.height})
    total = _total_key(record["symbol"])
    ctx.state.set(total, int(ctx.state.get(total)) - int(record["amount"]))


@method("escrow", "open", reads=_reads)
def open_escrow(
    ctx: Context,
    escrow_id: EscrowId,
    symbol: token.Symbol,
    payee: str,
    operator: str,
    amount: token.Amount,
    timeout: Timeout,
) -> dict[str, Any]:
    ctx.require(token.info(ctx.state, symbol) is not None, f"no token {symbol}")
    ctx.require(_record(ctx.state, escrow_id) is None, f"escrow {escrow_id} already exists")
    payee, operator = normalize_address(payee), normalize_address(operator)
    token.move(ctx, symbol, ctx.sender, None, amount)
    record = {
        "payer": ctx.sender,
        "payee": payee,
        "operator": operator,
        "symbol": symbol,
        "amount": amount,
        "opened": ctx.height,
        "openedAt": ctx.timestamp,
        "deadline": ctx.timestamp + timeout,
        "state": OPEN,
        "payeeAmount": 0,
        "feeAmount": 0,
        "feePayee": None,
        "recordHash": None,
        "closed": None,
    }
    ctx.state.set(_key(escrow_id), record)
    total = _total_key(symbol)
    ctx.state.set(total, int(ctx.state.get(total) or 0) + amount)
    ctx.emit(
        "EscrowOpened",
        escrowId=escrow_id,
        symbol=symbol,
        payer=ctx.sender,
        payee=payee,
        operator=operator,
        amount=amount,
        deadline=record["deadline"],
    )
    return record


@method("escrow", "settle", reads=_reads)
def settle(
    ctx: Context,
    escrow_id: EscrowId,
    payee_amount: Share,
    fee_amount: Share,
    fee_payee: str,
    record_hash: Hash,
) -> None:
    """Pay the payee and the fee from the escrow and refund the rest, citing the CDR's hash."""
    record = _open_record(ctx, escrow_id)
    ctx.require(
        ctx.sender == record["operator"], f"only the operator of escrow {escrow_id} settles it"
    )
    amount = int(record["amount"])
    ctx.require(
        payee_amount + fee_amount <= amount,
        f"escrow {escrow_id} holds {amount}, less than {payee_amount} + {fee_amount}",
    )
    fee_payee = normalize_address(fee_payee)
    symbol = record["symbol"]
    refund = amount - payee_amount - fee_amount
    for target, share in (
        (record["payee"], payee_amount),
        (fee_payee, fee_amount),
        (record["payer"], refund),
    ):
        if share:
            token.move(ctx, symbol, None, target, share)
    _close(
        ctx,
        escrow_id,
        record,
        state=SETTLED,
        payeeAmount=payee_amount,
        feeAmount=fee_amount,
        feePayee=fee_payee,
        recordHash=record_hash,
    )
    ctx.emit(
        "EscrowSettled",
        escrowId=escrow_id,
        payeeAmount=payee_amount,
        feeAmount=fee_amount,
        feePayee=fee_payee,
        refund=refund,
        recordHash=record_hash,
    )


@method("escrow", "refund", reads=_reads)
def refund(ctx: Context, escrow_id: EscrowId) -> None:
    """Return everything to the payer: the operator may at any time, anyone after the deadline."""
    record = _open_record(ctx, escrow_id)
    ctx.require(
        ctx.sender == record["operator"] or ctx.timestamp >= int(record["deadline"]),
        f"escrow {escrow_id} runs until {record['deadline']}: only its operator refunds it before",
    )
    token.move(ctx, record["symbol"], None, record["payer"], int(record["amount"]))
    _close(ctx, escrow_id, record, state=REFUNDED)
    ctx.emit("EscrowRefunded", escrowId=escrow_id, amount=record["amount"])


@query("escrow", "get")
def get(state: StateReader, escrow_id: EscrowId) -> dict[str, Any] | None:
    return _record(state, escrow_id)


@query("escrow", "total")
def total(state: StateReader, symbol: token.Symbol) -> int:
    """What the open escrows of `symbol` hold together."""
    return int(state.get(_total_key(symbol)) or 0)

"""Token balances: integer minor units per symbol, minted and burned only by issuers."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from evgi.core.keys import normalize_address
from evgi.core.units import MINOR_UNITS
from evgi.ledger.entities import is_trust_anchor
from evgi.ledger.state import Context, StateReader, method, query

Amount = Annotated[int, Field(gt=0)]
Symbol = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,11}$")]


def _meta(state: StateReader, symbol: str) -> dict[str, Any] | None:
    meta: dict[str, Any] | None = state.get(f"token/{symbol}/meta")
    return meta


def _balance_key(symbol: str, owner: str) -> str:
    return f"token/{symbol}/balance/{owner}"


@method("token", "create")
def create(ctx: Context, symbol: Symbol, currency: str) -> dict[str, Any]:
    ctx.require(is_trust_anchor(ctx.state, ctx.sender), "only a trust anchor creates tokens")
    ctx.require(_meta(ctx.state, symbol) is None, f"token {symbol} already exists")
    ctx.require(currency in MINOR_UNITS, f"unsupported currency {currency}")
    meta = {
        "symbol": symbol,
        "currency": currency,
        "decimals": MINOR_UNITS[currency],
        "admin": ctx.sender,
    }
    ctx.state.set(f"token/{symbol}/meta", meta)
    ctx.state.set(f"token/{symbol}/supply", 0)
    ctx.emit("TokenCreated", symbol=symbol, currency=currency)
    return meta


@method("token", "grant_issuer")
def grant_issuer(ctx: Context, symbol: Symbol, issuer: str) -> None:
    meta = _meta(ctx.state, symbol)
    ctx.require(meta is not None, f"no token {symbol}")
    assert meta is not None
    ctx.require(meta["admin"] == ctx.sender, f"only the admin of {symbol} grants issuers")
    issuer = normalize_address(issuer)
    ctx.state.set(f"token/{symbol}/issuer/{issuer}", True)
    ctx.emit("IssuerGranted", symbol=symbol, issuer=issuer)


def move(ctx: Context, symbol: str, source: str | None, target: str | None, amount: int) -> None:
    """Debit `source` and credit `target`; `None` on one side is the supply (mint, burn) or, for
    the escrow module, its own holding."""
    if source is not None:
        key = _balance_key(symbol, source)
        balance = int(ctx.state.get(key) or 0)
        ctx.require(balance >= amount, f"insufficient {symbol} balance: {balance} < {amount}")
        ctx.state.set(key, balance - amount)
    if target is not None:
        key = _balance_key(symbol, target)
        ctx.state.set(key, int(ctx.state.get(key) or 0) + amount)


def _require_issuer(ctx: Context, symbol: str) -> None:
    ctx.require(_meta(ctx.state, symbol) is not None, f"no token {symbol}")
    ctx.require(
        bool(ctx.state.get(f"token/{symbol}/issuer/{ctx.sender}")),
        f"{ctx.sender} is not an issuer of {symbol}",
    )


@method("token", "mint")
def mint(ctx: Context, symbol: Symbol, to: str, amount: Amount) -> None:
    _require_issuer(ctx, symbol)
    to = normalize_address(to)
    move(ctx, symbol, None, to, amount)
    ctx.state.set(f"token/{symbol}/supply", int(ctx.state.get(f"token/{symbol}/supply")) + amount)
    ctx.emit("Transfer", symbol=symbol, **{"from": None, "to": to, "amount": amount})


@method("token", "burn")
def burn(ctx: Context, symbol: Symbol, amount: Amount) -> None:
    _require_issuer(ctx, symbol)
    move(ctx, symbol, ctx.sender, None, amount)
    ctx.state.set(f"token/{symbol}/supply", int(ctx.state.get(f"token/{symbol}/supply")) - amount)
    ctx.emit("Transfer", symbol=symbol, **{"from": ctx.sender, "to": None, "amount": amount})


@method("token", "transfer")
def transfer(ctx: Context, symbol: Symbol, to: str, amount: Amount) -> None:
    ctx.require(_meta(ctx.state, symbol) is not None, f"no token {symbol}")
    to = normalize_address(to)
    move(ctx, symbol, ctx.sender, to, amount)
    ctx.emit("Transfer", symbol=symbol, **{"from": ctx.sender, "to": to, "amount": amount})


@query("token", "balance_of")
def balance_of(state: StateReader, symbol: Symbol, owner: str) -> int:
    return int(state.get(_balance_key(symbol, normalize_address(owner))) or 0)


@query("token", "info")
def info(state: StateReader, symbol: Symbol) -> dict[str, Any] | None:
    meta = _meta(state, symbol)
    if meta is None:
        return None
    return {**meta, "supply": int(state.get(f"token/{symbol}/supply") or 0)}

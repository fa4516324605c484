"""Operator routes for prepaid wallets: balances, history, top-ups, withdrawals and price quotes,
as `evgi wallet` offers them, on either ledger engine.

Amounts are integer minor units of the wallets' currency (the settlement hold's). A refusal
answers before anything is stored or signed: 404 for an unknown wallet, 409 for a withdrawal of
more than the wallet can spend (or a call the ledger refused), 422 for an amount, currency or
name a wallet does not take.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from evgi.api.charging import problem, responses
from evgi.api.platform import kept_on_app
from evgi.core.errors import ExecutionError, NotFoundError, ValidationError
from evgi.core.units import Money
from evgi.ledger import Receipt
from evgi.settlement import CoreClient, InsufficientFunds, SettlementTerms, Wallets
from evgi.storage import ChargingStore

router = APIRouter(tags=["wallets"])


def current_wallets(request: Request) -> Wallets:
    platform = request.app.state.platform

    def make() -> Wallets:
        currency = SettlementTerms.from_settings(platform.settings).hold.currency
        return Wallets.for_platform(platform, currency)

    return kept_on_app(request.app, "wallets", make)


def current_core(request: Request) -> CoreClient:
    platform = request.app.state.platform
    return kept_on_app(
        request.app,
        "wallet_quotes",
        lambda: CoreClient.for_platform(platform, ChargingStore(platform.db)),
    )


WalletsDep = Annotated[Wallets, Depends(current_wallets)]
CoreDep = Annotated[CoreClient, Depends(current_core)]
WalletName = Annotated[
    str, Path(description="the wallet's name", min_length=1, max_length=57, examples=["alice"])
]
MinorUnits = Annotated[
    int,
    Field(
        gt=0,
        strict=True,
        description="integer minor units of the wallets' currency (cents for EUR)",
        examples=[2_000],
    ),
]


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise problem(404, exc) from exc
    except (InsufficientFunds, ExecutionError) as exc:
        raise problem(409, exc) from exc
    except ValidationError as exc:
        raise problem(422, exc) from exc


class WalletState(BaseModel):
    wallet: str = Field(examples=["alice"])
    address: str = Field(description="the wallet's account on the ledger")
    currency: str = Field(examples=["EUR"])
    balance_minor: int = Field(description="what the wallet can spend now", examples=[3_450])
    escrowed_minor: int = Field(
        description="what its open escrows hold for sessions under way", examples=[5_000]
    )
    id_tokens: list[str] = Field(description="id tokens whose sessions it pays")


class WalletMovement(WalletState):
    tx_hashes: list[str] = Field(description="the ledger transactions that moved the amount")


class HistoryItem(BaseModel):
    at: datetime = Field(description="time of the block")
    block: int
    tx_hash: str
    kind: str = Field(
        description="topup, withdrawal, transfer-in, transfer-out, escrow, payment, fee, refund",
        examples=["escrow"],
    )
    amount_minor: int = Field(description="what the spendable balance changed by", examples=[-500])
    reference: str = Field(
        description="counterparty address (empty for a top-up) or escrow id",
        examples=["ST-1/1a2b3c"],
    )


class Amount(BaseModel):
    amount_minor: MinorUnits
    currency: str | None = Field(
        default=None, description="the wallets' currency, if given", examples=["EUR"]
    )


class QuoteRequest(BaseModel):
    station_id: str = Field(min_length=1, max_length=48, examples=["CS-1"])
    id_token: str = Field(
        min_length=1, max_length=255, description="a token linked to the wallet", examples=["04A1"]
    )
    energy_wh: int = Field(gt=0, strict=True, description="energy to charge", examples=[20_000])
    minutes: int = Field(gt=0, strict=True, description="how long the car stays", examples=[60])
    max_power_w: int = Field(gt=0, strict=True, description="charging power", examples=[11_000])


class QuoteAnswer(BaseModel):
    station_id: str
    id_token: str
    tariff_id: str
    tariff_digest: str = Field(description="the tariff locked for the token's next start there")
    currency: str
    total_excl_vat_minor: int
    total_incl_vat_minor: int


def _state(wallets: Wallets, name: str) -> WalletState:
    wallet = wallets.get(name)
    return WalletState(
        wallet=name,
        address=wallet.address,
        currency=wallets.currency,
        balance_minor=wallets.balance_of(wallet.address).minor,
        escrowed_minor=wallets.escrowed(name).minor,
        id_tokens=wallets.tokens(name),
    )


def _money(wallets: Wallets, amount: Amount) -> Money:
    return Money(amount.currency or wallets.currency, amount.amount_minor)


def _moved(wallets: Wallets, name: str, receipts: list[Receipt]) -> WalletMovement:
    return WalletMovement(
        **_state(wallets, name).model_dump(), tx_hashes=[r.tx_hash for r in receipts]
    )


@router.get("/{name}", summary="A wallet's balance", responses=responses(404))
def get_wallet(name: WalletName, wallets: WalletsDep) -> WalletState:
    with _refusals():
        return _state(wallets, name)


@router.get(
    "/{name}/history", summary="Every movement of a wallet's tokens", responses=responses(404)
)
def wallet_history(name: WalletName, wallets: WalletsDep) -> list[HistoryItem]:
    """Oldest first, from the ledger's receipts (the local journal, or an EVM node's events)."""
    with _refusals():
        return [HistoryItem.model_validate(entry.to_json()) for entry in wallets.history(name)]


@router.post(
    "/{name}/topup",
    summary="Mint a top-up into a wallet (opens it)",
    responses=responses(409, 422),
)
def topup(name: WalletName, amount: Amount, wallets: WalletsDep) -> WalletMovement:
    """The eMSP mints the amount against the driver's payment; the first top-up opens the
    wallet."""
    with _refusals():
        receipt = wallets.topup(name, _money(wallets, amount))
        return _moved(wallets, name, [receipt])


@router.post(
    "/{name}/withdraw",
    summary="Withdraw from a wallet",
    responses=responses(404, 409, 422),
)
def withdraw(name: WalletName, amount: Amount, wallets: WalletsDep) -> WalletMovement:
    """The wallet returns the amount to the eMSP, which burns it and pays the money out."""
    with _refusals():
        receipts = wallets.withdraw(name, _money(wallets, amount))
        return _moved(wallets, name, receipts)


@router.post(
    "/{name}/quote",
    summary="The price of a planned session, locked for the token's next start",
    responses=responses(404, 422),
)
def quote(name: WalletName, plan: QuoteRequest, wallets: WalletsDep, core: CoreDep) -> QuoteAnswer:
    """A POST: the quote locks the station's tariff for the token's next start there (within
    the quote's validity), as `evgi wallet quote` does."""
    with _refusals():
        wallets.get(name)
        if plan.id_token not in wallets.tokens(name):
            raise NotFoundError(f"id token {plan.id_token!r} does not charge to wallet {name!r}")
        found = core.quote(
            plan.station_id,
            plan.id_token,
            plan.energy_wh,
            timedelta(minutes=plan.minutes),
            plan.max_power_w,
        )
    cost = found.cost
    return QuoteAnswer(
        station_id=plan.station_id,
        id_token=plan.id_token,
        tariff_id=cost.tariff_id,
        tariff_digest=found.locked.digest,
        currency=cost.currency,
        total_excl_vat_minor=cost.total_excl_vat.minor,
        total_incl_vat_minor=cost.total_incl_vat.minor,
    )

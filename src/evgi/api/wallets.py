"""Operator routes for prepaid wallets: balances, history, top-ups, withdrawals and price quotes,
as `evgi wallet` offers them, on either ledger engine.

Amounts are integer minor units of the wallets' currency (the settlement hold's). A refusal
answers before anything is stored or signed: 404 for an unknown wallet, 409 for a withdrawal of
more than the wallet can spend (or a call the ledger refused), 422 for an amount, currency or
name a wallet does not take.

A top-up or withdrawal sent with an `Idempotency-Key` header is made once per key: a retry with
the same key and request gets the first answer again (refusals too), marked `Idempotent-Replayed:
true`, without touching the ledger; the key with another request gets 422
(`idempotency_key_reused`), and a retry while the first request still runs 409
(`idempotency_key_in_progress`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from evgi.api.charging import problem, responses
from evgi.api.platform import kept_on_app
from evgi.core.digest import sha256, to_hex
from evgi.core.errors import EvgiError, ExecutionError, NotFoundError, ValidationError
from evgi.core.units import Money
from evgi.ledger import Receipt
from evgi.settlement import CoreClient, InsufficientFunds, SettlementTerms, Wallets
from evgi.storage import ChargingStore
from evgi.storage.idempotency import (
    IdempotencyKeyInProgress,
    IdempotencyKeyReused,
    IdempotencyStore,
    StoredAnswer,
)

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


def current_idempotency(request: Request) -> IdempotencyStore:
    platform = request.app.state.platform
    return kept_on_app(request.app, "idempotency", lambda: IdempotencyStore(platform.db))


WalletsDep = Annotated[Wallets, Depends(current_wallets)]
CoreDep = Annotated[CoreClient, Depends(current_core)]
IdempotencyDep = Annotated[IdempotencyStore, Depends(current_idempotency)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="a key of the client's choosing, new for each movement: a retry with it "
        "gets the first answer, and the wallet moves once",
        examples=["5f0c2b7e-9d41-4c8a-a3f6-0e7d2c1b9a84"],
    ),
]
REPLAYED = "Idempotent-Replayed"
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


def _once(
    requests: IdempotencyStore,
    key: str | None,
    wallets: Wallets,
    name: str,
    operation: str,
    amount: Amount,
    move: Callable[[], WalletMovement],
) -> WalletMovement | JSONResponse:
    """`move`, unless an earlier request with `key` made it: then that request's answer."""
    if key is None:
        with _refusals():
            return move()
    digest = to_hex(sha256(amount.model_dump_json().encode()))  # its fields in one order
    try:
        earlier = requests.claim(key, name, operation, digest, wallets.clock.now())
    except IdempotencyKeyReused as exc:
        raise problem(422, exc) from exc
    except IdempotencyKeyInProgress as exc:
        raise problem(409, exc) from exc
    if earlier is not None:
        return JSONResponse(earlier.body, earlier.status, headers={REPLAYED: "true"})
    try:
        with _refusals():
            answer = StoredAnswer(200, move().model_dump(mode="json"))
    except HTTPException as exc:
        answer = StoredAnswer(exc.status_code, {"detail": exc.detail})
    except Exception:
        # Whether the ledger moved is unknown: retries must not move it (again).
        unknown = EvgiError(
            f"the first request with idempotency key {key!r} failed; "
            f"wallet {name!r}'s history shows whether it moved"
        )
        failed = problem(500, unknown)
        requests.answer(key, StoredAnswer(500, {"detail": failed.detail}), wallets.clock.now())
        raise
    requests.answer(key, answer, wallets.clock.now())
    return JSONResponse(answer.body, answer.status)


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
    response_model=WalletMovement,
    responses=responses(409, 422),
)
def topup(
    name: WalletName,
    amount: Amount,
    wallets: WalletsDep,
    requests: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> WalletMovement | JSONResponse:
    """The eMSP mints the amount against the driver's payment; the first top-up opens the
    wallet."""

    def move() -> WalletMovement:
        receipt = wallets.topup(name, _money(wallets, amount))
        return _moved(wallets, name, [receipt])

    return _once(requests, idempotency_key, wallets, name, "topup", amount, move)


@router.post(
    "/{name}/withdraw",
    summary="Withdraw from a wallet",
    response_model=WalletMovement,
    responses=responses(404, 409, 422),
)
def withdraw(
    name: WalletName,
    amount: Amount,
    wallets: WalletsDep,
    requests: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> WalletMovement | JSONResponse:
    """The wallet returns the amount to the eMSP, which burns it and pays the money out."""

    def move() -> WalletMovement:
        receipts = wallets.withdraw(name, _money(wallets, amount))
        return _moved(wallets, name, receipts)

    return _once(requests, idempotency_key, wallets, name, "withdraw", amount, move)


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

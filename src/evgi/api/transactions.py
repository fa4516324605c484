"""Operator routes for charging transactions and their meter values.

Transactions page by their number, the CSMS's own key (also the 1.6 transactionId): each page
gives the number to continue `after`, so rows added meanwhile are neither skipped nor repeated.
Signed meter data is returned exactly as the station sent it, for the meter's signature.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from evgi.api.charging import CsmsDep, StationId, problem, responses
from evgi.core.errors import NotFoundError
from evgi.storage import ChargingStore, ChargingTransaction, StoredMeterSample

router = APIRouter(tags=["transactions"])

MAX_PAGE = 1000


class TransactionSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int = Field(description="the CSMS's key of the transaction", examples=[42])
    station_id: str = Field(examples=["CS-1"])
    transaction_id: str = Field(
        description="the station's id of it (1.6: the number)",
        examples=["f3a1c7d2-5b1e-4c1e-9d53-0b8a2f7e4c11"],
    )
    evse_id: int | None = Field(examples=[1])
    connector_id: int | None = Field(examples=[1])
    id_token: str | None = Field(examples=["04A2B3C4D5E6F7"])
    group_id: str | None
    state: Literal["active", "ended"]
    charging_state: str | None = Field(description="2.x only", examples=["Charging"])
    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: int | None = Field(examples=[1000])
    meter_stop_wh: int | None = Field(examples=[12000])
    energy_wh: int | None = Field(description="meter stop - meter start", examples=[11000])
    stop_reason: str | None = Field(examples=["EVDisconnected"])
    stop_id_token: str | None
    missing: list[int] = Field(
        description="2.x seqNo of TransactionEvents the station never delivered"
    )
    offline_messages: int = Field(description="events the station queued while offline")
    remote_start_id: int | None
    reservation_id: int | None
    updated_at: datetime


class MeterValue(BaseModel):
    evse_id: int = Field(examples=[1])
    timestamp: datetime
    measurand: str = Field(examples=["Energy.Active.Import.Register"])
    phase: str | None = Field(examples=["L1"])
    unit: str | None = Field(examples=["Wh"])
    multiplier: int = Field(description="value x 10^multiplier (2.x unitOfMeasure)", examples=[0])
    context: str | None = Field(examples=["Sample.Periodic"])
    location: str | None = Field(examples=["Outlet"])
    value: float | None = Field(description="None for 1.6 SignedData", examples=[5500.0])
    signed: str | None = Field(
        description="signed meter data verbatim: the 1.6 SignedData value, or the 2.x "
        "signedMeterValue object as JSON",
        examples=[None],
    )


class TransactionDetail(TransactionSummary):
    meter_values: list[MeterValue]


class TransactionPage(BaseModel):
    items: list[TransactionSummary]
    next_after: int | None = Field(
        description="pass as `after` for the next page; None on the last page", examples=[142]
    )


@router.get("/transactions", summary="Transactions, filtered and paginated")
def list_transactions(
    csms: CsmsDep,
    station_id: Annotated[str | None, Query(examples=["CS-1"])] = None,
    state: Literal["active", "ended"] | None = None,
    id_token: Annotated[str | None, Query(description="the token that started it")] = None,
    since: Annotated[
        AwareDatetime | None,
        Query(description="only transactions still open at or after this time"),
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="only transactions started before this time")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, description="`next_after` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> TransactionPage:
    store = csms.store
    rows = store.run(
        store.transactions,
        station_id=station_id,
        state=state,
        id_token=id_token,
        since=since,
        until=until,
        after=after,
        limit=limit + 1,
    )
    page = rows[:limit]
    return TransactionPage(
        items=[TransactionSummary.model_validate(t) for t in page],
        next_after=page[-1].number if len(rows) > limit else None,
    )


@router.get(
    "/transactions/{number}",
    summary="A transaction with its meter values",
    responses=responses(404),
)
def get_transaction(
    number: Annotated[int, Path(description="the CSMS's transaction number", examples=[42])],
    csms: CsmsDep,
) -> TransactionDetail:
    store = csms.store
    try:
        transaction, samples = store.run(_with_samples, store, number)
    except NotFoundError as exc:
        raise problem(404, exc) from exc
    return _detail(transaction, samples)


@router.get(
    "/stations/{station_id}/transactions/{transaction_id}",
    summary="A transaction by the station's own id, with its meter values",
    responses=responses(404),
)
def get_station_transaction(
    station_id: StationId,
    transaction_id: Annotated[str, Path(description="the station's transaction id")],
    csms: CsmsDep,
) -> TransactionDetail:
    store = csms.store
    found = store.run(store.find_transaction, station_id, transaction_id)
    if found is None:
        raise problem(
            404, NotFoundError(f"no transaction {transaction_id!r} at station {station_id!r}")
        )
    return _detail(*store.run(_with_samples, store, found.number))


def _with_samples(
    conn: Connection, store: ChargingStore, number: int
) -> tuple[ChargingTransaction, list[StoredMeterSample]]:
    transaction = store.transaction_by_number(conn, number)
    return transaction, store.meter_samples(conn, transaction.station_id, number)


def _detail(
    transaction: ChargingTransaction, samples: list[StoredMeterSample]
) -> TransactionDetail:
    summary = TransactionSummary.model_validate(transaction)
    return TransactionDetail(
        **summary.model_dump(),
        meter_values=[MeterValue(evse_id=s.evse_id, **asdict(s.sample)) for s in samples],
    )

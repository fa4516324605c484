"""Operator routes for export payments: what V2G sessions' drivers were paid for the energy
they sent back, by session or by wallet (read-only: `ExportPayments` writes them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from evgi.api.charging import problem, responses
from evgi.api.platform import PlatformDep
from evgi.core.errors import NotFoundError
from evgi.storage.export_payment import export_payment, export_payments

router = APIRouter(tags=["settlement"])

MAX_PAGE = 1000


class ExportPaymentRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    session_id: str = Field(examples=["V2G-1/5c1e9d53"])
    station_id: str = Field(examples=["V2G-1"])
    transaction_id: str
    id_token: str
    wallet: str = Field(description="the wallet the id token charges to", examples=["dana"])
    driver_address: str
    payer: str = Field(description="the account that paid (the CPO's or an aggregator's)")
    export_wh: int = Field(description="rise of the export register over the session")
    amount_minor: int = Field(description="export Wh x price per kWh, rounded down")
    currency: str = Field(examples=["EUR"])
    state: Literal["claimed", "sending", "paid", "failed"] = Field(
        description="claimed and sending: the outcome is not yet recorded (a restart settles "
        "it); failed: the ledger refused the transfer (see note)"
    )
    nonce: int | None = Field(description="the payer's nonce every transfer was signed at")
    hashes: list[str] = Field(description="each transfer signed for the payment")
    tx_hash: str | None = Field(description="the transfer on the ledger, once its receipt is read")
    claimed_at: datetime
    paid_at: datetime | None
    note: str | None


@router.get("/export-payments", summary="Export payments, newest first")
def list_export_payments(
    platform: PlatformDep,
    wallet: Annotated[str | None, Query(description="of one wallet", examples=["dana"])] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[ExportPaymentRecord]:
    with platform.db.connect() as conn:
        found = export_payments(conn, wallet=wallet, limit=limit)
    return [ExportPaymentRecord.model_validate(payment) for payment in found]


@router.get(
    "/export-payments/{session_id:path}",
    summary="A session's export payment",
    responses=responses(404),
)
def get_export_payment(
    platform: PlatformDep,
    session_id: Annotated[str, Path(description="station id / transaction id")],
) -> ExportPaymentRecord:
    with platform.db.connect() as conn:
        found = export_payment(conn, session_id)
    if found is None:
        raise problem(404, NotFoundError(f"no export payment of {session_id!r}"))
    return ExportPaymentRecord.model_validate(found)

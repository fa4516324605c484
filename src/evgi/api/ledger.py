"""HTTP routes of the ledger: head, blocks, transactions with receipts and inclusion proofs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from evgi.api.platform import PlatformDep
from evgi.core.errors import NotFoundError

router = APIRouter(tags=["ledger"])


@router.get("/head")
def head(platform: PlatformDep) -> dict[str, Any]:
    ledger = platform.ledger
    return {
        "engine": ledger.engine_name,
        "chainId": ledger.chain_id,
        "block": ledger.head().to_json(),
    }


@router.get("/blocks/{height}")
def block(height: int, platform: PlatformDep) -> dict[str, Any]:
    try:
        return platform.ledger.block(height).to_json()
    except NotFoundError as exc:
        raise HTTPException(404, detail=exc.message) from exc


@router.get("/transactions/{tx_hash}")
def transaction(tx_hash: str, platform: PlatformDep) -> dict[str, Any]:
    ledger = platform.ledger
    try:
        stx, receipt = ledger.transaction(tx_hash)
        proof = ledger.proof(tx_hash)
    except NotFoundError as exc:
        raise HTTPException(404, detail=exc.message) from exc
    return {"transaction": stx.to_wire(), "receipt": receipt.to_json(), "proof": proof.to_json()}

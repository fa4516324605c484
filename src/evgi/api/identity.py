"""HTTP routes of the trust layer: DID resolution (universal-resolver style) and EC checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from evgi.api.platform import PlatformDep
from evgi.identity import resolve, verify_entity_certificate

router = APIRouter(tags=["identity"])


@router.get("/1.0/identifiers/{did}")
def resolve_did(did: str, platform: PlatformDep) -> dict[str, Any]:
    """W3C DID resolution result; 400 for a malformed DID, 404 for another network."""
    result = resolve(platform.ledger, did)
    error = result["didResolutionMetadata"].get("error")
    if error == "invalidDid":
        raise HTTPException(400, detail=result["didResolutionMetadata"])
    if error:
        raise HTTPException(404, detail=result["didResolutionMetadata"])
    return result


@router.post("/entity-certificates/verify")
def verify_certificate(
    platform: PlatformDep,
    certificate: Annotated[dict[str, Any], Body(description="an entity certificate (W3C VC)")],
    at_block: int | None = None,
) -> dict[str, Any]:
    check = verify_entity_certificate(platform.ledger, certificate, at_block, platform.clock)
    return check.to_json()

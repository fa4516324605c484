"""Operator routes for id tokens (RFID cards, apps, contract ids) that may charge.

A change is in force for the next authorization a station asks for; stations that keep a local
list learn of it with the send-local-list command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import AwareDatetime, BaseModel, Field

from evgi.api.charging import CsmsDep, member_of, problem, responses
from evgi.core.errors import NotFoundError, ValidationError
from evgi.csms import TOKEN_STATUSES
from evgi.storage import IdToken

router = APIRouter(tags=["tokens"])

TokenText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="the id token; a 1.6 station takes at most 20 characters, 2.0.1 at most 36",
        examples=["04A2B3C4D5E6F7"],
    ),
]
TokenPath = Annotated[
    str, Path(min_length=1, max_length=255, description="the id token", examples=["04A2B3C4D5E6F7"])
]
TokenStatus = Annotated[
    str,
    member_of(TOKEN_STATUSES),
    Field(
        description="Accepted lets it charge (until expiry); any other status is what stations are "
        "told",
        json_schema_extra={"enum": list(TOKEN_STATUSES)},
    ),
]


class TokenTerms(BaseModel):
    type: str = Field(
        default="ISO14443",
        min_length=1,
        max_length=20,
        description="OCPP IdTokenType: ISO14443, ISO15693, eMAID, Central, KeyCode, Local, "
        "MacAddress, NoAuthorization, ...",
        examples=["ISO14443"],
    )
    status: TokenStatus = "Accepted"
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="after this the token answers Expired",
        examples=["2030-01-01T00:00:00Z"],
    )
    group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="group id token (1.6 parentIdTag): one transaction at a time per group",
        examples=["FLEET-7"],
    )


class NewToken(TokenTerms):
    token: TokenText


class Token(NewToken):
    created_at: datetime


def _token(record: IdToken) -> Token:
    return Token(
        token=record.token,
        type=record.token_type,
        status=record.status,
        expires_at=record.expires_at,
        group_id=record.group_id,
        created_at=record.created_at,
    )


def _put(csms: CsmsDep, token: str, terms: TokenTerms) -> Token:
    try:
        record = csms.add_token(token, terms.status, terms.expires_at, terms.group_id, terms.type)
    except ValidationError as exc:
        raise problem(400, exc) from exc
    return _token(record)


@router.get("", summary="Id tokens")
def list_tokens(csms: CsmsDep) -> list[Token]:
    return [_token(t) for t in csms.store.run(csms.store.tokens)]


@router.post("", status_code=201, summary="Add an id token", responses=responses(400, 409))
def add_token(new: NewToken, csms: CsmsDep) -> Token:
    if csms.store.run(csms.store.find_token, new.token) is not None:
        raise HTTPException(
            409,
            detail={"code": "exists", "message": f"token {new.token!r} exists: PUT replaces it"},
        )
    return _put(csms, new.token, new)


@router.get("/{token}", summary="One id token", responses=responses(404))
def get_token(token: TokenPath, csms: CsmsDep) -> Token:
    found = csms.store.run(csms.store.find_token, token)
    if found is None:
        raise problem(404, NotFoundError(f"no token {token!r}"))
    return _token(found)


@router.put(
    "/{token}",
    summary="Add or replace an id token",
    responses={201: {"model": Token}, **responses(400)},
)
def put_token(token: TokenPath, terms: TokenTerms, csms: CsmsDep, response: Response) -> Token:
    """200 when it replaced a token, 201 when it added one."""
    if csms.store.run(csms.store.find_token, token) is None:
        response.status_code = 201
    return _put(csms, token, terms)


@router.delete("/{token}", status_code=204, summary="Remove an id token", responses=responses(404))
def remove_token(token: TokenPath, csms: CsmsDep) -> Response:
    try:
        csms.store.run(csms.store.delete_token, token)
    except NotFoundError as exc:
        raise problem(404, exc) from exc
    return Response(status_code=204)

"""What the operator routes under /api share: the running CSMS, and how its errors answer.

Every refusal is a `CsmsProblem` with a stable `code`; a station's own CALLERROR keeps its OCPP
error code, description and details, so an operator sees exactly what the station said.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request
from pydantic import AfterValidator, BaseModel, Field

from evgi.core.errors import EvgiError, NotFoundError, ValidationError
from evgi.csms import (
    Csms,
    StationCallError,
    StationOffline,
    StationTimeout,
    UnsupportedCommand,
    wire_body,
)


async def current_csms(request: Request) -> Csms:
    csms: Csms | None = request.app.state.csms
    if csms is None:
        raise HTTPException(
            503, detail={"code": "csms_not_running", "message": "this service runs no CSMS"}
        )
    return csms


CsmsDep = Annotated[Csms, Depends(current_csms)]


class CsmsProblem(BaseModel):
    code: str = Field(examples=["station_offline"])
    message: str = Field(examples=["station CS-1 is not connected"])
    error_code: str | None = Field(
        default=None,
        description="the station's OCPP CALLERROR code (502 only)",
        examples=["NotImplemented"],
    )
    description: str | None = Field(
        default=None, description="the station's CALLERROR description (502 only)"
    )
    details: Any = Field(default=None, description="the station's CALLERROR details (502 only)")


class CsmsProblemResponse(BaseModel):
    detail: CsmsProblem


def problem(status: int, error: EvgiError) -> HTTPException:
    return HTTPException(status, detail={"code": error.code, "message": error.message})


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals a route documents, for `responses=` in its decorator."""
    return {status: {"model": CsmsProblemResponse} for status in statuses}


StationId = Annotated[str, Path(description="the station's OCPP identity", examples=["CS-1"])]


def known_station(station_id: StationId, csms: CsmsDep) -> str:
    """404 for a station that is not registered (runs on a worker thread: it reads the store)."""
    if csms.store.run(csms.store.find_station, station_id) is None:
        raise problem(404, NotFoundError(f"no station {station_id!r}"))
    return station_id


KnownStation = Annotated[str, Depends(known_station)]


def member_of(values: tuple[str, ...]) -> AfterValidator:
    """A validator for a field whose values the CSMS defines (the list stays there)."""

    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"must be one of {', '.join(values)}")
        return value

    return AfterValidator(check)


class CommandAnswer(BaseModel):
    """A station's answer to a command, as its OCPP version puts it on the wire."""

    action: str | None = Field(
        description="the OCPP message the command became (None for an empty list of answers)",
        examples=["RequestStartTransaction"],
    )
    answer: Any = Field(
        description="the CALLRESULT payload; a list for 1.6 SetVariables (one "
        "ChangeConfiguration each)",
        examples=[{"status": "Accepted"}],
    )


STATION_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": CsmsProblemResponse, "description": description}
    for status, description in {
        400: "not sent: the station's OCPP version lacks the command, or its schema refuses "
        "the request",
        404: "no such station",
        409: "the station is not connected",
        502: "the station answered with a CALLERROR (error_code, description, details)",
        504: "the station did not answer in time",
    }.items()
}


async def station_answer(command: Awaitable[Any]) -> CommandAnswer:
    """Await a command and turn the CSMS's errors into the API's documented answers: 400 for a
    request the station's version cannot carry, 409 offline, 504 no answer in time, 502 the
    station's CALLERROR."""
    try:
        result = await command
    except (ValidationError, UnsupportedCommand) as exc:
        raise problem(400, exc) from exc
    except StationOffline as exc:
        raise problem(409, exc) from exc
    except StationTimeout as exc:
        raise problem(504, exc) from exc
    except StationCallError as exc:
        raise HTTPException(
            502,
            detail={
                "code": exc.code,
                "message": exc.message,
                "error_code": exc.error_code,
                "description": exc.description,
                "details": exc.details,
            },
        ) from exc
    if isinstance(result, list):
        return CommandAnswer(
            action=type(result[0]).__name__ if result else None,
            answer=[wire_body(item) for item in result],
        )
    return CommandAnswer(action=type(result).__name__, answer=wire_body(result))

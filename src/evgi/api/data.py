"""HTTP routes of the data host under /data: bootstrap certificates, containers, Access Session
Setup (unlock), session reads and writes, and the owners' access log.

Unlock and read are the hot path of every data exchange: `evgi serve` answers them in `HotRoutes`,
ahead of FastAPI, and the routes here document them (the models are what the OpenAPI document
shows). Their checks are short and CPU-bound, so they run on the event loop rather than pay for
a thread hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import Receive, Scope

from evgi.api.hot_path import HotAnswer, header, read_body
from evgi.api.platform import kept_on_app
from evgi.app import GENESIS_KEY
from evgi.core.canonical import compact_json, parse_json
from evgi.core.errors import EvgiError, ValidationError
from evgi.data import DataHost, DataType
from evgi.permissions import Reason, Refusal, UnlockRequest, UnlockResponse


def data_host(app: FastAPI) -> DataHost:
    """The platform's data host, opened on first use and kept on the app."""
    return kept_on_app(app, "data_host", lambda: DataHost.open(app.state.platform, GENESIS_KEY))


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the host's upkeep (access-log writes, stream ageing) while the service runs; a host
    handed in on `app.state.data_host` stays open for whoever handed it in."""
    owned = getattr(app.state, "data_host", None) is None
    host = data_host(app)
    host.start()
    try:
        yield
    finally:
        host.stop()
        if owned:
            host.close()


def current_host(request: Request) -> DataHost:
    return data_host(request.app)


HostDep = Annotated[DataHost, Depends(current_host)]
router = APIRouter(tags=["data"], lifespan=lifespan)


class Problem(BaseModel):
    code: str
    message: str


class ProblemResponse(BaseModel):
    detail: Problem


_REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemResponse} for status in (400, 401, 403, 404, 409, 421, 422)
}


def _json(value: Any, status: int = 200) -> Response:
    return Response(compact_json(value), status, media_type="application/json")


def _problem_answer(exc: EvgiError) -> tuple[int, bytes]:
    """An error as the status and `{"detail": {code, message}}` body the data API answers."""
    if isinstance(exc, Refusal):
        return exc.status, compact_json({"detail": exc.to_json()}).encode()
    status = 400 if isinstance(exc, ValidationError) else 409
    return status, compact_json({"detail": {"code": exc.code, "message": exc.message}}).encode()


def _problem(exc: EvgiError) -> Response:
    status, body = _problem_answer(exc)
    return Response(body, status, media_type="application/json")


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refusal(Reason.BAD_TOKEN, "send the session token as 'Authorization: Bearer <token>'")
    return token


@router.get("/host")
def host_info(host: HostDep) -> dict[str, Any]:
    """The host's DID, the URI its containers live under, and its DBCs."""
    return {
        "did": host.did,
        "uri": host.uri,
        "dataTypes": [t.value for t in DataType],
        "dbc": host.certificates("dbc"),
    }


@router.post("/certificates", status_code=201, responses=_REFUSALS)
def deliver_certificate(
    host: HostDep,
    certificate: Annotated[dict[str, Any], Body(description="a signed DBC, AC, RC or GPC")],
) -> Any:
    """Deliver a certificate: a DBC for this host, or an AC, RC or GPC to keep as evidence.
    It must carry a valid proof and match its anchor on the ledger."""
    try:
        info = host.install(certificate)
    except EvgiError as exc:
        return _problem(exc)
    return _json(
        {"hash": info.hash, "type": info.kind, "issuer": info.issuer, "subject": info.subject},
        201,
    )


@router.post("/containers", status_code=201, responses=_REFUSALS)
def open_container(
    host: HostDep,
    request: Annotated[dict[str, Any], Body(description="a ContainerRequest signed by its owner")],
) -> Any:
    """Open a Data Bucket or Data Stream on the owner's signed request."""
    try:
        container = host.open_container(request)
    except EvgiError as exc:
        return _problem(exc)
    return _json(container.to_json(host.chain_id), 201)


@router.get("/containers/{container_id}", responses=_REFUSALS)
def container_info(container_id: str, host: HostDep) -> Any:
    """A container's public descriptor (what its ledger registration says too)."""
    try:
        return _json(host.container(container_id).to_json(host.chain_id))
    except EvgiError as exc:
        return _problem(exc)


class _DirectRoute(APIRoute):
    """A route whose endpoint reads the request and builds the response itself: documented from
    its declaration like any other, but served without FastAPI's per-request parameter solving,
    which costs more than the unlock and read checks themselves."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: Callable[[Request], Coroutine[Any, Any, Response]] = self.endpoint
        return endpoint


MAX_UNLOCK_BYTES = 16 * 1024


def unlock_answer(host: DataHost, body: bytes) -> tuple[int, bytes]:
    """Access Session Setup: the status and Unlock Response for an Unlock Request's bytes."""
    request_id: str | None = None
    try:
        if len(body) > MAX_UNLOCK_BYTES:
            raise Refusal(
                Reason.MALFORMED, f"an Unlock Request is at most {MAX_UNLOCK_BYTES} bytes"
            )
        document = parse_json(body)
        if isinstance(document, dict) and isinstance(document.get("id"), str):
            request_id = document["id"]
        session, dbc = host.unlock(document)
    except ValidationError as exc:
        malformed = Refusal(Reason.MALFORMED, exc.message)
        return malformed.status, _encoded(UnlockResponse.rejected(request_id, malformed))
    except Refusal as refusal:
        return refusal.status, _encoded(UnlockResponse.rejected(request_id, refusal))
    return 200, _encoded(
        UnlockResponse(request_id=request_id, accepted=True, session=session, dbc=dbc)
    )


def _encoded(response: UnlockResponse) -> bytes:
    return response.model_dump_json(by_alias=True).encode()


async def unlock(request: Request) -> Response:
    """Access Session Setup: answer an Unlock Request signed with the accessor's DID key with a
    session (token, scope, expiry) or a rejection that says why."""
    status, body = unlock_answer(data_host(request.app), await request.body())
    return Response(body, status, media_type="application/json")


router.add_api_route(
    "/unlock",
    unlock,
    methods=["POST"],
    route_class_override=_DirectRoute,
    response_model=UnlockResponse,
    responses={s: {"model": UnlockResponse} for s in (400, 401, 403, 404, 409, 421)},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UnlockRequest.model_json_schema()}},
        }
    },
)


def _int(text: str | None, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 16 and low <= int(text) <= high):
        raise Refusal(Reason.MALFORMED, f"expected a whole number from {low} to {high}")
    return int(text)


def records_answer(
    host: DataHost,
    container_id: str,
    authorization: str | None,
    after: str | None,
    limit: str | None,
) -> tuple[int, bytes]:
    """The status and body of a read: records of a container for a reader's session,
    re-authorized against the ledger."""
    try:
        first = _int(after, 0, 0, 2**53)
        page = host.read(_bearer(authorization), container_id, first, _int(limit, 100, 1, 1000))
    except EvgiError as exc:
        return _problem_answer(exc)
    return 200, page.to_json_text(first).encode()


async def read_records(request: Request) -> Response:
    """Records of a container for a reader's session, re-authorized against the ledger."""
    status, body = records_answer(
        data_host(request.app),
        request.path_params["container_id"],
        request.headers.get("authorization"),
        request.query_params.get("after"),
        request.query_params.get("limit"),
    )
    return Response(body, status, media_type="application/json")


def _parameter(name: str, where: str, description: str, minimum: int = 0) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "minimum": minimum}
    if where == "header" or where == "path":
        schema = {"type": "string"}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": description,
        "schema": schema,
    }


router.add_api_route(
    "/containers/{container_id}/records",
    read_records,
    methods=["GET"],
    route_class_override=_DirectRoute,
    responses=_REFUSALS,
    openapi_extra={
        "parameters": [
            _parameter("container_id", "path", "the container's id"),
            _parameter("Authorization", "header", "Bearer <session token>"),
            _parameter("after", "query", "records after this number (default 0)"),
            _parameter("limit", "query", "at most this many records, 1 to 1000 (default 100)", 1),
        ]
    },
)


@router.post("/containers/{container_id}/records", status_code=201, responses=_REFUSALS)
def write_records(
    container_id: str,
    host: HostDep,
    records: Annotated[list[dict[str, Any]], Body(description="records to append")],
    authorization: Annotated[str | None, Header(description="Bearer <session token>")] = None,
) -> Any:
    """Append records for a writer's session; their registration is anchored on the ledger."""
    try:
        registration = host.write(_bearer(authorization), container_id, records)
    except EvgiError as exc:
        return _problem(exc)
    return _json(
        {
            "registration": registration.hash,
            "records": list(registration.records),
            "block": registration.receipt.block,
        },
        201,
    )


@router.get("/containers/{container_id}/access-log", responses=_REFUSALS)
def access_log(
    container_id: str,
    host: HostDep,
    authorization: Annotated[str | None, Header(description="Bearer <session token>")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Any:
    """Who accessed the container, what they did and when, refusals included (newest first),
    for an auditor's session: the owner's, or one an AC with role auditor allows."""
    try:
        entries = host.audit(_bearer(authorization), container_id, limit)
    except EvgiError as exc:
        return _problem(exc)
    return _json(
        {"container": container_id, "entries": [e.to_json(host.chain_id) for e in entries]}
    )


class HotRoutes:
    """Unlock and record reads, the two requests of every data exchange, as routes of the front
    `evgi serve` runs ahead of FastAPI (`evgi.api.hot_path.HotPath`). The routes declared above
    document them and serve them without the front; both call `unlock_answer` and
    `records_answer`.
    """

    def __init__(self, app: FastAPI, prefix: str) -> None:
        self.app = app
        self._unlock = f"{prefix}/unlock"
        self._containers = f"{prefix}/containers/"

    async def __call__(self, scope: Scope, receive: Receive) -> HotAnswer | None:
        path: str = scope["path"]
        method: str = scope["method"]
        if method == "POST" and path == self._unlock:
            body = await read_body(receive, MAX_UNLOCK_BYTES)
            return HotAnswer(*unlock_answer(data_host(self.app), body))
        container_id = path[len(self._containers) : -len("/records")]
        if (
            method == "GET"
            and path.startswith(self._containers)
            and path.endswith("/records")
            and container_id
            and "/" not in container_id
        ):
            query_string: bytes = scope["query_string"]
            query = dict(parse_qsl(query_string.decode("latin-1"), True)) if query_string else {}
            return HotAnswer(
                *records_answer(
                    data_host(self.app),
                    container_id,
                    header(scope, b"authorization"),
                    query.get("after"),
                    query.get("limit"),
                )
            )
        return None

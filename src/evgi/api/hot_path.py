"""The ASGI front `evgi serve` runs ahead of FastAPI: a few hot routes (a data exchange's unlock
and reads, the OCSP requests of every Plug & Charge authorization) are answered here, and every
other request goes on to the FastAPI app.

FastAPI's middleware and its matching of the path against every route of every router cost more
than these requests' own checks do. Each hot route is also declared on its router, which
documents it (OpenAPI) and serves it where the app runs without this front (in-process
scenarios); both call the same answering function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send


class HotAnswer(NamedTuple):
    status: int
    body: bytes
    media_type: str = "application/json"


class HotRoute(Protocol):
    """Answers the requests it serves; None leaves the request (and its body, unread) to the
    next route or to FastAPI."""

    async def __call__(self, scope: Scope, receive: Receive) -> HotAnswer | None: ...


class HotPath:
    """Asks each of `routes` in turn, then hands the request to `app`."""

    def __init__(self, app: ASGIApp, routes: Sequence[HotRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Mounted under a root path, the app's own routing applies.
        if scope["type"] == "http" and not scope.get("root_path"):
            for route in self.routes:
                answer = await route(scope, receive)
                if answer is not None:
                    await _respond(send, answer)
                    return
        await self.app(scope, receive, send)


def header(scope: Scope, name: bytes) -> str | None:
    """The last value of request header `name` (lower case)."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            found = value.decode("latin-1")
    return found


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request's body, or its first `limit` + 1 bytes (enough to refuse it as too long)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _respond(send: Send, answer: HotAnswer) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [
                (b"content-type", answer.media_type.encode("latin-1")),
                (b"content-length", str(len(answer.body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer.body})

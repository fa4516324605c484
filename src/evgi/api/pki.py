"""HTTP routes of the Plug & Charge PKI under /pki: each CA's OCSP responder (RFC 6960, POST
and GET forms), its CRL and its certificate, where the AIA and CRL distribution points of the
certificates it issued point.

Every Plug & Charge authorization asks OCSP about each certificate of its chain, so `evgi serve`
answers the OCSP requests in `OcspRoutes`, ahead of FastAPI; the routes here document them and
serve them without that front. An answer is one signature and at most a short indexed read, so
it runs on the event loop rather than pay for a thread hop.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from starlette.types import Receive, Scope

from evgi.api.hot_path import HotAnswer, header, read_body
from evgi.api.platform import kept_on_app
from evgi.core.errors import NotFoundError
from evgi.pnc import OCSP_REQUEST_TYPE, OCSP_RESPONSE_TYPE, Hierarchies, OcspResponder

# Far above a request about one certificate (about 100 bytes), with room for a signed one.
MAX_OCSP_REQUEST_BYTES = 16 * 1024


def ocsp_responder(app: FastAPI) -> OcspResponder:
    """The platform's responder over its hierarchies, made on first use and kept on the app."""

    def make_responder() -> OcspResponder:
        platform = app.state.platform
        return OcspResponder(Hierarchies(platform.settings, platform.db))

    return kept_on_app(app, "ocsp_responder", make_responder)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Close the responder, if one was made, when the service stops."""
    try:
        yield
    finally:
        responder: OcspResponder | None = getattr(app.state, "ocsp_responder", None)
        if responder is not None:
            app.state.ocsp_responder = None
            responder.close()


router = APIRouter(tags=["pki"], lifespan=lifespan)


def current_responder(request: Request) -> OcspResponder:
    return ocsp_responder(request.app)


ResponderDep = Annotated[OcspResponder, Depends(current_responder)]


def _ocsp(body: bytes) -> Response:
    return Response(body, media_type=OCSP_RESPONSE_TYPE)


def _is_ocsp_request(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip() == OCSP_REQUEST_TYPE


def _from_path(encoded: str) -> bytes:
    """The DER request of the GET form, base64- then URL-encoded (RFC 6960 A.1), from a path the
    server has already percent-decoded (as ASGI has it); b"" when it is not one, which the
    responder answers with malformedRequest."""
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return b""


@router.post("/ocsp/{ca}", response_class=Response)
async def ocsp_post(ca: str, request: Request, responder: ResponderDep) -> Response:
    """An OCSP request in the body (application/ocsp-request); malformed ones get the
    protocol's own malformedRequest answer."""
    if not _is_ocsp_request(request.headers.get("content-type")):
        raise HTTPException(415, f"send the OCSP request as {OCSP_REQUEST_TYPE}")
    return _ocsp(responder.respond(ca, await request.body()))


@router.get("/ocsp/{ca}/{encoded:path}", response_class=Response)
def ocsp_get(ca: str, encoded: str, responder: ResponderDep) -> Response:
    """The GET form: the DER request base64- then URL-encoded in the path (RFC 6960 A.1)."""
    return _ocsp(responder.respond(ca, _from_path(encoded)))


class OcspRoutes:
    """`ocsp_post` and `ocsp_get` as routes of the front `evgi serve` runs ahead of FastAPI
    (`evgi.api.hot_path.HotPath`). A POST of another content type is left to `ocsp_post`,
    which refuses it."""

    def __init__(self, app: FastAPI, prefix: str) -> None:
        self.app = app
        self._ocsp = f"{prefix}/ocsp/"

    async def __call__(self, scope: Scope, receive: Receive) -> HotAnswer | None:
        path: str = scope["path"]
        if not path.startswith(self._ocsp):
            return None
        ca, slash, encoded = path[len(self._ocsp) :].partition("/")
        method: str = scope["method"]
        if not ca:
            return None
        if method == "GET" and encoded:
            der = _from_path(encoded)
        elif method == "POST" and not slash and _is_ocsp_request(header(scope, b"content-type")):
            der = await read_body(receive, MAX_OCSP_REQUEST_BYTES)
            if len(der) > MAX_OCSP_REQUEST_BYTES:
                der = b""
        else:
            return None
        return HotAnswer(200, ocsp_responder(self.app).respond(ca, der), OCSP_RESPONSE_TYPE)


@router.get("/crl/{ca}.crl", response_class=Response)
def crl(ca: str, responder: ResponderDep) -> Response:
    """CA `ca`'s current CRL, DER."""
    try:
        body = responder.hierarchies.crl(ca).public_bytes(serialization.Encoding.DER)
    except NotFoundError as exc:
        raise HTTPException(404, exc.message) from exc
    return Response(body, media_type="application/pkix-crl")


@router.get("/ca/{ca}.pem", response_class=Response)
def ca_certificate(ca: str, responder: ResponderDep) -> Response:
    """CA `ca`'s certificate, PEM."""
    try:
        certificate = responder.hierarchies.get(ca).certificate
    except NotFoundError as exc:
        raise HTTPException(404, exc.message) from exc
    return Response(
        certificate.public_bytes(serialization.Encoding.PEM), media_type="application/x-pem-file"
    )

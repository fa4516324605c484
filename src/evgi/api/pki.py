"""HTTP routes of the Plug & Charge PKI under /pki: each CA's OCSP responder (RFC 6960, POST
and GET forms), its CRL and its certificate, where the AIA and CRL distribution points of the
certificates it issued point."""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response

from evgi.core.errors import NotFoundError
from evgi.pnc import OCSP_REQUEST_TYPE, OCSP_RESPONSE_TYPE, Hierarchies, OcspResponder

T = TypeVar("T")
# Re-entrant: making one service may ask for another kept the same way.
_lock = threading.RLock()
router = APIRouter(tags=["pki"])


def kept_on_app(app: FastAPI, name: str, make: Callable[[], T]) -> T:
    """`app.state.<name>`, made on first use under a lock so that concurrent first requests
    share one instance."""
    kept: T | None = getattr(app.state, name, None)
    if kept is None:
        with _lock:
            kept = getattr(app.state, name, None)
            if kept is None:
                kept = make()
                setattr(app.state, name, kept)
    return kept


def ocsp_responder(app: FastAPI) -> OcspResponder:
    """The platform's responder over its hierarchies, made on first use and kept on the app."""

    def make_responder() -> OcspResponder:
        platform = app.state.platform
        return OcspResponder(Hierarchies(platform.settings, platform.db))

    return kept_on_app(app, "ocsp_responder", make_responder)


def current_responder(request: Request) -> OcspResponder:
    return ocsp_responder(request.app)


ResponderDep = Annotated[OcspResponder, Depends(current_responder)]


def _ocsp(body: bytes) -> Response:
    return Response(body, media_type=OCSP_RESPONSE_TYPE)


@router.post("/ocsp/{ca}", response_class=Response)
async def ocsp_post(ca: str, request: Request, responder: ResponderDep) -> Response:
    """An OCSP request in the body (application/ocsp-request); malformed ones get the
    protocol's own malformedRequest answer."""
    if request.headers.get("content-type", "").split(";")[0].strip() != OCSP_REQUEST_TYPE:
        raise HTTPException(415, f"send the OCSP request as {OCSP_REQUEST_TYPE}")
    return _ocsp(responder.respond(ca, await request.body()))


@router.get("/ocsp/{ca}/{encoded:path}", response_class=Response)
def ocsp_get(ca: str, encoded: str, responder: ResponderDep) -> Response:
    """The GET form: the DER request base64- then URL-encoded in the path (RFC 6960 A.1)."""
    try:
        der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    return _ocsp(responder.respond(ca, der))


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

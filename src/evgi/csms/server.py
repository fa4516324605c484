"""The OCPP WebSocket endpoint: `ws[s]://host:port/ocpp/{station_id}`.

The HTTP upgrade is where stations are told apart and authenticated (security profiles 1-3):
an unknown station gets 404 (or is let in as Pending, by configuration), missing or wrong
Basic credentials 401. Subprotocol negotiation follows OCPP-J: a client that offers no version
the server speaks gets a handshake without Sec-WebSocket-Protocol, then a close with 1002.
With an `ssl.SSLContext` the same server does TLS; under profile 3 the client certificate
(DER) is checked against the station id by `certificate_check` and handed to the station.
"""

from __future__ import annotations

import asyncio
import gc
import ssl
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import unquote

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from evgi.csms.charge_point import ChargePoint, Services
from evgi.csms.connection import OcppLink
from evgi.csms.credentials import basic_credentials, verify_password
from evgi.csms.protocol import SUBPROTOCOLS, OcppVersion
from evgi.csms.registry import StationRegistry
from evgi.csms.schemas import Schemas
from evgi.storage.charging import Station

log = structlog.get_logger(__name__)

PATH_PREFIX = "/ocpp/"
MAX_STATION_ID = 48  # OCPP: a charging station identity has at most 48 characters
# Under load every connected station has a call in flight, each holding dozens of small objects
# across the collector's youngest-generation passes (every 700 allocations by default); they get
# promoted, and the full collections that follow pause every station for 0.2 s or more every few
# seconds. With this first threshold in-flight calls die young.
GC_YOUNG_THRESHOLD = 20_000
# Raises when a client certificate does not belong to the station id (profile 3).
CertificateCheck = Callable[[bytes, str], None]
ChargePointFactory = Callable[[Station, Services, bytes | None], ChargePoint]


@dataclass(frozen=True)
class _Admission:
    station: Station
    certificate: bytes | None


class OcppServer:
    def __init__(
        self,
        services: Services,
        registry: StationRegistry,
        charge_points: dict[OcppVersion, ChargePointFactory],
        ssl_context: ssl.SSLContext | None = None,
        certificate_check: CertificateCheck | None = None,
    ) -> None:
        self._services = services
        self._registry = registry
        self._charge_points = charge_points
        self._ssl = ssl_context
        self._certificate_check = certificate_check
        self._schemas = Schemas()
        self._admissions: weakref.WeakKeyDictionary[ServerConnection, _Admission] = (
            weakref.WeakKeyDictionary()
        )
        self._server: Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (useful when started on port 0)."""
        if self._server is None:
            raise RuntimeError("the OCPP server is not running")
        port: int = next(iter(self._server.sockets)).getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> None:
        settings = self._services.settings
        _tune_collector()
        self._server = await serve(
            self._handle,
            host,
            port,
            ssl=self._ssl,
            subprotocols=[Subprotocol(s) for s in SUBPROTOCOLS],
            select_subprotocol=_select_subprotocol,
            process_request=self._process_request,
            max_size=settings.ocpp_max_message_size,
            compression=None,
            server_header=None,
        )
        scheme = "wss" if self._ssl else "ws"
        log.info("ocpp server listening", url=f"{scheme}://{host}:{self.port}/ocpp/{{id}}")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # the HTTP upgrade

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        station_id = _station_id(request.path)
        if station_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "not an OCPP endpoint\n")
        store = self._services.store
        station = await store.apply(store.find_station, station_id)
        if station is None:
            if self._services.settings.ocpp_unknown_stations == "reject":
                log.warning("unknown station refused", station=station_id)
                return connection.respond(HTTPStatus.NOT_FOUND, "unknown station\n")
            station = await store.apply(
                store.add_station, station_id, None, 0, "Pending", self._services.clock.now()
            )
            log.info("unknown station admitted as pending", station=station_id)
        certificate = _peer_certificate(connection)
        refusal = await self._authenticate(station, request, certificate)
        if refusal is not None:
            log.warning("station refused", station=station_id, reason=refusal)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, refusal + "\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="OCPP", charset="UTF-8"'
            return response
        self._admissions[connection] = _Admission(station, certificate)
        return None

    async def _authenticate(
        self, station: Station, request: Request, certificate: bytes | None
    ) -> str | None:
        """None when the connection meets the station's security profile, else why not."""
        profile = station.security_profile
        if profile >= 2 and self._ssl is None:
            return f"security profile {profile} needs TLS"
        if profile == 3:
            if certificate is None or self._certificate_check is None:
                return "security profile 3 needs a client certificate"
            try:
                self._certificate_check(certificate, station.id)
            except Exception as exc:  # the check names what is wrong with the certificate
                return f"client certificate refused: {exc}"
            return None
        if station.password_hash is None:
            return None if profile == 0 else "no password registered for this station"
        credentials = basic_credentials(request.headers.get("Authorization"))
        if credentials is None:
            return "HTTP Basic authentication required"
        user, password = credentials
        if user != station.id:
            return "the user name must be the station id"
        if not await asyncio.to_thread(verify_password, password, station.password_hash):
            return "wrong password"
        return None

    # the WebSocket connection

    async def _handle(self, socket: ServerConnection) -> None:
        admission = self._admissions.pop(socket)
        station = admission.station
        if socket.subprotocol is None:
            log.warning(
                "no common subprotocol",
                station=station.id,
                offered=socket.request.headers.get("Sec-WebSocket-Protocol")
                if socket.request
                else None,
            )
            await socket.close(CloseCode.PROTOCOL_ERROR, "no supported OCPP version offered")
            return
        version = OcppVersion(socket.subprotocol)
        charge_point = self._charge_points[version](station, self._services, admission.certificate)
        link = OcppLink(
            station.id,
            charge_point.dialect,
            socket,
            charge_point,
            self._schemas,
            self._registry.answers(station.id),
            self._services.settings.ocpp_call_timeout,
        )
        charge_point.link = link
        await charge_point.resume()
        store, clock = self._services.store, self._services.clock
        previous = self._registry.attach(charge_point)
        if previous is not None and previous.link is not None:
            log.info("station reconnected: closing its older connection", station=station.id)
            await previous.link.close(CloseCode.NORMAL_CLOSURE, "replaced by a new connection")
        await store.apply(store.record_connection, station.id, version.value, True, clock.now())
        log.info("station connected", station=station.id, version=version.value)
        try:
            await link.serve()
        finally:
            if self._registry.detach(charge_point):
                await store.apply(
                    store.record_connection, station.id, version.value, False, clock.now()
                )
            log.info("station disconnected", station=station.id, code=socket.close_code)


def _tune_collector() -> None:
    """Raise the collector's first threshold to GC_YOUNG_THRESHOLD, never lower it."""
    young, middle, old = gc.get_threshold()
    if 0 < young < GC_YOUNG_THRESHOLD:
        gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def _select_subprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Subprotocol | None:
    """The newest version both sides speak; None lets `_handle` close with 1002."""
    for name in SUBPROTOCOLS:
        if name in offered:
            return Subprotocol(name)
    return None


def _station_id(path: str) -> str | None:
    if not path.startswith(PATH_PREFIX):
        return None
    station_id = unquote(path[len(PATH_PREFIX) :].partition("?")[0])
    if not station_id or len(station_id) > MAX_STATION_ID or any(c in station_id for c in "/:"):
        return None
    return station_id


def _peer_certificate(connection: ServerConnection) -> bytes | None:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der

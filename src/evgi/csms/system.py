"""The CSMS as one object: its store, station registry, commands, authorization and server."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine
from websockets.frames import CloseCode

from evgi.config import Settings
from evgi.core.clock import Clock
from evgi.core.errors import ValidationError
from evgi.core.events import EventBus
from evgi.csms import v16, v21, v201
from evgi.csms.authorization import Authorization
from evgi.csms.charge_point import Services
from evgi.csms.charging_sessions import ChargingSessions
from evgi.csms.commands import Commands
from evgi.csms.composite_schedule import CompositeSchedule, Unit, composite_schedule
from evgi.csms.credentials import hash_password
from evgi.csms.errors import StationOffline
from evgi.csms.protocol import OcppVersion
from evgi.csms.registry import StationRegistry
from evgi.csms.security import check_station_certificate, server_ssl_context
from evgi.csms.server import CertificateCheck, ChargePointFactory, OcppServer
from evgi.pnc import csms_authority
from evgi.storage.charging import (
    ChargingProfileRecord,
    ChargingStore,
    ChargingTransaction,
    IdToken,
    Station,
)

CHARGE_POINTS: dict[OcppVersion, ChargePointFactory] = {
    OcppVersion.V16: v16.ChargePoint,
    OcppVersion.V201: v201.ChargePoint,
    OcppVersion.V21: v21.ChargePoint,
}
BOOT_STATUSES = ("Accepted", "Pending", "Rejected")
TOKEN_STATUSES = (
    "Accepted",
    "Blocked",
    "Expired",
    "Invalid",
    "NoCredit",
    "NotAllowedTypeEVSE",
    "NotAtThisLocation",
    "NotAtThisTime",
    "Unknown",
)


class Csms:
    """Build one per platform; `store`, `registry`, `commands` and `authorization` are the
    entry points for the operator API, settlement and the simulator."""

    def __init__(self, settings: Settings, db: Engine, bus: EventBus, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.store = ChargingStore(db)
        self.registry = StationRegistry()
        self.authorization = Authorization(self.store, clock)
        self.commands = Commands(self.registry, self.store)
        self.services = Services(
            settings,
            self.store,
            bus,
            clock,
            self.authorization,
            ChargingSessions(self.store, bus, clock),
        )
        self._server: OcppServer | None = None

    # registration, for the CLI and the operator API

    def add_station(
        self,
        station_id: str,
        password: str | None = None,
        security_profile: int | None = None,
        boot_status: str = "Accepted",
    ) -> Station:
        """Register a station; with a password its profile defaults to 1 (Basic auth)."""
        if security_profile is None:
            security_profile = 1 if password is not None else 0
        if security_profile not in (0, 1, 2, 3):
            raise ValidationError("security profile is 0, 1, 2 or 3")
        if security_profile in (1, 2) and password is None:
            raise ValidationError(f"security profile {security_profile} needs a password")
        if boot_status not in BOOT_STATUSES:
            raise ValidationError(f"boot status is one of {', '.join(BOOT_STATUSES)}")
        hashed = None if password is None else hash_password(password)
        return self.store.run(
            self.store.add_station,
            station_id,
            hashed,
            security_profile,
            boot_status,
            self.clock.now(),
        )

    def add_token(
        self,
        token: str,
        status: str = "Accepted",
        expires_at: datetime | None = None,
        group_id: str | None = None,
        token_type: str = "ISO14443",
    ) -> IdToken:
        if status not in TOKEN_STATUSES:
            raise ValidationError(f"token status is one of {', '.join(TOKEN_STATUSES)}")
        return self.store.run(
            self.store.put_token, token, status, self.clock.now(), token_type, expires_at, group_id
        )

    def composite_schedule(
        self,
        station_id: str,
        evse_id: int,
        duration: int,
        unit: Unit | None = None,
        start: datetime | None = None,
    ) -> CompositeSchedule:
        """An EVSE's composite schedule from `start` (default now), computed by the CSMS from
        the profiles the station accepted and the EVSE's active transaction."""
        store = self.store

        def inputs(
            conn: Connection,
        ) -> tuple[list[ChargingProfileRecord], ChargingTransaction | None]:
            store.station(conn, station_id)  # NotFoundError for an unknown station
            active = [
                tx
                for tx in store.transactions(conn, station_id, state="active")
                if tx.evse_id == evse_id
            ]
            return store.profiles(conn, station_id), active[-1] if active else None

        profiles, transaction = store.run(inputs)
        return composite_schedule(
            profiles,
            evse_id,
            self.clock.now() if start is None else start,
            duration,
            unit,
            transaction,
            self.settings.ocpp_nominal_voltage,
        )

    async def disconnect(self, station_id: str, reason: str) -> bool:
        """Close a station's connection, if it has one; False when it had none. A station may
        connect again at once: change or remove its registration first to keep it out."""
        try:
            link = self.registry.get(station_id).link
        except StationOffline:
            return False
        if link is None:
            return False
        await link.close(CloseCode.NORMAL_CLOSURE, reason)
        return True

    # the OCPP server

    async def start(
        self,
        host: str | None = None,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certificate_check: CertificateCheck | None = None,
    ) -> OcppServer:
        """Listen for stations (settings' host and port unless given; port 0 picks one)."""
        if self._server is not None:
            raise RuntimeError("the OCPP server is already running")
        await self.store.apply(self.store.mark_all_disconnected)
        server = OcppServer(
            self.services, self.registry, CHARGE_POINTS, ssl_context, certificate_check
        )
        await server.start(
            host or self.settings.ocpp_host, self.settings.ocpp_port if port is None else port
        )
        self._server = server
        return server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None
        self.store.close()

    @asynccontextmanager
    async def running(
        self,
        host: str | None = None,
        port: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        certificate_check: CertificateCheck | None = None,
    ) -> AsyncIterator[OcppServer]:
        server = await self.start(host, port, ssl_context, certificate_check)
        try:
            yield server
        finally:
            await self.stop()


def ocpp_tls(settings: Settings) -> tuple[ssl.SSLContext | None, CertificateCheck | None]:
    """TLS for the OCPP server when `ocpp_tls` is set: a server certificate from the CSMS root
    CA; a client certificate is asked for but optional, since profile 2 stations have none,
    and a profile 3 station's is checked against its id."""
    if not settings.ocpp_tls:
        return None, None
    authority = csms_authority(settings)
    context = server_ssl_context(authority, True, settings.tls_host_names)
    context.verify_mode = ssl.CERT_OPTIONAL

    def check(der: bytes, station_id: str) -> None:
        check_station_certificate(der, station_id, authority)

    return context, check

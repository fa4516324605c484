"""A connected station as the CSMS sees it: the base that each version's functional blocks extend.

Each OCPP version has a package (`v16`, `v201`, `v21`) with one module per functional block;
a block is a mixin of this class holding the block's `@on` handlers (calls from the station)
and its commands (calls to the station). The version's `ChargePoint` composes the blocks,
which between them implement every command.
"""

from __future__ import annotations

import asyncio
import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar, cast

import structlog
from ocpp import routing
from ocpp.exceptions import SecurityError
from sqlalchemy import Connection

from evgi.config import Settings
from evgi.core.clock import Clock
from evgi.core.events import EventBus
from evgi.csms.authorization import Authorization, AuthorizationRequest, TokenDecision
from evgi.csms.charging_sessions import ChargingSessions
from evgi.csms.connection import OcppLink, Route
from evgi.csms.errors import StationOffline
from evgi.csms.events import StationBooted, StationStatusChanged
from evgi.csms.protocol import Dialect
from evgi.pnc import CertificateError, csms_authority
from evgi.storage.charging import ChargingStore, IdToken, Station, VariableRecord

F = TypeVar("F", bound=Callable[..., Any])
log = structlog.get_logger(__name__)
LAST_SEEN_STEP = timedelta(minutes=1)
P = ParamSpec("P")
T = TypeVar("T")


def on(action: str) -> Callable[[F], F]:
    """The `ocpp` library's `@on` route decorator, typed."""
    return cast(Callable[[F], F], routing.on(action))


@dataclass(frozen=True)
class Services:
    """What every connected station's handlers work with."""

    settings: Settings
    store: ChargingStore
    bus: EventBus
    clock: Clock
    authorization: Authorization
    sessions: ChargingSessions


@dataclass(frozen=True)
class VariableRef:
    """A device-model variable (2.x) or, with component "", a configuration key (1.6)."""

    component: str
    variable: str
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    attribute_type: str = "Actual"


@functools.cache
def _handlers(cls: type) -> dict[str, Callable[..., Any]]:
    """A class's `@on` handlers by action, found once per class: the library's route map, built
    per instance, holds bound methods and costs every connected station ~4 KB."""
    return {
        action: entry["_on_action"]
        for action, entry in routing.create_route_map(cls).items()
        if "_on_action" in entry
    }


class ChargePoint(ABC):
    dialect: ClassVar[Dialect]

    def __init__(
        self, station: Station, services: Services, peer_certificate: bytes | None = None
    ) -> None:
        self.id = station.id
        self.services = services
        # DER client certificate of a security profile 3 connection.
        self.peer_certificate = peer_certificate
        # Only a station whose boot was accepted may send anything but BootNotification.
        self.accepted = station.boot_status == "Accepted" and station.last_boot_at is not None
        self.link: OcppLink | None = None
        self._follow_ups: list[Callable[[], Awaitable[None]]] = []
        self._follow_up_tasks: set[asyncio.Task[None]] = set()
        # Connector states as stored, so an unchanged status costs no write; see `resume`.
        self._connectors: dict[tuple[int, int], tuple[str, str | None, str | None, str | None]] = {}
        self._last_seen_written: datetime | None = None

    async def resume(self) -> None:
        """Load what is stored about the station's connectors, once it has connected."""
        connectors = await self.store(self.services.store.connectors, self.id)
        self._connectors = {
            (c.evse_id, c.connector_id): (c.status, c.error_code, c.info, c.vendor_error_code)
            for c in connectors
        }

    # answering the station

    def route(self, action: str) -> Route | None:
        handler = _handlers(type(self)).get(action)
        return None if handler is None else cast(Route, handler.__get__(self, type(self)))

    def after_answer(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` once the answer to the current call has been sent, as OCPP orders e.g.
        SignCertificate.conf before CertificateSigned.req."""
        self._follow_ups.append(step)

    def answer_sent(self) -> None:
        steps, self._follow_ups = self._follow_ups, []
        for step in steps:
            task = asyncio.create_task(self._follow_up(step))
            self._follow_up_tasks.add(task)
            task.add_done_callback(self._follow_up_tasks.discard)

    async def _follow_up(self, step: Callable[[], Awaitable[None]]) -> None:
        try:
            await step()
        except Exception:
            log.exception("follow-up call failed", station=self.id)

    def admit(self, action: str) -> None:
        if not self.accepted and action != "BootNotification":
            raise SecurityError(details={"cause": "BootNotification not accepted yet"})

    # helpers for the blocks

    def now(self) -> datetime:
        return self.services.clock.now()

    async def store(
        self, op: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run a storage operation; it has committed when this returns."""
        return await self.services.store.apply(op, *args, **kwargs)

    def publish(self, event: object) -> None:
        self.services.bus.publish(event)

    async def call(self, payload: Any, timeout: float | None = None) -> Any:
        """Send a request of this version (a `call` dataclass) and return the answer."""
        if self.link is None:
            raise StationOffline(f"station {self.id} is not connected")
        return await self.link.call(payload, timeout)

    # steps every version takes the same way

    async def record_boot(
        self,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str | None,
        reason: str | None,
    ) -> tuple[str, int]:
        """Store a boot; returns the status to answer and the interval to announce."""
        settings = self.services.settings
        station = await self.store(
            self.services.store.record_boot,
            self.id,
            self.dialect.version.value,
            vendor,
            model,
            serial_number,
            firmware_version,
            reason,
            self.now(),
        )
        self.accepted = station.boot_status == "Accepted"
        self.publish(
            StationBooted(
                self.id,
                self.dialect.version.value,
                vendor,
                model,
                serial_number,
                firmware_version,
                station.boot_status,
                self.now(),
            )
        )
        interval = (
            settings.ocpp_heartbeat_interval if self.accepted else settings.ocpp_boot_retry_interval
        )
        return station.boot_status, interval

    async def record_heartbeat(self) -> None:
        """Heartbeats carry nothing but the time: the last-seen time is written at most once
        a minute per station."""
        now = self.now()
        if self._last_seen_written is None or now - self._last_seen_written >= LAST_SEEN_STEP:
            await self.store(self.services.store.touch, self.id, now)
            self._last_seen_written = now

    async def record_connector_status(
        self,
        evse_id: int,
        connector_id: int,
        status: str,
        error_code: str | None = None,
        info: str | None = None,
        vendor_error_code: str | None = None,
    ) -> None:
        state = (status, error_code, info, vendor_error_code)
        known = self._connectors.get((evse_id, connector_id))
        if known == state:
            return  # stored already
        now = self.now()
        await self.store(
            self.services.store.record_connector_status,
            self.id,
            evse_id,
            connector_id,
            status,
            now,
            error_code,
            info,
            vendor_error_code,
        )
        self._connectors[(evse_id, connector_id)] = state
        if known is None or known[0] != status:
            self.publish(
                StationStatusChanged(
                    self.id,
                    evse_id,
                    connector_id,
                    status,
                    None if known is None else known[0],
                    error_code,
                    now,
                )
            )

    async def record_data_transfer(
        self, direction: str, vendor_id: str, message_id: str | None, data: Any, status: str | None
    ) -> None:
        await self.store(
            self.services.store.record_data_transfer,
            self.id,
            direction,
            vendor_id,
            message_id,
            data,
            status,
            self.now(),
        )

    async def record_firmware_log_status(
        self, kind: str, status: str, request_id: int | None = None
    ) -> None:
        await self.store(
            self.services.store.record_firmware_log_status,
            self.id,
            kind,
            status,
            self.now(),
            request_id,
        )

    async def sign_certificate(self, csr: str) -> CertificateError | None:
        """Sign the station's CSR with the CSMS root CA (CN must be this station's id); on
        success CertificateSigned follows the answer, on refusal the reason is returned."""
        settings = self.services.settings
        try:
            chain = await asyncio.to_thread(
                lambda: csms_authority(settings).sign_station_csr(csr, self.id)
            )
        except CertificateError as exc:
            log.warning("certificate signing refused", station=self.id, reason=exc.message)
            return exc

        async def install() -> None:
            answer = await self.certificate_signed(chain)
            log.info("station certificate sent", station=self.id, status=answer.status)

        self.after_answer(install)
        return None

    @abstractmethod
    async def certificate_signed(self, chain: str) -> Any:
        """Send the signed chain as this version's CertificateSigned."""

    async def record_security_event(
        self, event_type: str, timestamp: datetime, tech_info: str | None
    ) -> None:
        await self.store(
            self.services.store.record_security_event,
            self.id,
            event_type,
            timestamp,
            tech_info,
            self.now(),
        )

    async def record_profile_answer(
        self,
        status: str,
        evse_id: int,
        profile: dict[str, Any],
        purpose: str,
        transaction_id: str | None,
    ) -> None:
        """Keep a profile the station accepted, for the expected composite schedule."""
        if status == "Accepted":
            await self.store(
                self.services.store.install_profile,
                self.id,
                evse_id,
                profile,
                purpose,
                self.now(),
                transaction_id,
            )

    async def record_profiles_cleared(
        self,
        status: str,
        profile_id: int | None,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> None:
        if status == "Accepted":
            await self.store(
                self.services.store.clear_profiles,
                self.id,
                profile_id,
                evse_id,
                purpose,
                stack_level,
            )

    async def record_reservation(
        self,
        status: str,
        reservation_id: int,
        id_token: str,
        expires_at: datetime,
        evse_id: int | None,
    ) -> None:
        await self.store(
            self.services.store.put_reservation,
            self.id,
            reservation_id,
            evse_id,
            id_token,
            expires_at,
            status,
            self.now(),
        )

    async def record_reservation_status(self, reservation_id: int, status: str) -> None:
        await self.store(
            self.services.store.set_reservation_status, self.id, reservation_id, status, self.now()
        )

    async def record_local_list(
        self, status: str, version: int, tokens: list[IdToken], full: bool
    ) -> None:
        if status == "Accepted":
            await self.store(
                self.services.store.record_local_list,
                self.id,
                version,
                {t.token: t.status for t in tokens},
                full,
                self.now(),
            )

    async def record_variables(self, variables: list[VariableRecord]) -> None:
        await self.store(self.services.store.record_variables, self.id, variables, self.now())

    async def authorize(
        self, id_token: str, evse_id: int | None = None, starting: bool = False
    ) -> TokenDecision:
        return await self.services.authorization.decide(
            AuthorizationRequest(self.id, id_token, evse_id, starting)
        )

    # commands: each version's blocks implement them all

    @abstractmethod
    async def change_availability(self, operative: bool, evse_id: int | None) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def reset(self, immediate: bool, evse_id: int | None) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def remote_start(
        self,
        id_token: str,
        evse_id: int | None,
        remote_start_id: int,
        charging_profile: dict[str, Any] | None,
    ) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def remote_stop(self, transaction_id: str) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def unlock(self, evse_id: int, connector_id: int) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def trigger(self, message: str, evse_id: int | None) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def get_variables(self, refs: list[VariableRef]) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def set_variables(self, values: list[tuple[VariableRef, str]]) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def get_report(self, request_id: int) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def send_local_list(self, version: int, tokens: list[IdToken], full: bool) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def get_local_list_version(self) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def clear_cache(self) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def set_charging_profile(self, evse_id: int, profile: dict[str, Any]) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def clear_charging_profile(
        self,
        profile_id: int | None,
        evse_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def composite_schedule(self, evse_id: int, duration: int, unit: str | None) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def reserve(
        self, reservation_id: int, id_token: str, expires_at: datetime, evse_id: int | None
    ) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def cancel_reservation(self, reservation_id: int) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def update_firmware(self, location: str, retrieve_at: datetime, request_id: int) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def get_log(self, location: str, request_id: int) -> Any:
        """See `Commands`."""

    @abstractmethod
    async def data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        """See `Commands`."""

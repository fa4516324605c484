"""A simulated charging station: the behaviour every OCPP version shares.

A `Station` is the `ocpp` library's ChargePoint (client side) on a `websockets` connection,
plus EVSEs with meters, RFID sessions, smart charging, reservations, local authorization and an
outbox that keeps transaction messages in order across outages. The version modules (`v16`,
`v201`, `v21`) add the messages and the `@on` handlers in their own protocol's words.

Time comes from a `Clock`: with a `SimulatedClock` the station advances it itself, so an hour
of charging with a meter sample every minute takes milliseconds.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import uuid
from abc import ABCMeta, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from ssl import SSLContext
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

import structlog
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from ocpp.charge_point import ChargePoint
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, unpack
from ocpp.routing import on as ocpp_on
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from evgi.core.clock import Clock, SimulatedClock, SystemClock
from evgi.core.errors import EvgiError
from evgi.core.units import WattHours
from evgi.sim.stations import transfer
from evgi.sim.stations.authorization import LocalAuthorization, Verdict
from evgi.sim.stations.certificate import CertificateRefused, accept_chain, signing_request
from evgi.sim.stations.charging_profile import ChargingProfile, ChargingProfiles, Purpose, Rating
from evgi.sim.stations.configuration import Configuration, station_settings
from evgi.sim.stations.connector import ConnectorStatus, Evse, PendingStart, Reservation
from evgi.sim.stations.contract import ContractVehicle
from evgi.sim.stations.meter import Reading
from evgi.sim.stations.outbox import Offline, Outbox, QueuedMessage, Refused
from evgi.sim.stations.schema import MessageKind, MessageSchemas, SchemaViolation
from evgi.sim.stations.session import Session, StartTrigger, StopReason
from evgi.sim.stations.vehicle import Vehicle

log = structlog.get_logger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
# An EVSE's power stage (its converter, or the EV's inverter for AC): given the station's
# setpoint in W (import positive), the power that flows, also in W, import positive.
PowerStage = Callable[[float], float]

# How far simulated time moves in one step of a charge: short enough for the EV's taper.
SIMULATED_STEP = timedelta(seconds=60)
REAL_STEP = timedelta(seconds=1)
BOOT_RETRY_S = 60


def on(action: str) -> Callable[[F], F]:
    """`ocpp.routing.on` with a type: the library ships without type information."""
    decorate: Callable[[F], F] = ocpp_on(action)
    return decorate


def ocpp_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds, the form every OCPP schema's date-time accepts."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class StationError(EvgiError):
    """A scenario asked the station for something a real one could not do."""

    code = "station"


class BootRefused(StationError):
    """The CSMS did not accept the station within the attempts allowed."""

    code = "boot_refused"


@dataclass(frozen=True)
class EvseSpec:
    """What an EVSE is built as."""

    max_power_w: int = 22_000
    dc: bool = False
    phases: int = 3
    evse_id: str | None = None


@dataclass(frozen=True)
class BootResult:
    status: str
    interval: int


class Station(ChargePoint, metaclass=ABCMeta):  # type: ignore[misc]  # ocpp has no type hints
    """Behaviour shared by the OCPP versions; subclasses speak one version each."""

    version: ClassVar[str]
    subprotocol: ClassVar[str]
    # The ocpp library finds payload and result classes through these (see ocpp.v16.ChargePoint).
    _call: ClassVar[Any]
    _call_result: ClassVar[Any]
    _ocpp_version: ClassVar[str]

    def __init__(
        self,
        station_id: str,
        url: str,
        *,
        password: str | None = None,
        ssl: SSLContext | None = None,
        clock: Clock | None = None,
        evses: Sequence[EvseSpec] = (EvseSpec(),),
        vendor: str = "evgi",
        model: str = "evgi-sim",
        serial_number: str | None = None,
        firmware: str = "1.0.0",
        response_timeout: float = 30.0,
    ) -> None:
        super().__init__(station_id, None, response_timeout=response_timeout)
        if not evses:
            raise StationError("a station needs at least one EVSE")
        self.url = url.rstrip("/")
        self.password = password
        self.ssl = ssl
        self.clock: Clock = clock or SystemClock()
        self.vendor = vendor
        self.model = model
        self.serial_number = serial_number or f"SIM-{station_id}"
        self.firmware = firmware
        self.evses = {
            n: Evse(n, spec.max_power_w, spec.dc, spec.phases, spec.evse_id)
            for n, spec in enumerate(evses, start=1)
        }
        self.security_profile = (
            (2 if password is not None else 3) if ssl is not None else (1 if password else 0)
        )
        self.config = Configuration(
            station_settings(
                station_id, len(evses), self.security_profile, any(s.dc for s in evses)
            )
        )
        self.authorization = LocalAuthorization(self.config.integer("local_list_max"))
        self.profiles = ChargingProfiles(
            self.config.integer("max_stack_level"), self.config.integer("max_periods")
        )
        self.outbox = Outbox()
        self.schemas = MessageSchemas(self.version)
        self.schema_violations: list[SchemaViolation] = []
        self.messages_checked = 0
        self.sessions: list[Session] = []
        self.registration = "Unknown"
        self.operative = True
        self.firmware_status = "Idle"
        self.upload_status = "Idle"
        self.certificates: list[x509.Certificate] = []
        self.message_log: collections.deque[str] = collections.deque(maxlen=2000)
        self.reboots = 0
        self._csr_key: ec.EllipticCurvePrivateKey | None = None
        self._boot_reason = "PowerUp"
        self._booted = False
        self._connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._link_down: asyncio.Future[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._ticking = False
        self._last_contact = self.clock.now()
        self._sample_due: dict[int, datetime] = {}
        self._in_flight: dict[str, str] = {}
        self._followups: list[Callable[[], Awaitable[None]]] = []
        self._tasks: set[asyncio.Future[None]] = set()
        self._change = asyncio.Event()
        self._boot_now = asyncio.Event()
        self._reboot_when_idle: StopReason | None = None

    # -- state a scenario reads ---------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._connection is not None

    @property
    def booted(self) -> bool:
        return self._booted

    def evse(self, number: int = 1) -> Evse:
        try:
            return self.evses[number]
        except KeyError:
            raise StationError(f"station {self.id} has no EVSE {number}") from None

    def session(self, evse: int = 1) -> Session | None:
        return self.evse(evse).session

    async def until(self, condition: Callable[[], bool], timeout: float | None = 10.0) -> None:
        """Wait (in real time) until `condition` holds: for effects of CSMS-initiated commands."""

        async def watch() -> None:
            while not condition():
                change = self._change
                await change.wait()

        await asyncio.wait_for(watch(), timeout)

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    # -- the link -------------------------------------------------------------------------------

    async def connect(self, attempts: int | None = None) -> None:
        """Open the websocket and register (or, after an outage, resume): returns once the CSMS
        accepted the station, its statuses are reported and queued messages are delivered."""
        if not self.online:
            await self._open()
        if self._booted:
            await self._resume()
        else:
            await self._boot(attempts)
        if self._ticker is None and not isinstance(self.clock, SimulatedClock):
            self._ticker = asyncio.create_task(self._keep_time())

    async def disconnect(self) -> None:
        """Drop the link (a network outage): sessions go on, transaction messages queue up."""
        connection, reader = self._connection, self._reader
        if connection is not None:
            await connection.close()
        if reader is not None:
            await asyncio.gather(reader, return_exceptions=True)

    async def close(self) -> None:
        """Switch the station off."""
        for task in [*self._tasks, *([self._ticker] if self._ticker else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ticker is not None:
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        await self.disconnect()

    async def _open(self) -> None:
        headers = {}
        if self.password is not None:
            secret = base64.b64encode(f"{self.id}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {secret}"
        try:
            connection = await connect(
                f"{self.url}/{quote(self.id, safe='')}",
                subprotocols=[Subprotocol(self.subprotocol)],
                additional_headers=headers,
                ssl=self.ssl,
                open_timeout=10,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise StationError(f"the CSMS refused station {self.id}: HTTP {status}") from exc
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise Offline(f"cannot reach the CSMS at {self.url}: {exc}") from exc
        if connection.subprotocol != self.subprotocol:
            await connection.close()
            raise StationError(f"the CSMS did not agree to {self.subprotocol}")
        self._connection = connection
        # Answers to calls made on an earlier connection must not match calls on this one.
        self._response_queue: asyncio.Queue[Any] = asyncio.Queue()
        self._link_down = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(connection))
        self._changed()

    async def _read(self, connection: ClientConnection) -> None:
        try:
            await self.start()
        except ConnectionClosed:
            pass
        except Exception:
            log.exception("station reader failed", station=self.id)
        finally:
            if self._connection is connection:
                self._connection = None
            if self._link_down is not None and not self._link_down.done():
                self._link_down.set_result(None)
            self._changed()

    async def _boot(self, attempts: int | None) -> None:
        tries = 0
        while True:
            tries += 1
            if not self.online:
                await self._open()
            self._boot_now.clear()
            try:
                result = await self._send_boot(self._boot_reason)
            except Refused as refusal:
                raise BootRefused(f"the CSMS refused the BootNotification: {refusal}") from refusal
            self.registration = result.status
            self._changed()
            if result.status == "Accepted":
                if result.interval > 0:
                    self.config.put("heartbeat_interval", result.interval)
                self._booted = True
                self._boot_reason = "PowerUp"
                await self._resume()
                return
            if attempts is not None and tries >= attempts:
                raise BootRefused(f"the CSMS answered {result.status} to {tries} boot(s)")
            wait = timedelta(seconds=result.interval if result.interval > 0 else BOOT_RETRY_S)
            if isinstance(self.clock, SimulatedClock):
                self.clock.advance(wait)
                wait = timedelta(milliseconds=50)  # a moment for the CSMS to provision us
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._boot_now.wait(), wait.total_seconds())

    async def _resume(self) -> None:
        for evse in self.evses.values():
            evse.reported = None
        await self._report_statuses()
        await self._flush()

    async def _report_statuses(self) -> None:
        for evse in self.evses.values():
            await self._refresh(evse)

    async def _keep_time(self) -> None:
        """With a wall clock, time passes by itself: heartbeats and expiries need a pulse."""
        while True:
            await asyncio.sleep(1)
            await self._tick()

    # -- messages -------------------------------------------------------------------------------

    async def _send(self, message: str) -> None:
        self.message_log.append(f"{ocpp_time(self.clock.now())} > {message}")
        await super()._send(message)

    async def route_message(self, raw_msg: str) -> None:
        """Check what the CSMS sent against the schemas, let the library dispatch it, then run
        what the handler left to do after its reply (OCPP wants the reply first)."""
        self.message_log.append(f"{ocpp_time(self.clock.now())} < {raw_msg}")
        self._check_schema(raw_msg)
        await super().route_message(raw_msg)
        followups, self._followups = self._followups, []
        for followup in followups:
            self._spawn(followup())
        self._changed()

    def _check_schema(self, raw: str) -> None:
        try:
            message = unpack(raw)
        except OCPPError:
            return  # not OCPP framing at all: the library logs and drops it
        kind: MessageKind
        if isinstance(message, Call):
            kind, action = "CALL", message.action
        elif isinstance(message, CallResult) and message.unique_id in self._in_flight:
            kind, action = "CALLRESULT", self._in_flight[message.unique_id]
        else:
            return
        self.messages_checked += 1
        violation = self.schemas.check(kind, action, message.payload)
        if violation is not None:
            log.error(
                "csms message violates the OCPP schema",
                station=self.id,
                kind=kind,
                action=action,
                problem=violation.problem,
            )
            self.schema_violations.append(violation)

    def _after_reply(self, followup: Callable[[], Awaitable[None]]) -> None:
        self._followups.append(followup)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, Offline):
            log.info("station offline, follow-up dropped", station=self.id)
        elif error is not None:
            log.error("station follow-up failed", station=self.id, error=repr(error))

    async def _request(self, payload: Any) -> Any:
        """Send a CALL and return its result: `Offline` without a link (or when it drops before
        the answer), `Refused` for a CALLERROR."""
        link_down = self._link_down
        if self._connection is None or link_down is None:
            raise Offline(f"station {self.id} is offline")
        action = type(payload).__name__
        unique_id = str(uuid.uuid4())
        self._in_flight[unique_id] = action
        call = asyncio.ensure_future(self.call(payload, suppress=False, unique_id=unique_id))
        try:
            await asyncio.wait({call, link_down}, return_when=asyncio.FIRST_COMPLETED)
            if not call.done():
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
                raise Offline(f"station {self.id} lost its link during {action}")
            try:
                result = call.result()
            except OCPPError as error:
                raise Refused(action, error.code, error.description) from error
            except (ConnectionClosed, TimeoutError) as exc:
                raise Offline(f"{action}: {exc}") from exc
        finally:
            self._in_flight.pop(unique_id, None)
        self._last_contact = self.clock.now()
        return result

    async def _notify(self, payload: Any) -> Any:
        """A message that is not worth keeping when it cannot go now (statuses are re-reported
        on reconnection, heartbeats are moot)."""
        if not self._booted:
            return None
        try:
            return await self._request(payload)
        except Offline:
            return None
        except Refused as refusal:
            log.warning("csms refused a message", station=self.id, error=str(refusal))
            return None

    async def _transaction_message(
        self,
        action: str,
        build: Callable[[], Any],
        on_result: Callable[[Any], None] | None = None,
    ) -> None:
        self.outbox.put(QueuedMessage(action, build, on_result))
        await self._flush()

    async def _flush(self) -> None:
        if self.online and self._booted:
            await self.outbox.flush(self._request)
            self._changed()

    # -- time -----------------------------------------------------------------------------------

    async def elapse(self, duration: timedelta | float) -> None:
        """Let time pass with nothing happening at the station (heartbeats, expiries)."""
        remaining = _as_delta(duration)
        while remaining > timedelta(0):
            step = min(remaining, self._step)
            await self._pass(step)
            remaining -= step

    @property
    def _step(self) -> timedelta:
        return SIMULATED_STEP if isinstance(self.clock, SimulatedClock) else REAL_STEP

    async def _pass(self, step: timedelta) -> None:
        if isinstance(self.clock, SimulatedClock):
            self.clock.advance(step)
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(step.total_seconds())
        await self._tick()

    async def _tick(self) -> None:
        if self._ticking:
            return
        self._ticking = True
        try:
            now = self.clock.now()
            timeout = timedelta(seconds=self.config.integer("connection_timeout"))
            for evse in self.evses.values():
                reservation = evse.reservation
                if reservation is not None and now >= reservation.expires:
                    evse.reservation = None
                    await self._reservation_ended(reservation, "Expired")
                    await self._refresh(evse)
                pending = evse.pending
                if pending is not None and not evse.plugged and now - pending.since > timeout:
                    evse.pending = None
                    await self._refresh(evse)
            interval = self.config.integer("heartbeat_interval")
            if interval and self.online and now - self._last_contact >= timedelta(seconds=interval):
                await self._heartbeat()
            self._changed()
        finally:
            self._ticking = False

    async def _until(self, moment: datetime) -> None:
        await self.until(lambda: self.clock.now() >= moment, timeout=None)

    async def _triggered_boot(self) -> None:
        """TriggerMessage(BootNotification): a station still registering retries at once."""
        if not self._booted:
            self._boot_reason = "Triggered"
            self._boot_now.set()
            return
        result = await self._send_boot("Triggered")
        self.registration = result.status

    async def _heartbeat(self) -> None:
        self._last_contact = self.clock.now()  # one heartbeat per interval, answered or not
        await self._notify(self._call.Heartbeat())

    # -- what drivers do -------------------------------------------------------------------------

    async def plug_in(self, evse: int = 1, vehicle: Vehicle | None = None) -> None:
        """Plug an EV in; a session starts if its driver was already authorized."""
        target = self.evse(evse)
        if target.plugged:
            raise StationError(f"EVSE {evse} of {self.id} already has a cable plugged in")
        target.plugged, target.vehicle, target.finishing = True, vehicle, False
        if target.pending is not None and target.session is None and target.operative:
            await self._start(target, StartTrigger.CABLE_PLUGGED_IN)
        else:
            await self._refresh(target)

    async def present_token(
        self, token: str, evse: int | None = None, token_type: str = "ISO14443"
    ) -> str:
        """Hold an RFID card to the reader: authorizes a new session, or stops the session it
        started. Returns the authorization status ("Accepted", "Invalid", "Blocked", …)."""
        for candidate in self.evses.values():
            running = candidate.session
            if running is not None and running.token.upper() == token.upper():
                await self._stop(candidate, StopReason.LOCAL)
                return "Accepted"
        target = self.evse(evse) if evse is not None else self._free_evse()
        if target is None or target.session is not None:
            raise StationError(f"no free EVSE at {self.id} for token {token}")
        if not target.operative:
            return "Unavailable"
        return await self._admit(
            target, token, token_type, await self._authorize_token(token, token_type)
        )

    async def _admit(self, target: Evse, token: str, token_type: str, verdict: Verdict) -> str:
        """Act on the verdict on a token presented at `target`: start once the cable is in."""
        if verdict.status != "Accepted":
            return verdict.status
        reservation = target.reservation
        if reservation is not None and not reservation.admits(token, verdict.group):
            return "Reserved"  # for someone else: the display says so, nothing starts
        target.pending = PendingStart(token, token_type, self.clock.now(), group=verdict.group)
        if target.plugged:
            await self._start(target, StartTrigger.AUTHORIZED)
        else:
            await self._refresh(target)
        return verdict.status

    async def charge_for(
        self, duration: timedelta | float, power_w: int | None = None, evse: int = 1
    ) -> WattHours:
        """Let the EV draw `power_w` (default: all the EVSE gives) for `duration`, within the
        charging-profile limit, sending meter values as configured; returns the Wh delivered."""
        target = self.evse(evse)
        session = target.session
        if session is None:
            raise StationError(f"no transaction at EVSE {evse} of {self.id}")
        requested = target.max_power_w if power_w is None else power_w
        remaining = _as_delta(duration)
        start_wh = target.register_wh
        while remaining > timedelta(0) and target.session is session:
            now = self.clock.now()
            step = min(remaining, self._step)
            due = self._sample_due.get(target.id)
            if due is not None:
                step = min(step, max(due - now, timedelta(0)))
            change = self.profiles.next_change(now, session.started)
            if change is not None:
                step = min(step, change - now)
            if step > timedelta(0):
                state = target.charging_state
                power = target.deliver(requested, self._limit_w(target, now), step)
                if power > 0:
                    session.seconds_charging += int(step.total_seconds())
                await self._pass(step)
                remaining -= step
                if target.session is session and target.charging_state != state:
                    await self._charging_state_changed(target, session)
                    await self._refresh(target)
            await self._sample_when_due(target, session)
        return WattHours(target.register_wh - start_wh)

    async def transfer_for(
        self, duration: timedelta | float, stage: PowerStage, evse: int = 1
    ) -> float:
        """Run the EVSE's power stage for `duration` at the setpoint the installed profiles
        give, and meter what flowed, imported or exported, sending meter values as configured.
        The stage may deliver less than asked (an inverter under a grid limit); what it
        delivered is returned, in W, import positive."""
        target = self.evse(evse)
        session = target.session
        if session is None:
            raise StationError(f"no transaction at EVSE {evse} of {self.id}")
        step = _as_delta(duration)
        asked = self._setpoint_w(target, self.clock.now())
        flowed = stage(asked)
        if flowed >= 0:
            target.meter.run(round(flowed), step)
        else:
            target.meter.export(round(-flowed), step)
        if flowed > 0:
            session.seconds_charging += int(step.total_seconds())
        await self._held_to(target, asked, flowed)
        await self._pass(step)
        await self._sample_when_due(target, session)
        return flowed

    def _setpoint_w(self, evse: Evse, at: datetime) -> float:
        """What the power stage is asked for: without a setpoint of its own the EV draws all
        the EVSE gives within the charging limit."""
        limit = self._limit_w(evse, at)
        return float(evse.max_power_w if limit is None else min(limit, evse.max_power_w))

    async def _held_to(self, evse: Evse, asked: float, flowed: float) -> None:
        """The power stage delivered `flowed` where `asked` was set: only OCPP 2.1 can say so."""

    async def _sample_when_due(self, target: Evse, session: Session) -> None:
        due = self._sample_due.get(target.id)
        if target.session is session and due is not None and self.clock.now() >= due:
            interval = self.config.integer("sample_interval")
            if interval > 0:
                self._sample_due[target.id] = due + timedelta(seconds=interval)
            else:  # sampling was switched off during the session
                del self._sample_due[target.id]
            await self._transaction_sample(target, session, target.reading(self.clock.now()))

    async def stop_charging(self, evse: int = 1) -> Session:
        """End the session at an EVSE from the station's side (the stop button)."""
        target = self.evse(evse)
        if target.session is None:
            raise StationError(f"no transaction at EVSE {evse} of {self.id}")
        return await self._stop(target, StopReason.LOCAL)

    async def unplug(self, evse: int = 1) -> None:
        """Pull the cable; ends a running session if the station is set up to."""
        target = self.evse(evse)
        if not target.plugged:
            raise StationError(f"nothing is plugged in at EVSE {evse} of {self.id}")
        target.plugged, target.vehicle, target.finishing = False, None, False
        if target.session is not None:
            if self.config.flag("stop_on_ev_disconnect"):
                await self._stop(target, StopReason.EV_DISCONNECTED)
                return
            target.meter.idle()
            target.charging_state = ConnectorStatus.SUSPENDED_EV
            await self._charging_state_changed(target, target.session)
        await self._refresh(target)

    async def run_session(
        self,
        token: str,
        duration: timedelta | float,
        power_w: int | None = None,
        evse: int = 1,
        vehicle: Vehicle | None = None,
    ) -> Session:
        """A driver's whole visit: plug in, badge, charge, badge again to stop, unplug."""
        await self.plug_in(evse, vehicle)
        status = await self.present_token(token, evse)
        session = self.evse(evse).session
        if status != "Accepted" or session is None:
            await self.unplug(evse)
            raise StationError(f"{self.id} did not accept token {token}: {status}")
        await self.charge_for(duration, power_w, evse)
        if self.evse(evse).session is session:
            await self.present_token(token, evse)
        await self.unplug(evse)
        return session

    # -- Plug & Charge (ISO 15118 through OCPP) --------------------------------------------------

    async def install_contract(self, vehicle: ContractVehicle) -> str:
        """Relay a vehicle's CertificateInstallationReq to the CSMS (Get15118EVCertificate);
        on "Accepted" the vehicle checks and decrypts its contract. Returns the status."""
        answer = await self._pnc_request("Get15118EVCertificate", vehicle.installation_request())
        if answer["status"] == "Accepted":
            vehicle.install(answer["exiResponse"])
        return str(answer["status"])

    async def update_contract(self, vehicle: ContractVehicle) -> str:
        """Relay a vehicle's CertificateUpdateReq (Get15118EVCertificate, action Update); on
        "Accepted" the vehicle checks its new contract and decrypts it with the current
        contract's key. Returns the status."""
        answer = await self._pnc_request("Get15118EVCertificate", vehicle.update_request())
        if answer["status"] == "Accepted":
            vehicle.update(answer["exiResponse"])
        return str(answer["status"])

    async def plug_and_charge(self, vehicle: ContractVehicle, evse: int = 1) -> tuple[str, str]:
        """The vehicle at `evse` authorizes with its contract certificate (C07); a session
        starts once the cable is in and both answers are "Accepted". Returns the CSMS's
        certificate status and the eMAID's authorization status."""
        target = self.evse(evse)
        if target.session is not None or target.pending is not None:
            raise StationError(f"EVSE {evse} of {self.id} is busy")
        answer = await self._pnc_request("Authorize", vehicle.authorize_request())
        certificate_status = str(answer.get("certificateStatus", "NoCertificateAvailable"))
        status = str(answer["idTokenInfo"]["status"])
        if certificate_status != "Accepted" and status == "Accepted":
            status = "Invalid"  # a station never charges on a contract the CSMS refused
        assert vehicle.emaid is not None  # authorize_request needs the contract
        return certificate_status, await self._admit(
            target, vehicle.emaid, "eMAID", Verdict(status)
        )

    async def run_contract_session(
        self, vehicle: ContractVehicle, duration: timedelta | float, battery: Vehicle, evse: int = 1
    ) -> tuple[str, str, Session | None]:
        """A Plug & Charge visit: plug in, authorize by contract, charge, stop, unplug. Returns
        the certificate and authorization statuses and the session (None when refused)."""
        await self.plug_in(evse, battery)
        certificate_status, status = await self.plug_and_charge(vehicle, evse)
        session = self.evse(evse).session
        if session is not None:
            await self.charge_for(duration, evse=evse)
            if self.evse(evse).session is session:
                await self.stop_charging(evse)
        await self.unplug(evse)
        return certificate_status, status, session

    def _free_evse(self) -> Evse | None:
        """The EVSE a token or remote start without an EVSE number means: one with a cable in
        and nothing going on, else any with nothing going on."""
        free = [e for e in self.evses.values() if e.session is None and e.pending is None]
        waiting = [e for e in free if e.plugged]
        return next(iter(waiting or free), None)

    # -- sessions --------------------------------------------------------------------------------

    async def _authorize_token(self, token: str, token_type: str) -> Verdict:
        local = self.authorization.lookup(
            token, self.config.flag("local_list"), self.config.flag("auth_cache")
        )
        if self.online and self._booted:
            if local == "Accepted" and self.config.flag("local_pre_authorize"):
                return Verdict(local)
            try:
                verdict = await self._send_authorize(token, token_type)
            except Offline:
                pass
            else:
                if self.config.flag("auth_cache"):
                    self.authorization.remember(token, verdict.status)
                return verdict
        if self.config.flag("local_authorize_offline"):
            if local is not None:
                return Verdict(local)
            if self.config.flag("offline_unknown_id"):
                return Verdict("Accepted")
        return Verdict("Invalid")

    async def _start(self, evse: Evse, trigger: StartTrigger) -> None:
        pending = evse.pending
        assert pending is not None
        evse.pending = None
        reservation_id = None
        if evse.reservation is not None and evse.reservation.admits(pending.token, pending.group):
            reservation_id = evse.reservation.id
            evse.reservation = None
        now = self.clock.now()
        session = Session(
            evse=evse.id,
            connector=evse.connector_id,
            token=pending.token,
            token_type=pending.token_type,
            started=now,
            meter_start_wh=evse.register_wh,
            transaction_id=self._new_transaction_id(),
            remote_start_id=pending.remote_start_id,
            reservation_id=reservation_id,
        )
        evse.session, evse.finishing = session, False
        evse.charging_state = ConnectorStatus.CHARGING
        self.sessions.append(session)
        interval = self.config.integer("sample_interval")
        if interval > 0:
            self._sample_due[evse.id] = now + timedelta(seconds=interval)
        else:
            self._sample_due.pop(evse.id, None)
        if pending.profile is not None:
            self.profiles.install(pending.profile.bound(evse.id, session.transaction_id))
        await self._transaction_started(evse, session, trigger, evse.reading(now))
        await self._refresh(evse)

    async def _stop(self, evse: Evse, reason: StopReason) -> Session:
        session = evse.session
        assert session is not None
        evse.meter.idle()
        now = self.clock.now()
        session.stopped, session.meter_stop_wh, session.stop_reason = (
            now,
            evse.register_wh,
            reason,
        )
        evse.session, evse.finishing = None, evse.plugged
        if evse.pending_operative is not None:
            evse.operative, evse.pending_operative = evse.pending_operative, None
        self._sample_due.pop(evse.id, None)
        self.profiles.end_transaction(evse.id, session.transaction_id)
        await self._transaction_ended(evse, session, evse.reading(now))
        await self._refresh(evse)
        if self._reboot_when_idle is not None and self._idle():
            reason, self._reboot_when_idle = self._reboot_when_idle, None
            self._spawn(self._reboot(reason, "ScheduledReset"))
        return session

    def _idle(self) -> bool:
        return all(e.session is None for e in self.evses.values())

    def _verdict(self, evse: Evse, session: Session, status: str) -> None:
        """The CSMS's word on a running session's token: stop it if refused, as configured."""
        session.authorization = status
        refused = status != "Accepted" and self.config.flag("stop_on_invalid_id")
        if refused and evse.session is session:
            self._spawn(self._deauthorize(evse, session))

    async def _deauthorize(self, evse: Evse, session: Session) -> None:
        if evse.session is session:
            await self._stop(evse, StopReason.DEAUTHORIZED)

    def _profile_terms(
        self, evse: Evse, at: datetime
    ) -> tuple[int, Rating, datetime, str | None, datetime | None]:
        """What picks an EVSE's charging profile in force at `at`: the EVSE, its rating, and
        its transaction and when that started."""
        session = evse.session
        return (
            evse.id,
            Rating(evse.meter.voltage_v, evse.phases),
            at,
            session.transaction_id if session else None,
            session.started if session else None,
        )

    def _limit_w(self, evse: Evse, at: datetime) -> int | None:
        terms = self._profile_terms(evse, at)
        limit = self.profiles.limit_w(*terms)
        station = self.profiles.limit_w(0, terms[1], at)
        if station is not None:
            others = sum(e.meter.power_w for e in self.evses.values() if e is not evse)
            share = max(0, station - others)
            limit = share if limit is None else min(limit, share)
        return limit

    async def _refresh(self, evse: Evse) -> None:
        """Tell the CSMS when the status it knows of is no longer the EVSE's status."""
        status = self._wire_status(evse)
        if status != evse.reported and self.online and self._booted:
            evse.reported = status
            if await self._send_status(evse, status) is None:
                evse.reported = None  # not delivered: report again on reconnection
        self._changed()

    # -- commands, in the terms both versions share -------------------------------------------

    def _remote_start(
        self,
        evse_number: int | None,
        token: str,
        token_type: str,
        remote_start_id: int | None = None,
        profile: ChargingProfile | None = None,
    ) -> bool:
        evse = self.evses.get(evse_number) if evse_number is not None else self._free_evse()
        if evse is None or evse.session is not None or evse.pending is not None:
            return False
        if not evse.operative:
            return False
        if evse.reservation is not None and not evse.reservation.admits(token):
            return False
        if profile is not None and profile.purpose != Purpose.TX:
            return False
        target = evse

        async def begin() -> None:
            authorize = self.config.flag("authorize_remote_start")
            if authorize and (await self._authorize_token(token, token_type)).status != "Accepted":
                return
            if target.session is not None or target.pending is not None:
                return
            target.pending = PendingStart(
                token, token_type, self.clock.now(), remote_start_id, profile=profile
            )
            if target.plugged:
                await self._start(target, StartTrigger.REMOTE_START)
            else:
                await self._refresh(target)

        self._after_reply(begin)
        return True

    def _remote_stop(self, transaction_id: str) -> bool:
        for evse in self.evses.values():
            session = evse.session
            if session is not None and session.transaction_id == transaction_id:
                self._after_reply(partial(self._deauthorize_remote, evse, session))
                return True
        return False

    async def _deauthorize_remote(self, evse: Evse, session: Session) -> None:
        if evse.session is session:
            await self._stop(evse, StopReason.REMOTE)

    def _reset(self, immediate: bool, reason: StopReason) -> str:
        """Accepted (reboots now) or Scheduled (reboots once the last session ends)."""
        if immediate or self._idle():
            self._after_reply(lambda: self._reboot(reason, "RemoteReset"))
            return "Accepted"
        self._reboot_when_idle = reason
        return "Scheduled"

    async def _reboot(self, reason: StopReason, boot_reason: str) -> None:
        """Stop every session, drop the link, forget what a restart forgets, boot again."""
        for evse in self.evses.values():
            if evse.session is not None:
                await self._stop(evse, reason)
        await self.disconnect()
        self._booted = False
        self.registration = "Unknown"
        self.reboots += 1
        self._boot_reason = boot_reason
        for evse in self.evses.values():
            evse.pending, evse.reservation, evse.reported = None, None, None
        await self.connect()

    def _change_availability(self, evse_number: int, operative: bool) -> str:
        """EVSE 0 is the whole station. Accepted, Scheduled (after the running session) or
        Rejected (no such EVSE)."""
        if evse_number == 0:
            targets = list(self.evses.values())
            self.operative = operative
        elif evse_number in self.evses:
            targets = [self.evses[evse_number]]
        else:
            return "Rejected"
        scheduled = False
        for evse in targets:
            if evse.session is not None and evse.operative != operative:
                evse.pending_operative = operative
                scheduled = True
                continue
            evse.operative, evse.pending_operative = operative, None
            reservation = evse.reservation
            if not operative and reservation is not None:
                evse.reservation = None
                self._after_reply(partial(self._reservation_ended, reservation, "Removed"))
        self._after_reply(self._report_statuses)
        return "Scheduled" if scheduled else "Accepted"

    def _reserve(
        self,
        evse_number: int | None,
        reservation_id: int,
        token: str,
        expires: datetime,
        group: str | None = None,
    ) -> str:
        """Accepted, Occupied, Unavailable, Faulted or Rejected, as both versions answer."""
        if not self.config.flag("reservations") or expires <= self.clock.now():
            return "Rejected"
        for evse in self.evses.values():
            if evse.reservation is not None and evse.reservation.id == reservation_id:
                evse.reservation = None  # the same id again replaces the reservation
        if evse_number:
            target = self.evses.get(evse_number)
            if target is None:
                return "Rejected"
        else:
            candidates = [e for e in self.evses.values() if e.status == ConnectorStatus.AVAILABLE]
            if not candidates:
                usable = any(e.operative for e in self.evses.values())
                return "Occupied" if usable else "Unavailable"
            target = candidates[0]
        if not target.operative:
            return "Unavailable"
        if target.status != ConnectorStatus.AVAILABLE:
            return "Occupied"
        target.reservation = Reservation(reservation_id, token, expires, group)
        self._after_reply(partial(self._refresh, target))
        return "Accepted"

    def _cancel_reservation(self, reservation_id: int) -> bool:
        for evse in self.evses.values():
            if evse.reservation is not None and evse.reservation.id == reservation_id:
                evse.reservation = None
                self._after_reply(partial(self._refresh, evse))
                return True
        return False

    def _install_profile(self, profile: ChargingProfile) -> bool:
        """SetChargingProfile, after each version parsed its payload."""
        if profile.evse != 0 and profile.evse not in self.evses:
            return False
        if profile.purpose == Purpose.TX:
            session = self.evses[profile.evse].session if profile.evse else None
            if session is None or profile.transaction_id not in (None, session.transaction_id):
                return False
        try:
            self.profiles.install(profile)
        except ValueError as refusal:
            log.info("charging profile refused", station=self.id, reason=str(refusal))
            return False
        self._changed()
        return True

    def _composite(self, evse_number: int, duration_s: int) -> list[tuple[int, int]] | None:
        """The (offset s, limit W) steps an EVSE (0: the station) will obey, or None if unknown."""
        now = self.clock.now()
        if evse_number == 0:
            rating = Rating(self.evses[1].meter.voltage_v, self.evses[1].phases)
            hardware = sum(e.max_power_w for e in self.evses.values())
            return self.profiles.composite(0, rating, now, duration_s, hardware)
        evse = self.evses.get(evse_number)
        if evse is None:
            return None
        session = evse.session
        return self.profiles.composite(
            evse.id,
            Rating(evse.meter.voltage_v, evse.phases),
            now,
            duration_s,
            evse.max_power_w,
            session.transaction_id if session else None,
            session.started if session else None,
        )

    def _rating(self, evse_number: int) -> Rating:
        evse = self.evses.get(evse_number) or self.evses[1]
        return Rating(evse.meter.voltage_v, evse.phases)

    def _data_transfer(self, vendor_id: str, data: Any) -> tuple[str, Any]:
        """Only the station's own vendor extension exists here: it echoes what it receives."""
        if vendor_id != self.vendor:
            return "UnknownVendorId", None
        return "Accepted", data

    def _certificate_signed(self, chain_pem: str) -> bool:
        try:
            self.certificates = accept_chain(chain_pem, self._csr_key, self.clock.now())
        except CertificateRefused as refusal:
            log.info("signed certificate refused", station=self.id, reason=str(refusal))
            return False
        self._csr_key = None
        self._changed()
        return True

    async def request_certificate(self, common_name: str | None = None) -> bool:
        """Make a key pair and ask the CSMS to have its CSR signed (CertificateSigned follows).

        `common_name` other than the station id plays a misconfigured station.
        """
        self._csr_key, csr = signing_request(common_name or self.id, self.vendor)
        result = await self._notify(self._sign_certificate_payload(csr))
        return result is not None and result.status == "Accepted"

    def _update_firmware(
        self, location: str, retrieve_at: datetime, request_id: int | None
    ) -> None:
        async def run() -> None:
            await self._until(retrieve_at)
            await self._firmware_progress("Downloading", request_id)
            try:
                image = await transfer.download(location)
            except transfer.TransferFailed as failure:
                log.info("firmware download failed", station=self.id, reason=str(failure))
                await self._firmware_progress("DownloadFailed", request_id)
                return
            await self._firmware_progress("Downloaded", request_id)
            await self.until(self._idle, timeout=None)  # never install under a running session
            await self._firmware_progress("Installing", request_id)
            name = location.rstrip("/").rsplit("/", 1)[-1] or "firmware"
            self.firmware = f"{name[:40]}-{len(image)}"
            await self._firmware_installing_reboot(request_id)
            await self._reboot(StopReason.REBOOT, "FirmwareUpdate")
            await self._firmware_progress("Installed", request_id)
            self.firmware_status = "Idle"
            self._changed()

        self._after_reply(run)

    async def _firmware_progress(self, status: str, request_id: int | None) -> None:
        self.firmware_status = status
        await self._notify(self._firmware_status_payload(status, request_id))

    async def _firmware_installing_reboot(self, request_id: int | None) -> None:
        """OCPP 2.x announces the restart; 1.6 has no such status."""

    def _upload_log(self, location: str, filename: str, request_id: int | None) -> None:
        async def run() -> None:
            await self._upload_progress("Uploading", request_id)
            content = "\n".join(self.message_log).encode()
            try:
                await transfer.upload(location, filename, content)
            except transfer.TransferFailed as failure:
                log.info("log upload failed", station=self.id, reason=str(failure))
                await self._upload_progress("Failed", request_id)
                return
            await self._upload_progress("Uploaded", request_id)
            self.upload_status = "Idle"
            self._changed()

        self._after_reply(run)

    async def _upload_progress(self, stage: str, request_id: int | None) -> None:
        self.upload_status = stage
        await self._notify(self._upload_status_payload(stage, request_id))

    def _log_filename(self, kind: str) -> str:
        stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ")
        return f"{self.id}-{kind}-{stamp}.log"

    # -- what each version says in its own words -------------------------------------------------

    @abstractmethod
    def _new_transaction_id(self) -> str | None: ...

    @abstractmethod
    def _wire_status(self, evse: Evse) -> str: ...

    @abstractmethod
    async def _send_boot(self, reason: str) -> BootResult: ...

    @abstractmethod
    async def _send_status(self, evse: Evse, status: str) -> Any: ...

    @abstractmethod
    async def _send_authorize(self, token: str, token_type: str) -> Verdict: ...

    @abstractmethod
    async def _transaction_started(
        self, evse: Evse, session: Session, trigger: StartTrigger, reading: Reading
    ) -> None: ...

    @abstractmethod
    async def _transaction_sample(self, evse: Evse, session: Session, reading: Reading) -> None: ...

    @abstractmethod
    async def _charging_state_changed(self, evse: Evse, session: Session) -> None: ...

    @abstractmethod
    async def _transaction_ended(self, evse: Evse, session: Session, reading: Reading) -> None: ...

    @abstractmethod
    async def _reservation_ended(self, reservation: Reservation, why: str) -> None: ...

    @abstractmethod
    def _firmware_status_payload(self, status: str, request_id: int | None) -> Any: ...

    @abstractmethod
    def _upload_status_payload(self, stage: str, request_id: int | None) -> Any: ...

    @abstractmethod
    def _sign_certificate_payload(self, csr: str) -> Any: ...

    @abstractmethod
    async def _pnc_request(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a Plug & Charge message (`body` and the answer camelCase, as 2.0.1 has them)."""


def ready(payload: Any) -> Callable[[], Any]:
    """The builder of a queued message that is complete when queued."""
    return lambda: payload


def _as_delta(duration: timedelta | float) -> timedelta:
    return duration if isinstance(duration, timedelta) else timedelta(seconds=duration)

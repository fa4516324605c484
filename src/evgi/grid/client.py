"""The EVSE side of IEEE 2030.5 (CSIP): find the server from /dcap, register the device of its
certificate, read its DER programs, work out which control is in force and hand it to the
inverter, answer events and mirror telemetry.

The device's own view of the events uses the same rules as the server (grid/schedule.py):
supersession within a program, primacy across programs, cancellation, and a random offset of its
own within the event's randomization window. When the server cannot be reached the device falls
back to the DefaultDERControls it last read, never to no limits at all.
"""

from __future__ import annotations

import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import structlog
from lxml import etree

from evgi.core.clock import Clock
from evgi.core.errors import EvgiError, PermissionDenied
from evgi.grid.identifiers import lfdi, sfdi
from evgi.grid.inverter import GridControl, Inverter
from evgi.grid.resources import (
    ACTIVE,
    CANCELLED,
    CANCELLED_RANDOMIZED,
    MEDIA_TYPE,
    NS,
    SUPERSEDED,
    ControlBase,
    DerControl,
    DerCurve,
    DerProgram,
    DeviceCapability,
    DocumentError,
    EndDevice,
    MirrorMeterReading,
    MirrorUsagePoint,
    Reading,
    Registration,
    Response,
    Schema,
    Subscription,
    control_base_of_default,
    element,
    parse_document,
    serialize,
    to_time,
)
from evgi.grid.ride_through import Condition
from evgi.grid.schedule import ScheduledEvent, event_states, in_force

log = structlog.get_logger(__name__)

# Response.status values of 2030.5 table 27 that a device sends on its own.
RECEIVED, STARTED, COMPLETED, OPTED_OUT, EVENT_CANCELLED, EVENT_SUPERSEDED = 1, 2, 3, 4, 6, 7
# UomType: what each mirrored reading measures.
UOM_W, UOM_VAR, UOM_V, UOM_WH = 38, 63, 29, 72
_PAGE = 50
_MAX_NOTIFICATION = 1 << 20
# DERStatus codes: ConnectStatusType bits (connected, available, operating), InverterStatusType
# and the alarmStatus bit of each trip setting's cause.
_CONNECTED_OPERATING, _CONNECTED_IDLE, _DISCONNECTED = 0b111, 0b011, 0b000
_INVERTER_STATUS = {
    Condition.IN_SERVICE: 4,
    Condition.MOMENTARY_CESSATION: 8,
    Condition.ENTERING_SERVICE: 3,
    Condition.TRIPPED: 1,
    Condition.CEASED: 1,
}
_ALARM_BITS = {"OV": 1, "HV": 1, "UV": 2, "LV": 2, "OF": 3, "HF": 3, "UF": 4, "LF": 4}


class GridUnreachable(EvgiError):
    """The 2030.5 server did not answer; the device keeps to its default controls."""

    code = "grid_unreachable"


class ServerRefused(EvgiError):
    """The server answered a request with an error status."""

    code = "grid_refused"


@dataclass(frozen=True)
class Program:
    """One DER program as the device last read it."""

    document: DerProgram
    controls: tuple[DerControl, ...]
    default: ControlBase | None
    curves: dict[str, DerCurve]


@dataclass
class _Reported:
    statuses: set[int] = field(default_factory=set)


class GridClient:
    """One EVSE's 2030.5 client, feeding the control in force to its inverter."""

    def __init__(
        self,
        base_url: str,
        context: ssl.SSLContext,
        certificate_der: bytes,
        inverter: Inverter,
        clock: Clock,
        *,
        pin: int | None = None,
        schema: Schema | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.http = httpx.Client(base_url=base_url, verify=context, timeout=timeout_s)
        self.lfdi = lfdi(certificate_der)
        self.sfdi = sfdi(self.lfdi)
        self.inverter = inverter
        self.clock = clock
        self.pin = pin
        self.schema = schema
        self.capability: DeviceCapability | None = None
        self.device: EndDevice | None = None
        self.programs: list[Program] = []
        self.reachable = False
        self.opted_out: set[str] = set()
        # The mRIDs of the events in force at the last poll.
        self.running: set[str] = set()
        self._notification_uri: str | None = None
        self._subscriptions: dict[str, str] = {}
        self._reported: dict[str, _Reported] = {}
        self._offsets: dict[str, tuple[int, int]] = {}
        self._next_poll: datetime | None = None

    def close(self) -> None:
        self.http.close()

    # -- HTTP ----------------------------------------------------------------------------------

    def _request(self, method: str, href: str, body: bytes | None = None) -> httpx.Response:
        headers = {"Accept": MEDIA_TYPE}
        if body is not None:
            headers["Content-Type"] = MEDIA_TYPE
        try:
            answer = self.http.request(method, href, content=body, headers=headers)
        except httpx.TransportError as exc:
            self.reachable = False
            raise GridUnreachable(f"{method} {href}: {exc}") from exc
        self.reachable = True
        if answer.status_code == 403:
            raise PermissionDenied(f"{method} {href} refused: {answer.text}")
        if answer.status_code >= 400:
            raise ServerRefused(f"{method} {href}: HTTP {answer.status_code} {answer.text}")
        return answer

    def _get(self, href: str, expected: str) -> etree._Element:
        return parse_document(self._request("GET", href).content, expected, self.schema)

    def _list(self, href: str, list_name: str, item: str) -> list[etree._Element]:
        """Every item of a 2030.5 list, page by page."""
        items: list[etree._Element] = []
        while True:
            page = self._get(f"{href}?s={len(items)}&l={_PAGE}", list_name)
            found = page.findall(f"{{{NS}}}{item}")
            items.extend(found)
            if not found or len(items) >= int(page.get("all", "0")):
                return items

    # -- discovery and registration --------------------------------------------------------------

    def discover(self) -> DeviceCapability:
        self.capability = DeviceCapability.from_xml(self._get("/dcap", "DeviceCapability"))
        return self.capability

    def register(self) -> EndDevice:
        """POST this device's EndDevice, then check the server's registration PIN against the
        one the installer was given: a mismatch means a server that is not this site's."""
        capability = self.capability or self.discover()
        posted = EndDevice(self.lfdi, self.sfdi, self.clock.now()).to_xml()
        answer = self._request("POST", capability.end_devices, serialize(posted))
        location = answer.headers.get("Location")
        if not location:
            raise ServerRefused("the server registered the EndDevice without a Location")
        device = EndDevice.from_xml(self._get(location, "EndDevice"))
        if device.sfdi != self.sfdi:
            raise PermissionDenied(f"the server returned sFDI {device.sfdi}, not {self.sfdi}")
        if self.pin is not None:
            link = device.links.get("RegistrationLink")
            if link is None:
                raise PermissionDenied("the server offers no Registration to check the PIN")
            registration = Registration.from_xml(self._get(link, "Registration"))
            if registration.pin != self.pin:
                raise PermissionDenied("registration PIN does not match: not this site's server")
        self.device = device
        return device

    # -- programs and the control in force --------------------------------------------------------

    def read_programs(self) -> list[Program]:
        device = self.device or self.register()
        assignments = device.links.get("FunctionSetAssignmentsListLink")
        if assignments is None:
            raise ServerRefused("the EndDevice has no FunctionSetAssignmentsListLink")
        programs: dict[str, Program] = {}
        for fsa in self._list(assignments, "FunctionSetAssignmentsList", "FunctionSetAssignments"):
            link = fsa.find(f"{{{NS}}}DERProgramListLink")
            if link is None or not link.get("href"):
                continue
            for node in self._list(str(link.get("href")), "DERProgramList", "DERProgram"):
                program = DerProgram.from_xml(node)
                if program.href not in programs:
                    programs[program.href] = self._program(program)
        self.programs = sorted(programs.values(), key=lambda p: p.document.primacy)
        return self.programs

    def _program(self, program: DerProgram) -> Program:
        controls = tuple(
            DerControl.from_xml(node)
            for node in self._list(program.controls, "DERControlList", "DERControl")
        )
        default = None
        if program.default_control:
            default = control_base_of_default(
                self._get(program.default_control, "DefaultDERControl")
            )
        curves = {}
        if program.curves:
            for node in self._list(program.curves, "DERCurveList", "DERCurve"):
                curve = DerCurve.from_xml(node)
                curves[curve.href] = curve
        return Program(program, controls, default, curves)

    def _event(self, program: Program, control: DerControl) -> ScheduledEvent:
        """The event as this device runs it: shifted by its own draw within the
        randomization window, drawn once per event so every poll agrees."""
        if control.mrid not in self._offsets:
            draw = random.Random(f"{self.lfdi}:{control.mrid}")
            self._offsets[control.mrid] = (
                draw.randint(*sorted((0, control.randomize_start or 0))),
                draw.randint(*sorted((0, control.randomize_duration or 0))),
            )
        start_s, duration_s = self._offsets[control.mrid]
        cancelled = control.status in (CANCELLED, CANCELLED_RANDOMIZED)
        return ScheduledEvent(
            control.mrid,
            program.document.href,
            program.document.primacy,
            control.creation_time,
            control.start + timedelta(seconds=start_s),
            max(control.duration + duration_s, 0),
            cancelled_at=control.status_time if cancelled else None,
        )

    def control_in_force(self, now: datetime) -> GridControl:
        """Defaults, then running events, least important first so the most important
        program's setting of each function is the one left standing."""
        rating = self.inverter.rating
        control: GridControl | None = None
        for program in reversed(self.programs):
            if program.default is not None:
                control = GridControl.from_control_base(
                    program.default, program.curves, rating, control
                )
        if not self.reachable:
            return control or GridControl.defaults(rating)
        events = {
            control.mrid: (program, control)
            for program in self.programs
            for control in program.controls
        }
        running = in_force([self._event(p, c) for p, c in events.values()], now)
        for event in reversed(running):
            program, der_control = events[event.mrid]
            control = GridControl.from_control_base(
                der_control.base, program.curves, rating, control
            )
        return control or GridControl.defaults(rating)

    # -- running --------------------------------------------------------------------------------

    def subscribe(self, notification_uri: str) -> list[str]:
        """Ask to be notified of changes to the device's FunctionSetAssignmentsList (programs
        added) and to every program's DERControlList, programs read later included; a
        notification makes the next `poll` read the programs again, whatever the poll rate.
        The hrefs of the subscriptions made now; when the server cannot be reached, the first
        poll that reaches it subscribes."""
        self._notification_uri = notification_uri
        return self._subscribe_new(notification_uri)

    def _subscribe_new(self, notification_uri: str) -> list[str]:
        device = self.device or self.register()
        subscriptions = device.links.get("SubscriptionListLink")
        if subscriptions is None:
            raise ServerRefused("the EndDevice has no SubscriptionListLink")
        resources = [
            device.links.get("FunctionSetAssignmentsListLink", ""),
            *(program.document.controls for program in self.programs or self.read_programs()),
        ]
        created = []
        for resource in resources:
            if not resource or resource in self._subscriptions:
                continue
            posted = Subscription(resource, notification_uri, _PAGE)
            answer = self._request("POST", subscriptions, serialize(posted.to_xml()))
            self._subscriptions[resource] = str(answer.headers.get("Location", ""))
            created.append(self._subscriptions[resource])
        return created

    def notified(self, resource: str) -> None:
        log.info("2030.5 notification received", resource=resource)
        self._next_poll = None

    def opt_out(self, mrid: str) -> None:
        """The consumer layer reports that the driver declined this event."""
        self.opted_out.add(mrid.upper())

    def poll(self) -> GridControl:
        """Read the programs when the poll rate says so, answer the events, and put the
        control in force into the inverter."""
        now = self.clock.now()
        if self._next_poll is None or now >= self._next_poll:
            try:
                self.read_programs()
                if self._notification_uri is not None:
                    self._subscribe_new(self._notification_uri)
            except GridUnreachable as exc:
                log.warning("2030.5 server unreachable, keeping default controls", error=str(exc))
            rate = self.capability.poll_rate if self.capability else 900
            self._next_poll = now + timedelta(seconds=rate)
        control = self.control_in_force(now)
        running = self._running(now)
        self.running = running
        self.inverter.apply(control)
        self.inverter.decline_dispatch(bool(running & self.opted_out))
        if self.reachable:
            self._respond(now, running)
        return control

    def _running(self, now: datetime) -> set[str]:
        events = [self._event(p, c) for p in self.programs for c in p.controls]
        return {event.mrid for event in in_force(events, now)}

    def _respond(self, now: datetime, running: set[str]) -> None:
        events = [self._event(p, c) for p in self.programs for c in p.controls]
        states = event_states(events, now)
        for program in self.programs:
            for control in program.controls:
                if control.reply_to is None:
                    continue
                mrid = control.mrid
                event = next(e for e in events if e.mrid == mrid)
                status = states[mrid].status
                due = [RECEIVED]
                if status in (CANCELLED, CANCELLED_RANDOMIZED):
                    due.append(EVENT_CANCELLED)
                elif status == SUPERSEDED:
                    due.append(EVENT_SUPERSEDED)
                elif mrid in self.opted_out and status == ACTIVE:
                    due.append(OPTED_OUT)
                elif mrid in running:
                    due.append(STARTED)
                elif status == ACTIVE and now >= event.start + timedelta(seconds=event.duration_s):
                    due.extend((STARTED, COMPLETED))
                for code in due:
                    self._send_response(control, code, now)

    def _send_response(self, control: DerControl, status: int, now: datetime) -> None:
        reported = self._reported.setdefault(control.mrid, _Reported())
        if status in reported.statuses or control.reply_to is None:
            return
        response = Response(self.lfdi, control.mrid, status, now).to_xml("DERControlResponse")
        try:
            self._request("POST", control.reply_to, serialize(response))
        except (GridUnreachable, ServerRefused) as exc:
            log.warning("event response not delivered", event=control.mrid, error=str(exc))
            return
        reported.statuses.add(status)

    # -- telemetry -------------------------------------------------------------------------------

    def mirror(
        self, at: datetime, active_w: float, reactive_var: float, voltage_v: float, energy_wh: int
    ) -> str:
        """POST the site meter's readings as a MirrorUsagePoint; its href on the server."""
        capability = self.capability or self.discover()
        readings = tuple(
            MirrorMeterReading(
                f"{self.lfdi[:24]}{index:08X}",
                description,
                Reading(round(value), at),
                uom,
            )
            for index, (description, value, uom) in enumerate(
                (
                    ("active power", active_w, UOM_W),
                    ("reactive power", reactive_var, UOM_VAR),
                    ("voltage", voltage_v, UOM_V),
                    ("energy", energy_wh, UOM_WH),
                )
            )
        )
        point = MirrorUsagePoint(
            f"{self.lfdi[:24]}FFFFFFFF", "EVSE meter", self.lfdi, readings=readings
        )
        answer = self._request("POST", capability.mirror_usage_points, serialize(point.to_xml()))
        return str(answer.headers.get("Location", ""))

    def report_status(self, at: datetime) -> None:
        """PUT the inverter's DERStatus: connection, operating state and the alarm of the
        trip that took it out of service, if any."""
        device = self.device or self.register()
        ders = device.links.get("DERListLink")
        if ders is None:
            raise ServerRefused("the EndDevice has no DERListLink")
        found = self._list(ders, "DERList", "DER")
        link = found[0].find(f"{{{NS}}}DERStatusLink") if found else None
        if link is None or not link.get("href"):
            raise ServerRefused("the server offers no DERStatus for this device")
        protection = self.inverter.protection
        condition = protection.condition
        connect = {
            Condition.IN_SERVICE: _CONNECTED_OPERATING,
            Condition.ENTERING_SERVICE: _CONNECTED_OPERATING,
            Condition.MOMENTARY_CESSATION: _CONNECTED_IDLE,
        }.get(condition, _DISCONNECTED)
        cause = (protection.tripped_by or "")[:2]
        status = element("DERStatus")
        if condition is Condition.TRIPPED and cause in _ALARM_BITS:
            _leaf(status, "alarmStatus", f"{1 << _ALARM_BITS[cause]:08X}")
        _status(status, "genConnectStatus", at, f"{connect:02X}")
        _status(status, "inverterStatus", at, str(_INVERTER_STATUS[condition]))
        _status(status, "operationalModeStatus", at, "2" if connect else "1")
        _leaf(status, "readingTime", str(to_time(at)))
        self._request("PUT", str(link.get("href")), serialize(status))


def _leaf(parent: etree._Element, name: str, text: str) -> etree._Element:
    node = etree.SubElement(parent, f"{{{NS}}}{name}")
    node.text = text
    return node


def _status(parent: etree._Element, name: str, at: datetime, value: str) -> None:
    node = etree.SubElement(parent, f"{{{NS}}}{name}")
    _leaf(node, "dateTime", str(to_time(at)))
    _leaf(node, "value", value)


class NotificationListener:
    """The device's HTTPS endpoint for 2030.5 Notifications. `context` is a server context with
    the device's certificate that requires a client certificate of the grid CA."""

    def __init__(
        self,
        context: ssl.SSLContext,
        on_notification: Callable[[str], None],
        schema: Schema | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > _MAX_NOTIFICATION:
                    self._answer(413, "notification too large")
                    return
                body = self.rfile.read(length)
                try:
                    root = parse_document(body, "Notification", listener.schema)
                except DocumentError as exc:
                    self._answer(400, exc.message)
                    return
                resource = root.findtext(f"{{{NS}}}subscribedResource") or ""
                on_notification(resource.strip())
                self._answer(204, "")

            def _answer(self, status: int, reason: str) -> None:
                data = reason.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("2030.5 notification endpoint", request=format % args)

        self.schema = schema
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.host = host
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="evgi-2030.5-notifications", daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.server.server_address[1]}/ntfy"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()

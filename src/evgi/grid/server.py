"""The IEEE 2030.5-2018 server of a utility or aggregator (CSIP): HTTPS with mutual TLS, XML in
the 2030.5 namespace, every client confined to its own resources by the LFDI of its certificate.

Requests are answered by plain functions run off the event loop (the database is synchronous);
each gets the caller's LFDI from the TLS session, never from anything the caller sends. Errors
come back as 2030.5 HTTP statuses: 400 for a document that is not XML, not 2030.5 or not valid,
403 for a client that may not do this, 404 for what does not exist or is not the caller's, 415
for a body that is not application/sep+xml.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import structlog
from aiohttp import web
from lxml import etree
from sqlalchemy import Engine, Row

from evgi.config import Settings
from evgi.core.clock import Clock
from evgi.core.errors import NotFoundError, PermissionDenied, ValidationError
from evgi.grid.authority import (
    GridAuthority,
    client_ssl_context,
    grid_authority,
    server_ssl_context,
)
from evgi.grid.der_programs import DerPrograms, program_href
from evgi.grid.identifiers import lfdi as lfdi_of
from evgi.grid.identifiers import sfdi as sfdi_of
from evgi.grid.resources import (
    DER_DOCUMENTS,
    MEDIA_TYPE,
    DeviceCapability,
    DocumentError,
    EndDevice,
    LogEvent,
    MirrorMeterReading,
    MirrorUsagePoint,
    Reading,
    Registration,
    Response,
    Schema,
    Subscription,
    default_der_control,
    der_document,
    function_set_assignments,
    list_document,
    notification,
    parse_document,
    serialize,
    time_document,
)
from evgi.grid.schedule import in_force
from evgi.storage.grid import GridStore

log = structlog.get_logger(__name__)

# How often the server looks for new or cancelled controls to notify subscribers of.
_NOTIFY_INTERVAL_S = 1.0
_NOTIFY_TIMEOUT_S = 10.0
_MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Call:
    """One request as the resource functions see it: who (by certificate) asks for what."""

    lfdi: str
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes = b""


@dataclass
class Reply:
    status: int = 200
    document: etree._Element | None = None
    headers: dict[str, str] = field(default_factory=dict)


Resource = Callable[[Call], Reply]


class CsipServer:
    """The 2030.5 resources over one database; `start` serves them on HTTPS with mTLS."""

    def __init__(
        self, settings: Settings, db: Engine, clock: Clock, poll_rate_s: int = 900
    ) -> None:
        self.settings = settings
        self.clock = clock
        # How often devices re-read their programs (DeviceCapability pollRate).
        self.poll_rate_s = poll_rate_s
        self.store = GridStore(db)
        self.programs = DerPrograms(self.store, clock)
        self.schema = None if settings.grid_schema is None else Schema(settings.grid_schema)
        self.authority: GridAuthority = grid_authority(settings)
        self._runner: web.AppRunner | None = None
        self._notifier: asyncio.Task[None] | None = None
        self.port: int | None = None

    # -- service ---------------------------------------------------------------------------

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=_MAX_BODY)
        routes: list[tuple[str, str, Resource]] = [
            ("GET", "/dcap", self.device_capability),
            ("GET", "/tm", self.time),
            ("GET", "/edev", self.end_device_list),
            ("POST", "/edev", self.register),
            ("GET", "/edev/{sfdi}", self.end_device),
            ("GET", "/edev/{sfdi}/rg", self.registration),
            ("GET", "/edev/{sfdi}/fsa", self.function_set_assignments_list),
            ("GET", "/edev/{sfdi}/fsa/1", self.function_set_assignments),
            ("GET", "/edev/{sfdi}/der", self.der_list),
            ("GET", "/edev/{sfdi}/der/1", self.der),
            ("GET", "/edev/{sfdi}/der/1/{kind}", self.der_report),
            ("PUT", "/edev/{sfdi}/der/1/{kind}", self.put_der_report),
            ("GET", "/edev/{sfdi}/sub", self.subscription_list),
            ("POST", "/edev/{sfdi}/sub", self.subscribe),
            ("GET", "/edev/{sfdi}/sub/{id}", self.subscription),
            ("GET", "/edev/{sfdi}/lel", self.log_event_list),
            ("POST", "/edev/{sfdi}/lel", self.log_event),
            ("GET", "/derp", self.der_program_list),
            ("GET", "/derp/{id}", self.der_program),
            ("GET", "/derp/{id}/derc", self.der_control_list),
            ("GET", "/derp/{id}/actderc", self.active_der_control_list),
            ("GET", "/derp/{id}/derc/{mrid}", self.der_control),
            ("GET", "/derp/{id}/dderc", self.default_der_control),
            ("GET", "/derp/{id}/dc", self.der_curve_list),
            ("GET", "/derp/{id}/dc/{mrid}", self.der_curve),
            ("POST", "/rsp", self.response),
            ("GET", "/mup", self.mirror_usage_point_list),
            ("POST", "/mup", self.mirror_usage_point_post),
            ("GET", "/mup/{id}", self.mirror_usage_point),
            ("POST", "/mup/{id}", self.mirror_meter_reading),
        ]
        for method, path, resource in routes:
            app.router.add_route(method, path, self._handler(resource, method in ("POST", "PUT")))
        return app

    async def start(self, host: str, port: int) -> None:
        context = server_ssl_context(self.authority, [*self.settings.tls_host_names, host])
        self._runner = web.AppRunner(self.application(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._notifier = asyncio.create_task(self._notify_changes(), name="evgi-2030.5-notify")
        log.info("IEEE 2030.5 server listening", url=f"https://{host}:{self.port}/dcap")

    async def stop(self) -> None:
        if self._notifier is not None:
            self._notifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notifier
        if self._runner is not None:
            await self._runner.cleanup()

    def _handler(
        self, resource: Resource, has_body: bool
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            transport = request.transport
            ssl_object = None if transport is None else transport.get_extra_info("ssl_object")
            der = None if ssl_object is None else ssl_object.getpeercert(binary_form=True)
            if not der:
                raise PermissionDenied("a 2030.5 client must present its certificate")
            body = b""
            if has_body:
                if request.content_type != MEDIA_TYPE:
                    raise web.HTTPUnsupportedMediaType(text=f"the body must be {MEDIA_TYPE}")
                body = await request.read()
            call = Call(lfdi_of(der), dict(request.match_info), dict(request.query), body)
            reply = await asyncio.to_thread(self._answer, resource, call)
            if reply.document is None:
                return web.Response(status=reply.status, headers=reply.headers)
            return web.Response(
                status=reply.status,
                body=serialize(reply.document),
                content_type=MEDIA_TYPE,
                headers=reply.headers,
            )

        return handle

    def _answer(self, resource: Resource, call: Call) -> Reply:
        reply = resource(call)
        if reply.document is not None and self.schema is not None:
            try:
                self.schema.validate(reply.document)
            except DocumentError as exc:
                # A document the schema refuses is a defect here, never the client's fault.
                log.error("2030.5 server built an invalid document", error=exc.message)
                raise web.HTTPInternalServerError(text="invalid document withheld") from exc
        return reply

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except (DocumentError, ValidationError) as exc:
            status = 400
            message = exc.message
        except PermissionDenied as exc:
            status, message = 403, exc.message
        except NotFoundError as exc:
            status, message = 404, exc.message
        log.info("2030.5 request refused", path=request.path, status=status, reason=message)
        return web.Response(status=status, text=message)

    # -- function set assignments, time, devices -----------------------------------------------

    def device_capability(self, call: Call) -> Reply:
        capability = DeviceCapability("/dcap", "/tm", "/edev", "/mup", self.poll_rate_s)
        return Reply(document=capability.to_xml())

    def time(self, call: Call) -> Reply:
        return Reply(document=time_document("/tm", self.clock.now()))

    def end_device_list(self, call: Call) -> Reply:
        device = self.store.device(call.lfdi)
        items = [] if device is None else [self._end_device(device).to_xml()]
        return Reply(
            document=list_document("EndDeviceList", "/edev", _page(items, call), len(items), False)
        )

    def register(self, call: Call) -> Reply:
        """A device POSTs its own EndDevice: accepted when the operator admitted its LFDI."""
        posted = EndDevice.from_xml(parse_document(call.body, "EndDevice", self.schema))
        if posted.sfdi != sfdi_of(call.lfdi) or posted.lfdi not in ("", call.lfdi):
            raise PermissionDenied("a client registers only the device of its own certificate")
        device = self.store.device(call.lfdi)
        if device is None:
            raise PermissionDenied(f"device {call.lfdi} is not admitted by the grid operator")
        self.store.seen(call.lfdi, self.clock.now())
        return Reply(201, headers={"Location": f"/edev/{device.sfdi}"})

    def end_device(self, call: Call) -> Reply:
        return Reply(document=self._end_device(self._own(call)).to_xml())

    def registration(self, call: Call) -> Reply:
        device = self._own(call)
        if device.pin is None:
            raise NotFoundError("this device has no registration PIN")
        href = f"/edev/{device.sfdi}/rg"
        return Reply(document=Registration(href, device.registered_at, device.pin).to_xml())

    def function_set_assignments_list(self, call: Call) -> Reply:
        device = self._own(call)
        items = [self._assignments(device)]
        href = _assignments_of(device)
        return Reply(
            document=list_document("FunctionSetAssignmentsList", href, _page(items, call), 1)
        )

    def function_set_assignments(self, call: Call) -> Reply:
        return Reply(document=self._assignments(self._own(call)))

    def der_list(self, call: Call) -> Reply:
        device = self._own(call)
        items = [self._der(device)]
        href = f"/edev/{device.sfdi}/der"
        return Reply(document=list_document("DERList", href, _page(items, call), 1, False))

    def der(self, call: Call) -> Reply:
        return Reply(document=self._der(self._own(call)))

    def der_report(self, call: Call) -> Reply:
        device = self._own(call)
        kind = self._der_kind(call)
        row = self.store.documents(device.lfdi).get(kind)
        if row is None:
            raise NotFoundError(f"device has not reported its {DER_DOCUMENTS[kind]}")
        return Reply(document=etree.fromstring(row.body.encode()))

    def put_der_report(self, call: Call) -> Reply:
        """DERCapability, DERSettings, DERStatus or DERAvailability, PUT by the device."""
        device = self._own(call)
        kind = self._der_kind(call)
        root = parse_document(call.body, DER_DOCUMENTS[kind], self.schema)
        root.set("href", f"/edev/{device.sfdi}/der/1/{kind}")
        now = self.clock.now()
        replaced = self.store.put_document(device.lfdi, kind, serialize(root).decode(), now)
        self.store.seen(device.lfdi, now)
        return Reply(204 if replaced else 201)

    def subscription_list(self, call: Call) -> Reply:
        device = self._own(call)
        rows = self.store.subscriptions(lfdi=device.lfdi)
        items = [self._subscription(device, row).to_xml() for row in rows]
        href = f"/edev/{device.sfdi}/sub"
        return Reply(
            document=list_document("SubscriptionList", href, _page(items, call), len(items), False)
        )

    def subscribe(self, call: Call) -> Reply:
        device = self._own(call)
        posted = Subscription.from_xml(parse_document(call.body, "Subscription", self.schema))
        if not posted.notification_uri.startswith("https://"):
            raise ValidationError("a notificationURI must be https:// (2030.5 section 6.11)")
        self._subscribed(posted.resource, device)
        key = self.store.add_subscription(
            {
                "lfdi": device.lfdi,
                "resource": posted.resource,
                "notification_uri": posted.notification_uri,
                "level": posted.level,
                "limit": max(1, posted.limit),
                "created_at": self.clock.now(),
            }
        )
        return Reply(201, headers={"Location": f"/edev/{device.sfdi}/sub/{key}"})

    def subscription(self, call: Call) -> Reply:
        device = self._own(call)
        for row in self.store.subscriptions(lfdi=device.lfdi):
            if str(row.id) == call.path["id"]:
                return Reply(document=self._subscription(device, row).to_xml())
        raise NotFoundError("no such subscription of this device")

    def log_event_list(self, call: Call) -> Reply:
        device = self._own(call)
        items = [
            LogEvent(
                row.created_at,
                row.function_set,
                row.code,
                row.event_id,
                row.pen,
                row.profile_id,
                row.details,
                f"/edev/{device.sfdi}/lel/{row.id}",
            ).to_xml()
            for row in self.store.log_events(device.lfdi)
        ]
        href = f"/edev/{device.sfdi}/lel"
        return Reply(
            document=list_document("LogEventList", href, _page(items, call), len(items), False)
        )

    def log_event(self, call: Call) -> Reply:
        device = self._own(call)
        posted = LogEvent.from_xml(parse_document(call.body, "LogEvent", self.schema))
        key = self.store.add_log_event(
            {
                "lfdi": device.lfdi,
                "created_at": posted.created,
                "function_set": posted.function_set,
                "code": posted.code,
                "event_id": posted.event_id,
                "pen": posted.pen,
                "profile_id": posted.profile_id,
                "details": posted.details,
            }
        )
        return Reply(201, headers={"Location": f"/edev/{device.sfdi}/lel/{key}"})

    # -- DER programs ------------------------------------------------------------------------

    def der_program_list(self, call: Call) -> Reply:
        self._registered(call)
        items = [self.programs.program_document(row).to_xml() for row in self.store.programs()]
        return Reply(
            document=list_document("DERProgramList", "/derp", _page(items, call), len(items))
        )

    def der_program(self, call: Call) -> Reply:
        return Reply(document=self.programs.program_document(self._program(call)).to_xml())

    def der_control_list(self, call: Call) -> Reply:
        row = self._program(call)
        return Reply(document=self._control_list(row.id, call))

    def active_der_control_list(self, call: Call) -> Reply:
        row = self._program(call)
        now = self.clock.now()
        running = {event.mrid for event in in_force(self.programs.events(), now)}
        items = [
            control.to_xml()
            for control in self.programs.control_documents(row.id, now)
            if control.mrid in running
        ]
        href = f"{program_href(row.id)}/actderc"
        return Reply(
            document=list_document("DERControlList", href, _page(items, call), len(items), False)
        )

    def der_control(self, call: Call) -> Reply:
        row = self._program(call)
        for control in self.programs.control_documents(row.id, self.clock.now()):
            if control.mrid == call.path["mrid"].upper():
                return Reply(document=control.to_xml())
        raise NotFoundError("no such DERControl in this program")

    def default_der_control(self, call: Call) -> Reply:
        row = self._program(call)
        if row.default_control is None:
            raise NotFoundError("this program has no DefaultDERControl")
        href = f"{program_href(row.id)}/dderc"
        return Reply(document=default_der_control(href, row.mrid, json.loads(row.default_control)))

    def der_curve_list(self, call: Call) -> Reply:
        row = self._program(call)
        items = [curve.to_xml() for curve in self.programs.curve_documents(row.id)]
        href = f"{program_href(row.id)}/dc"
        return Reply(
            document=list_document("DERCurveList", href, _page(items, call), len(items), False)
        )

    def der_curve(self, call: Call) -> Reply:
        row = self._program(call)
        for curve in self.programs.curve_documents(row.id):
            if curve.mrid == call.path["mrid"].upper():
                return Reply(document=curve.to_xml())
        raise NotFoundError("no such DERCurve in this program")

    def response(self, call: Call) -> Reply:
        """A device's Response to a DERControl: only about itself, only to a known event."""
        device = self._registered(call)
        posted = Response.from_xml(
            parse_document(call.body, ("DERControlResponse", "Response"), self.schema)
        )
        if posted.lfdi != device.lfdi:
            raise PermissionDenied("a device responds only for itself (endDeviceLFDI)")
        if posted.subject not in {event.mrid for event in self.programs.events()}:
            raise NotFoundError(f"no DERControl {posted.subject}")
        key = self.store.add_response(
            {
                "lfdi": device.lfdi,
                "subject": posted.subject,
                "status": posted.status,
                "created_at": posted.created,
                "received_at": self.clock.now(),
            }
        )
        return Reply(201, headers={"Location": f"/rsp/{key}"})

    # -- metering mirror ---------------------------------------------------------------------

    def mirror_usage_point_list(self, call: Call) -> Reply:
        device = self._registered(call)
        items = [self._usage_point(row).to_xml() for row in self.store.usage_points(device.lfdi)]
        return Reply(
            document=list_document(
                "MirrorUsagePointList", "/mup", _page(items, call), len(items), False
            )
        )

    def mirror_usage_point_post(self, call: Call) -> Reply:
        device = self._registered(call)
        posted = MirrorUsagePoint.from_xml(
            parse_document(call.body, "MirrorUsagePoint", self.schema)
        )
        if posted.lfdi != device.lfdi:
            raise PermissionDenied("a device mirrors only its own meter (deviceLFDI)")
        existing = self.store.usage_point(posted.mrid)
        if existing is not None and existing.lfdi != device.lfdi:
            raise PermissionDenied("that MirrorUsagePoint belongs to another device")
        if existing is None:
            key = self.store.add_usage_point(
                {
                    "lfdi": device.lfdi,
                    "mrid": posted.mrid,
                    "description": posted.description,
                    "role_flags": posted.role_flags,
                    "service_kind": posted.service_kind,
                    "status": posted.status,
                    "created_at": self.clock.now(),
                }
            )
        else:
            key = existing.id
        self._store_readings(key, posted.readings)
        return Reply(201, headers={"Location": f"/mup/{key}"})

    def mirror_usage_point(self, call: Call) -> Reply:
        return Reply(document=self._usage_point(self._own_usage_point(call)).to_xml())

    def mirror_meter_reading(self, call: Call) -> Reply:
        point = self._own_usage_point(call)
        posted = MirrorMeterReading.from_xml(
            parse_document(call.body, "MirrorMeterReading", self.schema)
        )
        known = {row.meter_reading for row in self.store.latest_readings(point.id)}
        self._store_readings(point.id, (posted,))
        return Reply(204 if posted.mrid.upper() in known else 201)

    def _store_readings(
        self, usage_point_id: int, readings: tuple[MirrorMeterReading, ...]
    ) -> None:
        now = self.clock.now()
        self.store.add_readings(
            [
                {
                    "usage_point_id": usage_point_id,
                    "meter_reading": reading.mrid.upper(),
                    "description": reading.description,
                    "uom": reading.uom,
                    "power_of_ten": reading.power_of_ten,
                    "value": reading.reading.value,
                    "at": reading.reading.at or now,
                }
                for reading in readings
                if reading.reading is not None
            ]
        )

    # -- notifications ------------------------------------------------------------------------

    async def _notify_changes(self) -> None:
        """Watch for controls created or cancelled and programs added (by `evgi grid` in
        another process too) and POST a Notification with the list that changed to each of
        its subscribers: a program's DERControlList; the DERProgramList and every device's
        FunctionSetAssignmentsList, whose count of programs changed."""
        watermark = await asyncio.to_thread(self.store.control_watermark)
        programs = await asyncio.to_thread(self._program_ids)
        context = client_ssl_context(
            self.authority.certificate_pem,
            self.authority.issue_server_certificate(self.settings.tls_host_names),
            check_hostname=False,
        )
        async with httpx.AsyncClient(verify=context, timeout=_NOTIFY_TIMEOUT_S) as client:
            while True:
                await asyncio.sleep(_NOTIFY_INTERVAL_S)
                try:
                    latest = await asyncio.to_thread(self.store.control_watermark)
                    if latest != watermark:
                        changed = await asyncio.to_thread(self._changed_programs, watermark)
                        watermark = latest
                        for program_id in changed:
                            await self._notify(client, f"{program_href(program_id)}/derc")
                    now_programs = await asyncio.to_thread(self._program_ids)
                    if now_programs != programs:
                        programs = now_programs
                        await self._notify(client, "/derp")
                        await self._notify(client, None)
                except Exception:  # the watch must outlive any one failure; it is logged
                    log.exception("2030.5 notification round failed")

    def _program_ids(self) -> set[int]:
        return {row.id for row in self.store.programs()}

    def _changed_programs(self, watermark: tuple[int, datetime | None]) -> set[int]:
        last_id, last_cancel = watermark
        return {
            row.program_id
            for row in self.store.controls()
            if row.id > last_id
            or (
                row.cancelled_at is not None
                and (last_cancel is None or row.cancelled_at > last_cancel)
            )
        }

    async def _notify(self, client: httpx.AsyncClient, resource: str | None) -> None:
        """Notify the subscribers of `resource`, or with None, of each device's own
        FunctionSetAssignmentsList."""
        rows = await asyncio.to_thread(self.store.subscriptions, None, resource)
        for row in rows:
            device = await asyncio.to_thread(self.store.device, row.lfdi)
            if device is None or (resource is None and row.resource != _assignments_of(device)):
                continue
            answer_to, path = self._subscribed(row.resource, device)
            call = Call(row.lfdi, path, {"l": str(row.limit)})
            document = (await asyncio.to_thread(answer_to, call)).document
            body = notification(f"/edev/{device.sfdi}/sub/{row.id}", row.resource, 0, document)
            if self.schema is not None:
                self.schema.validate(body)
            try:
                answer = await client.post(
                    row.notification_uri,
                    content=serialize(body),
                    headers={"Content-Type": MEDIA_TYPE},
                )
                log.info(
                    "2030.5 notification sent", to=row.notification_uri, status=answer.status_code
                )
            except (httpx.HTTPError, ssl.SSLError) as exc:
                log.warning("2030.5 notification failed", to=row.notification_uri, error=str(exc))

    # -- helpers ------------------------------------------------------------------------------

    def _registered(self, call: Call) -> Row[Any]:
        device = self.store.device(call.lfdi)
        if device is None:
            raise PermissionDenied(f"device {call.lfdi} is not admitted by the grid operator")
        return device

    def _own(self, call: Call) -> Row[Any]:
        """The caller's EndDevice, when the path names it; another's is 404, as if absent."""
        device = self.store.device(call.lfdi)
        if device is None or call.path.get("sfdi") != str(device.sfdi):
            raise NotFoundError("no such EndDevice for this client")
        return device

    def _program(self, call: Call) -> Row[Any]:
        self._registered(call)
        key = call.path["id"]
        row = self.store.program(int(key)) if key.isdigit() else None
        if row is None:
            raise NotFoundError("no such DERProgram")
        return row

    def _subscribed(self, href: str, device: Row[Any]) -> tuple[Resource, dict[str, str]]:
        """The resource a device may subscribe to at `href`, with its path parameters: the
        lists this server notifies changes of (the others are served subscribable="0")."""
        if href == "/derp":
            return self.der_program_list, {}
        if href == _assignments_of(device):
            return self.function_set_assignments_list, {"sfdi": str(device.sfdi)}
        parts = href.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "derp" or parts[2] != "derc" or not parts[1].isdigit():
            raise ValidationError(
                "subscriptions are served for /derp, /derp/{id}/derc and the device's own "
                "/edev/{sfdi}/fsa"
            )
        if self.store.program(int(parts[1])) is None:
            raise NotFoundError(f"no DERProgram at /derp/{parts[1]}")
        return self.der_control_list, {"id": parts[1]}

    def _own_usage_point(self, call: Call) -> Row[Any]:
        device = self._registered(call)
        key = call.path["id"]
        row = self.store.usage_point(int(key)) if key.isdigit() else None
        if row is None or row.lfdi != device.lfdi:
            raise NotFoundError("no such MirrorUsagePoint for this client")
        return row

    def _der_kind(self, call: Call) -> str:
        kind = call.path["kind"]
        if kind not in DER_DOCUMENTS:
            raise NotFoundError(f"a DER has no {kind!r} (only {', '.join(DER_DOCUMENTS)})")
        return kind

    def _end_device(self, device: Row[Any]) -> EndDevice:
        base = f"/edev/{device.sfdi}"
        return EndDevice(
            device.lfdi,
            device.sfdi,
            device.changed_at,
            device.enabled,
            base,
            None,
            {
                "DERListLink": f"{base}/der",
                "LogEventListLink": f"{base}/lel",
                "FunctionSetAssignmentsListLink": f"{base}/fsa",
                "RegistrationLink": f"{base}/rg",
                "SubscriptionListLink": f"{base}/sub",
            },
        )

    def _assignments(self, device: Row[Any]) -> etree._Element:
        return function_set_assignments(
            f"/edev/{device.sfdi}/fsa/1",
            hashlib.sha256(device.lfdi.encode()).hexdigest()[:24].upper() + "00000000",
            "/derp",
            len(self.store.programs()),
        )

    def _der(self, device: Row[Any]) -> etree._Element:
        base = f"/edev/{device.sfdi}/der/1"
        links = {f"{name}Link": f"{base}/{kind}" for kind, name in DER_DOCUMENTS.items()}
        links["AssociatedDERProgramListLink"] = "/derp"
        return der_document(base, links)

    def _control_list(self, program_id: int, call: Call) -> etree._Element:
        items = [
            control.to_xml()
            for control in self.programs.control_documents(program_id, self.clock.now())
        ]
        href = f"{program_href(program_id)}/derc"
        return list_document("DERControlList", href, _page(items, call), len(items))

    def _subscription(self, device: Row[Any], row: Row[Any]) -> Subscription:
        return Subscription(
            row.resource,
            row.notification_uri,
            row.limit,
            row.level,
            f"/edev/{device.sfdi}/sub/{row.id}",
        )

    def _usage_point(self, row: Row[Any]) -> MirrorUsagePoint:
        readings = tuple(
            MirrorMeterReading(
                reading.meter_reading,
                reading.description,
                Reading(reading.value, reading.at),
                reading.uom,
                reading.power_of_ten,
            )
            for reading in self.store.latest_readings(row.id)
        )
        return MirrorUsagePoint(
            row.mrid,
            row.description,
            row.lfdi,
            row.role_flags,
            row.service_kind,
            row.status,
            readings,
            f"/mup/{row.id}",
        )


def _assignments_of(device: Row[Any]) -> str:
    return f"/edev/{device.sfdi}/fsa"


def _page(items: list[etree._Element], call: Call) -> list[etree._Element]:
    """2030.5 list paging: `s` is the first index (default 0), `l` the limit (default 1)."""
    try:
        start = int(call.query.get("s", "0"))
        limit = int(call.query.get("l", "1"))
    except ValueError as exc:
        raise ValidationError("list query parameters s and l are integers") from exc
    if start < 0 or limit < 0:
        raise ValidationError("list query parameters s and l are not negative")
    return items[start : start + limit]

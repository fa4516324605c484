"""Subscription/Notification: the server POSTs to the subscriber's own HTTPS endpoint."""

from __future__ import annotations

import queue
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

from tests.grid.conftest import Device, GridSite
from tests.grid.sep_client import SEP, text


class _Inbox(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()


class _Handler(BaseHTTPRequestHandler):
    server: _Inbox

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.put((self.headers["Content-Type"], body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _notification_endpoint(site: GridSite, device: Device) -> Iterator[tuple[str, _Inbox]]:
    """The device's HTTPS listener: its own certificate, and only the grid CA's clients."""
    inbox = _Inbox()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(device.certificate, device.key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(site.ca)
    inbox.socket = context.wrap_socket(inbox.socket, server_side=True)
    thread = threading.Thread(target=inbox.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{inbox.server_address[1]}/notify", inbox
    finally:
        inbox.shutdown()
        inbox.server_close()


def _subscription(resource: str, uri: str) -> str:
    return (
        '<Subscription xmlns="urn:ieee:std:2030.5:ns">'
        f"<subscribedResource>{resource}</subscribedResource><encoding>0</encoding>"
        f"<level>+S1</level><limit>10</limit><notificationURI>{uri}</notificationURI>"
        "</Subscription>"
    )


def test_subscriber_is_notified_of_new_and_cancelled_controls(grid_site: GridSite) -> None:
    site = grid_site
    evse = site.devices["evse-1"]
    client = site.client("evse-1")
    program = site.programs.program("utility")
    controls = f"/derp/{program.id}/derc"
    try:
        with _notification_endpoint(site, evse) as (uri, inbox):
            subscription = _subscription(controls, uri)
            created = client.status("POST", f"/edev/{evse.sfdi}/sub", subscription)
            assert created.status_code == 201, created.text
            stored = client.get(created.headers["Location"])
            assert text(stored, "s:notificationURI") == uri
            plain = subscription.replace("https://", "http://")
            assert client.status("POST", f"/edev/{evse.sfdi}/sub", plain).status_code == 400

            mrid = site.programs.create_control(
                "utility", {"opModMaxLimW": 3000}, datetime.now(UTC), 900
            )
            content_type, body = inbox.received.get(timeout=20)
            assert content_type.startswith("application/sep+xml")
            note = etree.fromstring(body)
            if site.schema is not None:
                site.schema.assertValid(note)
            assert text(note, "s:subscribedResource") == controls
            assert text(note, "s:status") == "0"
            assert text(note, "s:Resource/s:DERControl/s:mRID") == mrid

            site.programs.cancel_control(mrid)
            _, body = inbox.received.get(timeout=20)
            cancelled = etree.fromstring(body)
            statuses = {
                text(c, "s:mRID"): text(c, "s:EventStatus/s:currentStatus")
                for c in cancelled.findall("s:Resource/s:DERControl", SEP)
            }
            assert statuses[mrid] == "2"
    finally:
        client.close()


def test_new_programs_reach_subscribers_of_the_program_list_and_assignments(
    grid_site: GridSite,
) -> None:
    """2030.5 notifies every resource served subscribable; a list it does not watch says so."""
    site = grid_site
    evse, other = site.devices["evse-1"], site.devices["evse-2"]
    client = site.client("evse-1")
    subscriptions = f"/edev/{evse.sfdi}/sub"
    assignments = f"/edev/{evse.sfdi}/fsa"
    try:
        assert client.get(assignments).get("subscribable") == "1"
        assert client.get("/derp").get("subscribable") == "1"
        for unwatched in ("/edev", f"/edev/{evse.sfdi}/lel", "/derp/1/actderc"):
            assert client.get(unwatched).get("subscribable", "0") == "0"
        with _notification_endpoint(site, evse) as (uri, inbox):
            for refused in (f"/edev/{other.sfdi}/fsa", "/edev", "/derp/1/actderc"):
                answer = client.status("POST", subscriptions, _subscription(refused, uri))
                assert answer.status_code == 400, refused
            for resource in ("/derp", assignments):
                answer = client.status("POST", subscriptions, _subscription(resource, uri))
                assert answer.status_code == 201, answer.text

            feeder = site.programs.create_program("feeder", 3)
            notes = {}
            for _ in range(2):
                _, body = inbox.received.get(timeout=20)
                note = etree.fromstring(body)
                if site.schema is not None:
                    site.schema.assertValid(note)
                notes[text(note, "s:subscribedResource")] = note
            listed = notes["/derp"].findall("s:Resource/s:DERProgram", SEP)
            assert feeder.mrid in {text(program, "s:mRID") for program in listed}
            link = notes[assignments].find(
                "s:Resource/s:FunctionSetAssignments/s:DERProgramListLink", SEP
            )
            assert link is not None and link.get("all") == "3"
    finally:
        client.close()

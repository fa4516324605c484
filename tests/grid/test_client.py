"""The EVSE-side 2030.5 client against `evgi serve` over mutual TLS on loopback: discovery,
registration with the PIN check, programs and the control in force fed to the inverter, event
responses, telemetry, and the default controls when the server cannot be reached."""

from __future__ import annotations

import queue
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from evgi.core.clock import SimulatedClock
from evgi.core.errors import PermissionDenied, ValidationError
from evgi.grid.client import (
    COMPLETED,
    EVENT_CANCELLED,
    OPTED_OUT,
    RECEIVED,
    STARTED,
    UOM_V,
    UOM_W,
    GridClient,
    NotificationListener,
)
from evgi.grid.inverter import Inverter, Rating, Setpoint
from evgi.grid.reactive_power import VoltVar
from evgi.grid.resources import Schema
from evgi.storage.grid import GridStore
from tests.grid.conftest import SEP_XSD, GridSite
from tests.grid.sep_client import tls_context
from tests.service_runner import free_port

RATING = Rating(max_charge_w=11_000, max_discharge_w=9_600, apparent_va=11_500)


def make_client(site: GridSite, name: str, clock: SimulatedClock, pin: int | None) -> GridClient:
    device = site.devices[name]
    certificate = x509.load_pem_x509_certificate(device.certificate.read_bytes())
    return GridClient(
        site.base,
        tls_context(site.ca, device.certificate, device.key),
        certificate.public_bytes(Encoding.DER),
        Inverter(RATING),
        clock,
        pin=pin,
        schema=Schema(SEP_XSD) if SEP_XSD.exists() else None,
    )


@pytest.fixture
def clock() -> Iterator[SimulatedClock]:
    yield SimulatedClock(datetime.now(UTC))


def statuses(site: GridSite, subject: str) -> set[int]:
    return {row.status for row in GridStore(site.db).responses(subject=subject)}


def test_client_follows_the_control_in_force_and_answers_events(
    grid_site: GridSite, clock: SimulatedClock
) -> None:
    site, programs, now = grid_site, grid_site.programs, clock.now()
    curve = programs.create_curve(
        "utility",
        "opModVoltVar",
        [(9200, 30), (9800, 0), (10200, 0), (10800, -30)],
        x_multiplier=-2,
        y_ref_type=2,
    )
    limit = programs.create_control(
        "utility",
        {"opModMaxLimW": 5000, "opModVoltVar": {"href": curve}},
        now - timedelta(minutes=1),
        3600,
    )
    export = programs.create_control(
        "aggregator", {"opModFixedW": 4000}, now - timedelta(minutes=1), 3600
    )
    done = programs.create_control(
        "aggregator", {"opModMaxLimW": 1000}, now - timedelta(hours=2), 600
    )
    cancelled = programs.create_control(
        "utility", {"opModEnergize": False}, now + timedelta(hours=1), 60
    )
    programs.cancel_control(cancelled)

    client = make_client(site, "evse-1", clock, pin=111115)
    try:
        assert client.discover().end_devices == "/edev"
        assert client.register().sfdi == site.devices["evse-1"].sfdi
        control = client.poll()
        # The utility's limit and curve hold over the aggregator's dispatch, which still runs.
        assert control.max_limit_pu == 0.5
        assert control.target_w == pytest.approx(0.4 * RATING.max_discharge_w)
        assert isinstance(control.reactive, VoltVar)
        assert control.reactive.var_pu(0.0, 0.92) == pytest.approx(0.3 * 0.44)
        inverter = client.inverter
        inverter.request(Setpoint(-7_000))
        client.poll()
        assert inverter.command(240, 60).active_w == pytest.approx(3_840)
        # The driver declines the dispatch: the consumer's ask stands, inside the limit.
        client.opt_out(export)
        inverter.request(Setpoint(9_000))
        client.poll()
        assert inverter.command(240, 60).active_w == pytest.approx(4_800)

        assert statuses(site, limit) == {RECEIVED, STARTED}
        assert statuses(site, export) == {RECEIVED, STARTED, OPTED_OUT}
        assert statuses(site, done) == {RECEIVED, STARTED, COMPLETED}
        assert statuses(site, cancelled) == {RECEIVED, EVENT_CANCELLED}

        location = client.mirror(now, 3_000, -200, 241, 12_345)
        assert location.startswith("/mup/")
        store = GridStore(site.db)
        (point,) = store.usage_points(client.lfdi)
        readings = {row.uom: row.value for row in store.latest_readings(point.id)}
        assert readings[UOM_W] == 3_000 and readings[UOM_V] == 241

        client.report_status(now)
        reported = store.documents(client.lfdi)["ders"].body
        assert "<value>07</value>" in reported and "alarmStatus" not in reported
        inverter.step(now, 240, 60)
        inverter.step(now + timedelta(seconds=1), 1.3 * 240, 60)
        tripped = inverter.step(now + timedelta(seconds=1.2), 1.3 * 240, 60)
        assert tripped.condition.value == "tripped"
        client.report_status(now + timedelta(seconds=1.2))
        reported = store.documents(client.lfdi)["ders"].body
        assert "<alarmStatus>00000002</alarmStatus>" in reported
    finally:
        client.close()


def test_ramp_time_and_frequency_watt_curve_of_a_served_control_take_effect(
    grid_site: GridSite, clock: SimulatedClock
) -> None:
    programs, now = grid_site.programs, clock.now()
    curve = programs.create_curve(
        "utility", "opModFreqWatt", [(6000, 100), (6200, 0)], x_multiplier=-2, y_ref_type=1
    )
    with pytest.raises(ValidationError, match="rampTms is in hundredths of a second"):
        programs.create_control("utility", {"rampTms": 70_000}, now, 60)
    base = {"opModMaxLimW": 5000, "rampTms": 1000, "opModFreqWatt": {"href": curve}}
    programs.create_control("utility", base, now - timedelta(minutes=1), 3600)
    client = make_client(grid_site, "evse-1", clock, pin=111115)
    inverter = client.inverter
    inverter.request(Setpoint(9_600))
    inverter.step(now, 240, 60)
    assert inverter.step(now + timedelta(seconds=30), 240, 60).active_w == pytest.approx(9_600)
    try:
        control = client.poll()
        assert control.ramp_s == 10.0 and control.freq_watt is not None
        # The limit comes in over the control's 10 s ramp time, not at once.
        outputs = [
            inverter.step(now + timedelta(seconds=30 + s), 240, 60).active_w for s in (0, 5, 10)
        ]
        assert outputs == pytest.approx([9_600, 7_200, 4_800])
        # The server's frequency-watt curve: at 61.5 Hz a quarter of setMaxW.
        assert inverter.command(240, 61.5).active_w == pytest.approx(2_400)
        assert inverter.command(240, 60.5).active_w == pytest.approx(4_800)
    finally:
        client.close()


def test_registration_refuses_a_wrong_pin_and_an_unadmitted_device(
    grid_site: GridSite, clock: SimulatedClock
) -> None:
    wrong = make_client(grid_site, "evse-2", clock, pin=999990)
    stranger = make_client(grid_site, "stranger", clock, pin=None)
    try:
        with pytest.raises(PermissionDenied, match="PIN"):
            wrong.register()
        assert wrong.device is None
        with pytest.raises(PermissionDenied, match="not admitted"):
            stranger.register()
    finally:
        wrong.close()
        stranger.close()


def test_unreachable_server_leaves_the_default_control_in_force(
    grid_site: GridSite, clock: SimulatedClock
) -> None:
    now = clock.now()
    grid_site.programs.create_control(
        "utility", {"opModMaxLimW": 2000}, now - timedelta(minutes=1), 3600
    )
    client = make_client(grid_site, "evse-1", clock, pin=111115)
    try:
        assert client.poll().max_limit_pu == 0.2
        client.http.base_url = f"https://127.0.0.1:{free_port()}"
        # Within the poll rate the device keeps what it read.
        clock.advance(timedelta(seconds=10))
        assert client.poll().max_limit_pu == 0.2
        clock.advance(timedelta(seconds=client.capability.poll_rate if client.capability else 900))
        control = client.poll()
        assert not client.reachable
        assert control.max_limit_pu == 1.0 and control.target_w is None
        client.inverter.request(Setpoint(20_000))
        assert client.inverter.command(240, 60).active_w == RATING.max_discharge_w
    finally:
        client.close()


def test_notification_makes_the_client_read_the_new_control(
    grid_site: GridSite, clock: SimulatedClock
) -> None:
    device = grid_site.devices["evse-1"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(device.certificate, device.key)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(grid_site.ca)
    client = make_client(grid_site, "evse-1", clock, pin=111115)
    received: queue.Queue[str] = queue.Queue()

    def on_notification(resource: str) -> None:
        client.notified(resource)
        received.put(resource)

    listener = NotificationListener(context, on_notification, client.schema)
    listener.start()
    try:
        assert client.poll().max_limit_pu == 1.0
        locations = client.subscribe(listener.url)
        # The device's FunctionSetAssignmentsList, the utility's and the aggregator's programs.
        assert len(locations) == 3
        assert all(href.startswith(f"/edev/{device.sfdi}/sub/") for href in locations)
        # A peer of the grid CA posting junk is refused in HTTP's terms and changes nothing;
        # like the server, it knows the device by its CA chain, not by a host name.
        peer = tls_context(grid_site.ca, device.certificate, device.key)
        peer.check_hostname = False
        junk = httpx.post(listener.url, content=b"<not-2030.5/>", verify=peer)
        assert junk.status_code == 400 and "Notification" in junk.text
        assert received.empty()

        mrid = grid_site.programs.create_control(
            "utility", {"opModMaxLimW": 3000}, clock.now() - timedelta(seconds=5), 900
        )
        resource = received.get(timeout=30)
        assert resource == client.programs[0].document.controls
        # Well within the poll rate, yet the new control is read and put in force.
        assert client.poll().max_limit_pu == 0.3
        assert statuses(grid_site, mrid) == {RECEIVED, STARTED}

        # A program added later reaches the device through its FunctionSetAssignments; the
        # next poll reads it and subscribes to its controls too.
        grid_site.programs.create_program("feeder", 0)
        assert received.get(timeout=30) == f"/edev/{device.sfdi}/fsa"
        client.poll()
        feeder = client.programs[0].document
        assert feeder.description == "feeder"
        grid_site.programs.create_control(
            "feeder", {"opModMaxLimW": 2000}, clock.now() - timedelta(seconds=5), 900
        )
        assert received.get(timeout=30) == feeder.controls
        assert client.poll().max_limit_pu == 0.2
    finally:
        listener.stop()
        client.close()

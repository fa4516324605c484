"""`evgi grid`: the IEEE 2030.5 server's certificate authority, devices, DER programs and
controls. Commands write to the database `evgi serve` reads; devices see changes at their next
poll, and subscribers are notified within a second or two. `evgi grid client` is the other
end: one EVSE's 2030.5 client and inverter, run against a server."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import hashes, serialization
from rich.table import Table

from evgi.app import Platform
from evgi.cli.context import app, console, err, opened_platform, print_json, settings_of
from evgi.core.clock import SystemClock
from evgi.core.errors import ConfigError, EvgiError, ValidationError
from evgi.grid import (
    CONTROL_FIELDS,
    RESPONSE_STATUS,
    DerPrograms,
    EndDevices,
    GridClient,
    GridControl,
    GridUnreachable,
    Inverter,
    NotificationListener,
    Rating,
    Schema,
    ServerRefused,
    Setpoint,
    client_ssl_context,
    grid_authority,
    grid_ca_certificate_path,
    lfdi,
    notification_ssl_context,
    read_device_identity,
    sfdi,
)
from evgi.storage.grid import GridStore

grid_app = typer.Typer(
    help="The IEEE 2030.5 (CSIP) server: its CA, devices, DER programs and controls.",
    no_args_is_help=True,
)
program_app = typer.Typer(help="DER programs, their primacy, defaults and curves.")
control_app = typer.Typer(help="DERControl events: create, cancel, list with status.")
devices_app = typer.Typer(help="Devices admitted to the server, their status and telemetry.")
grid_app.add_typer(program_app, name="program")
grid_app.add_typer(control_app, name="control")
grid_app.add_typer(devices_app, name="devices")
app.add_typer(grid_app, name="grid")

_KINDS = dict(CONTROL_FIELDS)
JsonFlag = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _grid(ctx: typer.Context) -> Iterator[tuple[Platform, GridStore]]:
    with opened_platform(ctx) as platform:
        yield platform, GridStore(platform.db)


@contextmanager
def _refusals() -> Iterator[None]:
    try:
        yield
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


# -- certificate authority -------------------------------------------------------------------


@grid_app.command("ca-init")
def grid_ca_init(ctx: typer.Context) -> None:
    """Create the grid's own P-256 CA under data-dir/pki/grid-root (or show the one there)."""
    with _refusals():
        authority = grid_authority(settings_of(ctx))
    console.print(f"grid CA:     {authority.certificate.subject.rfc4514_string()}")
    console.print(f"certificate: {authority.certificate_path}")
    fingerprint = authority.certificate.fingerprint(hashes.SHA256()).hex(":")
    console.print(f"SHA-256:     {fingerprint}", emoji=False, soft_wrap=True)


@grid_app.command("issue-device")
def grid_issue_device(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="file name and CN of the certificate")],
    out: Annotated[Path, typer.Option("--out", help="folder for the PEM files")] = Path("."),
    pin: Annotated[
        int | None, typer.Option(help="also admit the device with this registration PIN")
    ] = None,
) -> None:
    """Issue a device's P-256 client certificate and print its LFDI and SFDI."""
    _issue_device(ctx, name, out, pin)


def _issue_device(ctx: typer.Context, name: str, out: Path, pin: int | None) -> None:
    """`out/name.pem` and `out/name.key.pem` from the grid CA, the device admitted when a PIN
    is given."""
    settings = settings_of(ctx)
    with _refusals():
        issued = grid_authority(settings).issue_device_certificate(name)
        chain, key = issued.write(out, name, settings.keystore_password)
    device = lfdi(issued.certificate.public_bytes(serialization.Encoding.DER))
    console.print(f"certificate chain: {chain}")
    console.print(f"private key:       {key}")
    console.print(f"LFDI:              {device}")
    console.print(f"SFDI:              {sfdi(device)}")
    if pin is not None:
        with _grid(ctx) as (platform, store), _refusals():
            EndDevices(store, platform.clock).register(device, pin)
        console.print(f"admitted with PIN {pin}")


# -- the EVSE side ---------------------------------------------------------------------------


@grid_app.command("client")
def grid_client(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="the device: its chain is DIR/NAME.pem, its key DIR/NAME.key.pem")
    ],
    folder: Annotated[Path, typer.Option("--dir", help="folder of the device's PEM files")] = Path(
        "."
    ),
    issue: Annotated[
        bool,
        typer.Option(
            "--issue",
            help="if NAME has no certificate yet, issue one from this data dir's grid CA "
            "(as issue-device does) and admit it with --pin",
        ),
    ] = False,
    pin: Annotated[
        int | None,
        typer.Option(help="registration PIN printed on the device; the server's must match"),
    ] = None,
    server: Annotated[
        str | None, typer.Option(help="2030.5 server, default https://grid_host:grid_port")
    ] = None,
    ca: Annotated[
        Path | None, typer.Option(help="grid CA certificate to trust, default this data dir's")
    ] = None,
    duration: Annotated[float, typer.Option(help="seconds to run; 0 runs until Ctrl-C")] = 0.0,
    interval: Annotated[
        float, typer.Option(help="seconds between steps of the inverter under the control")
    ] = 1.0,
    telemetry: Annotated[
        float, typer.Option(help="seconds between telemetry (/mup) and DERStatus posts")
    ] = 60.0,
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST[:PORT] the server can reach this device at: serve 2030.5 notifications "
            "there and subscribe to the programs, so changes apply before the next poll"
        ),
    ] = None,
    setpoint: Annotated[
        float, typer.Option(help="W the site asks: positive discharges, negative charges")
    ] = 0.0,
    max_charge_w: Annotated[float, typer.Option(help="rated charging power, W")] = 11_000.0,
    max_discharge_w: Annotated[float, typer.Option(help="rated discharging power, W")] = 11_000.0,
    apparent_va: Annotated[float, typer.Option(help="rated apparent power, VA")] = 11_500.0,
    nominal_hz: Annotated[
        float | None, typer.Option(help="system frequency, default grid_nominal_hz (60)")
    ] = None,
    nominal_v: Annotated[
        float | None, typer.Option(help="nominal voltage VN, default grid_nominal_v (240)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run one EVSE's IEEE 2030.5 client against a server: discovery from /dcap, registration
    with the PIN check, polling of its programs, responses to events, telemetry and DERStatus
    posts, and the DefaultDERControls it last read while the server is unreachable; with
    --listen, notifications too. Prints the control in force each time it changes, for
    --duration seconds or until Ctrl-C."""
    settings = settings_of(ctx)
    chain, key = folder / f"{name}.pem", folder / f"{name}.key.pem"
    if not chain.exists():
        if not issue:
            err.print(
                f"[red]error:[/red] no device certificate {chain}: have the grid operator run "
                f"`evgi grid issue-device {name}`, or pass --issue on the operator's data dir"
            )
            raise typer.Exit(2)
        _issue_device(ctx, name, folder, pin)
    with _refusals():
        identity = read_device_identity(chain, key, settings.keystore_password)
        trusted = ca or grid_ca_certificate_path(settings)
        if not trusted.exists():
            raise ConfigError(f"no grid CA certificate at {trusted}: pass --ca")
        rating = Rating(
            max_charge_w,
            max_discharge_w,
            apparent_va,
            nominal_v or settings.grid_nominal_v,
            nominal_hz or settings.grid_nominal_hz,
        )
        inverter = Inverter(rating)
        inverter.request(Setpoint(setpoint))
        client = GridClient(
            server or f"https://{settings.grid_host}:{settings.grid_port}",
            client_ssl_context(trusted.read_text(), identity),
            identity.certificate.public_bytes(serialization.Encoding.DER),
            inverter,
            SystemClock(),
            pin=pin,
            schema=None if settings.grid_schema is None else Schema(settings.grid_schema),
        )
        listener = None
        if listen is not None:
            host, _, port = listen.partition(":")
            if port and not port.isdigit():
                raise ValidationError(f"--listen {listen!r} is not HOST[:PORT]")
            listener = NotificationListener(
                notification_ssl_context(trusted.read_text(), identity),
                client.notified,
                client.schema,
                host,
                int(port or 0),
            )
    try:
        with _refusals():
            if listener is not None:
                listener.start()
            _run_device(client, listener, duration, interval, telemetry, as_json)
    except KeyboardInterrupt:
        err.print("stopped")
    finally:
        if listener is not None:
            listener.stop()
        client.close()


def _run_device(
    client: GridClient,
    listener: NotificationListener | None,
    duration: float,
    interval: float,
    telemetry: float,
    as_json: bool,
) -> None:
    rating = client.inverter.rating
    _say(as_json, {"device": client.lfdi, "sfdi": client.sfdi, "server": str(client.http.base_url)})
    try:
        device = client.register()
        _say(as_json, {"registered": device.href, "pin_checked": client.pin is not None})
    except GridUnreachable as exc:
        _say(as_json, {"unreachable": exc.message})
    if listener is not None:
        # Unreachable now, the client subscribes at the first poll that reaches the server.
        with contextlib.suppress(GridUnreachable):
            subscribed = client.subscribe(listener.url)
            _say(as_json, {"notifications": listener.url, "subscriptions": subscribed})
    deadline = None if duration <= 0 else time.monotonic() + duration
    shown: dict[str, Any] | None = None
    next_telemetry = client.clock.now()
    last: datetime | None = None
    energy_wh = 0.0
    while True:
        now = client.clock.now()
        control = client.poll()
        output = client.inverter.step(now, rating.nominal_v, rating.nominal_hz)
        energy_wh += 0.0 if last is None else output.active_w * (now - last).total_seconds() / 3600
        last = now
        view = {
            "reachable": client.reachable,
            "events": sorted(client.running),
            "control": _control_view(control, rating),
        }
        if view != shown:
            shown = view
            _say(as_json, {"at": now.isoformat(), **view})
        if client.reachable and now >= next_telemetry:
            next_telemetry = now + timedelta(seconds=telemetry)
            try:
                client.mirror(
                    now, output.active_w, output.reactive_var, rating.nominal_v, round(energy_wh)
                )
                client.report_status(now)
            except (GridUnreachable, ServerRefused) as exc:
                _say(as_json, {"telemetry_failed": exc.message})
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(
            interval if deadline is None else max(min(interval, deadline - time.monotonic()), 0)
        )


def _control_view(control: GridControl, rating: Rating) -> dict[str, Any]:
    """The settings in force as an operator reads them: W, per unit, Hz and seconds."""
    view: dict[str, Any] = {"energize": control.energize}
    if control.max_limit_pu is not None:
        view["max_w"] = round(control.max_limit_pu * rating.max_discharge_w)
    if control.target_w is not None:
        view["target_w"] = round(control.target_w)
    reactive = control.reactive
    view["reactive"] = "site's own" if reactive is None else type(reactive).__name__
    if control.volt_watt is not None:
        view["volt_watt"] = [list(point) for point in control.volt_watt.curve.points]
    if control.freq_watt is not None:
        view["freq_watt"] = [list(point) for point in control.freq_watt.curve.points]
    else:
        droop = control.droop
        view["droop"] = [round(droop.deadband_over_hz, 4), droop.droop_over]
    trips = control.voltage_trips + control.frequency_trips
    if trips:
        view["must_trip"] = [f"{t.name}:{t.threshold:g}@{t.clearing_s:g}s" for t in trips]
    if control.ramp_s is not None:
        view["ramp_s"] = control.ramp_s
    return view


def _say(as_json: bool, entry: dict[str, Any]) -> None:
    """One line per event: JSON, or `key=value` pairs."""
    if as_json:
        typer.echo(json.dumps(entry, default=str))
        return
    parts: list[str] = []
    for key, value in entry.items():
        if isinstance(value, dict):
            parts.extend(f"{k}={v}" for k, v in value.items())
        else:
            parts.append(f"{key}={value}")
    console.print(" ".join(parts), soft_wrap=True, highlight=False, markup=False)


# -- devices ---------------------------------------------------------------------------------


@devices_app.command("add")
def devices_add(
    ctx: typer.Context,
    device: Annotated[str, typer.Argument(help="LFDI (40 hex digits)")],
    pin: Annotated[int, typer.Option(help="registration PIN the installer reads on the device")],
) -> None:
    """Admit a device by its LFDI: it may then register and read its programs."""
    with _grid(ctx) as (platform, store), _refusals():
        short = EndDevices(store, platform.clock).register(device, pin)
    console.print(f"admitted {device.upper()} (SFDI {short})")


@devices_app.command("remove")
def devices_remove(ctx: typer.Context, device: Annotated[str, typer.Argument(help="LFDI")]) -> None:
    """Withdraw a device: it loses access to every resource at once."""
    with _grid(ctx) as (platform, store), _refusals():
        EndDevices(store, platform.clock).remove(device)
    console.print(f"removed {device.upper()}")


@devices_app.command("list")
def devices_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Devices with their last DER status and newest mirrored telemetry."""
    with _grid(ctx) as (platform, store):
        reports = EndDevices(store, platform.clock).reports()
    if as_json:
        print_json([report.__dict__ for report in reports])
        return
    table = Table("LFDI", "SFDI", "last seen", "status", "telemetry")
    for report in reports:
        status = report.documents.get("ders", {})
        shown = ", ".join(
            f"{key}={value}" for key, value in status.items() if not key.endswith("dateTime")
        )
        telemetry = ", ".join(
            f"{name}={entry['value']}e{entry['power_of_ten']}"
            for name, entry in report.telemetry.items()
        )
        table.add_row(report.lfdi, str(report.sfdi), report.last_seen or "never", shown, telemetry)
    console.print(table)


# -- programs --------------------------------------------------------------------------------


@program_app.command("create")
def program_create(
    ctx: typer.Context,
    description: Annotated[str, typer.Argument(help="name of the program (32 bytes at most)")],
    primacy: Annotated[int, typer.Option(help="0-255; lower wins over other programs")],
    default: Annotated[
        list[str] | None,
        typer.Option("--default", help="DefaultDERControl setpoint NAME=VALUE (repeatable)"),
    ] = None,
) -> None:
    """Create a DER program, optionally with a DefaultDERControl."""
    with _grid(ctx) as (platform, store), _refusals():
        base = _setpoints(default or [], []) if default else None
        row = DerPrograms(store, platform.clock).create_program(description, primacy, base)
    console.print(f"program {row.id} ({row.mrid}) primacy {row.primacy}")


@program_app.command("list")
def program_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    with _grid(ctx) as (_platform, store):
        rows = store.programs()
    entries = [
        {
            "id": row.id,
            "mrid": row.mrid,
            "description": row.description,
            "primacy": row.primacy,
            "default_control": json.loads(row.default_control) if row.default_control else None,
        }
        for row in rows
    ]
    if as_json:
        print_json(entries)
        return
    table = Table("id", "mRID", "description", "primacy", "default control")
    for entry in entries:
        table.add_row(
            str(entry["id"]),
            entry["mrid"],
            entry["description"],
            str(entry["primacy"]),
            json.dumps(entry["default_control"]) if entry["default_control"] else "",
        )
    console.print(table)


@program_app.command("curve")
def program_curve(
    ctx: typer.Context,
    program: Annotated[str, typer.Argument(help="program id, mRID or description")],
    curve_type: Annotated[str, typer.Argument(help="e.g. opModVoltVar, opModFreqWatt")],
    point: Annotated[list[str], typer.Option("--point", help="X,Y (repeatable, 1 to 10)")],
    y_ref_type: Annotated[int, typer.Option(help="DERUnitRefType of y (2030.5)")] = 0,
    x_multiplier: Annotated[int, typer.Option(help="power of ten of x")] = 0,
    y_multiplier: Annotated[int, typer.Option(help="power of ten of y")] = 0,
) -> None:
    """Add a curve (volt-var, volt-watt, freq-watt, watt-PF, watt-var, trip, ride-through)."""
    with _grid(ctx) as (platform, store), _refusals():
        points = [_point(text) for text in point]
        mrid = DerPrograms(store, platform.clock).create_curve(
            program,
            curve_type,
            points,
            x_multiplier=x_multiplier,
            y_multiplier=y_multiplier,
            y_ref_type=y_ref_type,
        )
    console.print(f"curve {mrid}")


# -- controls --------------------------------------------------------------------------------


@control_app.command("create")
def control_create(
    ctx: typer.Context,
    program: Annotated[str, typer.Argument(help="program id, mRID or description")],
    duration: Annotated[int, typer.Option(help="seconds")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="setpoint NAME=VALUE, e.g. opModMaxLimW=5000 (repeatable)"),
    ] = None,
    curve: Annotated[
        list[str] | None,
        typer.Option("--curve", help="curve mode NAME=CURVE_MRID, e.g. opModVoltVar=... "),
    ] = None,
    start: Annotated[str, typer.Option(help="ISO 8601 start (UTC if no offset), or 'now'")] = "now",
    randomize_start: Annotated[int | None, typer.Option(help="seconds, -3600 to 3600")] = None,
    randomize_duration: Annotated[int | None, typer.Option(help="seconds, -3600 to 3600")] = None,
    description: Annotated[str, typer.Option(help="32 bytes at most")] = "",
) -> None:
    """Schedule a DERControl event in a program."""
    with _grid(ctx) as (platform, store), _refusals():
        base = _setpoints(set_ or [], curve or [])
        moment = platform.clock.now() if start == "now" else _instant(start)
        mrid = DerPrograms(store, platform.clock).create_control(
            program, base, moment, duration, description, randomize_start, randomize_duration
        )
    console.print(f"control {mrid}")


@control_app.command("cancel")
def control_cancel(
    ctx: typer.Context, mrid: Annotated[str, typer.Argument(help="mRID of the control")]
) -> None:
    with _grid(ctx) as (platform, store), _refusals():
        DerPrograms(store, platform.clock).cancel_control(mrid)
    console.print(f"cancelled {mrid.upper()}")


@control_app.command("list")
def control_list(
    ctx: typer.Context,
    program: Annotated[str | None, typer.Argument(help="program id, mRID or description")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Controls with their event status and the devices' latest responses."""
    with _grid(ctx) as (platform, store), _refusals():
        programs = DerPrograms(store, platform.clock)
        chosen = [programs.program(program)] if program else store.programs()
        now = platform.clock.now()
        entries: list[dict[str, Any]] = []
        for row in chosen:
            for control in programs.control_documents(row.id, now):
                entries.append(
                    {
                        "program": row.id,
                        "mrid": control.mrid,
                        "start": control.start.isoformat(),
                        "duration": control.duration,
                        "status": control.status,
                        "potentially_superseded": control.potentially_superseded,
                        "setpoints": control.base,
                        "responses": {
                            response.lfdi: RESPONSE_STATUS.get(response.status or 0, "unknown")
                            for response in store.responses(subject=control.mrid)
                        },
                    }
                )
    if as_json:
        print_json(entries)
        return
    names = {0: "scheduled", 1: "active", 2: "cancelled", 3: "cancelled", 4: "superseded"}
    table = Table("program", "mRID", "start", "s", "status", "setpoints", "responses")
    for entry in entries:
        status = names.get(entry["status"], str(entry["status"]))
        if entry["potentially_superseded"]:
            status += " (overlapped)"
        table.add_row(
            str(entry["program"]),
            entry["mrid"],
            entry["start"],
            str(entry["duration"]),
            status,
            json.dumps(entry["setpoints"]),
            ", ".join(f"{k[:8]}…: {v}" for k, v in entry["responses"].items()),
        )
    console.print(table)


def _setpoints(settings: list[str], curves: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs as a DERControlBase: booleans, integers (power in W, per cents in
    hundredths), JSON objects for structured values; curves by mRID."""
    base: dict[str, Any] = {}
    for text in settings:
        name, value = _pair(text)
        kind = _KINDS.get(name)
        if kind == "bool":
            if value.lower() not in ("true", "false"):
                raise ValidationError(f"{name} is true or false")
            base[name] = value.lower() == "true"
        elif kind == "power" and value.lstrip("-").isdigit():
            base[name] = _power(int(value))
        elif value.startswith("{"):
            base[name] = json.loads(value)
        else:
            try:
                base[name] = int(value)
            except ValueError as exc:
                raise ValidationError(f"{name}={value!r}: not an integer") from exc
    for text in curves:
        name, value = _pair(text)
        base[name] = {"href": value}
    return base


def _power(watts: int) -> dict[str, int]:
    """ActivePower as 2030.5 carries it: a 16-bit value and a power of ten."""
    multiplier = 0
    while not -32768 <= watts <= 32767:
        if watts % 10:
            raise ValidationError(f"{watts} W does not fit 16 bits at any exact power of ten")
        watts //= 10
        multiplier += 1
    return {"multiplier": multiplier, "value": watts}


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValidationError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value.strip()


def _point(text: str) -> tuple[int, int]:
    try:
        x, y = (int(part) for part in text.split(","))
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not a point X,Y of integers") from exc
    return x, y


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{text!r} is not an ISO 8601 time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

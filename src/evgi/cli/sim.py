"""`evgi sim`: simulated charging stations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evgi.cli.context import (
    app,
    console,
    err,
    settings_of,
)
from evgi.core.errors import EvgiError

sim_app = typer.Typer(
    help="Simulated charging stations that drive the real protocols.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")


@sim_app.command("station")
def sim_station(
    ctx: typer.Context,
    version: Annotated[str, typer.Option("--version", help="OCPP version: 1.6, 2.0.1 or 2.1")] = (
        "2.0.1"
    ),
    station_id: Annotated[str, typer.Option("--id", help="the station's identity")] = "ST-1",
    url: Annotated[
        str, typer.Option(help="the CSMS's OCPP endpoint; the station id is appended")
    ] = "ws://127.0.0.1:9000/ocpp",
    password: Annotated[
        str | None, typer.Option(help="HTTP Basic password (security profiles 1 and 2)")
    ] = None,
    token: Annotated[str, typer.Option(help="RFID token presented to start and stop")] = (
        "04A1B2C3D4E5F6"
    ),
    minutes: Annotated[float, typer.Option(help="how long the EV charges")] = 30.0,
    power: Annotated[int, typer.Option(help="power the EV draws, W")] = 11_000,
    ca: Annotated[
        Path | None, typer.Option(help="PEM of the CSMS root CA, to trust a wss:// endpoint")
    ] = None,
    cert: Annotated[
        Path | None, typer.Option(help="station certificate chain PEM (security profile 3)")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="its private key PEM")] = None,
    real_time: Annotated[
        bool, typer.Option("--real-time", help="charge in wall-clock time, not simulated time")
    ] = False,
) -> None:
    """Connect one simulated station to a CSMS and run one RFID charging session on it."""
    import asyncio

    from evgi.core.clock import SimulatedClock, SystemClock
    from evgi.sim.stations import Offline, Session, Station, station_class

    ssl_context = None
    if ca is not None:
        from cryptography import x509

        from evgi.csms.security import station_ssl_context

        ssl_context = station_ssl_context(x509.load_pem_x509_certificate(ca.read_bytes()))
        if cert is not None:
            secret = settings_of(ctx).keystore_password or None
            ssl_context.load_cert_chain(cert, key, secret)
    try:
        station: Station = station_class(version)(
            station_id,
            url,
            password=password,
            ssl=ssl_context,
            clock=SystemClock() if real_time else SimulatedClock(),
        )
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc

    async def visit() -> Session:
        await station.connect()
        try:
            return await station.run_session(token, minutes * 60, power)
        finally:
            await station.close()

    try:
        session = asyncio.run(visit())
    except Offline as exc:
        err.print(f"[red]offline:[/red] {exc}")
        raise typer.Exit(2) from exc
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    table = Table("station", "OCPP", "token", "transaction", "start", "stop", "energy Wh", "reason")
    table.add_row(
        station_id,
        version,
        token,
        session.transaction_id or "-",
        session.started.isoformat(timespec="seconds"),
        session.stopped.isoformat(timespec="seconds") if session.stopped else "-",
        str(session.energy_wh),
        str(session.stop_reason or "-"),
    )
    console.print(table)
    console.print(
        f"{station.messages_checked} messages from the CSMS checked against the OCPP "
        f"{version} schemas: {len(station.schema_violations)} violation(s)"
    )
    for violation in station.schema_violations:
        err.print(f"[red]{violation.kind} {violation.action}:[/red] {violation.problem}")
    if station.schema_violations or len(station.outbox):
        raise typer.Exit(1)

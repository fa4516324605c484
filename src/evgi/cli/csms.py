"""`evgi csms`: stations and id tokens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from evgi.cli.context import (
    app,
    console,
    opened_platform,
)
from evgi.csms import Csms

csms_app = typer.Typer(help="Charging stations and id tokens of the CSMS.", no_args_is_help=True)
csms_tokens_app = typer.Typer(
    help="Id tokens (RFID cards, apps) that may charge.", no_args_is_help=True
)
csms_app.add_typer(csms_tokens_app, name="tokens")
app.add_typer(csms_app, name="csms")


@contextmanager
def _csms(ctx: typer.Context) -> Iterator[Csms]:
    with opened_platform(ctx) as platform:
        csms = Csms(platform.settings, platform.db, platform.bus, platform.clock)
        try:
            yield csms
        finally:
            csms.store.close()


@csms_app.command("stations")
def csms_stations(ctx: typer.Context) -> None:
    """Registered stations: version, boot status, security profile, last seen."""
    with _csms(ctx) as csms:
        table = Table("id", "OCPP", "vendor / model", "boot", "profile", "connected", "last seen")
        for s in csms.store.run(csms.store.stations):
            table.add_row(
                s.id,
                s.ocpp_version or "-",
                f"{s.vendor or '-'} / {s.model or '-'}",
                s.boot_status,
                str(s.security_profile),
                "yes" if s.connected else "no",
                s.last_seen.isoformat(timespec="seconds") if s.last_seen else "-",
            )
        console.print(table)


@csms_app.command("add-station")
def csms_add_station(
    ctx: typer.Context,
    station_id: str,
    password: Annotated[
        str | None, typer.Option(help="Basic-auth password, 16 to 40 characters")
    ] = None,
    profile: Annotated[
        int | None, typer.Option(help="security profile 0-3 (1 with a password, else 0)")
    ] = None,
    boot_status: Annotated[
        str, typer.Option(help="answer to its BootNotification: Accepted, Pending, Rejected")
    ] = "Accepted",
) -> None:
    """Register a station so it may connect at ws://host:9000/ocpp/STATION_ID."""
    with _csms(ctx) as csms:
        station = csms.add_station(station_id, password, profile, boot_status)
        console.print(
            f"station {station.id} registered (security profile {station.security_profile}, "
            f"boot {station.boot_status})"
        )


@csms_tokens_app.command("add")
def csms_tokens_add(
    ctx: typer.Context,
    token: str,
    status: Annotated[str, typer.Option(help="Accepted, Blocked, Expired, Invalid...")] = (
        "Accepted"
    ),
    expires: Annotated[datetime | None, typer.Option(help="expiry, UTC unless it says")] = None,
    group: Annotated[str | None, typer.Option(help="group id token")] = None,
    token_type: Annotated[str, typer.Option("--type", help="ISO14443, eMAID, Central...")] = (
        "ISO14443"
    ),
) -> None:
    """Add or change an id token."""
    with _csms(ctx) as csms:
        expiry = expires.replace(tzinfo=UTC) if expires and expires.tzinfo is None else expires
        added = csms.add_token(token, status, expiry, group, token_type)
        console.print(f"token {added.token}: {added.status}")


@csms_tokens_app.command("list")
def csms_tokens_list(ctx: typer.Context) -> None:
    """Id tokens with status, expiry and group."""
    with _csms(ctx) as csms:
        table = Table("token", "type", "status", "expires", "group")
        for t in csms.store.run(csms.store.tokens):
            table.add_row(
                t.token,
                t.token_type,
                t.status,
                t.expires_at.isoformat() if t.expires_at else "-",
                t.group_id or "-",
            )
        console.print(table)

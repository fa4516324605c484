"""`evgi serve` and `evgi demo`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from evgi.cli.context import (
    app,
    console,
    err,
    opened_platform,
    progress_bar,
    settings_of,
)
from evgi.core.errors import EvgiError


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="address to listen on (EVGI_HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (EVGI_HTTP_PORT)")] = None,
    ocpp_port: Annotated[
        int | None, typer.Option(help="OCPP WebSocket port (EVGI_OCPP_PORT)")
    ] = None,
) -> None:
    """Run the platform's services: the HTTP API (OpenAPI at /docs), the OCPP server for
    charging stations at ws://host:9000/ocpp/{station_id}, and what each layer adds."""
    from evgi.service import run

    settings = settings_of(ctx)
    ctx.obj = settings.model_copy(
        update={
            k: v
            for k, v in {"http_host": host, "http_port": port, "ocpp_port": ocpp_port}.items()
            if v is not None
        }
    )
    with opened_platform(ctx) as platform, contextlib.suppress(KeyboardInterrupt):
        run(platform)


# -- demo ----------------------------------------------------------------------------------


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="folder for the demo's data and report")] = Path(
        "evgi-data/demo"
    ),
) -> None:
    """Run the reference scenario end to end over the real components and write its report."""
    from evgi.sim.scenario import run_demo

    try:
        result = run_demo(out, progress_bar())
    except EvgiError as exc:
        err.print(f"[red]demo failed:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"report: {result.html_path.resolve()}")
    console.print(f"data:   {result.json_path.resolve()}")
    if not result.ok:
        err.print(f"[red]demo checks failed:[/red] {'; '.join(result.failures)}")
        raise typer.Exit(1)

"""The root command, its global options and what every command group shares."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from evgi.app import Platform, open_platform
from evgi.config import Settings, load_settings
from evgi.core.canonical import parse_json
from evgi.core.errors import EvgiError
from evgi.core.keys import normalize_address
from evgi.identity import Did

app = typer.Typer(help="evgi: EV charging and grid integration platform.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="data folder (EVGI_DATA_DIR)")]
DbUrl = Annotated[str | None, typer.Option("--db", help="database URL (EVGI_DATABASE_URL)")]
LedgerEngine = Annotated[
    str | None, typer.Option("--ledger", help="ledger engine: local or evm (EVGI_LEDGER)")
]
RpcUrl = Annotated[
    str | None, typer.Option("--rpc", help="EVM JSON-RPC endpoint for --ledger evm (EVGI_RPC_URL)")
]


def settings_of(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@app.callback()
def _main(
    ctx: typer.Context,
    data_dir: DataDir = None,
    db: DbUrl = None,
    ledger: LedgerEngine = None,
    rpc: RpcUrl = None,
) -> None:
    try:
        ctx.obj = load_settings(data_dir=data_dir, database_url=db, ledger=ledger, rpc_url=rpc)
    except Exception as exc:  # pydantic reports every bad setting at once
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    level = logging.getLevelNamesMapping()[ctx.obj.log_level.upper()]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


@contextmanager
def opened_platform(ctx: typer.Context) -> Iterator[Platform]:
    try:
        platform = open_platform(settings_of(ctx))
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    try:
        yield platform
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc
    finally:
        platform.close()


def progress_bar(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
    )


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


def account_address(platform: Platform, name: str) -> str:
    """A key name, an address or a DID, as an address."""
    if name.startswith("did:"):
        return Did.parse(name, platform.ledger.chain_id).address
    if name.startswith("0x"):
        return normalize_address(name)
    return platform.account(name).address


def read_json_arg(value: str) -> Any:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    return parse_json(text)

"""`evgi ledger`: inspect and verify the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from evgi.cli.context import (
    app,
    console,
    err,
    opened_platform,
    print_json,
    progress_bar,
)

ledger_app = typer.Typer(help="Inspect and verify the ledger.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("verify")
def ledger_verify(ctx: typer.Context) -> None:
    """Re-check every signature, link and root and re-derive the state from genesis."""
    with opened_platform(ctx) as platform, progress_bar(transient=True) as bar:
        task = bar.add_task("verifying blocks", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = platform.ledger.verify(tick)
    if report.ok:
        console.print(
            f"[green]ledger ok[/green]: {report.blocks} blocks, {report.transactions} "
            f"transactions, {report.state_keys} state entries, head {report.head_hash}"
        )
        return
    err.print(
        f"[red]ledger verification failed at block {report.bad_block}[/red]: {report.problem}"
    )
    raise typer.Exit(1)


@ledger_app.command("show")
def ledger_show(
    ctx: typer.Context,
    blocks: Annotated[int, typer.Option(help="how many of the latest blocks to list")] = 10,
) -> None:
    """Chain id, head and the latest blocks."""
    with opened_platform(ctx) as platform:
        ledger = platform.ledger
        head = ledger.head()
        console.print(
            f"engine {ledger.engine_name}, chain {ledger.chain_id}, head block "
            f"{head.height} {head.compute_hash()}"
        )
        table = Table("height", "hash", "time", "txs", "tx root")
        for height in range(head.height, max(-1, head.height - blocks), -1):
            block = ledger.block(height)
            table.add_row(
                str(height),
                block.compute_hash()[:18] + "…",
                datetime.fromtimestamp(block.timestamp).isoformat(),
                str(block.tx_count),
                block.tx_root[:18] + "…",
            )
        console.print(table)


@ledger_app.command("tx")
def ledger_tx(ctx: typer.Context, tx_hash: str) -> None:
    """A transaction, its receipt and its Merkle inclusion proof."""
    with opened_platform(ctx) as platform:
        stx, receipt = platform.ledger.transaction(tx_hash)
        proof = platform.ledger.proof(tx_hash)
        proof.check()
        print_json(
            {"transaction": stx.to_wire(), "receipt": receipt.to_json(), "proof": proof.to_json()}
        )

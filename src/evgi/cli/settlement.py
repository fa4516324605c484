"""`evgi settlement`: CDRs, their anchoring on the ledger, proofs for disputes, invoices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evgi.cli.context import app, console, err, opened_platform, print_json
from evgi.core.canonical import parse_json
from evgi.core.errors import ValidationError
from evgi.core.units import Money
from evgi.settlement import (
    Cdr,
    CdrAnchoring,
    SessionProof,
    build_invoice,
    session_proof,
    verify_session_proof,
)
from evgi.storage import CdrStore
from evgi.storage.export_payment import export_payments

settlement_app = typer.Typer(
    help="Charge detail records, their anchoring on the ledger, proofs and invoices.",
    no_args_is_help=True,
)
app.add_typer(settlement_app, name="settlement")

OutFile = Annotated[Path | None, typer.Option("--out", help="write to this file")]


@settlement_app.command("cdrs")
def settlement_cdrs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="how many of the latest sessions")] = 20,
) -> None:
    """The latest sessions' CDRs: total, digest and anchoring batch."""
    with opened_platform(ctx) as platform:
        stored = CdrStore(platform.db, platform.clock).sessions(limit)
    table = Table("session", "stop", "total", "digest", "batch", "leaf")
    for cdr in stored:
        document = cdr.document
        table.add_row(
            cdr.session_id,
            cdr.stop.isoformat(),
            str(Money(document["currency"], document["total_minor"])),
            cdr.digest,
            "-" if cdr.batch_id is None else str(cdr.batch_id),
            "-" if cdr.leaf_index is None else str(cdr.leaf_index),
        )
    console.print(table)


@settlement_app.command("export-payments")
def settlement_export_payments(
    ctx: typer.Context,
    wallet: Annotated[str | None, typer.Option(help="of this wallet only")] = None,
    limit: Annotated[int, typer.Option(help="how many of the latest")] = 20,
) -> None:
    """What V2G sessions' drivers were paid for their export, and the transfers that paid it."""
    with opened_platform(ctx) as platform, platform.db.connect() as conn:
        payments = export_payments(conn, wallet=wallet, limit=limit)
    table = Table("session", "wallet", "export Wh", "paid", "state", "transaction")
    for payment in payments:
        table.add_row(
            payment.session_id,
            payment.wallet,
            str(payment.export_wh),
            str(Money(payment.currency, payment.amount_minor)),
            payment.state,
            payment.tx_hash or "-",
        )
    console.print(table)


@settlement_app.command("anchor")
def settlement_anchor(ctx: typer.Context) -> None:
    """Anchor every CDR not yet on the ledger now, as one Merkle root in one transaction."""
    with opened_platform(ctx) as platform:
        anchoring = CdrAnchoring.of_platform(
            platform.db, platform.ledger, platform.keystore, platform.clock
        )
        batches = anchoring.anchor_pending()
    if not batches:
        console.print("no CDRs waiting to be anchored")
    for batch in batches:
        console.print(
            f"batch {batch.id}: {batch.size} CDRs, root {batch.root}, "
            f"block {batch.block}, transaction {batch.tx_hash}"
        )


@settlement_app.command("prove")
def settlement_prove(ctx: typer.Context, session: str, out: OutFile = None) -> None:
    """A self-contained proof that SESSION's CDR is the one anchored on the ledger."""
    with opened_platform(ctx) as platform:
        proof = session_proof(CdrStore(platform.db, platform.clock), session)
    document = proof.to_json()
    if out is None:
        print_json(document)
        return
    out.write_text(json.dumps(document, indent=2) + "\n")
    err.print(f"proof of {session} written to {out}")


@settlement_app.command("verify-proof")
def settlement_verify_proof(ctx: typer.Context, file: Path) -> None:
    """Check a proof: the CDR's digest, the Merkle path to the root, and the root on the ledger."""
    try:
        proof = SessionProof.from_json(parse_json(file.read_bytes()))
    except OSError as exc:
        err.print(f"[red]cannot read {file}:[/red] {exc.strerror}")
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        err.print(f"[red]proof refused:[/red] {exc.message}")
        raise typer.Exit(1) from exc
    with opened_platform(ctx) as platform:
        try:
            verified = verify_session_proof(proof, platform.ledger)
        except ValidationError as exc:
            err.print(f"[red]proof refused:[/red] {exc.message}", soft_wrap=True)
            raise typer.Exit(1) from exc
    total = Money(verified.cdr.currency, verified.cdr.total_minor)
    console.print(
        f"[green]proof valid[/green]: session {verified.cdr.session_id}, {total}, "
        f"{verified.cdr.energy_wh} Wh; CDR {verified.digest} under root {verified.root}, "
        f"anchored in block {verified.block} by {verified.anchored_by} "
        f"at {verified.anchored_at.isoformat()}",
        soft_wrap=True,
    )


@settlement_app.command("invoice")
def settlement_invoice(
    ctx: typer.Context,
    session: str,
    out: Annotated[Path, typer.Option("--out", help="the HTML file to write")],
) -> None:
    """The driver's HTML invoice for SESSION, from its CDR."""
    with opened_platform(ctx) as platform:
        store = CdrStore(platform.db, platform.clock)
        cdr = Cdr.from_json(store.get(session).document)
        try:
            proof: SessionProof | None = session_proof(store, session)
        except ValidationError:
            proof = None  # not anchored yet: the invoice says so
    build_invoice(cdr, proof).write(out)
    err.print(f"invoice of {session} written to {out}")

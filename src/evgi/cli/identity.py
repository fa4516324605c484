"""`evgi identity`: DIDs and entity certificates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evgi.cli.context import (
    account_address,
    app,
    console,
    err,
    opened_platform,
    print_json,
    read_json_arg,
)
from evgi.core.canonical import parse_json
from evgi.core.errors import ValidationError
from evgi.core.identifiers import EntityKind, make_eid
from evgi.identity import (
    did_for,
    issue_entity_certificate,
    offboard_entity,
    resolve,
    verify_entity_certificate,
)

identity_app = typer.Typer(
    help="DIDs, entity certificates, on- and off-boarding.", no_args_is_help=True
)
app.add_typer(identity_app, name="identity")


@identity_app.command("create")
def identity_create(
    ctx: typer.Context,
    name: str,
    kind: Annotated[EntityKind | None, typer.Option(help="entity kind, to show its EID")] = None,
) -> None:
    """Create a key pair (saved encrypted under data-dir/keys) and show its DID."""
    with opened_platform(ctx) as platform:
        account = platform.keystore.create(name)
        out = {
            "name": name,
            "address": account.address,
            "did": did_for(platform.ledger.chain_id, account.address),
        }
        if kind is not None:
            out["eid"] = make_eid(kind, account.address)
        print_json(out)


@identity_app.command("list")
def identity_list(ctx: typer.Context) -> None:
    """Keys in the keystore with their DIDs and ledger status."""
    with opened_platform(ctx) as platform:
        table = Table("name", "DID", "kind", "status")
        for alias, address in platform.keystore.entries():
            record = platform.ledger.query("entity", "get", subject=address)
            status = (
                "-"
                if record is None
                else ("off-boarded" if record["offboarded"] is not None else "on-boarded")
            )
            table.add_row(
                alias,
                did_for(platform.ledger.chain_id, address),
                record["kind"] if record else "-",
                status,
            )
        console.print(table)


@identity_app.command("resolve")
def identity_resolve(
    ctx: typer.Context,
    did: str,
    at: Annotated[int | None, typer.Option(help="unix time for delegate validity")] = None,
) -> None:
    """Resolve a DID (or a key name) to its W3C DID document."""
    with opened_platform(ctx) as platform:
        target = (
            did
            if did.startswith("did:")
            else did_for(platform.ledger.chain_id, account_address(platform, did))
        )
        result = resolve(platform.ledger, target, at)
        print_json(result)
        if result["didDocument"] is None:
            raise typer.Exit(1)


@identity_app.command("issue-ec")
def identity_issue_ec(
    ctx: typer.Context,
    issuer: Annotated[str, typer.Option(help="key name of the issuer (trust anchor, OEM, CPO…)")],
    subject: Annotated[str, typer.Option(help="key name, address or DID of the subject")],
    kind: Annotated[EntityKind, typer.Option(help="entity kind of the subject")],
    claims: Annotated[str, typer.Option(help="claims as JSON, or @file.json")] = "{}",
    out: Annotated[Path | None, typer.Option(help="write the certificate here")] = None,
    expires: Annotated[datetime | None, typer.Option(help="expiry, UTC unless it says")] = None,
) -> None:
    """Issue an entity certificate, anchor its hash and on-board the subject."""
    with opened_platform(ctx) as platform:
        data = read_json_arg(claims)
        if not isinstance(data, dict):
            raise ValidationError("claims must be a JSON object")
        issued = issue_entity_certificate(
            platform.submitter(issuer),
            account_address(platform, subject),
            kind,
            data,
            platform.clock,
            expires.replace(tzinfo=UTC) if expires and expires.tzinfo is None else expires,
        )
        text = json.dumps(issued.document, indent=2)
        if out is not None:
            out.write_text(text + "\n")
            err.print(f"certificate written to {out}")
        else:
            console.print_json(text)
        err.print(
            f"anchored {issued.hash} in block {issued.receipt.block} (tx {issued.receipt.tx_hash})"
        )


@identity_app.command("verify-ec")
def identity_verify_ec(
    ctx: typer.Context,
    certificate: Path,
    at_block: Annotated[int | None, typer.Option(help="judge as of this block")] = None,
) -> None:
    """Verify an entity certificate file against the ledger; exit 1 if it is not valid."""
    with opened_platform(ctx) as platform:
        document = parse_json(certificate.read_text())
        check = verify_entity_certificate(platform.ledger, document, at_block, platform.clock)
        print_json(check.to_json())
        if not check.valid:
            raise typer.Exit(1)


@identity_app.command("offboard")
def identity_offboard(
    ctx: typer.Context,
    subject: str,
    by: Annotated[str, typer.Option(help="key name of the trust anchor (or issuer)")],
    reason: Annotated[str, typer.Option(help="recorded on the ledger")] = "off-boarded",
) -> None:
    """Off-board an entity: its certificate fails verification from this block on."""
    with opened_platform(ctx) as platform:
        receipt = offboard_entity(
            platform.submitter(by), account_address(platform, subject), reason
        )
        console.print(f"off-boarded in block {receipt.block} (tx {receipt.tx_hash})")

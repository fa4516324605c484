"""The `evgi` command: demo, ledger and identity (more layers add their own groups)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import hashes
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evgi.app import Platform, open_platform
from evgi.config import Settings, load_settings
from evgi.core.canonical import parse_json
from evgi.core.errors import EvgiError, ValidationError
from evgi.core.identifiers import EntityKind, make_eid
from evgi.core.keys import normalize_address
from evgi.identity import (
    Did,
    did_for,
    issue_entity_certificate,
    offboard_entity,
    resolve,
    verify_entity_certificate,
)
from evgi.pnc import CertificateAuthority, csms_authority

app = typer.Typer(help="evgi: EV charging and grid integration platform.", no_args_is_help=True)
ledger_app = typer.Typer(help="Inspect and verify the ledger.", no_args_is_help=True)
identity_app = typer.Typer(
    help="DIDs, entity certificates, on- and off-boarding.", no_args_is_help=True
)
app.add_typer(ledger_app, name="ledger")
app.add_typer(identity_app, name="identity")
pki_app = typer.Typer(
    help="The CSMS root CA and the server and station certificates it issues.",
    no_args_is_help=True,
)
app.add_typer(pki_app, name="pki")

console = Console()
err = Console(stderr=True)

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="data folder (EVGI_DATA_DIR)")]
DbUrl = Annotated[str | None, typer.Option("--db", help="database URL (EVGI_DATABASE_URL)")]


def _settings(ctx: typer.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@app.callback()
def _main(ctx: typer.Context, data_dir: DataDir = None, db: DbUrl = None) -> None:
    try:
        ctx.obj = load_settings(data_dir=data_dir, database_url=db)
    except Exception as exc:  # pydantic reports every bad setting at once
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


@contextmanager
def _platform(ctx: typer.Context) -> Iterator[Platform]:
    try:
        platform = open_platform(_settings(ctx))
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


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=str))


# -- serve ---------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="address to listen on (EVGI_HTTP_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (EVGI_HTTP_PORT)")] = None,
) -> None:
    """Run the platform's services: the HTTP API (OpenAPI at /docs) and what each layer adds."""
    import asyncio

    from evgi.service import serve as run

    settings = _settings(ctx)
    ctx.obj = settings.model_copy(
        update={k: v for k, v in {"http_host": host, "http_port": port}.items() if v is not None}
    )
    with _platform(ctx) as platform, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(platform))


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


# -- ledger --------------------------------------------------------------------------------


@ledger_app.command("verify")
def ledger_verify(ctx: typer.Context) -> None:
    """Re-check every signature, link and root and re-derive the state from genesis."""
    with _platform(ctx) as platform, progress_bar(transient=True) as bar:
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
    with _platform(ctx) as platform:
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
    with _platform(ctx) as platform:
        stx, receipt = platform.ledger.transaction(tx_hash)
        proof = platform.ledger.proof(tx_hash)
        proof.check()
        _print_json(
            {"transaction": stx.to_wire(), "receipt": receipt.to_json(), "proof": proof.to_json()}
        )


# -- identity ------------------------------------------------------------------------------


def _address(platform: Platform, name: str) -> str:
    """A key name, an address or a DID, as an address."""
    if name.startswith("did:"):
        return Did.parse(name, platform.ledger.chain_id).address
    if name.startswith("0x"):
        return normalize_address(name)
    return platform.account(name).address


@identity_app.command("create")
def identity_create(
    ctx: typer.Context,
    name: str,
    kind: Annotated[EntityKind | None, typer.Option(help="entity kind, to show its EID")] = None,
) -> None:
    """Create a key pair (saved encrypted under data-dir/keys) and show its DID."""
    with _platform(ctx) as platform:
        account = platform.keystore.create(name)
        out = {
            "name": name,
            "address": account.address,
            "did": did_for(platform.ledger.chain_id, account.address),
        }
        if kind is not None:
            out["eid"] = make_eid(kind, account.address)
        _print_json(out)


@identity_app.command("list")
def identity_list(ctx: typer.Context) -> None:
    """Keys in the keystore with their DIDs and ledger status."""
    with _platform(ctx) as platform:
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
    with _platform(ctx) as platform:
        target = (
            did
            if did.startswith("did:")
            else did_for(platform.ledger.chain_id, _address(platform, did))
        )
        result = resolve(platform.ledger, target, at)
        _print_json(result)
        if result["didDocument"] is None:
            raise typer.Exit(1)


def _read_json_arg(value: str) -> Any:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    return parse_json(text)


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
    with _platform(ctx) as platform:
        data = _read_json_arg(claims)
        if not isinstance(data, dict):
            raise ValidationError("claims must be a JSON object")
        issued = issue_entity_certificate(
            platform.submitter(issuer),
            _address(platform, subject),
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
    with _platform(ctx) as platform:
        document = parse_json(certificate.read_text())
        check = verify_entity_certificate(platform.ledger, document, at_block, platform.clock)
        _print_json(check.to_json())
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
    with _platform(ctx) as platform:
        receipt = offboard_entity(platform.submitter(by), _address(platform, subject), reason)
        console.print(f"off-boarded in block {receipt.block} (tx {receipt.tx_hash})")


# -- pki -----------------------------------------------------------------------------------

CertOut = Annotated[Path, typer.Option("--out", help="folder for the PEM files")]


@contextmanager
def _csms_authority(ctx: typer.Context) -> Iterator[CertificateAuthority]:
    """The CSMS root CA (created on first use), with refusals reported as one line, exit 2."""
    try:
        yield csms_authority(_settings(ctx))
    except EvgiError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from exc


def _written(paths: tuple[Path, Path]) -> None:
    console.print(f"certificate chain: {paths[0]}")
    console.print(f"private key:       {paths[1]}")


@pki_app.command("ca-init")
def pki_ca_init(ctx: typer.Context) -> None:
    """Create the CSMS root CA under data-dir/pki (or show the one there): stations trust it."""
    with _csms_authority(ctx) as authority:
        console.print(f"CSMS root CA: {authority.certificate.subject.rfc4514_string()}")
        console.print(f"certificate:  {authority.certificate_path}")
        fingerprint = authority.certificate.fingerprint(hashes.SHA256()).hex(":")
        console.print(f"SHA-256:      {fingerprint}", emoji=False, soft_wrap=True)


@pki_app.command("issue-station")
def pki_issue_station(ctx: typer.Context, station_id: str, out: CertOut = Path(".")) -> None:
    """Issue a charging station's client certificate (CN = station id) for security profile 3.

    The key file is encrypted with EVGI_KEYSTORE_PASSWORD when one is set.
    """
    with _csms_authority(ctx) as authority:
        issued = authority.issue_station_certificate(station_id)
        _written(issued.write(out, station_id, _settings(ctx).keystore_password))


@pki_app.command("issue-server")
def pki_issue_server(
    ctx: typer.Context,
    host: Annotated[
        list[str] | None, typer.Option(help="DNS name or IP to add (repeatable)")
    ] = None,
    out: CertOut = Path("."),
) -> None:
    """Issue the CSMS's TLS server certificate for localhost, 127.0.0.1 and the host names."""
    settings = _settings(ctx)
    with _csms_authority(ctx) as authority:
        issued = authority.issue_server_certificate([*settings.tls_host_names, *(host or [])])
        _written(issued.write(out, "csms-server", settings.keystore_password))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

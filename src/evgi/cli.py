"""The `evgi` command: demo, ledger and identity (more layers add their own groups)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import hashes
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from evgi.app import GENESIS_KEY, Platform, open_platform
from evgi.config import Settings, load_settings
from evgi.core.canonical import parse_json
from evgi.core.clock import unix_seconds
from evgi.core.errors import EvgiError, ValidationError
from evgi.core.identifiers import EntityKind, make_eid
from evgi.core.keys import normalize_address
from evgi.csms import Csms
from evgi.data import ContainerKind, DataHost
from evgi.identity import (
    Did,
    did_for,
    issue_entity_certificate,
    offboard_entity,
    resolve,
    verify_entity_certificate,
)
from evgi.permissions import (
    Refusal,
    Role,
    issue_access_certificate,
    issue_group_change,
    issue_revocation_certificate,
    sign_unlock_request,
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
csms_app = typer.Typer(help="Charging stations and id tokens of the CSMS.", no_args_is_help=True)
csms_tokens_app = typer.Typer(
    help="Id tokens (RFID cards, apps) that may charge.", no_args_is_help=True
)
csms_app.add_typer(csms_tokens_app, name="tokens")
app.add_typer(csms_app, name="csms")
sim_app = typer.Typer(
    help="Simulated charging stations that drive the real protocols.", no_args_is_help=True
)
app.add_typer(sim_app, name="sim")

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


def _settings(ctx: typer.Context) -> Settings:
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
    ocpp_port: Annotated[
        int | None, typer.Option(help="OCPP WebSocket port (EVGI_OCPP_PORT)")
    ] = None,
) -> None:
    """Run the platform's services: the HTTP API (OpenAPI at /docs), the OCPP server for
    charging stations at ws://host:9000/ocpp/{station_id}, and what each layer adds."""
    from evgi.service import run

    settings = _settings(ctx)
    ctx.obj = settings.model_copy(
        update={
            k: v
            for k, v in {"http_host": host, "http_port": port, "ocpp_port": ocpp_port}.items()
            if v is not None
        }
    )
    with _platform(ctx) as platform, contextlib.suppress(KeyboardInterrupt):
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


# -- csms ----------------------------------------------------------------------------------


@contextmanager
def _csms(ctx: typer.Context) -> Iterator[Csms]:
    with _platform(ctx) as platform:
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


# -- sim -----------------------------------------------------------------------------------


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
            secret = _settings(ctx).keystore_password or None
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


# -- data ----------------------------------------------------------------------------------

data_app = typer.Typer(
    help="Data buckets and streams, sharing them through access certificates, and the access log.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

RoleOption = Annotated[Role, typer.Option(help="reader, writer or auditor")]


@contextmanager
def _data_host(ctx: typer.Context) -> Iterator[tuple[Platform, DataHost]]:
    """The platform's data host, run in this process on the same database as `evgi serve`."""
    with _platform(ctx) as platform:
        host = DataHost.open(platform, GENESIS_KEY)
        try:
            yield platform, host
        finally:
            host.close()


def _session(platform: Platform, host: DataHost, who: str, container: str, role: Role) -> str:
    """Unlock `container` as the key `who`: a signed Unlock Request, as an accessor sends it."""
    request = sign_unlock_request(
        platform.account(who),
        platform.ledger.chain_id,
        host.did,
        container,
        role,
        platform.clock.now(),
    )
    session, _ = host.unlock(request)
    return session.token


def _refused(refusal: Refusal) -> typer.Exit:
    err.print(f"[red]refused ({refusal.reason.value}):[/red] {refusal.message}", soft_wrap=True)
    return typer.Exit(1)


def _create_container(
    ctx: typer.Context,
    owner: str,
    data_type: str,
    kind: ContainerKind,
    schema: str | None,
    retention: int | None = None,
    nearline: int | None = None,
) -> None:
    with _data_host(ctx) as (platform, host):
        container = host.create_container(
            _address(platform, owner),
            data_type,
            kind,
            schema,
            timedelta(seconds=retention) if retention else None,
            timedelta(seconds=nearline) if nearline else None,
        )
        err.print(
            f"{kind} {container.id} for {data_type} records of {owner}: {container.uri}",
            soft_wrap=True,
        )
        print(container.id)


@data_app.command("create-bucket")
def data_create_bucket(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="key name, address or DID of the data owner")],
    data_type: Annotated[str, typer.Option("--type", help="e.g. battery-health")],
    schema: Annotated[str | None, typer.Option(help="schema of the records")] = None,
) -> None:
    """Open a Data Bucket (its records are kept) for an owner; prints its id."""
    _create_container(ctx, owner, data_type, "bucket", schema)


@data_app.command("create-stream")
def data_create_stream(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="key name, address or DID of the data owner")],
    data_type: Annotated[str, typer.Option("--type", help="e.g. meter-values")],
    schema: Annotated[str | None, typer.Option(help="schema of the records")] = None,
    retention: Annotated[int | None, typer.Option(help="seconds online (default 1 day)")] = None,
    nearline: Annotated[int | None, typer.Option(help="seconds nearline, then offline")] = None,
) -> None:
    """Open a Data Stream: records stay online for the retention period, then go nearline,
    then offline. Prints its id."""
    _create_container(ctx, owner, data_type, "stream", schema, retention, nearline)


@data_app.command("list")
def data_list(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="key name, address or DID of the data owner")],
) -> None:
    """The owner's buckets and streams on this host."""
    with _data_host(ctx) as (platform, host):
        table = Table("id", "kind", "data type", "URI")
        for container in host.containers(_address(platform, owner)):
            table.add_row(container.id, container.kind, container.data_type, container.uri)
        console.print(table)


@data_app.command("put")
def data_put(
    ctx: typer.Context,
    container: str,
    records: Annotated[str, typer.Option("--json", help="a record or a list, or @file.json")],
    who: Annotated[str, typer.Option("--as", help="key name of the owner (or a writer)")],
) -> None:
    """Append records; their registration (hash, URI, owner, schema) is anchored on the ledger."""
    data = _read_json_arg(records)
    bodies = data if isinstance(data, list) else [data]
    with _data_host(ctx) as (platform, host):
        try:
            token = _session(platform, host, who, container, Role.WRITER)
            registration = host.write(token, container, bodies)
        except Refusal as refusal:
            raise _refused(refusal) from refusal
        console.print(
            f"stored {len(bodies)} record(s); registration {registration.hash} anchored in "
            f"block {registration.receipt.block}",
            soft_wrap=True,
        )


@data_app.command("grant")
def data_grant(
    ctx: typer.Context,
    container: str,
    owner: Annotated[str, typer.Option(help="key name of the data owner, who signs the AC")],
    to: Annotated[str, typer.Option(help="key name, address or DID of the accessor")],
    role: RoleOption = Role.READER,
    days: Annotated[float, typer.Option(help="days until the AC expires")] = 30,
    out: Annotated[Path | None, typer.Option(help="write the AC here")] = None,
) -> None:
    """Issue an Access Certificate: puts the accessor on the container's allow list."""
    with _data_host(ctx) as (platform, host):
        target = host.container(container)
        issued = issue_access_certificate(
            platform.submitter(owner),
            _address(platform, to),
            target.id,
            target.uri,
            role,
            platform.clock.now() + timedelta(days=days),
            platform.clock,
        )
        host.install(issued.document)
        if out is not None:
            out.write_text(json.dumps(issued.document, indent=2) + "\n")
        console.print(
            f"access certificate {issued.hash} ({role.value}, expires "
            f"{issued.document['expirationDate']}) anchored in block {issued.receipt.block}",
            soft_wrap=True,
        )


@data_app.command("revoke")
def data_revoke(
    ctx: typer.Context,
    container: str,
    owner: Annotated[str, typer.Option(help="key name of the owner who granted access")],
    accessor: Annotated[str, typer.Option("--from", help="key name, address or DID")],
) -> None:
    """Revoke the accessor's access certificates on the container with Revocation Certificates:
    they stop working at every host from this block."""
    with _data_host(ctx) as (platform, host):
        issuer = platform.submitter(owner)
        now = unix_seconds(platform.clock.now())
        in_force = [
            h
            for h in platform.ledger.query(
                "permissions", "allowed", container=container, accessor=_address(platform, accessor)
            )
            if (record := platform.ledger.query("permissions", "certificate", hash=h))["revoked"]
            is None
            and record["expires"] > now
            and record["issuer"] == issuer.address
        ]
        if not in_force:
            err.print(f"{accessor} holds no access certificate of yours in force on {container}")
            raise typer.Exit(1)
        for certificate in in_force:
            issued = issue_revocation_certificate(issuer, certificate, platform.clock)
            host.install(issued.document)
            console.print(
                f"revoked {certificate} in block {issued.receipt.block} (RC {issued.hash})",
                soft_wrap=True,
            )


@data_app.command("read")
def data_read(
    ctx: typer.Context,
    container: str,
    who: Annotated[str, typer.Option("--as", help="key name of the accessor")],
    after: Annotated[int, typer.Option(help="records after this number")] = 0,
    limit: Annotated[int, typer.Option(help="at most this many records")] = 100,
) -> None:
    """Unlock the container as an accessor and read it; exit 1 with the reason if refused."""
    with _data_host(ctx) as (platform, host):
        try:
            token = _session(platform, host, who, container, Role.READER)
            page = host.read(token, container, after, limit)
        except Refusal as refusal:
            raise _refused(refusal) from refusal
        console.print_json(page.to_json_text(after))


@data_app.command("block")
def data_block(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help="key name, address or DID to block")],
    owner: Annotated[str, typer.Option(help="key name of the data owner")],
) -> None:
    """Put an accessor on the owner's block list: refused on all the owner's data."""
    with _platform(ctx) as platform:
        receipt = platform.submitter(owner).call(
            "permissions", "block", accessor=_address(platform, accessor)
        )
        console.print(f"blocked in block {receipt.block}")


@data_app.command("unblock")
def data_unblock(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help="key name, address or DID to unblock")],
    owner: Annotated[str, typer.Option(help="key name of the data owner")],
) -> None:
    """Take an accessor off the owner's block list."""
    with _platform(ctx) as platform:
        receipt = platform.submitter(owner).call(
            "permissions", "unblock", accessor=_address(platform, accessor)
        )
        console.print(f"unblocked in block {receipt.block}")


def _grants(values: list[str]) -> list[tuple[str, Role]]:
    pairs = []
    for value in values:
        container, _, role = value.partition(":")
        if role not in Role.__members__.values():
            raise ValidationError(f"{value!r}: write CONTAINER:ROLE, e.g. b-0123abcd4567:reader")
        pairs.append((container, Role(role)))
    return pairs


@data_app.command("group")
def data_group(
    ctx: typer.Context,
    name: str,
    owner: Annotated[str, typer.Option(help="key name of the data owner")],
    add: Annotated[list[str] | None, typer.Option(help="member to add (repeatable)")] = None,
    remove: Annotated[list[str] | None, typer.Option(help="member to remove")] = None,
    grant: Annotated[list[str] | None, typer.Option(help="CONTAINER:ROLE to grant")] = None,
    withdraw: Annotated[list[str] | None, typer.Option(help="CONTAINER:ROLE to withdraw")] = None,
) -> None:
    """Change a group with a Group Permission Change certificate signed by the owner."""
    with _data_host(ctx) as (platform, host):
        issued = issue_group_change(
            platform.submitter(owner),
            name,
            [_address(platform, m) for m in add or []],
            [_address(platform, m) for m in remove or []],
            _grants(grant or []),
            _grants(withdraw or []),
            platform.clock,
        )
        host.install(issued.document)
        group = platform.ledger.query(
            "permissions", "group", owner=platform.account(owner).address, group=name
        )
        console.print(f"GPC {issued.hash} anchored in block {issued.receipt.block}", soft_wrap=True)
        _print_json(group)


@data_app.command("log")
def data_log(
    ctx: typer.Context,
    owner: Annotated[str, typer.Option(help="key name of the data owner")],
    limit: Annotated[int, typer.Option(help="at most this many entries")] = 50,
) -> None:
    """Who accessed the owner's data, what they did and when (refusals included)."""
    with _data_host(ctx) as (platform, host):
        entries = host.access_log(platform.account(owner).address, limit)
        names = {address: alias for alias, address in platform.keystore.entries()}
        table = Table("when", "container", "accessor", "action", "role", "outcome", "reason")
        for entry in entries:
            table.add_row(
                entry.at.isoformat(timespec="seconds"),
                entry.container_id,
                names.get(entry.accessor, entry.accessor),
                entry.action,
                entry.role or "-",
                entry.outcome,
                entry.reason or entry.via,
            )
        console.print(table)


@data_app.command("host")
def data_host_info(
    ctx: typer.Context,
    bootstrap: Annotated[
        list[str] | None,
        typer.Option(help="data type to have the local trust anchor issue a DBC for (repeatable)"),
    ] = None,
) -> None:
    """This data host's DID, URI and DBCs; with --bootstrap, a new DBC for those data types."""
    with _data_host(ctx) as (_, host):
        if bootstrap:
            issued = host.bootstrap(bootstrap)
            err.print(f"DBC {issued.hash} anchored in block {issued.receipt.block}")
        _print_json({"did": host.did, "uri": host.uri, "dbc": host.certificates("dbc")})


@data_app.command("install")
def data_install(ctx: typer.Context, certificate: Path) -> None:
    """Deliver a signed certificate file (a DBC for this host, an AC, RC or GPC) to the host."""
    with _data_host(ctx) as (_, host):
        try:
            info = host.install(parse_json(certificate.read_text()))
        except Refusal as refusal:
            raise _refused(refusal) from refusal
        console.print(f"installed {info.kind} {info.hash}", soft_wrap=True)


@data_app.command("age")
def data_age(ctx: typer.Context) -> None:
    """Move stream records past their retention to nearline, and old segments offline, now."""
    with _data_host(ctx) as (_, host):
        ageing = host.age()
        console.print(
            f"{ageing.nearline_records} record(s) to nearline, "
            f"{ageing.offline_segments} segment(s) offline"
        )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)

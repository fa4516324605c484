"""`evgi data`: data hosts, sharing and the access log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evgi.app import GENESIS_KEY, Platform
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
from evgi.core.clock import unix_seconds
from evgi.core.errors import ValidationError
from evgi.data import ContainerKind, DataHost
from evgi.permissions import (
    Refusal,
    Role,
    issue_access_certificate,
    issue_group_change,
    issue_revocation_certificate,
    sign_unlock_request,
)

data_app = typer.Typer(
    help="Data buckets and streams, sharing them through access certificates, and the access log.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

RoleOption = Annotated[Role, typer.Option(help="reader, writer or auditor")]


@contextmanager
def _data_host(ctx: typer.Context) -> Iterator[tuple[Platform, DataHost]]:
    """The platform's data host, run in this process on the same database as `evgi serve`."""
    with opened_platform(ctx) as platform:
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
            account_address(platform, owner),
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
        for container in host.containers(account_address(platform, owner)):
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
    data = read_json_arg(records)
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
            account_address(platform, to),
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
                "permissions",
                "allowed",
                container=container,
                accessor=account_address(platform, accessor),
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
    with opened_platform(ctx) as platform:
        receipt = platform.submitter(owner).call(
            "permissions", "block", accessor=account_address(platform, accessor)
        )
        console.print(f"blocked in block {receipt.block}")


@data_app.command("unblock")
def data_unblock(
    ctx: typer.Context,
    accessor: Annotated[str, typer.Argument(help="key name, address or DID to unblock")],
    owner: Annotated[str, typer.Option(help="key name of the data owner")],
) -> None:
    """Take an accessor off the owner's block list."""
    with opened_platform(ctx) as platform:
        receipt = platform.submitter(owner).call(
            "permissions", "unblock", accessor=account_address(platform, accessor)
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
            [account_address(platform, m) for m in add or []],
            [account_address(platform, m) for m in remove or []],
            _grants(grant or []),
            _grants(withdraw or []),
            platform.clock,
        )
        host.install(issued.document)
        group = platform.ledger.query(
            "permissions", "group", owner=platform.account(owner).address, group=name
        )
        console.print(f"GPC {issued.hash} anchored in block {issued.receipt.block}", soft_wrap=True)
        print_json(group)


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
        print_json({"did": host.did, "uri": host.uri, "dbc": host.certificates("dbc")})


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

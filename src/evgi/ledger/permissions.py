"""Permissioning state of the MOBI EVGI data subsystem: data containers and data registrations,
the anchors of DBC, AC, RC and GPC certificates, allow lists, block lists and groups.

Only hashes, addresses, container ids and roles go on the ledger: the certificates themselves and
every byte of data stay with their holders and the data hosts. A host decides access from this
state alone, so a revocation is in force at every host from the block that records it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field

from evgi.core.identifiers import EntityKind
from evgi.core.keys import normalize_address
from evgi.ledger.entities import is_trust_anchor
from evgi.ledger.state import Context, StateReader, method, query


class Role(StrEnum):
    """Roles regulate creation of and access to data: read it, append to it, read its audit log."""

    READER = "reader"
    WRITER = "writer"
    AUDITOR = "auditor"


Hash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]
ContainerId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]
GroupName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
DataType = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")]
Uri = Annotated[str, Field(min_length=1, max_length=400)]
Schema = Annotated[str, Field(min_length=1, max_length=200)]
RoleName = Literal["reader", "writer", "auditor"]
GroupGrant = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{2,63}:(reader|writer|auditor)$")]
UnixTime = Annotated[int, Field(gt=0)]
Count = Annotated[int, Field(gt=0, le=1_000_000)]
Addresses = Annotated[list[str], Field(max_length=64)]
Grants = Annotated[list[GroupGrant], Field(max_length=64)]


def _certificate(state: StateReader, cert_hash: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"perm/cert/{cert_hash}")
    return value


def _container(state: StateReader, container_id: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"perm/container/{container_id}")
    return value


def _onboarded(state: StateReader, address: str) -> dict[str, Any] | None:
    entity: dict[str, Any] | None = state.get(f"entity/{address}")
    if entity is None or entity["offboarded"] is not None:
        return None
    return entity


def _anchor(
    ctx: Context,
    cert_hash: str,
    kind: str,
    subject: str | None,
    target: str,
    role: str | None = None,
    expires: int | None = None,
    data_types: list[str] | None = None,
) -> dict[str, Any]:
    ctx.require(_certificate(ctx.state, cert_hash) is None, f"{cert_hash} is already anchored")
    record = {
        "type": kind,
        "issuer": ctx.sender,
        "subject": subject,
        "target": target,
        "role": role,
        "dataTypes": data_types,
        "expires": expires,
        "block": ctx.height,
        "timestamp": ctx.timestamp,
        "revoked": None,
    }
    ctx.state.set(f"perm/cert/{cert_hash}", record)
    return record


def _append(ctx: Context, key: str, value: str) -> None:
    ctx.state.set(key, [*(ctx.state.get(key) or []), value])


@method("permissions", "bootstrap")
def bootstrap(
    ctx: Context,
    hash: Hash,
    host: str,
    uri: Uri,
    data_types: Annotated[list[DataType], Field(min_length=1, max_length=32)],
    expires: UnixTime,
) -> None:
    """Anchor a Data Host Bootstrap Certificate: a trust anchor lets `host` serve `data_types`."""
    host = normalize_address(host)
    ctx.require(is_trust_anchor(ctx.state, ctx.sender), "only a trust anchor issues DBCs")
    entity = _onboarded(ctx.state, host)
    ctx.require(
        entity is not None and entity["kind"] == EntityKind.DATA_HOST.value,
        f"{host} is not an on-boarded data host",
    )
    ctx.require(expires > ctx.timestamp, "the DBC has already expired")
    _anchor(ctx, hash, "dbc", host, uri, None, expires, sorted(set(data_types)))
    _append(ctx, f"perm/host/{host}", hash)
    ctx.emit("HostBootstrapped", hash=hash, host=host, uri=uri)


@method("permissions", "register_container")
def register_container(
    ctx: Context,
    id: ContainerId,
    kind: Literal["bucket", "stream"],
    uri: Uri,
    owner: str,
    data_type: DataType,
    schema: Schema,
    dbc: Hash,
) -> None:
    """A host opens a Data Bucket or Data Stream for an owner, under one of its DBCs."""
    owner = normalize_address(owner)
    ctx.require(_container(ctx.state, id) is None, f"container {id} already exists")
    ctx.require(_onboarded(ctx.state, owner) is not None, f"owner {owner} is not on-boarded")
    certificate = _certificate(ctx.state, dbc)
    ctx.require(
        certificate is not None and certificate["type"] == "dbc", f"{dbc} is not an anchored DBC"
    )
    assert certificate is not None
    ctx.require(certificate["subject"] == ctx.sender, f"DBC {dbc} was issued to another host")
    ctx.require(certificate["revoked"] is None, f"DBC {dbc} was revoked")
    ctx.require(certificate["expires"] > ctx.timestamp, f"DBC {dbc} has expired")
    ctx.require(
        data_type in certificate["dataTypes"], f"DBC {dbc} does not cover data type {data_type}"
    )
    ctx.require(uri.startswith(certificate["target"] + "/"), f"{uri} is outside the DBC's URI")
    ctx.state.set(
        f"perm/container/{id}",
        {
            "kind": kind,
            "uri": uri,
            "owner": owner,
            "host": ctx.sender,
            "dataType": data_type,
            "schema": schema,
            "dbc": dbc,
            "block": ctx.height,
        },
    )
    ctx.emit("ContainerRegistered", id=id, kind=kind, uri=uri, owner=owner, dataType=data_type)


@method("permissions", "register_data")
def register_data(ctx: Context, hash: Hash, container: ContainerId, count: Count) -> None:
    """Data registration: hash, URI, owner and schema of data a host stored (never the data)."""
    record = _container(ctx.state, container)
    ctx.require(record is not None, f"no container {container}")
    assert record is not None
    ctx.require(record["host"] == ctx.sender, f"only the host of {container} registers its data")
    ctx.require(ctx.state.get(f"perm/data/{hash}") is None, f"{hash} is already registered")
    ctx.state.set(
        f"perm/data/{hash}",
        {
            "container": container,
            "uri": record["uri"],
            "owner": record["owner"],
            "schema": record["schema"],
            "host": ctx.sender,
            "count": count,
            "block": ctx.height,
            "timestamp": ctx.timestamp,
        },
    )
    ctx.emit("DataRegistered", hash=hash, container=container, count=count)


def _owned(ctx: Context, container: str) -> dict[str, Any]:
    record = _container(ctx.state, container)
    ctx.require(record is not None, f"no container {container}")
    assert record is not None
    ctx.require(record["owner"] == ctx.sender, f"{ctx.sender} does not own {container}")
    return record


@method("permissions", "grant")
def grant(
    ctx: Context,
    hash: Hash,
    accessor: str,
    container: ContainerId,
    role: RoleName,
    expires: UnixTime,
) -> None:
    """Anchor an Access Certificate and put its accessor on the container's allow list."""
    accessor = normalize_address(accessor)
    _owned(ctx, container)
    ctx.require(expires > ctx.timestamp, "the access certificate has already expired")
    ctx.require(accessor != ctx.sender, "an owner needs no access certificate")
    _anchor(ctx, hash, "ac", accessor, container, role, expires)
    _append(ctx, f"perm/allow/{container}/{accessor}", hash)
    ctx.emit("AccessGranted", hash=hash, container=container, accessor=accessor, role=role)


@method("permissions", "revoke")
def revoke(ctx: Context, hash: Hash, target: Hash) -> None:
    """Anchor a Revocation Certificate: the AC (or DBC) `target` stops working from this block."""
    certificate = _certificate(ctx.state, target)
    ctx.require(certificate is not None, f"{target} is not an anchored certificate")
    assert certificate is not None
    ctx.require(certificate["type"] in ("ac", "dbc"), "only ACs and DBCs are revoked")
    ctx.require(certificate["issuer"] == ctx.sender, f"only the issuer may revoke {target}")
    ctx.require(certificate["revoked"] is None, f"{target} is already revoked")
    _anchor(ctx, hash, "rc", certificate["subject"], target)
    ctx.state.set(f"perm/cert/{target}", {**certificate, "revoked": ctx.height, "rc": hash})
    ctx.emit("CertificateRevoked", hash=hash, target=target)


@method("permissions", "change_group")
def change_group(
    ctx: Context,
    hash: Hash,
    group: GroupName,
    add: Addresses,
    remove: Addresses,
    grant: Grants,
    withdraw: Grants,
) -> None:
    """Anchor a Group Permission Change certificate and apply it to the owner's group."""
    key = f"perm/group/{ctx.sender}/{group}"
    current = ctx.state.get(key) or {"members": [], "grants": []}
    members = set(current["members"])
    grants = set(current["grants"])
    for entry in [*grant, *withdraw]:
        _owned(ctx, entry.split(":")[0])
    for address in map(normalize_address, add):
        if address not in members:
            members.add(address)
            _append(ctx, f"perm/member/{ctx.sender}/{address}", group)
    for address in map(normalize_address, remove):
        if address in members:
            members.discard(address)
            index = f"perm/member/{ctx.sender}/{address}"
            ctx.state.set(index, [g for g in ctx.state.get(index) if g != group])
    grants = (grants | set(grant)) - set(withdraw)
    _anchor(ctx, hash, "gpc", None, f"{ctx.sender}/{group}")
    ctx.state.set(key, {"members": sorted(members), "grants": sorted(grants), "gpc": hash})
    ctx.emit("GroupChanged", hash=hash, group=group, members=len(members), grants=len(grants))


@method("permissions", "block")
def block(ctx: Context, accessor: str) -> None:
    """Put an accessor on the owner's block list: refused on all its data, whatever it holds."""
    accessor = normalize_address(accessor)
    key = f"perm/block/{ctx.sender}/{accessor}"
    ctx.require(ctx.state.get(key) is None, f"{accessor} is already blocked")
    ctx.state.set(key, {"block": ctx.height})
    ctx.emit("AccessorBlocked", owner=ctx.sender, accessor=accessor)


@method("permissions", "unblock")
def unblock(ctx: Context, accessor: str) -> None:
    accessor = normalize_address(accessor)
    key = f"perm/block/{ctx.sender}/{accessor}"
    ctx.require(ctx.state.get(key) is not None, f"{accessor} is not blocked")
    ctx.state.delete(key)
    ctx.emit("AccessorUnblocked", owner=ctx.sender, accessor=accessor)


@query("permissions", "certificate")
def certificate(state: StateReader, hash: Hash) -> dict[str, Any] | None:
    return _certificate(state, hash)


@query("permissions", "host_certificates")
def host_certificates(state: StateReader, host: str) -> list[str]:
    hashes: list[str] = state.get(f"perm/host/{normalize_address(host)}") or []
    return hashes


@query("permissions", "container")
def container(state: StateReader, id: ContainerId) -> dict[str, Any] | None:
    return _container(state, id)


@query("permissions", "data")
def data(state: StateReader, hash: Hash) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"perm/data/{hash}")
    return value


@query("permissions", "allowed")
def allowed(state: StateReader, container: ContainerId, accessor: str) -> list[str]:
    """Hashes of the ACs that put `accessor` on the allow list of `container`, oldest first."""
    hashes: list[str] = state.get(f"perm/allow/{container}/{normalize_address(accessor)}") or []
    return hashes


@query("permissions", "blocked")
def blocked(state: StateReader, owner: str, accessor: str) -> bool:
    key = f"perm/block/{normalize_address(owner)}/{normalize_address(accessor)}"
    return state.get(key) is not None


@query("permissions", "group")
def group(state: StateReader, owner: str, group: GroupName) -> dict[str, Any] | None:
    value: dict[str, Any] | None = state.get(f"perm/group/{normalize_address(owner)}/{group}")
    return value


@query("permissions", "groups_of")
def groups_of(state: StateReader, owner: str, member: str) -> list[str]:
    """Names of the owner's groups that `member` belongs to."""
    key = f"perm/member/{normalize_address(owner)}/{normalize_address(member)}"
    names: list[str] = state.get(key) or []
    return names

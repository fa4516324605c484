"""A Data Host: keeps owners' Data Buckets and Data Streams, registers their data on the ledger,
and serves them only through the permissioning subsystem: a signed Unlock Request opens a
session, and every use of the session is authorized again against the ledger.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol

import structlog
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from sqlalchemy import Engine, insert, select

from evgi.core.canonical import compact_json, parse_json
from evgi.core.clock import Clock, from_unix, unix_seconds
from evgi.core.errors import ConfigError, NonceError, ValidationError
from evgi.core.identifiers import EntityKind
from evgi.core.keys import Account
from evgi.data.access_log import AccessEntry, AccessLog, Action
from evgi.data.catalog import DataType, kind_of
from evgi.data.container import Archive, Container, ContainerKind, ContainerStore, Record
from evgi.data.lifecycle import Ageing, age_streams
from evgi.data.registration import Registration, record_hash, registration_root
from evgi.identity import Did, IssuedCertificate, Keystore, did_for, issue_entity_certificate
from evgi.ledger import Ledger, LedgerView, Receipt, Submitter
from evgi.permissions import (
    SKEW,
    WINDOW,
    CertificateInfo,
    DidText,
    Reason,
    Refusal,
    RequestGate,
    Role,
    Session,
    SessionClaims,
    SessionKeys,
    SessionScope,
    SignedRequest,
    UnlockRequest,
    check_certificate,
    decide,
    host_uri,
    issue_bootstrap_certificate,
    problems,
)
from evgi.storage.data_hosting import DATA_CERTIFICATES
from evgi.storage.data_version import DataVersion

log = structlog.get_logger(__name__)

HOST_KEY = "data-host"
SESSION_TTL = timedelta(minutes=15)
DBC_VALIDITY = timedelta(days=365)
MAX_RECORDS = 1000
_CONTAINER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{2,63}$")


class HostSettings(Protocol):
    @property
    def data_dir(self) -> Path: ...


class HostPlatform(Protocol):
    """What a host needs of the platform it runs on; `evgi.app.Platform` has all of it."""

    ledger: Ledger
    db: Engine
    keystore: Keystore
    clock: Clock

    @property
    def settings(self) -> HostSettings: ...

    def submitter(self, account: Account | str) -> Submitter: ...


DataTypeName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")]


class ContainerRequest(SignedRequest):
    """An owner asks the host to open a bucket or stream for its data."""

    signer_field: ClassVar[str] = "owner"

    type: Literal["ContainerRequest"]
    owner: DidText
    kind: Literal["bucket", "stream"] | None = None
    dataType: DataTypeName
    recordSchema: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    retentionSeconds: Annotated[int, Field(gt=0)] | None = None
    nearlineSeconds: Annotated[int, Field(gt=0)] | None = None


@dataclass(frozen=True)
class RecordPage:
    container: Container
    records: list[Record]
    archives: list[Archive]
    records_json: str = field(repr=False)

    def to_json_text(self, after: int) -> str:
        """The page as the HTTP API answers it; the records' JSON is encoded once per head."""
        head = compact_json(
            {
                "container": self.container.id,
                "uri": self.container.uri,
                "archives": [a.to_json() for a in self.archives],
                "next": self.records[-1].seq if self.records else after,
            }
        )
        return f'{head[:-1]},"records":{self.records_json}}}'


class DataHost:
    def __init__(self, platform: HostPlatform, account: Account, trust_anchor: str | None) -> None:
        self._platform = platform
        self._trust_anchor = trust_anchor
        self.ledger = platform.ledger
        self._data_version = DataVersion(platform.db)
        # The storage's data version moves with every block only where the ledger is stored.
        local = platform.ledger.engine_name == "local"
        self.view = LedgerView(platform.ledger, self._data_version.changed if local else None)
        self.clock = platform.clock
        self.chain_id = platform.ledger.chain_id
        self.account = account
        self.address = account.address
        self.did = did_for(self.chain_id, account.address)
        self.uri = host_uri(self.did)
        self.store = ContainerStore(platform.db)
        self.access = AccessLog(platform.db)
        self.gate = RequestGate(self.did)
        self.sessions = SessionKeys(account)
        self.offline_dir = platform.settings.data_dir / "offline"
        self._submitter = platform.submitter(account)
        self._write_lock = threading.Lock()
        self._containers: dict[str, Container] = {}
        self._pages: dict[tuple[str, int, int], tuple[int, list[Record], str]] = {}
        self._stop = threading.Event()
        self._maintenance: threading.Thread | None = None
        since = self.clock.now() - WINDOW - SKEW
        for request_id, at in self.access.recent_requests(since):
            self.gate.remember(request_id, at)

    @classmethod
    def open(cls, platform: HostPlatform, trust_anchor: str | None = None) -> DataHost:
        """The platform's host, under the key `data-host`. With the key name of a trust anchor,
        the host has that anchor on-board it and issue its DBC the first time it needs one."""
        return cls(platform, platform.keystore.get_or_create(HOST_KEY), trust_anchor)

    # -- bootstrapping ---------------------------------------------------------------------

    def bootstrap(self, data_types: Sequence[str]) -> IssuedCertificate:
        """Have the trust anchor on-board this host (once) and issue it a DBC, then install it."""
        if self._trust_anchor is None:
            raise ConfigError(
                "this host has no trust anchor at hand: install a DBC issued for "
                f"{self.did} (POST /data/certificates)"
            )
        anchor = self._platform.submitter(self._trust_anchor)
        types = sorted(set(data_types))
        entity = self.ledger.query("entity", "get", subject=self.address)
        if entity is None or entity["offboarded"] is not None:
            issue_entity_certificate(
                anchor,
                self.address,
                EntityKind.DATA_HOST,
                {"legalName": "evgi data host", "dataTypes": types},
                self.clock,
            )
        issued = issue_bootstrap_certificate(
            anchor, self.address, types, self.clock.now() + DBC_VALIDITY, self.clock
        )
        self.install(issued.document)
        return issued

    def install(self, document: Any) -> CertificateInfo:
        """Take a certificate delivered to this host: a DBC for it, or an AC, RC or GPC to keep
        as evidence. It must be signed, anchored and in force; a DBC must name this host."""
        self.view.refresh()
        info = check_certificate(self.view, document, self.clock.now())
        if info.kind == "dbc" and info.subject != self.address:
            raise Refusal(
                Reason.OTHER_HOST,
                f"the DBC was issued to {document['credentialSubject']['id']}, "
                f"not to this host {self.did}",
            )
        if info.kind == "dbc" and info.record["target"] != self.uri:
            raise Refusal(
                Reason.OTHER_HOST,
                f"the DBC is for URI {info.record['target']}; this host serves {self.uri}",
            )
        with self._platform.db.begin() as conn:
            known = conn.execute(
                select(DATA_CERTIFICATES.c.hash).where(DATA_CERTIFICATES.c.hash == info.hash)
            ).first()
            if known is None:
                conn.execute(
                    insert(DATA_CERTIFICATES),
                    {
                        "hash": info.hash,
                        "type": info.kind,
                        "issuer": info.issuer,
                        "subject": info.subject,
                        "document": compact_json(document),
                        "received_at": self.clock.now(),
                    },
                )
        return info

    def certificates(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Documents delivered to this host (its DBCs, and ACs, RCs, GPCs kept as evidence)."""
        c = DATA_CERTIFICATES.c
        query = select(c.document)
        if kind is not None:
            query = query.where(c.type == kind)
        with self._platform.db.connect() as conn:
            rows = conn.execute(query.order_by(c.received_at)).scalars().all()
        return [parse_json(r) for r in rows]

    def dbc_for(self, data_type: str) -> str:
        """Hash of an installed DBC in force that covers `data_type`.

        The platform's own data types are bootstrapped on first use when a trust anchor is at
        hand; any other type needs a DBC issued and installed for it.
        """
        found = self._installed_dbc(data_type)
        if found is None and self._trust_anchor is not None and kind_of(data_type):
            self.bootstrap([t.value for t in DataType])
            found = self._installed_dbc(data_type)
        if found is None:
            raise Refusal(
                Reason.DATA_TYPE, f"no DBC of this host ({self.did}) covers data type {data_type}"
            )
        return found

    def _installed_dbc(self, data_type: str) -> str | None:
        """The newest DBC of this host in force for `data_type` whose document it holds."""
        self.view.refresh()
        now = unix_seconds(self.clock.now())
        for cert_hash in reversed(
            self.view.query("permissions", "host_certificates", host=self.address)
        ):
            record = self.view.query("permissions", "certificate", hash=cert_hash)
            if (
                record["revoked"] is None
                and record["expires"] > now
                and data_type in record["dataTypes"]
                and record["target"] == self.uri
                and self._has_certificate(cert_hash)
            ):
                return str(cert_hash)
        return None

    def _has_certificate(self, cert_hash: str) -> bool:
        c = DATA_CERTIFICATES.c
        with self._platform.db.connect() as conn:
            return conn.execute(select(c.hash).where(c.hash == cert_hash)).first() is not None

    # -- containers ------------------------------------------------------------------------

    def create_container(
        self,
        owner: str,
        data_type: str,
        kind: ContainerKind | None = None,
        schema: str | None = None,
        retention: timedelta | None = None,
        nearline: timedelta | None = None,
    ) -> Container:
        """Open a bucket or stream for `owner` (an address), register it on the ledger under a
        DBC covering its data type."""
        known = kind_of(data_type)
        if known is not None and schema not in (None, known.schema):
            raise ValidationError(f"{data_type} records follow the schema {known.schema}")
        kind = kind or (known.container if known else "bucket")
        schema = known.schema if known else schema or "application/json"
        retention_s = nearline_s = None
        if kind == "stream":
            retention_s = int(
                (
                    retention or (known.retention if known else None) or timedelta(days=1)
                ).total_seconds()
            )
            nearline_s = int(
                (
                    nearline or (known.nearline if known else None) or timedelta(days=30)
                ).total_seconds()
            )
        dbc = self.dbc_for(data_type)
        container_id = f"{kind[0]}-{secrets.token_hex(6)}"
        container = Container(
            container_id,
            kind,
            owner,
            self.address,
            data_type,
            schema,
            f"{self.uri}/{kind}s/{container_id}",
            dbc,
            retention_s,
            nearline_s,
            self.clock.now(),
        )
        self._call(
            "permissions",
            "register_container",
            id=container.id,
            kind=kind,
            uri=container.uri,
            owner=owner,
            data_type=data_type,
            schema=schema,
            dbc=dbc,
        )
        self.store.add(container)
        return container

    def _call(self, module: str, method: str, **args: Any) -> Receipt:
        """Submit as the host. Another process running the same host (`evgi serve` beside a CLI
        command) may have used the next nonce; the submitter then re-reads it, and one retry
        goes through."""
        try:
            return self._submitter.call(module, method, **args)
        except NonceError:
            return self._submitter.call(module, method, **args)

    def open_container(self, document: Any) -> Container:
        """Open a container on an owner's signed ContainerRequest (the HTTP way in)."""
        now = self.clock.now()
        self.view.refresh()
        request = self.gate.check(self.view, document, ContainerRequest, now)
        owner = Did.parse(request.owner, self.chain_id).address
        entity = self.view.query("entity", "get", subject=owner)
        if entity is None or entity["offboarded"] is not None:
            raise Refusal(Reason.NOT_ONBOARDED, f"{request.owner} is not an on-boarded entity")
        return self.create_container(
            owner,
            request.dataType,
            request.kind,
            request.recordSchema,
            timedelta(seconds=request.retentionSeconds) if request.retentionSeconds else None,
            timedelta(seconds=request.nearlineSeconds) if request.nearlineSeconds else None,
        )

    def container(self, container_id: str) -> Container:
        """A container of this host (descriptors never change, so they are kept in memory)."""
        container = self._containers.get(container_id)
        if container is None and _CONTAINER_ID.match(container_id):
            container = self.store.get(container_id)
        if container is None or container.host != self.address:
            raise Refusal(Reason.UNKNOWN_CONTAINER, f"no container {container_id} on this host")
        self._containers[container_id] = container
        return container

    def containers(self, owner: str) -> list[Container]:
        return self.store.of_owner(owner)

    def container_of(self, owner: str, data_type: str) -> Container | None:
        """The owner's first container of `data_type` on this host, if it has one."""
        found = [c for c in self.store.of_owner(owner, data_type) if c.host == self.address]
        return found[0] if found else None

    # -- records ---------------------------------------------------------------------------

    def append(self, container_id: str, bodies: Sequence[dict[str, Any]]) -> Registration:
        """Store records and anchor their registration (one Merkle root for the batch)."""
        container = self.container(container_id)
        if not 0 < len(bodies) <= MAX_RECORDS:
            raise Refusal(Reason.INVALID_DATA, f"write 1 to {MAX_RECORDS} records at a time")
        known = kind_of(container.data_type)
        checked: list[dict[str, Any]] = []
        for position, body in enumerate(bodies):
            if not isinstance(body, dict):
                raise Refusal(Reason.INVALID_DATA, f"record {position} is not a JSON object")
            if known is not None:
                try:
                    body = known.model.model_validate(body).model_dump(mode="json")
                except PydanticValidationError as exc:
                    raise Refusal(
                        Reason.INVALID_DATA,
                        f"record {position} does not follow {container.schema}: {problems(exc)}",
                    ) from exc
            checked.append(body)
        with self._write_lock:
            first = self.store.next_seq(container_id)
            at = self.clock.now()
            hashes = [
                record_hash(container_id, first + i, at, body) for i, body in enumerate(checked)
            ]
            root = registration_root(hashes)
            # Records first, registration second: the block that registers them is what tells
            # readers (in any process) that the container changed.
            self.store.add_records(
                container_id,
                [Record(first + i, at, hashes[i], root, body) for i, body in enumerate(checked)],
            )
            try:
                receipt = self._call(
                    "permissions",
                    "register_data",
                    hash=root,
                    container=container_id,
                    count=len(hashes),
                )
                return Registration(root, container_id, tuple(hashes), receipt)
            except Exception:
                self.store.remove_records(container_id, first)
                raise

    # -- access ----------------------------------------------------------------------------

    def unlock(self, document: Any) -> tuple[Session, str]:
        """Answer an Unlock Request: the session and the DBC hash it is served under, or a
        Refusal. Every outcome for a known container goes to its owner's access log."""
        now = self.clock.now()
        self.view.refresh()
        try:
            request = self.gate.check(self.view, document, UnlockRequest, now)
        except Refusal as refusal:
            self._log_claimed(document, refusal, now)
            raise
        accessor = Did.parse(request.accessor, self.chain_id).address
        role = Role(request.role)
        container = self._hosted(request.container)
        entry = {
            "at": now,
            "owner": container["owner"],
            "container_id": request.container,
            "accessor": accessor,
            "action": "unlock",
            "role": role.value,
            "request_id": request.id,
        }
        try:
            grant = decide(
                self.view, request.container, container, accessor, role, unix_seconds(now)
            )
        except Refusal as refusal:
            self.access.record(AccessEntry(**entry, outcome="refused", reason=refusal.reason.value))
            raise
        expires = unix_seconds(now + SESSION_TTL)
        if grant.expires is not None:
            expires = min(expires, grant.expires)
        claims = SessionClaims(
            secrets.token_hex(16), accessor, request.container, role, expires, grant.via
        )
        self.access.record(AccessEntry(**entry, outcome="granted", via=grant.via))
        session = Session(
            token=self.sessions.mint(claims),
            scope=SessionScope(container=request.container, uri=container["uri"], role=role.value),
            expires=from_unix(expires),
            grant=grant.via,
        )
        return session, str(container["dbc"])

    def read(self, token: str, container_id: str, after: int = 0, limit: int = 100) -> RecordPage:
        """Records of a container for a reader's session, oldest first after number `after`."""
        claims, now = self._use(token, container_id, Role.READER, "read")
        container = self.container(container_id)
        records, encoded = self._records(container_id, after, max(1, min(limit, MAX_RECORDS)))
        archives = self.store.archives(container_id) if container.kind == "stream" else []
        self._log_use(claims, container, "read", now, len(records))
        return RecordPage(container, records, archives, encoded)

    def _records(self, container_id: str, after: int, limit: int) -> tuple[list[Record], str]:
        """Online records and their JSON, kept in memory while the ledger's head stays put:
        every append is registered in a new block, so a page read at one head stays right
        until the next. (Ageing run by another process shows from the next block on.)"""
        height = self.view.head().height
        key = (container_id, after, limit)
        cached = self._pages.get(key)
        if cached is not None and cached[0] == height:
            return cached[1], cached[2]
        records = self.store.records(container_id, after, limit)
        encoded = compact_json([r.to_json() for r in records])
        if len(self._pages) > 4096:
            self._pages.clear()
        self._pages[key] = (height, records, encoded)
        return records, encoded

    def write(
        self, token: str, container_id: str, bodies: Sequence[dict[str, Any]]
    ) -> Registration:
        """Append records for a writer's session (the owner opens one with role writer)."""
        claims, now = self._use(token, container_id, Role.WRITER, "write")
        container = self.container(container_id)
        registration = self.append(container_id, bodies)
        self._log_use(claims, container, "write", now, len(bodies))
        return registration

    def audit(self, token: str, container_id: str, limit: int = 200) -> list[AccessEntry]:
        """The container's access log for an auditor's session (the owner is one)."""
        claims, now = self._use(token, container_id, Role.AUDITOR, "audit")
        container = self.container(container_id)
        self._log_use(claims, container, "audit", now, 0)
        return self.access.entries(container.owner, container_id, limit)

    def access_log(self, owner: str, limit: int = 200) -> list[AccessEntry]:
        """All of an owner's entries on this host, newest first (for the operator's console)."""
        return self.access.entries(owner, None, limit)

    def _use(
        self, token: str, container_id: str, role: Role, action: Action
    ) -> tuple[SessionClaims, datetime]:
        now = self.clock.now()
        self.view.refresh()
        claims = self.sessions.open(token, unix_seconds(now))
        if claims.container != container_id or claims.role != role:
            raise Refusal(
                Reason.OUT_OF_SCOPE,
                f"the session covers {claims.role.value} on {claims.container}, "
                f"not {role.value} on {container_id}",
            )
        container = self._hosted(container_id)
        try:
            decide(self.view, container_id, container, claims.accessor, role, unix_seconds(now))
        except Refusal as refusal:
            self.access.record(
                AccessEntry(
                    now,
                    container["owner"],
                    container_id,
                    claims.accessor,
                    action,
                    role.value,
                    "refused",
                    refusal.reason.value,
                    claims.via,
                )
            )
            raise
        return claims, now

    def _log_use(
        self, claims: SessionClaims, container: Container, action: Action, at: datetime, n: int
    ) -> None:
        self.access.record(
            AccessEntry(
                at,
                container.owner,
                container.id,
                claims.accessor,
                action,
                claims.role.value,
                "granted",
                "",
                claims.via,
                None,
                n,
            )
        )

    def _hosted(self, container_id: str) -> dict[str, Any]:
        """The ledger's record of a container this host serves."""
        record = (
            self.view.query("permissions", "container", id=container_id)
            if _CONTAINER_ID.match(container_id)
            else None
        )
        if record is None or record["host"] != self.address:
            raise Refusal(Reason.UNKNOWN_CONTAINER, f"no container {container_id} on this host")
        return dict(record)

    def _log_claimed(self, document: Any, refusal: Refusal, now: datetime) -> None:
        """Log a refused request under the container and accessor it claims, if both parse:
        the owner sees attempts with forged or stale requests too."""
        if not isinstance(document, dict):
            return
        try:
            accessor = Did.parse(str(document.get("accessor")), self.chain_id).address
            container = self._hosted(str(document.get("container")))
        except (ValidationError, Refusal):
            return
        role = document.get("role")
        self.access.record(
            AccessEntry(
                now,
                container["owner"],
                str(document["container"]),
                accessor,
                "unlock",
                role if isinstance(role, str) and role in Role.__members__.values() else None,
                "refused",
                refusal.reason.value,
            )
        )

    # -- upkeep ----------------------------------------------------------------------------

    def age(self, now: datetime | None = None) -> Ageing:
        """Move stream records past their retention to nearline, and old segments offline."""
        ageing = age_streams(self.store, now or self.clock.now(), self.offline_dir)
        if ageing.nearline_records:
            self._pages.clear()
        return ageing

    def start(self, flush_every: float = 0.05, age_every: float = 60.0) -> None:
        """Flush the access log and age streams in a background thread (for `evgi serve`)."""
        if self._maintenance is not None:
            return
        self._stop.clear()
        self._maintenance = threading.Thread(
            target=self._upkeep, args=(flush_every, age_every), name="evgi-data-host", daemon=True
        )
        self._maintenance.start()

    def _upkeep(self, flush_every: float, age_every: float) -> None:
        next_ageing = time.monotonic() + age_every
        while not self._stop.wait(flush_every):
            try:
                self.access.flush()
                if time.monotonic() >= next_ageing:
                    next_ageing = time.monotonic() + age_every
                    self.age()
            except Exception:  # keep serving; the next round tries again
                log.exception("data host upkeep failed")

    def stop(self) -> None:
        """Stop the background thread and write the access log entries still queued."""
        if self._maintenance is not None:
            self._stop.set()
            self._maintenance.join()
            self._maintenance = None
        self.access.flush()

    def close(self) -> None:
        self.stop()
        self._data_version.close()

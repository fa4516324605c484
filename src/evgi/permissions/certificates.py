"""The permissioning certificates of MOBI EVGI, as signed credentials anchored on the ledger:

- DBC (Data Host Bootstrap Certificate): a trust anchor lets a data host serve data types at a URI;
- AC (Access Certificate): a data owner lets an accessor use a container in a role until it expires;
- RC (Revocation Certificate): the issuer of an AC (or DBC) ends it before it expires;
- GPC (Group Permission Change): a data owner changes a group's members and grants.

Each is signed with `evgi.identity`'s document proofs; its hash and the fields a host decides on
are anchored in the same transaction, so a host checks a delivered document against the ledger.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evgi.core.clock import Clock, SystemClock, from_unix, unix_seconds
from evgi.core.errors import SignatureError, ValidationError
from evgi.core.keys import normalize_address
from evgi.identity import (
    VC_CONTEXT,
    Did,
    IssuedCertificate,
    did_for,
    document_hash,
    sign_document,
    verify_document,
)
from evgi.ledger import Ledger, Submitter
from evgi.ledger.permissions import Role
from evgi.permissions.refusal import Reason, Refusal

DBC_TYPE = "DataHostBootstrapCertificate"
AC_TYPE = "AccessCertificate"
RC_TYPE = "RevocationCertificate"
GPC_TYPE = "GroupPermissionChange"
KINDS = {DBC_TYPE: "dbc", AC_TYPE: "ac", RC_TYPE: "rc", GPC_TYPE: "gpc"}


def host_uri(host_did: str) -> str:
    """The URI a host's DBC names: a DID URL under which its containers live."""
    return f"{host_did}/data"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _issue(
    issuer: Submitter,
    kind: str,
    subject: dict[str, Any],
    clock: Clock | None,
    expires: datetime | None = None,
) -> tuple[dict[str, Any], str]:
    """Build and sign a certificate; returns it with the hash its anchor will carry."""
    issued = (clock or SystemClock()).now()
    issuer_did = did_for(issuer.ledger.chain_id, issuer.address)
    document: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", kind],
        "issuer": issuer_did,
        "issuanceDate": _iso(issued),
        "credentialSubject": subject,
    }
    if expires is not None:
        document["expirationDate"] = _iso(expires)
    signed = sign_document(document, issuer.account, f"{issuer_did}#controller", issued)
    return signed, document_hash(signed)


def _whole_seconds(moment: datetime) -> datetime:
    """Expiry as the ledger keeps it (unix seconds), so document and anchor say the same."""
    return from_unix(unix_seconds(moment))


def issue_bootstrap_certificate(
    trust_anchor: Submitter,
    host: str,
    data_types: Sequence[str],
    expires: datetime,
    clock: Clock | None = None,
) -> IssuedCertificate:
    host_did = did_for(trust_anchor.ledger.chain_id, host)
    expires = _whole_seconds(expires)
    types = sorted(set(data_types))
    subject = {"id": host_did, "uri": host_uri(host_did), "dataTypes": types}
    document, cert_hash = _issue(trust_anchor, DBC_TYPE, subject, clock, expires)
    receipt = trust_anchor.call(
        "permissions",
        "bootstrap",
        hash=cert_hash,
        host=normalize_address(host),
        uri=subject["uri"],
        data_types=types,
        expires=unix_seconds(expires),
    )
    return IssuedCertificate(document, cert_hash, receipt)


def issue_access_certificate(
    owner: Submitter,
    accessor: str,
    container: str,
    uri: str,
    role: Role,
    expires: datetime,
    clock: Clock | None = None,
) -> IssuedCertificate:
    expires = _whole_seconds(expires)
    subject = {
        "id": did_for(owner.ledger.chain_id, accessor),
        "container": container,
        "uri": uri,
        "role": role.value,
    }
    document, cert_hash = _issue(owner, AC_TYPE, subject, clock, expires)
    receipt = owner.call(
        "permissions",
        "grant",
        hash=cert_hash,
        accessor=normalize_address(accessor),
        container=container,
        role=role.value,
        expires=unix_seconds(expires),
    )
    return IssuedCertificate(document, cert_hash, receipt)


def issue_revocation_certificate(
    issuer: Submitter, target: str, clock: Clock | None = None
) -> IssuedCertificate:
    record = issuer.ledger.query("permissions", "certificate", hash=target)
    if record is None:
        raise ValidationError(f"{target} is not an anchored certificate")
    subject: dict[str, Any] = {"revokes": target}
    if record["subject"] is not None:
        subject["id"] = did_for(issuer.ledger.chain_id, record["subject"])
    document, cert_hash = _issue(issuer, RC_TYPE, subject, clock)
    receipt = issuer.call("permissions", "revoke", hash=cert_hash, target=target)
    return IssuedCertificate(document, cert_hash, receipt)


def issue_group_change(
    owner: Submitter,
    group: str,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    grant: Sequence[tuple[str, Role]] = (),
    withdraw: Sequence[tuple[str, Role]] = (),
    clock: Clock | None = None,
) -> IssuedCertificate:
    """Members are addresses or DIDs; grants are (container id, role) pairs."""
    chain_id = owner.ledger.chain_id

    def address(member: str) -> str:
        return Did.parse(member, chain_id).address if member.startswith("did:") else member

    added = [normalize_address(address(m)) for m in add]
    removed = [normalize_address(address(m)) for m in remove]
    granted = [f"{c}:{r.value}" for c, r in grant]
    withdrawn = [f"{c}:{r.value}" for c, r in withdraw]
    subject = {
        "group": group,
        "add": [did_for(chain_id, a) for a in added],
        "remove": [did_for(chain_id, a) for a in removed],
        "grant": granted,
        "withdraw": withdrawn,
    }
    document, cert_hash = _issue(owner, GPC_TYPE, subject, clock)
    receipt = owner.call(
        "permissions",
        "change_group",
        hash=cert_hash,
        group=group,
        add=added,
        remove=removed,
        grant=granted,
        withdraw=withdrawn,
    )
    return IssuedCertificate(document, cert_hash, receipt)


@dataclass(frozen=True)
class CertificateInfo:
    """A checked certificate: its hash, kind, issuer and the ledger's record of it."""

    hash: str
    kind: str
    issuer: str
    subject: str | None
    record: dict[str, Any]


def _subject_address(subject: dict[str, Any], chain_id: int) -> str | None:
    if "id" not in subject:
        return None
    return Did.parse(str(subject["id"]), chain_id).address


def _expected(kind: str, record: dict[str, Any], subject: dict[str, Any]) -> dict[str, Any]:
    """The document's fields the anchor pins down, as the anchor has them."""
    if kind == "dbc":
        return {"uri": record["target"], "dataTypes": record["dataTypes"]}
    if kind == "ac":
        return {"container": record["target"], "role": record["role"]}
    if kind == "rc":
        return {"revokes": record["target"]}
    return {"group": record["target"].split("/", 1)[1]}


def check_certificate(ledger: Ledger, document: Any, now: datetime) -> CertificateInfo:
    """Check a delivered certificate: its proof, its anchor, and that it is still in force."""
    if not isinstance(document, dict):
        raise Refusal(Reason.MALFORMED, "a certificate is a JSON object")
    kinds = [KINDS[t] for t in document.get("type", []) if isinstance(t, str) and t in KINDS]
    subject = document.get("credentialSubject")
    if len(kinds) != 1 or not isinstance(subject, dict):
        raise Refusal(Reason.MALFORMED, f"not a certificate of one of the types {sorted(KINDS)}")
    kind = kinds[0]
    if not isinstance(document.get("proof"), dict):
        raise Refusal(Reason.MISSING_SIGNATURE, "the certificate carries no proof")
    try:
        issuer = Did.parse(str(document.get("issuer")), ledger.chain_id)
        subject_address = _subject_address(subject, ledger.chain_id)
    except ValidationError as exc:
        raise Refusal(Reason.MALFORMED, exc.message) from exc
    cert_hash = document_hash(document)
    record = ledger.query("permissions", "certificate", hash=cert_hash)
    signed_at = ledger.block(record["block"]).timestamp if record else None
    try:
        verify_document(ledger, document, str(issuer), signed_at)
    except SignatureError as exc:
        raise Refusal(Reason.BAD_SIGNATURE, exc.message) from exc
    if record is None:
        raise Refusal(Reason.NOT_ANCHORED, f"certificate {cert_hash} is not anchored on the ledger")
    expected = _expected(kind, record, subject)
    if (
        record["type"] != kind
        or record["issuer"] != issuer.address
        or record["subject"] != subject_address
        or any(subject.get(k) != v for k, v in expected.items())
        or document.get("expirationDate")
        != (_iso(from_unix(record["expires"])) if record["expires"] else None)
    ):
        raise Refusal(Reason.NOT_ANCHORED, "the certificate does not match its ledger anchor")
    if record["revoked"] is not None:
        raise Refusal(
            Reason.REVOKED, f"certificate {cert_hash} was revoked in block {record['revoked']}"
        )
    if record["expires"] is not None and record["expires"] <= unix_seconds(now):
        raise Refusal(Reason.EXPIRED, f"certificate {cert_hash} expired")
    return CertificateInfo(cert_hash, kind, issuer.address, subject_address, record)

"""Entity Certificates (EC) of the MOBI EVGI identity subsystem.

An EC is a W3C Verifiable Credential naming an entity's DID, EID, kind and the claims of that
kind; it is signed by its issuer and only its hash goes on the ledger. An EC is valid while its
anchor exists, its subject and issuer are on-boarded, and the issuer's key signed it.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl
from pydantic import ValidationError as PydanticValidationError

from evgi.core.clock import Clock, SystemClock
from evgi.core.errors import EvgiError, ValidationError
from evgi.core.identifiers import (
    EntityKind,
    make_eid,
    validate_eid,
    validate_evse_id,
    validate_pcid,
    validate_vin,
)
from evgi.identity.credential import document_hash, sign_document, verify_document
from evgi.identity.did import Did, did_for
from evgi.ledger import ISSUE_RIGHTS, Ledger, Receipt, Submitter

VC_CONTEXT = "https://www.w3.org/2018/credentials/v1"
EC_TYPE = "EntityCertificate"
_MAX_ISSUER_DEPTH = 4


def _did(value: str) -> str:
    Did.parse(value)
    return value


DidStr = Annotated[str, AfterValidator(_did)]
Vin = Annotated[str, AfterValidator(lambda v: validate_vin(v))]
Pcid = Annotated[str, AfterValidator(lambda v: validate_pcid(v))]
EvseId = Annotated[str, AfterValidator(lambda v: validate_evse_id(v))]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]


class _Claims(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    serviceEndpoints: list[HttpUrl] = Field(default_factory=list, max_length=8)


class UserClaims(_Claims):
    """No personal data: the EC says what the user is, not who."""

    role: Literal["driver", "fleet_manager", "site_owner", "prosumer"] = "driver"
    emsp: DidStr | None = None


class VehicleClaims(_Claims):
    vin: Vin
    oem: DidStr
    model: Text
    batteryCapacityWh: int = Field(gt=0)
    pcid: Pcid | None = None
    bidirectional: bool = False


class BatteryClaims(_Claims):
    serialNumber: Text
    oem: DidStr
    chemistry: Literal["NMC", "LFP", "NCA", "LMO", "LTO", "solid-state", "other"]
    capacityWh: int = Field(gt=0)
    vehicle: DidStr | None = None


class MeterClaims(_Claims):
    serialNumber: Text
    manufacturer: Text
    meterType: Literal["evse", "site", "vehicle"]
    evseId: EvseId | None = None
    calibrationLaw: Text | None = None


class ChargerClaims(_Claims):
    evseIds: list[EvseId] = Field(min_length=1, max_length=32)
    cpo: DidStr
    maxPowerW: int = Field(gt=0)
    connectors: int = Field(ge=1, le=32)
    bidirectional: bool = False
    country: Country


class ServiceProviderClaims(_Claims):
    legalName: Text
    country: Country
    partyId: Annotated[str, Field(pattern=r"^[A-Z]{2}\*?[A-Z0-9]{3}$")] | None = None


class DataHostClaims(_Claims):
    legalName: Text
    dataTypes: list[Text] = Field(min_length=1)


class TrustAnchorClaims(_Claims):
    legalName: Text
    governance: Text


CLAIMS: dict[EntityKind, type[_Claims]] = {
    EntityKind.USER: UserClaims,
    EntityKind.VEHICLE: VehicleClaims,
    EntityKind.BATTERY: BatteryClaims,
    EntityKind.METER: MeterClaims,
    EntityKind.CHARGER: ChargerClaims,
    EntityKind.CPO: ServiceProviderClaims,
    EntityKind.EMSP: ServiceProviderClaims,
    EntityKind.OEM: ServiceProviderClaims,
    EntityKind.UTILITY: ServiceProviderClaims,
    EntityKind.AGGREGATOR: ServiceProviderClaims,
    EntityKind.INSURER: ServiceProviderClaims,
    EntityKind.DATA_HOST: DataHostClaims,
    EntityKind.TRUST_ANCHOR: TrustAnchorClaims,
}


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def validate_claims(kind: EntityKind, claims: dict[str, Any]) -> dict[str, Any]:
    try:
        model = CLAIMS[kind].model_validate(claims)
    except PydanticValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValidationError(f"invalid {kind.value} claims: {problems}") from exc
    return model.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


def build_entity_certificate(
    issuer_did: str,
    subject_did: str,
    kind: EntityKind,
    claims: dict[str, Any],
    issued: datetime,
    expires: datetime | None = None,
) -> dict[str, Any]:
    subject = Did.parse(subject_did)
    body: dict[str, Any] = {
        "@context": [VC_CONTEXT],
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", EC_TYPE],
        "issuer": issuer_did,
        "issuanceDate": _iso(issued),
        "credentialSubject": {
            "id": subject_did,
            "eid": make_eid(kind, subject.address),
            "entityKind": kind.value,
            **validate_claims(kind, claims),
        },
    }
    if expires is not None:
        if expires <= issued:
            raise ValidationError("an entity certificate must expire after it is issued")
        body["expirationDate"] = _iso(expires)
    return body


@dataclass(frozen=True)
class IssuedCertificate:
    document: dict[str, Any]
    hash: str
    receipt: Receipt


def issue_entity_certificate(
    issuer: Submitter,
    subject_address: str,
    kind: EntityKind,
    claims: dict[str, Any],
    clock: Clock | None = None,
    expires: datetime | None = None,
) -> IssuedCertificate:
    """Build, sign and anchor an EC, on-boarding its subject in the same ledger transaction."""
    ledger = issuer.ledger
    issued = (clock or SystemClock()).now()
    issuer_did = did_for(ledger.chain_id, issuer.address)
    document = build_entity_certificate(
        issuer_did, did_for(ledger.chain_id, subject_address), kind, claims, issued, expires
    )
    signed = sign_document(document, issuer.account, f"{issuer_did}#controller", issued)
    ec_hash = document_hash(signed)
    receipt = issuer.call(
        "entity", "onboard", subject=subject_address.lower(), kind=kind.value, ec_hash=ec_hash
    )
    return IssuedCertificate(signed, ec_hash, receipt)


def offboard_entity(trust_anchor: Submitter, subject_address: str, reason: str) -> Receipt:
    """Off-board an entity: its EC fails verification from the block of this transaction on."""
    return trust_anchor.call("entity", "offboard", subject=subject_address, reason=reason)


@dataclass(frozen=True)
class CertificateCheck:
    valid: bool
    reason: str
    hash: str
    subject: str | None = None
    kind: str | None = None
    issuer: str | None = None
    eid: str | None = None
    anchored_block: int | None = None
    offboarded_block: int | None = None
    at_block: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _parse_time(text: Any, field: str) -> datetime:
    if not isinstance(text, str):
        raise ValidationError(f"{field} must be an ISO 8601 date-time")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationError(f"{field} is not an ISO 8601 date-time: {text!r}") from exc
    if moment.tzinfo is None:
        raise ValidationError(f"{field} has no time zone")
    return moment


def verify_entity_certificate(
    ledger: Ledger,
    document: dict[str, Any],
    at_block: int | None = None,
    clock: Clock | None = None,
) -> CertificateCheck:
    """Check an EC as of `at_block` (default: head). Never raises for a bad certificate."""
    height = ledger.head().height if at_block is None else at_block
    ec_hash = document_hash(document) if isinstance(document, dict) else ""
    result = CertificateCheck(False, "", ec_hash, at_block=height)
    try:
        return _verify(ledger, document, height, clock or SystemClock(), ec_hash)
    except EvgiError as exc:
        return CertificateCheck(**{**asdict(result), "reason": exc.message})


def _verify(
    ledger: Ledger, document: dict[str, Any], height: int, clock: Clock, ec_hash: str
) -> CertificateCheck:
    if not isinstance(document, dict) or EC_TYPE not in document.get("type", []):
        raise ValidationError("not an entity certificate (type EntityCertificate missing)")
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict):
        raise ValidationError("entity certificate has no credentialSubject")
    kind_name = subject.get("entityKind")
    if kind_name not in EntityKind.__members__.values():
        raise ValidationError(f"unknown entityKind {kind_name!r}")
    kind = EntityKind(str(kind_name))
    subject_did = Did.parse(str(subject.get("id")), ledger.chain_id)
    issuer_did = Did.parse(str(document.get("issuer")), ledger.chain_id)
    kind_claims = {k: v for k, v in subject.items() if k not in ("id", "eid", "entityKind")}
    validate_claims(kind, kind_claims)
    eid_kind, _ = validate_eid(str(subject.get("eid")))
    if eid_kind != kind or subject.get("eid") != make_eid(kind, subject_did.address):
        raise ValidationError("EID does not belong to the certificate's subject and kind")
    base = CertificateCheck(
        False,
        "",
        ec_hash,
        str(subject_did),
        kind.value,
        str(issuer_did),
        subject["eid"],
        at_block=height,
    )

    def fail(reason: str, **more: Any) -> CertificateCheck:
        return CertificateCheck(**{**asdict(base), **more, "reason": reason})

    anchor = ledger.query("entity", "certificate", ec_hash=ec_hash)
    if anchor is None:
        return fail("certificate hash is not anchored on the ledger (altered or never issued)")
    if anchor["subject"] != subject_did.address or anchor["issuer"] != issuer_did.address:
        return fail("ledger anchor names another subject or issuer")
    if anchor["block"] > height:
        return fail(
            f"certificate was anchored in block {anchor['block']}, after block {height}",
            anchored_block=anchor["block"],
        )
    offboarded = anchor["offboarded"]
    if offboarded is not None and offboarded <= height:
        return fail(
            f"entity was off-boarded in block {offboarded}",
            anchored_block=anchor["block"],
            offboarded_block=offboarded,
        )
    now = clock.now()
    if (
        "expirationDate" in document
        and _parse_time(document["expirationDate"], "expirationDate") <= now
    ):
        return fail("certificate has expired", anchored_block=anchor["block"])
    signed_at = ledger.block(anchor["block"]).timestamp
    verify_document(ledger, document, str(issuer_did), at=signed_at)
    issuer_problem = _issuer_problem(ledger, issuer_did.address, kind, height, 0)
    if issuer_problem:
        return fail(issuer_problem, anchored_block=anchor["block"])
    return CertificateCheck(
        True,
        "valid",
        ec_hash,
        str(subject_did),
        kind.value,
        str(issuer_did),
        subject["eid"],
        anchor["block"],
        offboarded,
        height,
    )


def _issuer_problem(ledger: Ledger, issuer: str, kind: EntityKind, height: int, depth: int) -> str:
    """Why `issuer` could not certify a `kind` at `height`, walking up to a trust anchor."""
    if ledger.query("entity", "is_trust_anchor", address=issuer):
        return ""
    record = ledger.query("entity", "get", subject=issuer)
    if record is None:
        return f"issuer {issuer} is neither a trust anchor nor an on-boarded entity"
    if record["offboarded"] is not None and record["offboarded"] <= height:
        return f"issuer {issuer} was off-boarded in block {record['offboarded']}"
    if kind not in ISSUE_RIGHTS.get(EntityKind(record["kind"]), frozenset()):
        return f"a {record['kind']} may not certify a {kind.value}"
    if depth >= _MAX_ISSUER_DEPTH:
        return "issuer chain is too long"
    return _issuer_problem(ledger, record["issuer"], EntityKind(record["kind"]), height, depth + 1)

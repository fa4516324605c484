"""HTTP routes of the Plug & Charge pools under /opcp/v1 (shaped after OPCP) and of EST
(RFC 7030) under /.well-known/est.

ISO 15118 carries CertificateInstallationReq/Res as EXI. No maintained Python EXI codec for the
ISO 15118 schemas runs without a Java runtime (the open ISO 15118 stack drives a Java codec), so
the pools carry both as JSON: certificates as base64 DER, keys and signatures as base64 bytes,
field names as in the ISO 15118-2 schema.

Every route but /cacerts needs 'Authorization: Bearer <token>' of a pool client whose role may
use it (401 without a known token, 403 for a wrong role); refusals are
`{"detail": {"code", "message"}}`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import structlog
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
)
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool

from evgi.api.platform import kept_on_app
from evgi.core.errors import EvgiError, NotFoundError, PermissionDenied, ValidationError
from evgi.pnc import (
    CERTS_ONLY_TYPE,
    OPERATOR_TOKEN_FILE,
    PKCS10_TYPE,
    CertificatePools,
    Consent,
    ContractRenewal,
    EncryptedContractKey,
    EstLabel,
    KeyProfile,
    PoolClient,
    PoolRole,
    RootCertificateId,
    RootKind,
    SignedContract,
    StoredContract,
    StoredRoot,
    Unauthenticated,
    ca_certificates,
    certs_only,
    enroll,
    read_csr,
)

log = structlog.get_logger(__name__)
T = TypeVar("T")


def certificate_pools(app: FastAPI) -> CertificatePools:
    """The platform's pools, opened on first use and kept on the app."""

    def open_pools() -> CertificatePools:
        platform = app.state.platform
        return CertificatePools.open(platform.settings, platform.db, platform.clock)

    return kept_on_app(app, "pools", open_pools)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Make the operator's token and adopt the platform's roots before the first request."""
    pools = certificate_pools(app)
    settings = app.state.platform.settings
    pools.operator_token(settings.data_dir)
    pools.adopt_hierarchies()
    log.info("certificate pools ready", operator_token=str(settings.data_dir / OPERATOR_TOKEN_FILE))
    try:
        yield
    finally:
        pools.close()


router = APIRouter(tags=["opcp"], lifespan=lifespan)
est_router = APIRouter(tags=["est"])


def _pools(request: Request) -> CertificatePools:
    return certificate_pools(request.app)


PoolsDep = Annotated[CertificatePools, Depends(_pools)]


# -- errors ---------------------------------------------------------------------------------


class Problem(BaseModel):
    code: str = Field(examples=["unknown_pcid"])
    message: str = Field(examples=["no provisioning certificate for PCID WMIV2GPROVTEST0017"])


class ProblemResponse(BaseModel):
    detail: Problem


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ProblemResponse} for status in (401, 403, *statuses)}


def _refusal(exc: EvgiError) -> HTTPException:
    """The HTTP status of each refusal; the body keeps its stable code."""
    if isinstance(exc, Unauthenticated):
        status = 401
    elif isinstance(exc, PermissionDenied):
        status = 403
    elif isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, ValidationError):
        status = 400
    else:
        status = 409
    headers = {"WWW-Authenticate": 'Bearer realm="opcp"'} if status == 401 else None
    return HTTPException(status, {"code": exc.code, "message": exc.message}, headers)


def _client(*roles: PoolRole) -> Callable[..., PoolClient]:
    """A dependency: the calling client, if its role is one of `roles`."""

    def authenticated(
        pools: PoolsDep,
        authorization: Annotated[str | None, Header(description="Bearer <pool token>")] = None,
    ) -> PoolClient:
        scheme, _, token = (authorization or "").partition(" ")
        try:
            return pools.authenticate(token if scheme.lower() == "bearer" else None, *roles)
        except EvgiError as exc:
            raise _refusal(exc) from exc

    return authenticated


Operator = Annotated[PoolClient, Depends(_client(PoolRole.OPERATOR))]
Oem = Annotated[PoolClient, Depends(_client(PoolRole.OEM))]
Emsp = Annotated[PoolClient, Depends(_client(PoolRole.EMSP))]
Cpo = Annotated[PoolClient, Depends(_client(PoolRole.CPO))]
AnyClient = Annotated[PoolClient, Depends(_client(*PoolRole))]
EmspOrOem = Annotated[PoolClient, Depends(_client(PoolRole.EMSP, PoolRole.OEM))]
CpoOrEmsp = Annotated[PoolClient, Depends(_client(PoolRole.CPO, PoolRole.EMSP))]
Pcid = Annotated[
    str, Path(description="provisioning certificate ID", examples=["WMIV2GPROVTEST0017"])
]
Emaid = Annotated[str, Path(description="contract ID, no separators", examples=["DEABCC0NTRACT1X"])]


def _run(call: Callable[[], T]) -> T:
    try:
        return call()
    except EvgiError as exc:
        raise _refusal(exc) from exc


def _der(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise _refusal(ValidationError(f"not base64: {exc}")) from exc


# -- models ---------------------------------------------------------------------------------


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


Base64Der = Annotated[str, Field(min_length=1, description="a certificate, base64 DER")]


class ClientRegistration(Camel):
    name: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["oem-example"])
    role: Literal["oem", "emsp", "cpo"] = Field(examples=["oem"])


class RegisteredClient(Camel):
    name: str
    role: str
    created_at: datetime
    token: str = Field(description="the bearer token; shown this once, only its hash is kept")


class RootCertificateIn(Camel):
    certificate: Base64Der
    type: RootKind = Field(description="V2G, MO or OEM root")


class RootCertificate(Camel):
    fingerprint: str = Field(description="SHA-256 of the DER, hex")
    type: RootKind
    subject: str
    certificate: Base64Der
    trusted: bool = Field(description="on the trust list (V2G roots only)")
    added_at: datetime


def _root(root: StoredRoot) -> RootCertificate:
    return RootCertificate(
        fingerprint=root.fingerprint,
        type=RootKind(root.kind),
        subject=root.subject,
        certificate=base64.b64encode(root.der).decode(),
        trusted=root.trusted,
        added_at=root.added_at,
    )


class TrustListIn(Camel):
    fingerprints: list[str] = Field(description="SHA-256 fingerprints of V2G roots of the pool")


class TrustList(Camel):
    v2g_roots: list[RootCertificate] = Field(alias="v2gRoots")


class ProvisioningIn(Camel):
    certificate_chain: list[Base64Der] = Field(
        min_length=1, description="the provisioning certificate, then its sub-CAs"
    )


class ProvisioningCertificate(Camel):
    pcid: str
    oem: str
    profile: KeyProfile
    certificate_chain: list[Base64Der]
    updated_at: datetime


class SealedKeyIn(Camel):
    """A contract key as the eMSP sealed it: ContractSignatureEncryptedPrivateKey and
    DHpublickey, base64."""

    contract_signature_encrypted_private_key: str = Field(min_length=1)
    dh_public_key: str = Field(min_length=1)

    def sealed(self, profile: KeyProfile) -> EncryptedContractKey:
        return EncryptedContractKey(
            profile, _der(self.contract_signature_encrypted_private_key), _der(self.dh_public_key)
        )


class ContractRenewalIn(SealedKeyIn):
    """What makes the contract the successor of the one a vehicle holds (ISO 15118-2
    CertificateUpdateRes): that contract's certificate, and the new contract key sealed for
    its key (`seal_contract_update`) under the contract's profile. Only the eMSP can seal it:
    the pool never sees a contract key in the clear."""

    replaces: Base64Der = Field(description="the contract certificate being renewed")


class ContractIn(SealedKeyIn):
    """Contract data an eMSP prepared for one vehicle: its contract certificate chain and the
    contract key encrypted for the vehicle's provisioning key; the pool's CPS signs it."""

    profile: KeyProfile
    contract_signature_cert_chain: list[Base64Der] = Field(min_length=1)
    priority: int = Field(default=1, ge=0, le=255, description="0 comes first")
    renewal: ContractRenewalIn | None = Field(
        default=None, description="for a renewed contract: the CertificateUpdate it answers"
    )


class ContractRenewalOut(Camel):
    replaces_fingerprint: str = Field(
        description="SHA-256 of the renewed contract certificate's DER, hex"
    )
    signed_update_data: dict[str, Any] = Field(
        description="the CertificateUpdateRes body, signed by the CPS, its key sealed for the "
        "renewed contract's key"
    )


class ContractOut(Camel):
    pcid: str
    emaid: str
    emsp: str
    priority: int
    is_default: bool = Field(description="what an installation gets unless the vehicle asks")
    signed_contract_data: dict[str, Any] = Field(
        description="the CertificateInstallationRes body, signed by the CPS"
    )
    renewal: ContractRenewalOut | None = Field(
        default=None, description="stored with the contract as the successor of another"
    )
    updated_at: datetime


def _contract(contract: StoredContract, default: str | None) -> ContractOut:
    signed = SignedContract.of(contract)
    renewal = None
    if signed.update is not None and signed.replaces is not None:
        renewal = ContractRenewalOut(
            replaces_fingerprint=signed.replaces, signed_update_data=signed.update
        )
    return ContractOut(
        pcid=contract.pcid,
        emaid=contract.emaid,
        emsp=contract.emsp,
        priority=contract.priority,
        is_default=contract.emaid == default,
        signed_contract_data=signed.installation,
        renewal=renewal,
        updated_at=contract.updated_at,
    )


class ConsentIn(Camel):
    emaid: str = Field(examples=["DEABCC0NTRACT1X"])
    driver: str = Field(min_length=1, max_length=128, description="who consented")


class ConsentOut(Camel):
    pcid: str
    emaid: str
    driver: str
    consented_at: datetime
    recorded_by: str


def _consent(consent: Consent) -> ConsentOut:
    return ConsentOut(**consent.__dict__)


class RootCertificateIdIn(Camel):
    """X509IssuerSerial: one V2G root the vehicle trusts."""

    x509_issuer_name: str = Field(description="RFC 4514 issuer name of the root")
    x509_serial_number: int = Field(ge=0)


class CertificateInstallationReq(Camel):
    """ISO 15118-2 CertificateInstallationReq as JSON instead of EXI, certificates as base64
    DER (ISO 15118-20 adds PrioritizedEMAIDs)."""

    oem_provisioning_cert: Base64Der
    list_of_root_certificate_ids: list[RootCertificateIdIn] = Field(default_factory=list)
    prioritized_emaids: list[str] = Field(default_factory=list, max_length=8)


class CertificateInstallationRes(Camel):
    """ISO 15118-2 CertificateInstallationRes as JSON instead of EXI: what the CPS signed
    (the RFC 8785 form of the four contract elements) and the CPS chain, base64 DER."""

    response_code: Literal["OK"] = "OK"
    profile: KeyProfile
    contract_signature_cert_chain: list[Base64Der]
    contract_signature_encrypted_private_key: str
    dh_public_key: str
    emaid: str
    sa_provisioning_certificate_chain: list[Base64Der]
    signature: str = Field(description="the CPS's signature over the four elements above")


# -- clients and roots ----------------------------------------------------------------------


@router.post("/clients", status_code=201, responses=_responses(400), summary="Register a client")
def register_client(
    registration: ClientRegistration, pools: PoolsDep, _: Operator
) -> RegisteredClient:
    client, token = _run(
        lambda: pools.register_client(registration.name, PoolRole(registration.role))
    )
    return RegisteredClient(
        name=client.name, role=client.role, created_at=client.created_at, token=token
    )


@router.put("/root-certificates", status_code=201, responses=_responses(400), summary="Add a root")
def add_root(body: RootCertificateIn, pools: PoolsDep, _: Operator) -> RootCertificate:
    return _root(_run(lambda: pools.add_root(_der(body.certificate), body.type)))


@router.get("/root-certificates", responses=_responses(), summary="The root certificate pool")
def list_roots(
    pools: PoolsDep,
    _: AnyClient,
    kind: Annotated[RootKind | None, Query(alias="type", description="V2G, MO or OEM")] = None,
) -> list[RootCertificate]:
    return [_root(root) for root in pools.roots(kind)]


@router.get("/trust-list", responses=_responses(), summary="The V2G roots trusted")
def trust_list(pools: PoolsDep, _: AnyClient) -> TrustList:
    return TrustList(v2g_roots=[_root(root) for root in pools.trust_list()])


@router.put("/trust-list", responses=_responses(400), summary="Replace the trust list")
def set_trust_list(body: TrustListIn, pools: PoolsDep, _: Operator) -> TrustList:
    roots = _run(lambda: pools.set_trust_list(body.fingerprints))
    return TrustList(v2g_roots=[_root(root) for root in roots])


# -- provisioning certificates --------------------------------------------------------------


def _provisioning(pools: CertificatePools, pcid: str) -> ProvisioningCertificate:
    record = pools.provisioning(pcid)
    return ProvisioningCertificate(
        pcid=record.pcid,
        oem=record.oem,
        profile=KeyProfile(record.profile),
        certificate_chain=list(record.chain),
        updated_at=record.updated_at,
    )


@router.put(
    "/provisioning-certificates/{pcid}",
    responses=_responses(400),
    summary="Publish a vehicle's provisioning certificate (OEM)",
)
def publish_provisioning(
    pcid: Pcid, body: ProvisioningIn, pools: PoolsDep, client: Oem
) -> ProvisioningCertificate:
    """Checked against the pool's OEM and V2G roots; replaces the one published before."""
    chain = [_der(item) for item in body.certificate_chain]
    _run(lambda: pools.publish_provisioning(client, pcid, chain))
    return _run(lambda: _provisioning(pools, pcid))


@router.get(
    "/provisioning-certificates/{pcid}",
    responses=_responses(400, 404),
    summary="A vehicle's provisioning certificate (eMSP)",
)
def get_provisioning(pcid: Pcid, pools: PoolsDep, _: Emsp) -> ProvisioningCertificate:
    return _run(lambda: _provisioning(pools, pcid))


@router.delete(
    "/provisioning-certificates/{pcid}",
    status_code=204,
    responses=_responses(400, 404),
    summary="Withdraw a vehicle, with its contracts (OEM)",
)
def withdraw_provisioning(pcid: Pcid, pools: PoolsDep, client: Oem) -> Response:
    _run(lambda: pools.withdraw_provisioning(client, pcid))
    return Response(status_code=204)


# -- contracts ------------------------------------------------------------------------------


@router.put(
    "/contracts/{pcid}/{emaid}",
    responses=_responses(400, 404),
    summary="Store a vehicle's contract data, signed here by the CPS (eMSP)",
)
def store_contract(
    pcid: Pcid, emaid: Emaid, body: ContractIn, pools: PoolsDep, client: Emsp
) -> ContractOut:
    """Replaces what was stored under this eMAID, a renewal included. With `renewal`, a
    vehicle holding the renewed contract gets this one by CertificateUpdateReq; 400
    `bad_installation` when the renewal changes the eMAID or the key profile or renews the
    contract's own certificate, 400 `bad_certificate` when `replaces` is no certificate."""
    sealed = body.sealed(body.profile)
    chain = [_der(item) for item in body.contract_signature_cert_chain]
    renewal = None
    if body.renewal is not None:
        renewal = ContractRenewal(_der(body.renewal.replaces), body.renewal.sealed(body.profile))
    stored = _run(
        lambda: pools.store_contract(client, pcid, emaid, chain, sealed, body.priority, renewal)
    )
    return _contract(stored, _run(lambda: pools.default_contract(pcid)))


@router.get(
    "/contracts/{pcid}",
    responses=_responses(400, 404),
    summary="A vehicle's contracts, first priority first (eMSP, OEM)",
)
def list_contracts(
    pcid: Pcid,
    pools: PoolsDep,
    _: EmspOrOem,
) -> list[ContractOut]:
    contracts = _run(lambda: pools.contracts(pcid))
    default = _run(lambda: pools.default_contract(pcid))
    return [_contract(c, default) for c in contracts]


@router.delete(
    "/contracts/{pcid}/{emaid}",
    status_code=204,
    responses=_responses(400, 404),
    summary="Remove a contract (eMSP)",
)
def remove_contract(pcid: Pcid, emaid: Emaid, pools: PoolsDep, client: Emsp) -> Response:
    _run(lambda: pools.remove_contract(client, pcid, emaid))
    return Response(status_code=204)


@router.put(
    "/consents/{pcid}",
    responses=_responses(400, 404),
    summary="Record the driver's choice of default contract (OEM)",
)
def record_consent(pcid: Pcid, body: ConsentIn, pools: PoolsDep, client: Oem) -> ConsentOut:
    return _consent(_run(lambda: pools.record_consent(client, pcid, body.emaid, body.driver)))


@router.get(
    "/consents/{pcid}",
    responses=_responses(400, 404),
    summary="The driver's recorded choice for a vehicle (OEM, eMSP)",
)
def get_consent(
    pcid: Pcid,
    pools: PoolsDep,
    _: EmspOrOem,
) -> ConsentOut:
    consent = _run(lambda: pools.consent(pcid))
    if consent is None:
        raise HTTPException(
            404, {"code": "no_consent", "message": f"no driver's choice recorded for {pcid}"}
        )
    return _consent(consent)


@router.post(
    "/certificate-installation",
    responses=_responses(400, 404),
    summary="Answer a CertificateInstallationReq a vehicle sent (CPO)",
)
def certificate_installation(
    body: CertificateInstallationReq, pools: PoolsDep, _: Cpo
) -> CertificateInstallationRes:
    """ISO 15118 carries this request and its response as EXI; no maintained Python EXI codec
    for the ISO 15118 schemas runs without a Java runtime, so both travel as JSON here, with
    certificates as base64 DER and keys and signatures as base64 bytes.

    404 `unknown_pcid` for a vehicle no OEM published, 404 `no_contract` when none of its
    contracts is signed under a V2G root the vehicle named."""
    roots = [
        RootCertificateId(r.x509_issuer_name, r.x509_serial_number)
        for r in body.list_of_root_certificate_ids
    ]
    response = _run(
        lambda: pools.certificate_installation(
            _der(body.oem_provisioning_cert), roots, body.prioritized_emaids
        )
    )
    return CertificateInstallationRes.model_validate(response.to_json())


# -- EST ------------------------------------------------------------------------------------


def _certs_only(body: bytes) -> Response:
    return Response(
        body, media_type=CERTS_ONLY_TYPE, headers={"Content-Transfer-Encoding": "base64"}
    )


_EST_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {CERTS_ONLY_TYPE: {}}, "description": "base64 certs-only PKCS#7"},
    **_responses(400, 404, 415),
}


@est_router.get("/cacerts", response_class=Response, responses=_EST_RESPONSES)
def cacerts(pools: PoolsDep) -> Response:
    """The CPO line's CA certificates (RFC 7030 4.1); no authentication needed."""
    return _cacerts(pools, EstLabel.CPO)


@est_router.get("/{label}/cacerts", response_class=Response, responses=_EST_RESPONSES)
def labelled_cacerts(label: EstLabel, pools: PoolsDep) -> Response:
    """The CA certificates of the `cpo` or `mo` line."""
    return _cacerts(pools, label)


@est_router.post("/simpleenroll", response_class=Response, responses=_EST_RESPONSES)
async def simpleenroll(
    request: Request,
    pools: PoolsDep,
    client: CpoOrEmsp,
) -> Response:
    """A base64 PKCS#10 request (application/pkcs10) in, the certificate out: a CPO client
    enrolls with the CPO line, an eMSP with the MO line."""
    label = EstLabel.CPO if client.role == PoolRole.CPO else EstLabel.MO
    return await _enroll(request, pools, label)


@est_router.post("/{label}/simpleenroll", response_class=Response, responses=_EST_RESPONSES)
async def labelled_simpleenroll(
    label: EstLabel,
    request: Request,
    pools: PoolsDep,
    client: CpoOrEmsp,
) -> Response:
    """Enroll with the `cpo` line (CPO clients) or the `mo` line (eMSP clients)."""
    wanted = PoolRole.CPO if label is EstLabel.CPO else PoolRole.EMSP
    if client.role != wanted:
        raise HTTPException(
            403,
            {
                "code": "wrong_role",
                "message": f"the {label.value} CA enrolls {wanted} clients only",
            },
        )
    return await _enroll(request, pools, label)


def _cacerts(pools: CertificatePools, label: EstLabel) -> Response:
    """Runs on a worker thread (sync routes): it reads the hierarchy's tables."""
    return _certs_only(certs_only(_run(lambda: ca_certificates(pools.hierarchies, label))))


async def _enroll(request: Request, pools: CertificatePools, label: EstLabel) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != PKCS10_TYPE:
        raise HTTPException(
            415, {"code": "unsupported_media_type", "message": f"send the CSR as {PKCS10_TYPE}"}
        )
    body = await request.body()
    certificate = await run_in_threadpool(
        _run, lambda: enroll(pools.hierarchies, label, read_csr(body))
    )
    return _certs_only(certs_only([certificate]))

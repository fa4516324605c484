"""Plug & Charge at the CSMS: OCPP 2.0.1/2.1 blocks A (V2G certificates), M (ISO 15118
certificate management) and C07 (authorization by contract certificate), and OCPP 1.6 through
the Plug & Charge DataTransfer messages of vendor "org.openchargealliance.iso15118pnc", whose
data is the JSON of the 2.0.1 message of the same name.

ISO 15118 carries CertificateInstallationReq/Res (and -2's CertificateUpdateReq/Res, whose
request is `evgi.pnc.CertificateUpdateRequest`) as EXI, and OCPP relays them base64-encoded in
exiRequest/exiResponse. No maintained Python EXI codec for the ISO 15118 schemas runs without a
Java runtime, so these fields carry the JSON form the certificate pools use (`api/opcp.py`:
certificates as base64 DER, keys and signatures as base64 bytes), DEFLATE-compressed (zlib)
before base64: like EXI, a compact binary form, and the only way a -2 response with its two
chains fits the 5,600 characters 2.0.1 allows exiResponse.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import weakref
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fastjsonschema
import httpx
import structlog
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from ocpp.v201 import call_result as v201_call_result
from ocpp.v201.enums import Action

from evgi.config import Settings
from evgi.core.errors import EvgiError, ValidationError
from evgi.csms.authorization import TokenDecision
from evgi.csms.charge_point import ChargePoint, on
from evgi.csms.connection import to_camel_case, to_snake_case
from evgi.csms.errors import StationCallError, UnsupportedCommand
from evgi.csms.metering import format_time
from evgi.csms.protocol import DIALECTS, CallFailure, OcppVersion
from evgi.csms.schemas import Schemas, schema_error
from evgi.pnc import (
    OCSP_REQUEST_TYPE,
    Authority,
    AuthorizeCertificateStatus,
    Branch,
    CertificateError,
    CertificateInstallationResponse,
    CertificatePools,
    CertificateStatus,
    CertificateUpdateRequest,
    ChainValidator,
    ContractState,
    Hierarchies,
    LeafRole,
    OcspClient,
    PublicKey,
    RootCertificateId,
    common_name,
    issuing_ca,
    key_profile,
    read_csr,
    same_contract,
)
from evgi.pnc.ocsp import issuer_hashes
from evgi.storage.charging import ChargingStore
from evgi.storage.pki import CertificateRecord

PNC_VENDOR = "org.openchargealliance.iso15118pnc"
V2G_CERTIFICATE = "V2GCertificate"
# How long the CSMS waits for an OCSP responder it relays to: well inside the station's budget.
OCSP_RELAY_TIMEOUT = 3.0
_REASON_CODE = 20
_ADDITIONAL_INFO = 512
_HASH_ALGORITHMS = {"SHA256": hashes.SHA256(), "SHA384": hashes.SHA384(), "SHA512": hashes.SHA512()}
# 2.1's Get15118EVCertificate field "prioritizedEMAIDs" as the handlers receive it: the
# library's camelCase -> snake_case mapping splits its capitals its own way.
_EV_EMAIDS = next(iter(to_snake_case({"prioritizedEMAIDs": None})))
# The idTokenInfo status that goes with a refused contract certificate.
_TOKEN_STATUS = {AuthorizeCertificateStatus.CERTIFICATE_EXPIRED: "Expired"}
# 2.1's exiResponse limit: the contracts an EV asked for beyond it are left to further requests.
_EXI_RESPONSE_LIMIT = 17_000
# GetCertificateChainStatus has no statusInfo: the reason for a Failed entry travels in the
# entry's customData, under this vendor id.
CUSTOM_DATA_VENDOR = "evgi"
_CHAIN_STATUS = {
    CertificateStatus.GOOD: "Good",
    CertificateStatus.REVOKED: "Revoked",
    CertificateStatus.UNKNOWN: "Unknown",
}

log = structlog.get_logger(__name__)
_schemas = Schemas()


class PnCRefusal(EvgiError):
    """A Plug & Charge request answered with status Failed/Rejected and a reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ContractAuthorization:
    certificate_status: AuthorizeCertificateStatus
    token: TokenDecision


class PlugAndChargeServices:
    """The ISO 15118 PKI as the CSMS uses it: the hierarchies that sign SECC certificates,
    the contract pool that answers installations, and the OCSP client chains are validated
    with. One per CSMS (see `plug_and_charge`)."""

    def __init__(self, settings: Settings, store: ChargingStore) -> None:
        self.pools = CertificatePools.open(settings, store.engine)
        self.hierarchies: Hierarchies = self.pools.hierarchies
        self._ocsp = OcspClient()
        self._validator: ChainValidator | None = None
        self._authorities = 0  # how many CAs there were when the validator was made

    # -- block A: the SECC certificate ------------------------------------------------------

    def sign_secc(self, csr_pem: str) -> str:
        """A V2GCertificate for the CSR's key, CN = SECC id (the CSR's CN), DC = CPO, from the
        CPO sub-CA 2 on the key's curve; returns the PEM chain for CertificateSigned."""
        csr = read_csr(csr_pem.encode())
        secc_id = common_name(csr.subject)
        if secc_id is None:
            raise CertificateError("the CSR must name the SECC id as its one CN")
        try:
            constraints = csr.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is not None and constraints.ca:
            raise CertificateError("an SECC certificate is an end entity: the CSR asks for a CA")
        public_key = csr.public_key()
        if not isinstance(public_key, PublicKey):
            raise CertificateError(f"a {type(public_key).__name__} cannot be certified here")
        issuer = issuing_ca(self.hierarchies, Branch.CPO, key_profile(public_key))
        return self.hierarchies.issue(issuer, secc_id, public_key).chain_pem()

    # -- block M: contract installation and OCSP --------------------------------------------

    def installation(
        self,
        exi_request: str,
        prioritized_emaids: Sequence[str] = (),
        maximum: int | None = None,
    ) -> tuple[str, int]:
        """The pool's CertificateInstallationRes for a relayed CertificateInstallationReq,
        both in the encoding the module describes, and how many more contracts the pool holds
        for the vehicle. The EV's prioritized eMAIDs are those OCPP 2.1 carries beside the
        request if it does, else those in the request (ISO 15118-20). An EV that asks for up
        to `maximum` contracts (2.1's maximumContractCertificateChains) gets as many as fit
        2.1's exiResponse: the first as a single contract's response, the others under
        "additionalContracts"."""
        body = decode_exi(exi_request)
        try:
            provisioning = base64.b64decode(body["oemProvisioningCert"], validate=True)
            emaids = list(prioritized_emaids) or [str(e) for e in body.get("prioritizedEmaids", [])]
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise PnCRefusal("InvalidRequest", f"malformed installation request: {exc!r}") from exc
        if maximum == 0:
            raise PnCRefusal("InvalidRequest", "maximumContractCertificateChains 0 asks for none")
        selection = self.pools.certificate_installations(
            provisioning, _root_ids(body), emaids, maximum or 1
        )
        contracts = list(selection.contracts)
        exi = _exi_response(contracts)
        while len(exi) > _EXI_RESPONSE_LIMIT and len(contracts) > 1:
            contracts.pop()
            exi = _exi_response(contracts)
        return exi, selection.remaining + len(selection.contracts) - len(contracts)

    def update(self, exi_request: str) -> str:
        """The pool's CertificateUpdateRes (ISO 15118-2) for a relayed CertificateUpdateReq:
        the request is the vehicle's current contract chain and eMAID, signed with its key
        (`CertificateUpdateRequest`), the response encoded as an installation's."""
        body = decode_exi(exi_request)
        request = CertificateUpdateRequest.from_json(body)
        return _exi_response([self.pools.certificate_update(request, _root_ids(body))])

    async def certificate_status(self, request_data: dict[str, Any]) -> str:
        """Relay an OCSPRequestDataType to its responderURL; the DER answer as base64."""
        url = str(request_data["responder_url"])
        if not url.startswith(("http://", "https://")):
            raise PnCRefusal("InvalidURL", f"responderURL {url!r} is not an HTTP(S) URL")
        request = ocsp_request(request_data)
        try:
            # A client per relay: the CSMS may run its loops one after another.
            async with httpx.AsyncClient(timeout=OCSP_RELAY_TIMEOUT) as http:
                reply = await http.post(
                    url,
                    content=request.public_bytes(serialization.Encoding.DER),
                    headers={"Content-Type": OCSP_REQUEST_TYPE},
                )
            reply.raise_for_status()
            answer = ocsp.load_der_ocsp_response(reply.content)
        except (httpx.HTTPError, ValueError) as exc:
            raise PnCRefusal("NoOCSPAnswer", f"no OCSP answer from {url}: {exc}") from exc
        if answer.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise PnCRefusal("OCSPRefused", f"the responder refused: {answer.response_status.name}")
        return base64.b64encode(reply.content).decode()

    def chain_status(self, request: dict[str, Any]) -> dict[str, Any]:
        """One entry of 2.1's GetCertificateChainStatus answered from the source the station
        named: the OCSP responder, through the OCSP client (which checks the answer's signer
        and nonce), or a CRL, whose signature is checked. Either needs the issuing CA's
        certificate, so only certificates of these hierarchies' CAs are answered. Failed,
        the reason in the entry's customData, when no checked answer came."""
        hash_data, source = request["certificate_hash_data"], request["source"]
        entry = {"certificate_hash_data": hash_data, "source": source}
        try:
            try:
                serial = int(hash_data["serial_number"], 16)
                authority = self._issuer(hash_data)
            except ValueError as exc:
                raise PnCRefusal("InvalidOCSPData", f"a hash or serial is not hex: {exc}") from exc
            if authority is None:
                raise PnCRefusal("UnknownIssuer", "no CA of this CSMS has these issuer hashes")
            urls = [str(url) for url in request["urls"]]
            if source == "OCSP":
                status, next_update = self._ocsp_status(authority, serial, urls)
            else:
                status, next_update = self._crl_status(authority, serial, urls)
        except EvgiError as exc:
            log.info("certificate status failed", source=source, reason=exc.message)
            custom = {"vendor_id": CUSTOM_DATA_VENDOR, **status_info(exc)}
            now = format_time(datetime.now(UTC))
            return {**entry, "status": "Failed", "next_update": now, "custom_data": custom}
        return {**entry, "status": status, "next_update": format_time(next_update)}

    def _ocsp_status(
        self, authority: Authority, serial: int, urls: Sequence[str]
    ) -> tuple[str, datetime]:
        """The certificate's status from its responder, when the station named that one."""
        record = self.hierarchies.store.certificate(authority.name, serial)
        if record is None:
            # What the CA's responder says of a serial it never issued.
            return "Unknown", datetime.now(UTC)
        certificate = x509.load_der_x509_certificate(record.der)
        named = asn1_x509.Certificate.load(record.der).ocsp_urls
        if not set(named) & set(urls):
            raise PnCRefusal(
                "UnknownResponder",
                f"the certificate's responder is {', '.join(named) or 'none'}, not "
                f"{', '.join(urls)}",
            )
        answer = self._ocsp.status(certificate, authority.certificate)
        return _CHAIN_STATUS[answer.status], answer.next_update or datetime.now(UTC)

    def _crl_status(
        self, authority: Authority, serial: int, urls: Sequence[str]
    ) -> tuple[str, datetime]:
        """The certificate's status on the first of `urls` that serves the CA's signed,
        current CRL."""
        failures: list[str] = []
        for url in urls:
            try:
                crl = _signed_crl(url, authority.certificate)
            except PnCRefusal as exc:
                failures.append(exc.message)
                continue
            revoked = crl.get_revoked_certificate_by_serial_number(serial)
            next_update = crl.next_update_utc or datetime.now(UTC)
            return ("Good" if revoked is None else "Revoked"), next_update
        raise PnCRefusal("NoCRL", "; ".join(failures))

    def _issuer(self, entry: dict[str, Any]) -> Authority | None:
        """The CA an OCSPRequestDataType or CertificateHashDataType names by its hashes."""
        algorithm = _HASH_ALGORITHMS[entry["hash_algorithm"]].name
        wanted = (bytes.fromhex(entry["issuer_name_hash"]), bytes.fromhex(entry["issuer_key_hash"]))
        for authority in self.hierarchies.authorities():
            if issuer_hashes(authority.certificate, algorithm) == wanted:
                return authority
        return None

    # -- C07: authorization by contract certificate -----------------------------------------

    def contract_status(
        self,
        emaid: str,
        certificate: str | None,
        hash_data: Sequence[dict[str, Any]] | None,
    ) -> AuthorizeCertificateStatus:
        """The status of the contract behind `emaid`: its PEM chain validated to an MO (or V2G)
        root with OCSP, or, when the station checked the chain and sent only its OCSP data,
        each certificate's record in the hierarchies."""
        if certificate is not None:
            if "-----BEGIN CERTIFICATE-----" not in certificate:
                return AuthorizeCertificateStatus.NO_CERTIFICATE_AVAILABLE
            try:
                chain = x509.load_pem_x509_certificates(certificate.encode())
            except ValueError:
                return AuthorizeCertificateStatus.CERT_CHAIN_ERROR
            verdict = self._contract_validator().validate(LeafRole.CONTRACT, chain)
            log.info("contract chain", status=verdict.status, reason=verdict.reason)
            if verdict.accepted and not same_contract(verdict.identifier or "", emaid):
                return AuthorizeCertificateStatus.CERT_CHAIN_ERROR
            return verdict.status
        if not hash_data:
            return AuthorizeCertificateStatus.NO_CERTIFICATE_AVAILABLE
        # The first entry is the contract certificate's, the others its sub-CAs'.
        leaf: CertificateRecord | None = None
        for entry in hash_data:
            record = self._record(entry)
            if record is None:
                return AuthorizeCertificateStatus.CERT_CHAIN_ERROR
            if record.revoked_at is not None:
                return AuthorizeCertificateStatus.CERTIFICATE_REVOKED
            if record.not_after <= datetime.now(UTC):
                return AuthorizeCertificateStatus.CERTIFICATE_EXPIRED
            leaf = leaf or record
        assert leaf is not None  # hash_data is not empty
        if leaf.role != LeafRole.CONTRACT.value or not same_contract(leaf.common_name, emaid):
            return AuthorizeCertificateStatus.CERT_CHAIN_ERROR
        if self.hierarchies.contract_state(leaf.common_name) is ContractState.CANCELLED:
            return AuthorizeCertificateStatus.CONTRACT_CANCELLED
        return AuthorizeCertificateStatus.ACCEPTED

    def _contract_validator(self) -> ChainValidator:
        """One validator for every Authorize (it keeps sub-CAs' OCSP answers and read roots),
        made anew once a CA was added, such as a root by `evgi pki init` in another process."""
        authorities = self.hierarchies.store.authority_count()
        if self._validator is None or authorities != self._authorities:
            self._validator = ChainValidator.of(self.hierarchies, self._ocsp)
            self._authorities = authorities
        return self._validator

    def _record(self, entry: dict[str, Any]) -> CertificateRecord | None:
        """The certificate an OCSPRequestDataType names, as the CA that issued it recorded it."""
        serial = int(entry["serial_number"], 16)
        authority = self._issuer(entry)
        if authority is None:
            return None
        return self.hierarchies.store.certificate(authority.name, serial)


_services: weakref.WeakKeyDictionary[ChargingStore, PlugAndChargeServices] = (
    weakref.WeakKeyDictionary()
)


def plug_and_charge(charge_point: ChargePoint) -> PlugAndChargeServices:
    """The Plug & Charge services of the charge point's CSMS, opened on first use."""
    store = charge_point.services.store
    found = _services.get(store)
    if found is None:
        found = PlugAndChargeServices(charge_point.services.settings, store)
        _services[store] = found
    return found


def encode_exi(body: dict[str, Any]) -> str:
    text = json.dumps(body, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def decode_exi(value: str) -> dict[str, Any]:
    """The JSON inside an exiRequest or exiResponse (see the module)."""
    try:
        body = json.loads(zlib.decompress(base64.b64decode(value, validate=True)))
    except (binascii.Error, zlib.error, ValueError) as exc:
        raise PnCRefusal(
            "InvalidEXI", f"not base64 of a DEFLATE-compressed JSON document: {exc}"
        ) from exc
    if not isinstance(body, dict):
        raise PnCRefusal("InvalidEXI", "the document is not a JSON object")
    return body


def _exi_response(contracts: Sequence[CertificateInstallationResponse]) -> str:
    """The exiResponse of one contract, or of several (the others as "additionalContracts")."""
    first, *others = contracts
    body = {"responseCode": "OK", **first.to_json()}
    if others:
        body["additionalContracts"] = [contract.to_json() for contract in others]
    return encode_exi(body)


def _root_ids(body: dict[str, Any]) -> list[RootCertificateId]:
    """ListOfRootCertificateIDs of an installation or update request: the V2G roots the
    vehicle trusts."""
    try:
        return [
            RootCertificateId(str(r["x509IssuerName"]), int(r["x509SerialNumber"]))
            for r in body.get("listOfRootCertificateIds", [])
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise PnCRefusal("InvalidRequest", f"malformed listOfRootCertificateIds: {exc!r}") from exc


def _signed_crl(url: str, issuer: x509.Certificate) -> x509.CertificateRevocationList:
    """The current CRL `issuer` signed, as served at `url`."""
    if not url.startswith(("http://", "https://")):
        raise PnCRefusal("InvalidURL", f"{url!r} is not an HTTP(S) URL")
    try:
        reply = httpx.get(url, timeout=OCSP_RELAY_TIMEOUT)
        reply.raise_for_status()
        crl = x509.load_der_x509_crl(reply.content)
    except (httpx.HTTPError, ValueError) as exc:
        raise PnCRefusal("NoCRL", f"no CRL from {url}: {exc}") from exc
    key = issuer.public_key()
    signed = isinstance(key, PublicKey) and crl.is_signature_valid(key)
    if crl.issuer != issuer.subject or not signed:
        raise PnCRefusal(
            "NoCRL", f"the CRL at {url} is not signed by {issuer.subject.rfc4514_string()}"
        )
    if crl.next_update_utc is not None and crl.next_update_utc < datetime.now(UTC):
        raise PnCRefusal("NoCRL", f"the CRL at {url} is stale")
    return crl


def ocsp_request(request_data: dict[str, Any]) -> ocsp.OCSPRequest:
    """An OCSP request for OCPP's OCSPRequestDataType (hashes and serial in hex)."""
    try:
        return (
            ocsp.OCSPRequestBuilder()
            .add_certificate_by_hash(
                bytes.fromhex(request_data["issuer_name_hash"]),
                bytes.fromhex(request_data["issuer_key_hash"]),
                int(request_data["serial_number"], 16),
                _HASH_ALGORITHMS[request_data["hash_algorithm"]],
            )
            .build()
        )
    except (KeyError, ValueError) as exc:
        raise PnCRefusal("InvalidOCSPData", f"malformed OCSP request data: {exc!r}") from exc


def certificate_hash_data(
    certificate: x509.Certificate, issuer: x509.Certificate, responder_url: str
) -> dict[str, str]:
    """OCPP's OCSPRequestDataType (camelCase, as on the wire) for one certificate."""
    name_hash, key_hash = issuer_hashes(issuer, "sha256")
    return {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": name_hash.hex(),
        "issuerKeyHash": key_hash.hex(),
        "serialNumber": format(certificate.serial_number, "x"),
        "responderURL": responder_url,
    }


def status_info(exc: EvgiError) -> dict[str, str]:
    code = exc.code if isinstance(exc, PnCRefusal) else _reason(exc.code)
    return {"reason_code": code[:_REASON_CODE], "additional_info": exc.message[:_ADDITIONAL_INFO]}


def _reason(code: str) -> str:
    """A snake_case error code as an OCPP reasonCode (UpperCamelCase)."""
    return "".join(part.capitalize() for part in code.split("_"))


# -- the use cases, one answer body each (snake_case fields of the 2.0.1 response) ----------


async def get_15118_ev_certificate(
    charge_point: ChargePoint,
    exi_request: str,
    prioritized_emaids: Sequence[str] = (),
    action: str = "Install",
    maximum: int | None = None,
) -> dict[str, Any]:
    """M01 (Install) or M02 (Update); `maximum` is 2.1's maximumContractCertificateChains,
    answered with remainingContracts."""
    services = plug_and_charge(charge_point)
    remaining: int | None = None
    try:
        if action == "Update":
            exi = await asyncio.to_thread(services.update, exi_request)
        else:
            exi, remaining = await asyncio.to_thread(
                services.installation, exi_request, prioritized_emaids, maximum
            )
    except EvgiError as exc:
        log.info(
            "contract request refused", action=action, station=charge_point.id, reason=exc.message
        )
        return {"status": "Failed", "exi_response": "", "status_info": status_info(exc)}
    answer: dict[str, Any] = {"status": "Accepted", "exi_response": exi}
    if maximum is not None and remaining is not None:
        answer["remaining_contracts"] = remaining
    return answer


async def get_certificate_chain_status(
    charge_point: ChargePoint, requests: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """2.1's GetCertificateChainStatus: each entry's status, asked for at the same time."""
    services = plug_and_charge(charge_point)
    entries = (asyncio.to_thread(services.chain_status, r) for r in requests)
    return list(await asyncio.gather(*entries))


async def get_certificate_status(
    charge_point: ChargePoint, ocsp_request_data: dict[str, Any]
) -> dict[str, Any]:
    try:
        result = await plug_and_charge(charge_point).certificate_status(ocsp_request_data)
    except EvgiError as exc:
        return {"status": "Failed", "status_info": status_info(exc)}
    return {"status": "Accepted", "ocsp_result": result}


async def sign_v2g(charge_point: ChargePoint, csr: str) -> dict[str, Any]:
    """SignCertificate for a V2GCertificate: the answer, and on success the signed chain in
    CertificateSigned once the answer is sent (1.6: as a Plug & Charge DataTransfer)."""
    services = plug_and_charge(charge_point)
    try:
        chain = await asyncio.to_thread(services.sign_secc, csr)
    except EvgiError as exc:
        log.warning("V2G certificate refused", station=charge_point.id, reason=exc.message)
        return {"status": "Rejected", "status_info": status_info(exc)}

    async def install() -> None:
        body = {"certificateChain": chain, "certificateType": V2G_CERTIFICATE}
        answer = await certificate_command(charge_point, "CertificateSigned", body)
        log.info("V2G certificate sent", station=charge_point.id, status=answer.status)

    charge_point.after_answer(install)
    return {"status": "Accepted"}


async def authorize_contract(
    charge_point: ChargePoint,
    id_token: str,
    certificate: str | None,
    hash_data: Sequence[dict[str, Any]] | None,
) -> ContractAuthorization:
    """C07: the contract's certificate status, and the token decision that goes with it (the
    eMAID as a token, as its eMSP registered it, once the certificate is accepted)."""
    services = plug_and_charge(charge_point)
    try:
        status = await asyncio.to_thread(services.contract_status, id_token, certificate, hash_data)
    except (KeyError, ValueError) as exc:
        raise CallFailure(
            "PropertyConstraintViolation", f"malformed iso15118CertificateHashData: {exc!r}"
        ) from exc
    if status is not AuthorizeCertificateStatus.ACCEPTED:
        return ContractAuthorization(status, TokenDecision(_TOKEN_STATUS.get(status, "Invalid")))
    return ContractAuthorization(status, await charge_point.authorize(id_token))


# -- OCPP 2.0.1 / 2.1 ------------------------------------------------------------------------


class PlugAndCharge(ChargePoint):
    """Block M's station-initiated messages; SignCertificate (V2G) and Authorize (C07) are
    answered by the security and authorization blocks through this module."""

    @on(Action.get_15118_ev_certificate)
    async def on_get_15118_ev_certificate(self, exi_request: str, action: str, **body: Any) -> Any:
        answer = await get_15118_ev_certificate(
            self,
            exi_request,
            body.get(_EV_EMAIDS) or (),
            action,
            body.get("maximum_contract_certificate_chains"),
        )
        return self.dialect.call_result.Get15118EVCertificate(**answer)

    @on(Action.get_certificate_status)
    async def on_get_certificate_status(self, ocsp_request_data: dict[str, Any], **_: Any) -> Any:
        answer = await get_certificate_status(self, ocsp_request_data)
        return self.dialect.call_result.GetCertificateStatus(**answer)


# -- the CSMS's certificate messages (A02/A03, M03-M05), version-neutral ----------------------


async def certificate_command(charge_point: ChargePoint, action: str, body: dict[str, Any]) -> Any:
    """CertificateSigned, InstallCertificate, GetInstalledCertificateIds or DeleteCertificate,
    `body` camelCase as 2.0.1 has it: the message itself to a 2.x station, a Plug & Charge
    DataTransfer to a 1.6 one, whose answer comes back as the 2.0.1 response (a DataTransfer
    refused is returned as is). Raises ValidationError for a body 2.0.1's schema refuses
    (nothing is sent)."""
    dialect = charge_point.dialect
    if dialect.version is not OcppVersion.V16:
        request = getattr(dialect.call, action)(**to_snake_case(body))
        return await charge_point.call(request)
    try:
        _schemas.validator(OcppVersion.V201, action, "request")(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise ValidationError(f"invalid {action} body: {exc.message}") from exc
    answer = await charge_point.data_transfer(PNC_VENDOR, action, json.dumps(body))
    if answer.status in ("UnknownVendorId", "UnknownMessageId"):
        raise UnsupportedCommand(
            f"station {charge_point.id} answered {answer.status}: it takes no Plug & Charge "
            f"{action}"
        )
    if answer.status != "Accepted":
        return answer
    try:
        data = json.loads(answer.data or "")
        _schemas.validator(OcppVersion.V201, action, "response")(data)
    except (ValueError, fastjsonschema.JsonSchemaValueException) as exc:
        raise StationCallError(
            "FormationViolation", f"the {action} answer in DataTransfer.data is invalid: {exc}"
        ) from exc
    return getattr(v201_call_result, action)(**to_snake_case(data))


# -- OCPP 1.6: the Plug & Charge DataTransfer messages ---------------------------------------

_V16_ACTIONS = ("Authorize", "Get15118EVCertificate", "GetCertificateStatus", "SignCertificate")


async def pnc_data_transfer(
    charge_point: ChargePoint, message_id: str | None, data: str | None
) -> tuple[str, str | None]:
    """A 1.6 station's Plug & Charge DataTransfer: (status, data of the answer). The data is
    checked against the 2.0.1 schema of the message; a broken one is a CALLERROR."""
    if message_id not in _V16_ACTIONS:
        return "UnknownMessageId", None
    try:
        payload = json.loads(data or "")
    except ValueError as exc:
        raise schema_failure(f"data is not JSON: {exc}") from exc
    try:
        _schemas.validator(OcppVersion.V201, message_id, "request")(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise schema_error(DIALECTS[OcppVersion.V16], exc) from exc
    request = to_snake_case(payload)
    answer: dict[str, Any]
    if message_id == "Get15118EVCertificate":
        answer = await get_15118_ev_certificate(
            charge_point, request["exi_request"], action=request["action"]
        )
    elif message_id == "GetCertificateStatus":
        answer = await get_certificate_status(charge_point, request["ocsp_request_data"])
    elif message_id == "SignCertificate":
        answer = await sign_v2g(charge_point, request["csr"])
    else:
        result = await authorize_contract(
            charge_point,
            request["id_token"]["id_token"],
            request.get("certificate"),
            request.get("iso15118_certificate_hash_data"),
        )
        answer = {
            "id_token_info": {"status": result.token.status},
            "certificate_status": result.certificate_status.value,
        }
    return "Accepted", json.dumps(to_camel_case(answer))


def schema_failure(description: str) -> CallFailure:
    return CallFailure(DIALECTS[OcppVersion.V16].formation_violation, description)

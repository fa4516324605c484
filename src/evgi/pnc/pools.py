"""The Plug & Charge certificate pools, shaped after OPCP: a root certificate pool with its
trust list, the provisioning certificates OEMs publish per PCID, and the contract data eMSPs
store per vehicle, signed here by the certificate provisioning service (CPS) and handed to a
CPO that relays a vehicle's CertificateInstallationReq (or, for a contract an eMSP renewed,
its CertificateUpdateReq: the renewal's data is kept beside the contract's, in its signed data).

Clients are OEM, eMSP and CPO back ends, each holding a bearer token the pool's operator
registered; the pool keeps only the token's SHA-256. The operator's own token is made on first
start and written, owner-only, to data_dir/opcp-operator.token.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import Engine

from evgi.config import Settings
from evgi.core.clock import Clock, SystemClock
from evgi.core.errors import NotFoundError, PermissionDenied, ValidationError
from evgi.pnc.authority import IssuedCertificate, load_certificate
from evgi.pnc.est import issuing_ca
from evgi.pnc.hierarchy import Branch, CaRole, Hierarchies, LeafRole
from evgi.pnc.installation import (
    CertificateInstallationResponse,
    CertificateUpdateRequest,
    EncryptedContractKey,
    InstallationError,
    KeyProfile,
    SigningKey,
    checked_emaid,
    checked_pcid,
    contract_emaid,
    key_profile,
    provisioning_pcid,
    same_contract,
    sign_installation,
)
from evgi.pnc.ocsp import OcspClient
from evgi.pnc.validation import ChainValidator
from evgi.storage.pools import (
    Consent,
    PoolClient,
    PoolStore,
    StoredContract,
    StoredProvisioning,
    StoredRoot,
)

OPERATOR_TOKEN_FILE = "opcp-operator.token"
_CPS_FOLDER = "pool-cps"
# Where a contract's signed data keeps its CertificateUpdateRes, and what that names: the
# SHA-256 fingerprint of the contract certificate it succeeds.
_UPDATE = "update"
_REPLACES = "replaces"


class PoolRole(StrEnum):
    OPERATOR = "operator"
    OEM = "oem"
    EMSP = "emsp"
    CPO = "cpo"


class RootKind(StrEnum):
    """The three kinds of root ISO 15118 knows; only V2G roots enter the trust list."""

    V2G = "V2G"
    MO = "MO"
    OEM = "OEM"


class Unauthenticated(PermissionDenied):
    """No bearer token, or one the pool does not know (HTTP 401)."""

    code = "unauthenticated"


class WrongRole(PermissionDenied):
    """A known client asking for what its role may not do (HTTP 403)."""

    code = "wrong_role"


class ChainRefused(ValidationError):
    """A certificate chain that fails validation; the message carries the OCPP status."""

    code = "chain_refused"


class UnknownPcid(NotFoundError):
    code = "unknown_pcid"


class NoContract(NotFoundError):
    code = "no_contract"


@dataclass(frozen=True)
class RootCertificateId:
    """X509IssuerSerial of ListOfRootCertificateIDs: a V2G root the vehicle trusts."""

    issuer: str
    serial_number: int


@dataclass(frozen=True)
class CpsSigner:
    key: SigningKey
    chain: tuple[x509.Certificate, ...]


@dataclass(frozen=True)
class ContractRenewal:
    """What makes a stored contract the successor of one a vehicle holds: that contract's
    certificate (DER), and the new contract key sealed for its key (`seal_contract_update`),
    which the eMSP alone can do, as the pool never sees a contract key in the clear."""

    replaces: bytes
    sealed_key: EncryptedContractKey


@dataclass(frozen=True)
class SignedContract:
    """A stored contract's signed data as its clients read it: the CertificateInstallationRes,
    and apart from it a renewal's CertificateUpdateRes with the SHA-256 fingerprint (hex) of
    the contract certificate that renewal succeeds."""

    installation: dict[str, Any]
    update: dict[str, Any] | None
    replaces: str | None

    @classmethod
    def of(cls, contract: StoredContract) -> SignedContract:
        installation = dict(contract.signed_data)
        kept = installation.pop(_UPDATE, None)
        if not isinstance(kept, dict):
            return cls(installation, None, None)
        update = dict(kept)
        return cls(installation, update, str(update.pop(_REPLACES)))


@dataclass(frozen=True)
class ContractSelection:
    """The contracts an installation hands out, in the vehicle's order, and how many more of
    the vehicle's contracts the pool holds beyond them."""

    contracts: tuple[CertificateInstallationResponse, ...]
    remaining: int


class CertificatePools:
    """The pools of one platform: clients, roots, provisioning certificates and contracts."""

    def __init__(
        self, store: PoolStore, hierarchies: Hierarchies, clock: Clock | None = None
    ) -> None:
        self.store = store
        self.hierarchies = hierarchies
        self.clock = clock or SystemClock()
        self._cps: dict[KeyProfile, CpsSigner] = {}
        self._ocsp: OcspClient | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, db: Engine, clock: Clock | None = None) -> CertificatePools:
        """The pools on the platform's database, signing with its hierarchies' CPS."""
        return cls(PoolStore(db), Hierarchies(settings, db), clock)

    # -- clients ---------------------------------------------------------------------------

    def register_client(self, name: str, role: PoolRole) -> tuple[PoolClient, str]:
        """A new client and its bearer token, which is shown this once and never stored."""
        token = secrets.token_urlsafe(32)
        client = self.store.add_client(name, role.value, _token_hash(token), self.clock.now())
        return client, token

    def authenticate(self, token: str | None, *roles: PoolRole) -> PoolClient:
        """The client holding `token`, if its role is one of `roles`."""
        if not token:
            raise Unauthenticated("send the pool token as 'Authorization: Bearer <token>'")
        client = self.store.client_by_token(_token_hash(token))
        if client is None:
            raise Unauthenticated("this bearer token belongs to no pool client")
        if client.role not in roles:
            raise WrongRole(
                f"client {client.name!r} is a {client.role}; this takes "
                f"{' or '.join(r.value for r in roles)}"
            )
        return client

    def operator_token(self, data_dir: Path) -> str:
        """The operator's token: read from data_dir, or made and registered on first start."""
        path = data_dir / OPERATOR_TOKEN_FILE
        if path.exists():
            token = path.read_text().strip()
        else:
            token = secrets.token_urlsafe(32)
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(token + "\n")
        if self.store.client_by_token(_token_hash(token)) is None:
            name = f"operator-{_token_hash(token)[:8]}"
            self.store.add_client(
                name, PoolRole.OPERATOR.value, _token_hash(token), self.clock.now()
            )
        return token

    # -- root certificate pool -------------------------------------------------------------

    def add_root(self, der: bytes, kind: RootKind) -> StoredRoot:
        """Add a self-signed CA certificate (read leniently, as real roots are encoded)."""
        details = load_certificate(der)
        certificate = details.certificate
        if not details.is_ca or certificate.subject != certificate.issuer:
            raise ValidationError("a pool root must be a self-signed CA certificate")
        try:
            certificate.verify_directly_issued_by(certificate)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise ValidationError("the root's self-signature does not verify") from exc
        return self.store.put_root(
            StoredRoot(
                fingerprint=_fingerprint(certificate),
                kind=kind.value,
                subject=certificate.subject.rfc4514_string(),
                der=certificate.public_bytes(serialization.Encoding.DER),
                trusted=False,
                added_at=self.clock.now(),
            )
        )

    def roots(self, kind: RootKind | None = None) -> list[StoredRoot]:
        return self.store.roots(None if kind is None else kind.value)

    def trust_list(self) -> list[StoredRoot]:
        return [root for root in self.roots(RootKind.V2G) if root.trusted]

    def set_trust_list(self, fingerprints: Sequence[str]) -> list[StoredRoot]:
        """Trust exactly these V2G roots of the pool."""
        v2g = {root.fingerprint for root in self.roots(RootKind.V2G)}
        unknown = [f for f in fingerprints if f.lower() not in v2g]
        if unknown:
            raise ValidationError(
                f"not V2G roots of this pool: {', '.join(unknown)}; add them first"
            )
        self.store.set_trust_list([f.lower() for f in fingerprints])
        return self.trust_list()

    def adopt_hierarchies(self) -> None:
        """Put the platform's own roots in the pool and its V2G roots on the trust list, once."""
        kinds = {Branch.V2G: RootKind.V2G, Branch.MO: RootKind.MO, Branch.OEM: RootKind.OEM}
        fresh: list[str] = []
        known = {root.fingerprint for root in self.roots()}
        for authority in self.hierarchies.authorities():
            if authority.role is not CaRole.ROOT:
                continue
            fingerprint = _fingerprint(authority.certificate)
            if fingerprint in known:
                continue
            der = authority.certificate.public_bytes(serialization.Encoding.DER)
            self.add_root(der, kinds[authority.branch])
            if authority.branch is Branch.V2G:
                fresh.append(fingerprint)
        if fresh:
            self.store.set_trust_list([r.fingerprint for r in self.trust_list()] + fresh)

    # -- provisioning certificate pool -----------------------------------------------------

    def publish_provisioning(
        self, client: PoolClient, pcid: str, chain: Sequence[bytes]
    ) -> StoredProvisioning:
        """An OEM publishes (or replaces) a vehicle's provisioning certificate chain."""
        pcid = checked_pcid(pcid)
        certificates = [load_certificate(der).certificate for der in chain]
        if not certificates:
            raise InstallationError("the provisioning certificate chain is empty")
        named = self._check_chain(LeafRole.PROVISIONING, certificates, (RootKind.OEM, RootKind.V2G))
        if named != pcid:
            raise InstallationError(f"the certificate names PCID {named}, not {pcid}")
        current = self.store.provisioning(pcid)
        if current is not None and current.oem != client.name:
            raise WrongRole(f"PCID {pcid} was published by another OEM ({current.oem})")
        record = StoredProvisioning(
            pcid=pcid,
            oem=client.name,
            profile=key_profile(certificates[0].public_key()).value,
            chain=tuple(_b64(der) for der in _ders(certificates)),
            updated_at=self.clock.now(),
        )
        self.store.put_provisioning(record)
        return record

    def provisioning(self, pcid: str) -> StoredProvisioning:
        record = self.store.provisioning(checked_pcid(pcid))
        if record is None:
            raise UnknownPcid(f"no provisioning certificate for PCID {pcid}")
        return record

    def withdraw_provisioning(self, client: PoolClient, pcid: str) -> None:
        record = self.provisioning(pcid)
        if record.oem != client.name:
            raise WrongRole(f"PCID {record.pcid} was published by another OEM ({record.oem})")
        self.store.delete_provisioning(record.pcid)

    # -- contract certificate pool ---------------------------------------------------------

    def store_contract(
        self,
        client: PoolClient,
        pcid: str,
        emaid: str,
        contract_chain: Sequence[bytes],
        sealed_key: EncryptedContractKey,
        priority: int,
        renewal: ContractRenewal | None = None,
    ) -> StoredContract:
        """An eMSP stores contract data for a vehicle; the CPS signs it here. With a renewal,
        the CPS also signs the CertificateUpdateRes a vehicle holding the replaced contract
        gets (`certificate_update`)."""
        vehicle = self.provisioning(pcid)
        emaid = checked_emaid(emaid)
        certificates = [load_certificate(der).certificate for der in contract_chain]
        if not certificates:
            raise InstallationError("the contract certificate chain is empty")
        if sealed_key.profile.value != vehicle.profile:
            raise InstallationError(
                f"the key was sealed for {sealed_key.profile}; PCID {vehicle.pcid}'s "
                f"provisioning key is {vehicle.profile}"
            )
        named = self._check_chain(LeafRole.CONTRACT, certificates, (RootKind.MO, RootKind.V2G))
        if named != emaid:
            raise InstallationError(f"the contract certificate names eMAID {named}, not {emaid}")
        existing = {c.emaid: c for c in self.store.contracts(vehicle.pcid)}
        if emaid in existing and existing[emaid].emsp != client.name:
            raise WrongRole(f"contract {emaid} belongs to another eMSP ({existing[emaid].emsp})")
        signer = self.cps(sealed_key.profile)
        signed_data = sign_installation(
            certificates, sealed_key, signer.key, signer.chain
        ).to_json()
        if renewal is not None:
            signed_data[_UPDATE] = self._update_data(certificates, renewal, signer)
        record = StoredContract(
            pcid=vehicle.pcid,
            emaid=emaid,
            emsp=client.name,
            priority=priority,
            signed_data=signed_data,
            updated_at=self.clock.now(),
        )
        self.store.put_contract(record)
        return record

    def contracts(self, pcid: str) -> list[StoredContract]:
        return self.store.contracts(self.provisioning(pcid).pcid)

    def default_contract(self, pcid: str) -> str | None:
        """The eMAID the driver chose, else the contract of highest priority."""
        contracts = self.contracts(pcid)
        consent = self.store.consent(checked_pcid(pcid))
        if consent is not None:
            return consent.emaid
        return contracts[0].emaid if contracts else None

    def remove_contract(self, client: PoolClient, pcid: str, emaid: str) -> None:
        emaid = checked_emaid(emaid)
        contract = self._contract(pcid, emaid)
        if contract.emsp != client.name:
            raise WrongRole(f"contract {emaid} belongs to another eMSP ({contract.emsp})")
        self.store.delete_contract(contract.pcid, emaid)

    def record_consent(self, client: PoolClient, pcid: str, emaid: str, driver: str) -> Consent:
        """The driver's choice of default contract, recorded by the vehicle's OEM (its app or
        on-board selection asks the driver, as the ecosystem requires)."""
        emaid = checked_emaid(emaid)
        contract = self._contract(pcid, emaid)
        if self.provisioning(pcid).oem != client.name:
            raise WrongRole(f"PCID {contract.pcid} belongs to another OEM's vehicle")
        if not driver.strip():
            raise ValidationError("name the driver who consented")
        consent = Consent(contract.pcid, emaid, driver.strip(), self.clock.now(), client.name)
        self.store.record_consent(consent)
        return consent

    def consent(self, pcid: str) -> Consent | None:
        return self.store.consent(self.provisioning(pcid).pcid)

    # -- installation ----------------------------------------------------------------------

    def certificate_installation(
        self,
        provisioning_certificate: bytes,
        root_ids: Sequence[RootCertificateId] = (),
        prioritized_emaids: Sequence[str] = (),
    ) -> CertificateInstallationResponse:
        """Answer a vehicle's CertificateInstallationReq relayed by a CPO, among the contracts
        eMSPs stored for it (each with the driver's consent to provision that vehicle) whose
        CPS chain ends at a V2G root the vehicle trusts (any, if it names none): the first of
        the vehicle's own prioritized eMAIDs there is one for (ISO 15118-20's PrioritizedEMAIDs,
        which OCPP 2.1 also carries beside the request), else the default the driver chose,
        else the contract of highest priority."""
        selection = self.certificate_installations(
            provisioning_certificate, root_ids, prioritized_emaids
        )
        return selection.contracts[0]

    def certificate_installations(
        self,
        provisioning_certificate: bytes,
        root_ids: Sequence[RootCertificateId] = (),
        prioritized_emaids: Sequence[str] = (),
        maximum: int = 1,
    ) -> ContractSelection:
        """Up to `maximum` of the vehicle's contracts (ISO 15118-20's
        MaximumContractCertificateChains), in the order `certificate_installation` chooses
        by: those of its prioritized eMAIDs, the driver's default, then by priority."""
        if maximum < 1:
            raise InstallationError(f"ask for one contract or more, not {maximum}")
        certificate = load_certificate(provisioning_certificate).certificate
        vehicle = self.provisioning(provisioning_pcid(certificate))
        if base64.b64decode(vehicle.chain[0]) != certificate.public_bytes(
            serialization.Encoding.DER
        ):
            raise InstallationError(
                f"this provisioning certificate is not the one PCID {vehicle.pcid}'s OEM published"
            )
        wanted = [checked_emaid(e) for e in prioritized_emaids]
        # Highest priority first, as the store lists them.
        candidates = [
            c
            for c in self.store.contracts(vehicle.pcid)
            if self._trusted_by_vehicle(c.signed_data, root_ids)
        ]
        if not candidates:
            raise NoContract(
                f"no contract for PCID {vehicle.pcid} that the vehicle's V2G roots can verify"
            )
        consent = self.store.consent(vehicle.pcid)
        if consent is not None:
            wanted.append(consent.emaid)
        ordered = {
            c.emaid: c for emaid in wanted for c in candidates if same_contract(c.emaid, emaid)
        }
        for contract in candidates:
            ordered.setdefault(contract.emaid, contract)
        chosen = list(ordered.values())[:maximum]
        return ContractSelection(
            tuple(CertificateInstallationResponse.from_json(c.signed_data) for c in chosen),
            len(ordered) - len(chosen),
        )

    def certificate_update(
        self, request: CertificateUpdateRequest, root_ids: Sequence[RootCertificateId] = ()
    ) -> CertificateInstallationResponse:
        """Answer a vehicle's CertificateUpdateReq relayed by a CPO: signed with the contract
        key, the contract chain valid, unrevoked and naming the eMAID asked about, and a
        successor stored for exactly that certificate (`ContractRenewal`) under a V2G root the
        vehicle trusts. Its key is sealed for the current contract's, so only its holder
        reads it."""
        request.verify()
        emaid = self._check_chain(
            LeafRole.CONTRACT, request.contract_chain, (RootKind.MO, RootKind.V2G)
        )
        if not same_contract(emaid, request.emaid):
            raise InstallationError(
                f"the request names eMAID {request.emaid}, its contract certificate {emaid}"
            )
        current = _fingerprint(request.contract_chain[0])
        for contract in self.store.contracts_named(emaid):
            update = contract.signed_data.get(_UPDATE)
            if not isinstance(update, dict) or update.get(_REPLACES) != current:
                continue
            if not self._trusted_by_vehicle(update, root_ids):
                raise NoContract(
                    f"the successor of contract {emaid} is signed under no V2G root the "
                    "vehicle named"
                )
            return CertificateInstallationResponse.from_json(update)
        serial = format(request.contract_chain[0].serial_number, "x")
        raise NoContract(
            f"no eMSP stored a successor of contract {emaid}'s certificate (serial {serial})"
        )

    def cps(self, profile: KeyProfile) -> CpsSigner:
        """The CPS leaf that signs contract data of `profile`: issued by the platform's CPS
        sub-CA of that key algorithm on first use, and kept under data_dir/pki/pool-cps."""
        with self._lock:  # routes run on worker threads: one CPS leaf a profile
            if profile not in self._cps:
                self._cps[profile] = self._load_cps(profile)
            return self._cps[profile]

    # -- internals -------------------------------------------------------------------------

    def _load_cps(self, profile: KeyProfile) -> CpsSigner:
        settings = self.hierarchies.settings
        folder = settings.pki_dir / _CPS_FOLDER
        chain_file, key_file = folder / f"{profile.value}.pem", folder / f"{profile.value}.key.pem"
        if not chain_file.exists():
            issuer = issuing_ca(self.hierarchies, Branch.CPS, profile)
            issued = self.hierarchies.issue(issuer, f"evgi CPS {profile.value}")
            assert issued.private_key is not None  # the CA made the key
            IssuedCertificate(issued.certificate, issued.sub_cas[0], issued.private_key).write(
                folder, profile.value, settings.keystore_password
            )
        leaf = x509.load_pem_x509_certificates(chain_file.read_bytes())[0]
        key = serialization.load_pem_private_key(
            key_file.read_bytes(), settings.keystore_password.encode() or None
        )
        if not isinstance(key, SigningKey) or key_profile(key) is not profile:
            raise InstallationError(f"{key_file} holds no {profile} key")
        issuer_name = next(
            a.name for a in self.hierarchies.authorities() if a.certificate.subject == leaf.issuer
        )
        path = self.hierarchies.path(issuer_name)
        return CpsSigner(key, (leaf, *path[:-1]))

    def _check_chain(
        self, role: LeafRole, chain: Sequence[x509.Certificate], kinds: Sequence[RootKind]
    ) -> str:
        """Validate against the pool's roots of `kinds` and ask each link's OCSP responder;
        returns the leaf's identifier (PCID or eMAID)."""
        anchors = [
            x509.load_der_x509_certificate(root.der) for kind in kinds for root in self.roots(kind)
        ]
        with self._lock:
            if self._ocsp is None:
                self._ocsp = OcspClient()
            ocsp = self._ocsp
        verdict = ChainValidator(
            anchors, revocation=ocsp, contracts=self.hierarchies.contract_state
        ).validate(role, chain)
        if not verdict.accepted or verdict.identifier is None:
            raise ChainRefused(
                f"the {role.value} certificate chain is refused ({verdict.status}, "
                f"{verdict.reason}): {verdict.message}"
            )
        return verdict.identifier

    def close(self) -> None:
        if self._ocsp is not None:
            self._ocsp.close()
            self._ocsp = None

    def _contract(self, pcid: str, emaid: str) -> StoredContract:
        for contract in self.contracts(pcid):
            if contract.emaid == emaid:
                return contract
        raise NoContract(f"no contract {emaid} for PCID {pcid}")

    def _update_data(
        self,
        certificates: Sequence[x509.Certificate],
        renewal: ContractRenewal,
        signer: CpsSigner,
    ) -> dict[str, Any]:
        """The CertificateUpdateRes of a renewal, signed, and the certificate it succeeds."""
        previous = load_certificate(renewal.replaces).certificate
        if previous == certificates[0]:
            raise InstallationError("a contract certificate cannot succeed itself")
        if contract_emaid(previous) != contract_emaid(certificates[0]):
            raise InstallationError(
                f"a renewal keeps the eMAID: the replaced contract names {contract_emaid(previous)}"
            )
        if renewal.sealed_key.profile is not KeyProfile.ISO15118_2:
            raise InstallationError(
                f"ISO 15118-20 has no contract update: a {renewal.sealed_key.profile} contract is "
                "installed anew, not renewed"
            )
        if key_profile(previous.public_key()) is not renewal.sealed_key.profile:
            raise InstallationError(
                f"the renewal's key was sealed for {renewal.sealed_key.profile}; the replaced "
                f"contract's key is {key_profile(previous.public_key())}"
            )
        update = sign_installation(certificates, renewal.sealed_key, signer.key, signer.chain)
        return {_REPLACES: _fingerprint(previous), **update.to_json()}

    def _trusted_by_vehicle(
        self, signed_data: dict[str, Any], root_ids: Sequence[RootCertificateId]
    ) -> bool:
        if not root_ids:
            return True
        response = CertificateInstallationResponse.from_json(signed_data)
        top = response.sa_chain[-1]
        for root in self.roots(RootKind.V2G):
            certificate = x509.load_der_x509_certificate(root.der)
            if certificate.subject == top.issuer and any(
                rid.serial_number == certificate.serial_number
                and rid.issuer == certificate.issuer.rfc4514_string()
                for rid in root_ids
            ):
                return True
        return False


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def _ders(certificates: Sequence[x509.Certificate]) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in certificates]


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode()


__all__ = [
    "OPERATOR_TOKEN_FILE",
    "CertificatePools",
    "ChainRefused",
    "Consent",
    "ContractRenewal",
    "ContractSelection",
    "CpsSigner",
    "NoContract",
    "PoolClient",
    "PoolRole",
    "RootCertificateId",
    "RootKind",
    "SignedContract",
    "StoredContract",
    "StoredRoot",
    "Unauthenticated",
    "UnknownPcid",
    "WrongRole",
]

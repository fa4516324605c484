"""The ISO 15118 PKI hierarchies the platform runs: V2G roots with CPO and CPS branches, MO
roots and OEM roots, each root over two sub-CAs that issue the leaves (SECC, CPS, contract and
OEM provisioning certificates).

Two profiles: ISO 15118-2 (secp256r1, ECDSA-SHA256, at most 800 bytes a certificate) and
ISO 15118-20 (secp521r1 with SHA-512, or Ed448; at most 1,600 bytes). Every certificate a CA
issues names the CA's OCSP responder (AIA) and CRL, both served by `evgi serve` under /pki, and
is recorded in the database so the responder can tell "good" from "unknown". CA keys stay in
files under data_dir/pki/<name>/, as the CSMS root's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import Engine

from evgi.config import Settings
from evgi.core.certificates import certificate_pem
from evgi.core.errors import ConfigError, NotFoundError
from evgi.core.identifiers import validate_emaid, validate_pcid
from evgi.pnc.authority import (
    CertificateAuthority,
    CertificateError,
    CertificateProfile,
    PrivateKey,
    PublicKey,
    Revocation,
    RevocationUrls,
    write_identity,
)
from evgi.storage.pki import AuthorityRecord, CertificateRecord, PkiStore

_YEAR = timedelta(days=365)


class Iso15118(StrEnum):
    """The two certificate profiles of ISO 15118."""

    PART_2 = "iso15118-2"
    PART_20 = "iso15118-20"

    @property
    def max_certificate_bytes(self) -> int:
        """The largest DER certificate the profile's messages carry."""
        return 800 if self is Iso15118.PART_2 else 1600


class Branch(StrEnum):
    """What a CA's line of the hierarchy issues; roots are v2g, mo or oem."""

    V2G = "v2g"
    CPO = "cpo"
    CPS = "cps"
    MO = "mo"
    OEM = "oem"

    @property
    def domain_component(self) -> str:
        """The DC of the certificates this branch issues to end entities (CAs carry 'V2G')."""
        return {"v2g": "V2G", "cpo": "CPO", "cps": "CPS", "mo": "MO", "oem": "OEM"}[self.value]

    @property
    def leaf_role(self) -> LeafRole:
        return {
            Branch.CPO: LeafRole.SECC,
            Branch.CPS: LeafRole.CPS,
            Branch.MO: LeafRole.CONTRACT,
            Branch.OEM: LeafRole.PROVISIONING,
        }[self]


class LeafRole(StrEnum):
    """End-entity certificates, with the branch that issues each."""

    SECC = "secc"
    CPS = "cps"
    CONTRACT = "contract"
    PROVISIONING = "provisioning"

    @property
    def branch(self) -> Branch:
        return {
            LeafRole.SECC: Branch.CPO,
            LeafRole.CPS: Branch.CPS,
            LeafRole.CONTRACT: Branch.MO,
            LeafRole.PROVISIONING: Branch.OEM,
        }[self]


class CaRole(StrEnum):
    ROOT = "root"
    SUB_CA_1 = "sub-ca-1"
    SUB_CA_2 = "sub-ca-2"


_CA_USAGE = frozenset({"key_cert_sign", "crl_sign"})
# ISO 15118-2 Annex F: the basicConstraints, keyUsage and lifetimes of each certificate.
CA_PROFILES = {
    CaRole.ROOT: CertificateProfile(_CA_USAGE, 40 * _YEAR, ca=True),
    CaRole.SUB_CA_1: CertificateProfile(_CA_USAGE, 4 * _YEAR, ca=True, path_length=1),
    CaRole.SUB_CA_2: CertificateProfile(_CA_USAGE, 2 * _YEAR, ca=True, path_length=0),
}
LEAF_PROFILES = {
    LeafRole.SECC: CertificateProfile(frozenset({"digital_signature", "key_agreement"}), _YEAR),
    LeafRole.CPS: CertificateProfile(frozenset({"digital_signature"}), _YEAR),
    LeafRole.CONTRACT: CertificateProfile(
        frozenset({"digital_signature", "content_commitment", "key_agreement"}), 2 * _YEAR
    ),
    LeafRole.PROVISIONING: CertificateProfile(
        frozenset({"digital_signature", "key_agreement"}), 4 * _YEAR
    ),
}
# A sub-CA's delegated OCSP signer (RFC 6960 4.2.2.2).
OCSP_SIGNER_PROFILE = CertificateProfile(
    frozenset({"digital_signature"}), _YEAR, (ExtendedKeyUsageOID.OCSP_SIGNING,), ocsp_no_check=True
)
_OCSP_SIGNER_DIR = "ocsp-signer"
_CRL_LIFETIME = timedelta(days=1)


def iso15118_name(
    common: str, organization: str, domain: str, country: str | None = None
) -> x509.Name:
    """CN, O, optional C and DC: the subject ISO 15118 gives each certificate, the DC naming
    the certificate's place (V2G for CAs, CPO, CPS, MO or OEM for end entities)."""
    if not 0 < len(common) <= 64:
        raise CertificateError(f"common name {common!r} must have 1 to 64 characters")
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if country:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, domain))
    return x509.Name(attributes)


@dataclass(frozen=True)
class RootSpec:
    """One root of the ecosystem and the branches of sub-CAs it gets."""

    name: str
    branch: Branch
    organization: str
    profile: Iso15118
    key_algorithm: str

    def sub_branches(self) -> tuple[Branch, ...]:
        """A V2G root heads the CPO and CPS lines; an MO or OEM root its own line."""
        return (Branch.CPO, Branch.CPS) if self.branch is Branch.V2G else (self.branch,)


# A test ecosystem of several V2G roots, MOs and OEMs on both profiles and all key algorithms.
DEFAULT_ECOSYSTEM: tuple[RootSpec, ...] = (
    RootSpec("v2g-a", Branch.V2G, "evgi V2G A", Iso15118.PART_2, "secp256r1"),
    RootSpec("v2g-b", Branch.V2G, "evgi V2G B", Iso15118.PART_2, "secp256r1"),
    RootSpec("v2g-p521", Branch.V2G, "evgi V2G P521", Iso15118.PART_20, "secp521r1"),
    RootSpec("v2g-ed448", Branch.V2G, "evgi V2G Ed448", Iso15118.PART_20, "ed448"),
    RootSpec("mo-a", Branch.MO, "evgi MO A", Iso15118.PART_2, "secp256r1"),
    RootSpec("mo-b", Branch.MO, "evgi MO B", Iso15118.PART_2, "secp256r1"),
    RootSpec("mo-p521", Branch.MO, "evgi MO P521", Iso15118.PART_20, "secp521r1"),
    RootSpec("oem-a", Branch.OEM, "evgi OEM A", Iso15118.PART_2, "secp256r1"),
    RootSpec("oem-b", Branch.OEM, "evgi OEM B", Iso15118.PART_2, "secp256r1"),
    RootSpec("oem-ed448", Branch.OEM, "evgi OEM Ed448", Iso15118.PART_20, "ed448"),
)


@dataclass(frozen=True)
class Authority:
    """A CA of the hierarchies as the database records it."""

    name: str
    role: CaRole
    branch: Branch
    profile: Iso15118
    parent: str | None
    key_algorithm: str
    certificate: x509.Certificate


@dataclass(frozen=True)
class IssuedChain:
    """An end-entity certificate with its sub-CAs (nearest first) and root, as ISO 15118
    messages carry it (leaf and sub-CAs; the root is the receiver's trust anchor)."""

    issuer: str
    certificate: x509.Certificate
    sub_cas: tuple[x509.Certificate, ...]
    root: x509.Certificate
    private_key: PrivateKey | None = None

    @property
    def chain(self) -> list[x509.Certificate]:
        return [self.certificate, *self.sub_cas]

    def chain_pem(self) -> str:
        return "".join(certificate_pem(c) for c in self.chain)

    def write(self, directory: Path, name: str, passphrase: str = "") -> tuple[Path, Path]:
        """Write `name.pem` (leaf and sub-CAs) and `name.key.pem`; return both paths."""
        return write_identity(directory, name, self.chain_pem(), self.private_key, passphrase)


class Hierarchies:
    """The CAs of the ISO 15118 hierarchies, the certificates they issue and revoke.

    One instance per process; it reads the database on every status question, so a
    revocation by another process counts at once.
    """

    def __init__(self, settings: Settings, db: Engine) -> None:
        self.settings = settings
        self.store = PkiStore(db)
        self._known: dict[str, Authority] = {}
        self._authorities: dict[str, CertificateAuthority] = {}
        self._signers: dict[str, CertificateAuthority] = {}

    # --- the hierarchy ---------------------------------------------------------------------

    def init(self, ecosystem: Sequence[RootSpec] = DEFAULT_ECOSYSTEM) -> list[Authority]:
        """Create every CA of `ecosystem` not there yet (roots, then two sub-CAs a branch,
        each sub-CA with a delegated OCSP signer); return the CAs created."""
        known = {a.name for a in self.authorities()}
        created: list[Authority] = []
        for root in ecosystem:
            if root.name not in known:
                created.append(self._create(root.name, CaRole.ROOT, root.branch, root, None))
            for branch in root.sub_branches():
                parent = root.name
                for role, suffix in ((CaRole.SUB_CA_1, "1"), (CaRole.SUB_CA_2, "2")):
                    name = f"{root.name}-{branch.value}-{suffix}"
                    if name not in known:
                        created.append(self._create(name, role, branch, root, parent))
                    parent = name
        return created

    def authorities(self) -> list[Authority]:
        """Every CA, read afresh (another process may have run `evgi pki init`)."""
        self._known = {r.name: _authority(r) for r in self.store.authorities()}
        return list(self._known.values())

    def get(self, name: str) -> Authority:
        """CA `name`; a CA never changes once created, so only an unknown name rereads."""
        if name not in self._known:
            self.authorities()
        if name not in self._known:
            raise NotFoundError(f"no certificate authority {name!r} (run `evgi pki init`)")
        return self._known[name]

    def authority(self, name: str) -> CertificateAuthority:
        """The CA `name` with its key, revoking into the database and naming its URLs."""
        if name not in self._authorities:
            self.get(name)
            self._authorities[name] = CertificateAuthority.load(
                self.settings.pki_dir / name,
                self.settings.keystore_password,
                DatabaseRevocations(self.store, name),
                self.urls(name),
            )
        return self._authorities[name]

    def ocsp_signer(self, name: str) -> CertificateAuthority:
        """Who signs the OCSP responses about certificates of CA `name`: a delegated signer
        for a sub-CA (its key may live online while the CA's stays offline), the root itself
        for a root."""
        if self.get(name).role is CaRole.ROOT:
            return self.authority(name)
        if name not in self._signers:
            self._signers[name] = CertificateAuthority.load(
                self.settings.pki_dir / name / _OCSP_SIGNER_DIR, self.settings.keystore_password
            )
        return self._signers[name]

    def urls(self, name: str) -> RevocationUrls:
        base = self.settings.pki_url.rstrip("/")
        return RevocationUrls(f"{base}/pki/ocsp/{name}", f"{base}/pki/crl/{name}.crl")

    def path(self, name: str) -> list[x509.Certificate]:
        """CA `name`'s certificate and those above it, up to and including its root."""
        path: list[x509.Certificate] = []
        current: str | None = name
        while current is not None:
            authority = self.get(current)
            path.append(authority.certificate)
            current = authority.parent
        return path

    def roots(self, profile: Iso15118 | None = None) -> list[x509.Certificate]:
        """The trust anchors: every root (V2G, MO and OEM), or those of one profile."""
        return [
            a.certificate
            for a in self.authorities()
            if a.role is CaRole.ROOT and (profile is None or a.profile is profile)
        ]

    def default_issuer(self, role: LeafRole, profile: Iso15118 = Iso15118.PART_2) -> str:
        """The first sub-CA 2 of the branch that issues `role` on `profile`."""
        for authority in self.authorities():
            if (
                authority.role is CaRole.SUB_CA_2
                and authority.branch is role.branch
                and authority.profile is profile
            ):
                return authority.name
        raise NotFoundError(
            f"no {role.branch.value} sub-CA on {profile.value}: run `evgi pki init`"
        )

    # --- issuing ---------------------------------------------------------------------------

    def issue(
        self,
        issuer: str,
        common: str,
        public_key: PublicKey | None = None,
        *,
        organization: str | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> IssuedChain:
        """An end-entity certificate from sub-CA 2 `issuer`: the branch fixes its role, DC and
        extensions; a key on the CA's algorithm is made when `public_key` is None."""
        authority = self.get(issuer)
        if authority.role is not CaRole.SUB_CA_2:
            raise CertificateError(
                f"{issuer!r} is a {authority.role.value}: end-entity certificates come from a "
                "sub-CA 2"
            )
        role = authority.branch.leaf_role
        common = _identifier(role, common)
        subject = iso15118_name(
            common,
            organization or _organization(authority.certificate),
            authority.branch.domain_component,
        )
        issued = self.authority(issuer).issue(
            subject,
            LEAF_PROFILES[role],
            public_key,
            not_before=not_before,
            not_after=not_after,
            key_algorithm=authority.key_algorithm,
        )
        certificate = issued.certificate
        _check_size(certificate, authority.profile)
        self._record(issuer, role, common, certificate)
        if role is LeafRole.CONTRACT:
            self.store.set_contract(common, issuer, ContractState.ACTIVE, _now())
        path = self.path(issuer)
        return IssuedChain(issuer, certificate, tuple(path[:-1]), path[-1], issued.private_key)

    def issue_contract(
        self,
        emaid: str,
        public_key: PublicKey | None = None,
        *,
        mo: str | None = None,
        profile: Iso15118 = Iso15118.PART_2,
    ) -> IssuedChain:
        """A contract certificate (CN = eMAID, DC = MO) from MO sub-CA 2 `mo`."""
        return self.issue(mo or self.default_issuer(LeafRole.CONTRACT, profile), emaid, public_key)

    def issue_provisioning(
        self,
        pcid: str,
        public_key: PublicKey | None = None,
        *,
        oem: str | None = None,
        profile: Iso15118 = Iso15118.PART_2,
    ) -> IssuedChain:
        """An OEM provisioning certificate (CN = PCID, DC = OEM) from OEM sub-CA 2 `oem`."""
        return self.issue(
            oem or self.default_issuer(LeafRole.PROVISIONING, profile), pcid, public_key
        )

    def issue_secc(
        self,
        secc_id: str,
        public_key: PublicKey | None = None,
        *,
        cpo: str | None = None,
        profile: Iso15118 = Iso15118.PART_2,
    ) -> IssuedChain:
        """An SECC certificate (CN = SECC id, DC = CPO) from CPO sub-CA 2 `cpo`."""
        return self.issue(cpo or self.default_issuer(LeafRole.SECC, profile), secc_id, public_key)

    def issue_cps(
        self,
        name: str,
        public_key: PublicKey | None = None,
        *,
        cps: str | None = None,
        profile: Iso15118 = Iso15118.PART_2,
    ) -> IssuedChain:
        """A certificate provisioning service's signing certificate (DC = CPS)."""
        return self.issue(cps or self.default_issuer(LeafRole.CPS, profile), name, public_key)

    # --- revocation and status -------------------------------------------------------------

    def revoke(
        self,
        issuer: str,
        serial_number: int,
        reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
    ) -> Revocation:
        """Revoke a certificate of CA `issuer`; the next OCSP answer and CRL show it."""
        return self.authority(issuer).revoke(serial_number, reason)

    def crl(self, issuer: str) -> x509.CertificateRevocationList:
        """CA `issuer`'s current CRL, signed by the CA, valid for a day."""
        authority = self.authority(issuer)
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.certificate.subject)
            .last_update(now)
            .next_update(now + _CRL_LIFETIME)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    authority.certificate.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
            .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
        )
        for record in self.store.revoked(issuer):
            assert record.revoked_at is not None  # store.revoked returns revoked ones only
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(record.serial)
                .revocation_date(record.revoked_at)
            )
            if record.reason and record.reason != "unspecified":
                entry = entry.add_extension(
                    x509.CRLReason(x509.ReasonFlags(record.reason)), critical=False
                )
            builder = builder.add_revoked_certificate(entry.build())
        return authority.sign_crl(builder)

    def find(self, serial_number: int) -> CertificateRecord:
        """The issued certificate with this serial, whichever CA issued it."""
        for authority in self.authorities():
            record = self.store.certificate(authority.name, serial_number)
            if record is not None:
                return record
        raise NotFoundError(f"no certificate with serial {serial_number:x} was issued here")

    def cancel_contract(self, emaid: str) -> None:
        """The MO ends the contract: its certificate's chain stays valid, authorization stops."""
        emaid = validate_emaid(emaid)
        state = self.store.contract_state(emaid)
        if state is None:
            raise NotFoundError(f"no contract {emaid}")
        issuer = self.store.find(LeafRole.CONTRACT, emaid)[0].issuer
        self.store.set_contract(emaid, issuer, ContractState.CANCELLED, _now())

    def contract_state(self, emaid: str) -> ContractState | None:
        state = self.store.contract_state(emaid)
        return None if state is None else ContractState(state)

    def knows_pcid(self, pcid: str) -> bool:
        """Whether an OEM of these hierarchies provisioned a vehicle with this PCID."""
        return bool(self.store.find(LeafRole.PROVISIONING, pcid))

    # --- internals -------------------------------------------------------------------------

    def _create(
        self, name: str, role: CaRole, branch: Branch, root: RootSpec, parent: str | None
    ) -> Authority:
        domain = Branch.V2G.domain_component
        label = {CaRole.ROOT: "Root CA", CaRole.SUB_CA_1: "Sub-CA 1", CaRole.SUB_CA_2: "Sub-CA 2"}
        common = (
            f"{root.organization} {label[role]}"
            if role is CaRole.ROOT
            else f"{root.organization} {branch.value.upper()} {label[role]}"
        )
        subject = iso15118_name(common, root.organization, domain, "DE")
        passphrase = self.settings.keystore_password
        ca = CertificateAuthority.create(
            self.settings.pki_dir / name,
            subject,
            passphrase,
            profile=CA_PROFILES[role],
            key_algorithm=root.key_algorithm,
            parent=None if parent is None else self.authority(parent),
        )
        _check_size(ca.certificate, root.profile)
        if parent is not None:
            self._record(parent, role, common, ca.certificate)
        record = AuthorityRecord(
            name=name,
            role=role.value,
            branch=branch.value,
            profile=root.profile.value,
            parent=parent,
            key_algorithm=root.key_algorithm,
            certificate=ca.certificate.public_bytes(serialization.Encoding.DER),
            created_at=_now(),
        )
        self.store.add_authority(record)
        if role is not CaRole.ROOT:
            CertificateAuthority.create(
                ca.directory / _OCSP_SIGNER_DIR,
                iso15118_name(f"{common} OCSP Signer", root.organization, domain, "DE"),
                passphrase,
                profile=OCSP_SIGNER_PROFILE,
                key_algorithm=root.key_algorithm,
                parent=self.authority(name),
            )
        return _authority(record)

    def _record(
        self, issuer: str, role: StrEnum, common: str, certificate: x509.Certificate
    ) -> None:
        self.store.record(
            CertificateRecord(
                issuer=issuer,
                serial=certificate.serial_number,
                role=role.value,
                common_name=common,
                not_after=certificate.not_valid_after_utc,
                issued_at=_now(),
                der=certificate.public_bytes(serialization.Encoding.DER),
            )
        )


class ContractState(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class DatabaseRevocations:
    """The revocations of one CA of the hierarchies, in the PKI tables."""

    def __init__(self, store: PkiStore, issuer: str) -> None:
        self.store = store
        self.issuer = issuer

    def revoke(self, serial_number: int, reason: x509.ReasonFlags) -> Revocation:
        record = self.store.revoke(self.issuer, serial_number, reason.value, _now())
        if record is None:
            raise NotFoundError(
                f"CA {self.issuer!r} issued no certificate with serial {serial_number:x}"
            )
        revocation = _revocation(record)
        assert revocation is not None  # the store just revoked it
        return revocation

    def revocation(self, serial_number: int) -> Revocation | None:
        record = self.store.certificate(self.issuer, serial_number)
        return None if record is None else _revocation(record)


def _revocation(record: CertificateRecord) -> Revocation | None:
    if record.revoked_at is None:
        return None
    return Revocation(
        record.serial, record.revoked_at, x509.ReasonFlags(record.reason or "unspecified")
    )


def _identifier(role: LeafRole, common: str) -> str:
    """eMAIDs and PCIDs are checked and normalized; other names are taken as given."""
    if role is LeafRole.CONTRACT:
        return validate_emaid(common)
    if role is LeafRole.PROVISIONING:
        return validate_pcid(common)
    return common


def _check_size(certificate: x509.Certificate, profile: Iso15118) -> None:
    size = len(certificate.public_bytes(serialization.Encoding.DER))
    if size > profile.max_certificate_bytes:
        raise CertificateError(
            f"the certificate is {size} bytes; {profile.value} allows at most "
            f"{profile.max_certificate_bytes}"
        )


def _organization(certificate: x509.Certificate) -> str:
    values = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if not values:
        raise ConfigError("the CA certificate names no organization")
    return str(values[0].value)


def _authority(record: AuthorityRecord) -> Authority:
    return Authority(
        record.name,
        CaRole(record.role),
        Branch(record.branch),
        Iso15118(record.profile),
        record.parent,
        record.key_algorithm,
        x509.load_der_x509_certificate(record.certificate),
    )


def _now() -> datetime:
    return datetime.now(UTC)

"""Validation of the certificate chains a vehicle or station presents (contract, OEM
provisioning, SECC and CPS chains), answered with the status OCPP's Authorize carries
(AuthorizeCertificateStatusEnumType), and a reason code naming the exact check that failed.

A chain is the leaf and at most two sub-CAs, nearest first, as ISO 15118 messages carry it; it
must end at one of the trust anchors (V2G, MO or OEM roots). Certificates are read leniently,
so the real ISO 15118 certificates that encode cA=FALSE validate too.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from evgi.core.errors import ValidationError
from evgi.core.identifiers import validate_emaid, validate_pcid
from evgi.pnc.authority import CertificateDetails, CertificateError, common_name, load_certificate
from evgi.pnc.hierarchy import ContractState, Hierarchies, Iso15118, LeafRole
from evgi.pnc.ocsp import CertificateStatus, OcspAnswer, OcspError, der_names, signed_by

MAX_SUB_CAS = 2
# Sub-CA answers kept; past this many (only forged or foreign chains get there) start over.
MAX_KEPT_SUB_CAS = 4096


class AuthorizeCertificateStatus(StrEnum):
    """OCPP 2.0.1 AuthorizeCertificateStatusEnumType."""

    ACCEPTED = "Accepted"
    SIGNATURE_ERROR = "SignatureError"
    CERTIFICATE_EXPIRED = "CertificateExpired"
    CERTIFICATE_REVOKED = "CertificateRevoked"
    NO_CERTIFICATE_AVAILABLE = "NoCertificateAvailable"
    CERT_CHAIN_ERROR = "CertChainError"
    CONTRACT_CANCELLED = "ContractCancelled"


@dataclass(frozen=True)
class ChainVerdict:
    """The status, a reason code (`accepted`, `expired`, `wrong_domain`, ...) and a sentence."""

    status: AuthorizeCertificateStatus
    reason: str
    message: str
    identifier: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is AuthorizeCertificateStatus.ACCEPTED


class RevocationCheck(Protocol):
    """Asks whether a certificate is revoked: OcspClient over HTTP, as a relying party does."""

    def status(self, certificate: x509.Certificate, issuer: x509.Certificate) -> OcspAnswer: ...


class _Refused(Exception):
    def __init__(self, status: AuthorizeCertificateStatus, reason: str, message: str) -> None:
        super().__init__(message)
        self.verdict = ChainVerdict(status, reason, message)


_Status = AuthorizeCertificateStatus


class ChainValidator:
    """Validates chains against `trust_anchors`; optional revocation check (OCSP), contract
    lookup (eMAID to contract state) and PCID lookup (does an OEM know this vehicle).

    A leaf's status is asked afresh for every chain. Given `revocations` (the count of
    revocations the trust domain's own CAs have recorded, which only grows), a sub-CA's "good"
    answer is relied on until its nextUpdate, as RFC 5019 lets a relying party cache answers
    and ISO 15118-20 staples them, but never past the next revocation anywhere in the domain:
    a revoked sub-CA shows in the very next check. The same few sub-CAs head every chain, and
    asking about them on every authorization would triple the responders' load.
    """

    def __init__(
        self,
        trust_anchors: Iterable[x509.Certificate],
        *,
        revocation: RevocationCheck | None = None,
        contracts: Callable[[str], ContractState | None] | None = None,
        pcids: Callable[[str], bool] | None = None,
        revocations: Callable[[], int] | None = None,
    ) -> None:
        self._anchors: dict[bytes, list[x509.Certificate]] = {}
        for anchor in trust_anchors:
            self._anchors.setdefault(der_names(anchor)[0], []).append(anchor)
        self.revocation = revocation
        self.contracts = contracts
        self.pcids = pcids
        self.revocations = revocations
        # (sub-CA, its issuer) -> (good until, the revocation count before it was asked)
        self._good_sub_cas: dict[tuple[x509.Certificate, x509.Certificate], _Good] = {}

    @classmethod
    def of(
        cls, hierarchies: Hierarchies, revocation: RevocationCheck | None = None
    ) -> ChainValidator:
        """A validator trusting every root of `hierarchies`, with its contracts and PCIDs."""
        return cls(
            hierarchies.roots(),
            revocation=revocation,
            contracts=hierarchies.contract_state,
            pcids=hierarchies.knows_pcid,
            revocations=hierarchies.store.revocations,
        )

    def validate(
        self,
        role: LeafRole,
        chain: Sequence[bytes | x509.Certificate],
        at: datetime | None = None,
    ) -> ChainVerdict:
        """The verdict on `chain` (leaf first, then its sub-CAs) for a `role` leaf at `at`."""
        try:
            return self._validate(role, chain, at or datetime.now(UTC))
        except _Refused as refused:
            return refused.verdict

    def _validate(
        self, role: LeafRole, chain: Sequence[bytes | x509.Certificate], at: datetime
    ) -> ChainVerdict:
        if not chain:
            raise _Refused(_Status.NO_CERTIFICATE_AVAILABLE, "empty", "no certificate was sent")
        sized = [_read(item) for item in chain]
        if len(sized) > 1 and self._is_anchor(sized[-1][0].certificate):
            sized.pop()  # the sender included the root: it is ours to supply
        read = [details for details, _ in sized]
        if len(read) > 1 + MAX_SUB_CAS:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR,
                "too_deep",
                f"the chain has {len(read) - 1} sub-CAs; ISO 15118 allows at most {MAX_SUB_CAS}",
            )
        limit = _size_limit(read[0].certificate)
        for details, size in sized:
            if size > limit:
                raise _Refused(
                    _Status.CERT_CHAIN_ERROR,
                    "oversize",
                    f"{_label(details)} is {size} bytes; at most {limit} are allowed",
                )
        anchor = self._anchor_of(read[-1])
        if anchor is None:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR,
                "unknown_root",
                f"no trusted root issued {_label(read[-1])} "
                f"(issuer {read[-1].certificate.issuer.rfc4514_string()})",
            )
        path = [*read, _anchor_details(anchor)]
        _check_links(path)
        _check_constraints(path)
        for details in path:
            _check_validity(details, at)
        identifier = self._check_leaf(role, read[0])
        if self.revocation is not None:
            revocations = _Count(self.revocations)
            for child, parent in itertools.pairwise(path):
                self._check_revocation(child, parent, revocations)
        contracts, pcids = self.contracts, self.pcids
        if (
            role is LeafRole.CONTRACT
            and contracts is not None
            and contracts(identifier) is ContractState.CANCELLED
        ):
            raise _Refused(
                _Status.CONTRACT_CANCELLED,
                "contract_cancelled",
                f"the contract {identifier} was cancelled by its mobility operator",
            )
        if role is LeafRole.PROVISIONING and pcids is not None and not pcids(identifier):
            raise _Refused(
                _Status.NO_CERTIFICATE_AVAILABLE,
                "unknown_pcid",
                f"no OEM provisioned a vehicle with PCID {identifier}",
            )
        return ChainVerdict(_Status.ACCEPTED, "accepted", "the chain is valid", identifier)

    def _is_anchor(self, certificate: x509.Certificate) -> bool:
        return certificate in self._anchors.get(der_names(certificate)[0], [])

    def _anchor_of(self, details: CertificateDetails) -> x509.Certificate | None:
        """The trust anchor that signed `details`."""
        certificate = details.certificate
        for candidate in self._anchors.get(der_names(certificate)[1], []):
            if signed_by(certificate, candidate):
                return candidate
        return None

    def _check_leaf(self, role: LeafRole, leaf: CertificateDetails) -> str:
        if leaf.is_ca:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR, "leaf_is_ca", f"{_label(leaf)} is a CA, not a leaf"
            )
        expected = role.branch.domain_component
        subject = leaf.certificate.subject
        domains = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)]
        # Real certificates often omit the DC; when present it must name the leaf's place.
        if domains and domains != [expected]:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR,
                "wrong_domain",
                f"{_label(leaf)} has DC={','.join(domains)}; a {role.value} certificate has "
                f"DC={expected}",
            )
        named = common_name(subject) or ""
        try:
            if role is LeafRole.CONTRACT:
                return _emaid(named)
            if role is LeafRole.PROVISIONING:
                return validate_pcid(named)
        except ValidationError as exc:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR, f"malformed_{_IDENTIFIER[role]}", exc.message
            ) from exc
        return named

    def _check_revocation(
        self, child: CertificateDetails, parent: CertificateDetails, revocations: _Count
    ) -> None:
        assert self.revocation is not None
        pair = (child.certificate, parent.certificate)
        kept = self._good_sub_cas.get(pair) if child.is_ca else None
        if kept is not None and kept.until > time.time() and kept.revocations == revocations():
            return
        # Counted before asking: a revocation while the answer is under way is not missed.
        counted = revocations() if child.is_ca else None
        try:
            answer = self.revocation.status(*pair)
        except OcspError as exc:
            raise _Refused(_Status.CERT_CHAIN_ERROR, "revocation_unavailable", exc.message) from exc
        if answer.status is CertificateStatus.GOOD and answer.next_update is not None:
            if len(self._good_sub_cas) >= MAX_KEPT_SUB_CAS:
                self._good_sub_cas.clear()
            if counted is not None:
                self._good_sub_cas[pair] = _Good(answer.next_update.timestamp(), counted)
        if answer.status is CertificateStatus.REVOKED:
            when = answer.revoked_at.isoformat() if answer.revoked_at else "an unknown time"
            raise _Refused(
                _Status.CERTIFICATE_REVOKED, "revoked", f"{_label(child)} was revoked at {when}"
            )
        if answer.status is CertificateStatus.UNKNOWN:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR,
                "revocation_unknown",
                f"the responder of {_label(parent)} does not know {_label(child)}",
            )


_IDENTIFIER = {LeafRole.CONTRACT: "emaid", LeafRole.PROVISIONING: "pcid"}


@dataclass(frozen=True)
class _Good:
    until: float
    revocations: int


class _Count:
    """The trust domain's revocation count, asked at most once per chain; None without one."""

    def __init__(self, count: Callable[[], int] | None) -> None:
        self._count = count
        self._value: int | None = None
        self._asked = False

    def __call__(self) -> int | None:
        if not self._asked:
            self._value = None if self._count is None else self._count()
            self._asked = True
        return self._value


def _emaid(named: str) -> str:
    """The eMAID's shape: 14 characters and an optional 15th. Real contract certificates use
    the 15th freely, so its eMI3 check digit is not enforced here."""
    compact = named.replace("-", "").upper()
    if len(compact) == 15 and compact[14].isalnum():
        validate_emaid(compact[:14])
        return compact
    return validate_emaid(compact)


def _read(item: bytes | x509.Certificate) -> tuple[CertificateDetails, int]:
    """A certificate of a chain (DER, PEM or read), read, and its size in DER."""
    der = None if isinstance(item, bytes) else item.public_bytes(serialization.Encoding.DER)
    try:
        details = _parsed(item if der is None else der)
    except CertificateError as exc:
        raise _Refused(_Status.CERT_CHAIN_ERROR, "unreadable", exc.message) from exc
    if der is None:
        der = details.certificate.public_bytes(serialization.Encoding.DER)
    return details, len(der)


# The sub-CAs and roots of every chain are the same few certificates: read each once.
@functools.lru_cache(maxsize=4096)
def _parsed(der: bytes) -> CertificateDetails:
    return load_certificate(der)


@functools.lru_cache(maxsize=64)
def _anchor_details(anchor: x509.Certificate) -> CertificateDetails:
    return _parsed(anchor.public_bytes(serialization.Encoding.DER))


def _size_limit(leaf: x509.Certificate) -> int:
    """-2's limit for a P-256 chain, -20's for P-521 and Ed448 ones."""
    key = leaf.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return Iso15118.PART_2.max_certificate_bytes
    return Iso15118.PART_20.max_certificate_bytes


def _check_links(path: Sequence[CertificateDetails]) -> None:
    for child, parent in itertools.pairwise(path):
        if signed_by(child.certificate, parent.certificate):
            continue  # a check that the child names the parent as its issuer, too
        if child.certificate.issuer != parent.certificate.subject:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR,
                "broken_chain",
                f"{_label(child)} names issuer {child.certificate.issuer.rfc4514_string()}, "
                f"not the next certificate {_label(parent)}",
            )
        raise _Refused(
            _Status.SIGNATURE_ERROR,
            "signature",
            f"the signature of {_label(child)} does not verify with {_label(parent)}'s key",
        )


def _check_constraints(path: Sequence[CertificateDetails]) -> None:
    """Every issuer a CA, with a pathLen that allows the sub-CAs below it."""
    for below, issuer in enumerate(path[1:]):
        if not issuer.is_ca:
            raise _Refused(_Status.CERT_CHAIN_ERROR, "not_a_ca", f"{_label(issuer)} is not a CA")
        if issuer.path_length is not None and issuer.path_length < below:
            raise _Refused(
                _Status.CERT_CHAIN_ERROR,
                "path_length",
                f"{_label(issuer)} allows {issuer.path_length} sub-CAs below it, not {below}",
            )


def _check_validity(details: CertificateDetails, at: datetime) -> None:
    certificate = details.certificate
    if at < certificate.not_valid_before_utc:
        raise _Refused(
            _Status.CERTIFICATE_EXPIRED,
            "not_yet_valid",
            f"{_label(details)} is not valid before {certificate.not_valid_before_utc.isoformat()}",
        )
    if at > certificate.not_valid_after_utc:
        raise _Refused(
            _Status.CERTIFICATE_EXPIRED,
            "expired",
            f"{_label(details)} expired at {certificate.not_valid_after_utc.isoformat()}",
        )


def _label(details: CertificateDetails) -> str:
    named = common_name(details.certificate.subject)
    return repr(named) if named else details.certificate.subject.rfc4514_string()

"""Identity subsystem: did:ethr DIDs on the ledger's ERC-1056 registry, DID documents, signed
documents, entity certificates with trust-anchor on- and off-boarding, and key files.
"""

from evgi.identity.credential import document_hash, document_signer, sign_document, verify_document
from evgi.identity.did import Did, authorized_signers, build_document, did_for, resolve
from evgi.identity.entity_certificate import (
    CLAIMS,
    VC_CONTEXT,
    CertificateCheck,
    IssuedCertificate,
    build_entity_certificate,
    issue_entity_certificate,
    offboard_entity,
    validate_claims,
    verify_entity_certificate,
)
from evgi.identity.keystore import Keystore

__all__ = [
    "CLAIMS",
    "VC_CONTEXT",
    "CertificateCheck",
    "Did",
    "IssuedCertificate",
    "Keystore",
    "authorized_signers",
    "build_document",
    "build_entity_certificate",
    "did_for",
    "document_hash",
    "document_signer",
    "issue_entity_certificate",
    "offboard_entity",
    "resolve",
    "sign_document",
    "validate_claims",
    "verify_document",
    "verify_entity_certificate",
]

"""Signed JSON documents (W3C VC style `proof` blocks) whose signer is checked against a DID.

Entity certificates use this now; the permissioning certificates (DBC, AC, RC, GPC) reuse it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evgi.core.canonical import canonical_json
from evgi.core.digest import from_hex, keccak256, to_hex
from evgi.core.errors import SignatureError, ValidationError
from evgi.core.keys import Account, recover_address
from evgi.identity.did import authorized_signers
from evgi.ledger import Ledger

PROOF_TYPE = "EcdsaSecp256k1RecoverySignature2020"
# Domain separation: a document signature can never be replayed as a ledger transaction.
SIGNING_PREFIX = b"\x19EVGI Signed Document:\n"
PURPOSES = ("assertionMethod", "authentication")


def _signing_digest(document: dict[str, Any]) -> bytes:
    proof = dict(document["proof"])
    proof.pop("proofValue", None)
    return keccak256(SIGNING_PREFIX + canonical_json({**document, "proof": proof}))


def sign_document(
    document: dict[str, Any],
    account: Account,
    verification_method: str,
    created: datetime,
    purpose: str = "assertionMethod",
) -> dict[str, Any]:
    if purpose not in PURPOSES:
        raise ValidationError(f"proof purpose must be one of {PURPOSES}")
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    proof = {
        "type": PROOF_TYPE,
        "created": created.isoformat().replace("+00:00", "Z"),
        "proofPurpose": purpose,
        "verificationMethod": verification_method,
    }
    signed = {**unsigned, "proof": proof}
    proof["proofValue"] = to_hex(account.sign_digest(_signing_digest(signed)))
    return signed


def document_signer(document: dict[str, Any]) -> str:
    """Address that signed the document; raises SignatureError if the proof is missing or bad."""
    proof = document.get("proof")
    if not isinstance(proof, dict):
        raise SignatureError("document carries no proof")
    if proof.get("type") != PROOF_TYPE:
        raise SignatureError(f"unsupported proof type {proof.get('type')!r}, expected {PROOF_TYPE}")
    value = proof.get("proofValue")
    if not isinstance(value, str):
        raise SignatureError("proof has no proofValue")
    try:
        signature = from_hex(value)
    except ValueError as exc:
        raise SignatureError(f"proofValue is not hex: {exc}") from exc
    return recover_address(_signing_digest(document), signature)


def verify_document(
    ledger: Ledger, document: dict[str, Any], signer_did: str, at: int | None = None
) -> str:
    """Check the proof was made by a key the DID authorizes for the proof's purpose."""
    signer = document_signer(document)
    purpose = document["proof"].get("proofPurpose")
    if purpose not in PURPOSES:
        raise SignatureError(f"unsupported proof purpose {purpose!r}")
    method = document["proof"].get("verificationMethod", "")
    if not isinstance(method, str) or not method.startswith(signer_did + "#"):
        raise SignatureError(f"verificationMethod {method!r} does not belong to {signer_did}")
    if signer not in authorized_signers(ledger, signer_did, purpose, at):
        raise SignatureError(f"{signer} is not authorized to sign for {signer_did} ({purpose})")
    return signer


def document_hash(document: dict[str, Any]) -> str:
    """Hash of the whole signed document, proof included: what the ledger anchors."""
    return to_hex(keccak256(canonical_json(document)))

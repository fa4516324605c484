"""`did:ethr` identifiers and their resolution to W3C DID Core documents.

Resolution follows the conventions of the ethr DID method over the ERC-1056 registry: the owner
as `#controller`, `veriKey` / `sigAuth` delegates, `did/pub/...` keys and `did/svc/...` services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evgi.core.errors import ValidationError
from evgi.core.keys import normalize_address
from evgi.ledger import Ledger

DID_CONTEXT = "https://www.w3.org/ns/did/v1"
SECP256K1_RECOVERY_CONTEXT = "https://w3id.org/security/suites/secp256k1recovery-2020/v2"
SECP256K1_CONTEXT = "https://w3id.org/security/suites/secp256k1-2019/v1"
NULL_ADDRESS = "0x" + "0" * 40
_DID = re.compile(r"^did:ethr:(?:(0x[0-9a-fA-F]+|[0-9]+):)?(0x[0-9a-fA-F]{40})$")
_PUB = re.compile(
    r"^did/pub/(Secp256k1|Ed25519|X25519)/(veriKey|sigAuth|enc)(?:/(hex|base64|base58))?$"
)
_SVC = re.compile(r"^did/svc/([A-Za-z0-9_.-]+)$")
_KEY_TYPES = {
    "Secp256k1": "EcdsaSecp256k1VerificationKey2019",
    "Ed25519": "Ed25519VerificationKey2018",
    "X25519": "X25519KeyAgreementKey2019",
}


@dataclass(frozen=True)
class Did:
    chain_id: int
    address: str

    def __str__(self) -> str:
        return f"did:ethr:{hex(self.chain_id)}:{self.address}"

    @classmethod
    def parse(cls, text: str, default_chain_id: int | None = None) -> Did:
        match = _DID.match(text.strip())
        if not match:
            raise ValidationError(f"{text!r} is not a did:ethr:<chainId>:<address> DID")
        chain, address = match.groups()
        if chain is None:
            if default_chain_id is None:
                raise ValidationError(f"{text} names no chain id")
            chain_id = default_chain_id
        else:
            chain_id = int(chain, 16) if chain.startswith("0x") else int(chain)
        return cls(chain_id, normalize_address(address))

    def url(self, fragment: str) -> str:
        return f"{self}#{fragment}"

    @property
    def account_id(self) -> str:
        """CAIP-10 account id of this DID's address."""
        return f"eip155:{self.chain_id}:{self.address}"


def did_for(chain_id: int, address: str) -> str:
    return str(Did(chain_id, normalize_address(address)))


def resolve(ledger: Ledger, did: str, at: int | None = None) -> dict[str, Any]:
    """DID resolution result: document, document metadata and resolution metadata.

    `at` is the unix time at which delegate and attribute validity is judged (default: the head
    block's time, so resolution is deterministic for a given ledger state).
    """
    try:
        subject = Did.parse(did, ledger.chain_id)
    except ValidationError as exc:
        return {
            "didDocument": None,
            "didDocumentMetadata": {},
            "didResolutionMetadata": {"error": "invalidDid", "message": exc.message},
        }
    if subject.chain_id != ledger.chain_id:
        return {
            "didDocument": None,
            "didDocumentMetadata": {},
            "didResolutionMetadata": {
                "error": "unknownNetwork",
                "message": f"this ledger is chain {ledger.chain_id}",
            },
        }
    when = ledger.head().timestamp if at is None else at
    record = ledger.query("did", "record", identity=subject.address, at=when)
    document = build_document(subject, record)
    metadata: dict[str, Any] = {}
    if record["changed"]:
        metadata["versionId"] = str(record["changed"])
        metadata["updated"] = ledger.block(record["changed"]).timestamp
    if record["owner"] == NULL_ADDRESS:
        metadata["deactivated"] = True
    return {
        "@context": "https://w3id.org/did-resolution/v1",
        "didDocument": document,
        "didDocumentMetadata": metadata,
        "didResolutionMetadata": {"contentType": "application/did+ld+json"},
    }


def build_document(subject: Did, record: dict[str, Any]) -> dict[str, Any]:
    did = str(subject)
    owner = record["owner"]
    if owner == NULL_ADDRESS:  # deactivated: ERC-1056 owner set to the zero address
        return {
            "@context": [DID_CONTEXT],
            "id": did,
            "verificationMethod": [],
            "authentication": [],
            "assertionMethod": [],
        }
    controller = did_for(subject.chain_id, owner)
    methods: list[dict[str, Any]] = [
        {
            "id": subject.url("controller"),
            "type": "EcdsaSecp256k1RecoveryMethod2020",
            "controller": did,
            "blockchainAccountId": f"eip155:{subject.chain_id}:{owner}",
        }
    ]
    authentication = [subject.url("controller")]
    assertion = [subject.url("controller")]
    services: list[dict[str, Any]] = []
    counter = 0
    for delegate in record["delegates"]:
        if delegate["type"] not in ("veriKey", "sigAuth"):
            continue
        counter += 1
        ref = subject.url(f"delegate-{counter}")
        methods.append(
            {
                "id": ref,
                "type": "EcdsaSecp256k1RecoveryMethod2020",
                "controller": did,
                "blockchainAccountId": f"eip155:{subject.chain_id}:{delegate['delegate']}",
            }
        )
        assertion.append(ref)
        if delegate["type"] == "sigAuth":
            authentication.append(ref)
    for attribute in record["attributes"]:
        name, value = attribute["name"], attribute["value"]
        if pub := _PUB.match(name):
            algorithm, purpose, encoding = pub.groups()
            counter += 1
            ref = subject.url(f"delegate-{counter}")
            method = {"id": ref, "type": _KEY_TYPES[algorithm], "controller": did}
            if encoding == "base64":
                method["publicKeyBase64"] = value
            elif encoding == "base58":
                method["publicKeyBase58"] = value
            else:
                method["publicKeyHex"] = value.removeprefix("0x")
            methods.append(method)
            if purpose in ("veriKey", "sigAuth"):
                assertion.append(ref)
            if purpose == "sigAuth":
                authentication.append(ref)
        elif svc := _SVC.match(name):
            services.append(
                {
                    "id": f"{did}#service-{len(services) + 1}",
                    "type": svc.group(1),
                    "serviceEndpoint": value,
                }
            )
    document: dict[str, Any] = {
        "@context": [DID_CONTEXT, SECP256K1_RECOVERY_CONTEXT, SECP256K1_CONTEXT],
        "id": did,
        "verificationMethod": methods,
        "authentication": authentication,
        "assertionMethod": assertion,
    }
    if owner != subject.address:
        document["controller"] = controller
    if services:
        document["service"] = services
    return document


def authorized_signers(ledger: Ledger, did: str, purpose: str, at: int | None = None) -> set[str]:
    """Addresses that may sign for `did` with `purpose` (assertionMethod or authentication)."""
    subject = Did.parse(did, ledger.chain_id)
    when = ledger.head().timestamp if at is None else at
    record = ledger.query("did", "record", identity=subject.address, at=when)
    if record["owner"] == NULL_ADDRESS:
        return set()
    signers = {record["owner"]}
    for delegate in record["delegates"]:
        if delegate["type"] == "sigAuth" or (
            purpose == "assertionMethod" and delegate["type"] == "veriKey"
        ):
            signers.add(delegate["delegate"])
    return signers

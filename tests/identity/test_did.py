"""did:ethr parsing and resolution to W3C DID Core documents over the ERC-1056 registry."""

from __future__ import annotations

import warnings
from typing import Any

import pydid
import pytest

from evgi.core import Account, ExecutionError, ValidationError
from evgi.identity import Did, authorized_signers, did_for, resolve
from evgi.identity.did import NULL_ADDRESS
from evgi.ledger import Submitter
from evgi.ledger.journal import LocalLedger

DAY = 86400


def parse_with_pydid(document: dict[str, Any]) -> pydid.BasicDIDDocument:
    """Parse with an independent DID library and dereference every reference it holds.

    pydid's DID Core model is used; its typed `DIDDocument` trips over its own validator for
    EcdsaSecp256k1RecoveryMethod2020 under pydantic >= 2.12, unrelated to the document.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pydid.BasicDIDDocument.deserialize(document)
    for reference in (parsed.authentication or []) + (parsed.assertion_method or []):
        method = parsed.dereference(reference)
        assert isinstance(method, pydid.VerificationMethod)
    return parsed


def test_did_round_trip_and_forms() -> None:
    address = "0x" + "ab" * 20
    did = did_for(1337, address)
    assert did == f"did:ethr:0x539:{address}"
    assert Did.parse(did) == Did(1337, address)
    assert Did.parse(f"did:ethr:1337:{address}") == Did(1337, address)
    assert Did.parse(f"did:ethr:{address}", default_chain_id=5).chain_id == 5
    assert Did(1337, address).account_id == f"eip155:1337:{address}"


@pytest.mark.parametrize(
    "text",
    [
        "did:web:example.com",
        "did:ethr:0x539:0x1234",
        "ethr:0x539:" + "0x" + "ab" * 20,
        f"did:ethr:{'0x' + 'ab' * 20}",
    ],
)
def test_bad_dids_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        Did.parse(text)


def test_fresh_identity_document(ledger: LocalLedger) -> None:
    account = Account.generate()
    did = did_for(ledger.chain_id, account.address)
    result = resolve(ledger, did)
    document = result["didDocument"]
    assert document["id"] == did
    assert document["verificationMethod"] == [
        {
            "id": f"{did}#controller",
            "type": "EcdsaSecp256k1RecoveryMethod2020",
            "controller": did,
            "blockchainAccountId": f"eip155:1337:{account.address}",
        }
    ]
    assert document["authentication"] == [f"{did}#controller"]
    assert "controller" not in document
    assert result["didResolutionMetadata"]["contentType"] == "application/did+ld+json"
    parsed = parse_with_pydid(document)
    assert str(parsed.id) == did


def test_delegates_attributes_and_services(ledger: LocalLedger) -> None:
    owner = Submitter(ledger, Account.generate())
    signer, verifier = Account.generate(), Account.generate()
    identity = owner.address
    owner.call(
        "did",
        "add_delegate",
        identity=identity,
        delegate_type="sigAuth",
        delegate=signer.address,
        validity=DAY,
    )
    owner.call(
        "did",
        "add_delegate",
        identity=identity,
        delegate_type="veriKey",
        delegate=verifier.address,
        validity=DAY,
    )
    owner.call(
        "did",
        "set_attribute",
        identity=identity,
        name="did/svc/OCPI",
        value="https://cpo.example/ocpi",
        validity=DAY,
    )
    owner.call(
        "did",
        "set_attribute",
        identity=identity,
        name="did/pub/Secp256k1/veriKey/hex",
        value="0x" + signer.public_key.hex(),
        validity=DAY,
    )
    did = did_for(ledger.chain_id, identity)
    document = resolve(ledger, did)["didDocument"]
    methods = {m["id"]: m for m in document["verificationMethod"]}
    assert len(methods) == 4
    accounts = {m.get("blockchainAccountId", "").rsplit(":", 1)[-1]: i for i, m in methods.items()}
    sig_auth, veri_key = accounts[signer.address], accounts[verifier.address]
    assert sig_auth in document["authentication"] and sig_auth in document["assertionMethod"]
    assert veri_key in document["assertionMethod"] and veri_key not in document["authentication"]
    key = next(m for m in methods.values() if "publicKeyHex" in m)
    assert key["type"] == "EcdsaSecp256k1VerificationKey2019"
    assert key["publicKeyHex"] == signer.public_key.hex()
    assert document["service"] == [
        {"id": f"{did}#service-1", "type": "OCPI", "serviceEndpoint": "https://cpo.example/ocpi"}
    ]
    parse_with_pydid(document)
    assert authorized_signers(ledger, did, "authentication") == {identity, signer.address}
    assert authorized_signers(ledger, did, "assertionMethod") == {
        identity,
        signer.address,
        verifier.address,
    }

    # Validity runs out with time and revocation takes effect at once.
    later = ledger.head().timestamp + DAY + 1
    assert len(resolve(ledger, did, at=later)["didDocument"]["verificationMethod"]) == 1
    owner.call(
        "did",
        "revoke_delegate",
        identity=identity,
        delegate_type="sigAuth",
        delegate=signer.address,
    )
    owner.call(
        "did",
        "revoke_attribute",
        identity=identity,
        name="did/svc/OCPI",
        value="https://cpo.example/ocpi",
    )
    document = resolve(ledger, did)["didDocument"]
    assert "service" not in document
    assert all(
        signer.address not in m.get("blockchainAccountId", "")
        for m in document["verificationMethod"]
    )


def test_owner_change_and_deactivation(ledger: LocalLedger) -> None:
    first = Submitter(ledger, Account.generate())
    second = Submitter(ledger, Account.generate())
    identity = first.address
    first.call("did", "change_owner", identity=identity, new_owner=second.address)
    did = did_for(ledger.chain_id, identity)
    result = resolve(ledger, did)
    document = result["didDocument"]
    assert document["controller"] == did_for(ledger.chain_id, second.address)
    assert document["verificationMethod"][0]["blockchainAccountId"].endswith(second.address)
    assert result["didDocumentMetadata"]["versionId"] == str(ledger.head().height)
    with pytest.raises(ExecutionError, match="not the owner"):
        first.call(
            "did",
            "add_delegate",
            identity=identity,
            delegate_type="veriKey",
            delegate=first.address,
            validity=DAY,
        )
    second.call("did", "change_owner", identity=identity, new_owner=NULL_ADDRESS)
    result = resolve(ledger, did)
    assert result["didDocumentMetadata"]["deactivated"] is True
    assert result["didDocument"]["verificationMethod"] == []
    assert authorized_signers(ledger, did, "assertionMethod") == set()


def test_resolution_errors(ledger: LocalLedger) -> None:
    assert resolve(ledger, "did:ethr:nonsense")["didResolutionMetadata"]["error"] == "invalidDid"
    other_chain = did_for(1, Account.generate().address)
    assert resolve(ledger, other_chain)["didResolutionMetadata"]["error"] == "unknownNetwork"


def test_registry_rejects_bad_arguments(ledger: LocalLedger) -> None:
    owner = Submitter(ledger, Account.generate())
    with pytest.raises(ExecutionError, match="validity"):
        owner.call(
            "did",
            "add_delegate",
            identity=owner.address,
            delegate_type="veriKey",
            delegate=owner.address,
            validity=-5,
        )
    with pytest.raises(ExecutionError, match="not an account address"):
        owner.call("did", "change_owner", identity=owner.address, new_owner="0x1234")
    with pytest.raises(ExecutionError, match="no attribute"):
        owner.call(
            "did",
            "revoke_attribute",
            identity=owner.address,
            name="did/svc/X",
            value="https://x.example",
        )

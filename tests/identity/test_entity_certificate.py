"""Entity certificates: issuance rights, anchoring, signatures, expiry and off-boarding."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from evgi.core import Account, EntityKind, ExecutionError, SimulatedClock, ValidationError
from evgi.identity import (
    build_entity_certificate,
    did_for,
    document_hash,
    issue_entity_certificate,
    offboard_entity,
    sign_document,
    verify_entity_certificate,
)
from evgi.ledger import Submitter
from evgi.ledger.journal import LocalLedger

PROVIDER = {"legalName": "Aurora Motors AG", "country": "DE"}


def vehicle_claims(ledger: LocalLedger, oem: str) -> dict[str, Any]:
    return {
        "vin": "1M8GDM9AXKP042788",
        "oem": did_for(ledger.chain_id, oem),
        "model": "Lumen",
        "batteryCapacityWh": 77_000,
        "pcid": "DEAURPC00000000011",
    }


@pytest.fixture
def trust_anchor(ledger: LocalLedger, anchor: Account) -> Submitter:
    return Submitter(ledger, anchor)


@pytest.fixture
def oem(ledger: LocalLedger, trust_anchor: Submitter) -> Submitter:
    oem = Submitter(ledger, Account.generate())
    issue_entity_certificate(trust_anchor, oem.address, EntityKind.OEM, PROVIDER)
    return oem


def test_every_kind_can_be_certified(ledger: LocalLedger, trust_anchor: Submitter) -> None:
    did = did_for(ledger.chain_id, trust_anchor.address)
    claims: dict[EntityKind, dict[str, Any]] = {
        EntityKind.USER: {"role": "driver"},
        EntityKind.VEHICLE: vehicle_claims(ledger, trust_anchor.address),
        EntityKind.BATTERY: {
            "serialNumber": "B1",
            "oem": did,
            "chemistry": "LFP",
            "capacityWh": 60_000,
        },
        EntityKind.METER: {
            "serialNumber": "M1",
            "manufacturer": "Meterix",
            "meterType": "evse",
            "evseId": "DE*VCH*E0001*1",
        },
        EntityKind.CHARGER: {
            "evseIds": ["DE*VCH*E0001*1"],
            "cpo": did,
            "maxPowerW": 22_000,
            "connectors": 2,
            "country": "DE",
        },
        EntityKind.CPO: {**PROVIDER, "partyId": "DE*VCH"},
        EntityKind.EMSP: PROVIDER,
        EntityKind.OEM: PROVIDER,
        EntityKind.UTILITY: PROVIDER,
        EntityKind.AGGREGATOR: PROVIDER,
        EntityKind.DATA_HOST: {
            "legalName": "Data Co",
            "dataTypes": ["battery-health"],
            "serviceEndpoints": ["https://data.example/v1"],
        },
    }
    for kind, kind_claims in claims.items():
        issued = issue_entity_certificate(
            trust_anchor, Account.generate().address, kind, kind_claims
        )
        check = verify_entity_certificate(ledger, issued.document)
        assert check.valid, (kind, check.reason)
        assert check.kind == kind.value
        assert issued.document["type"] == ["VerifiableCredential", "EntityCertificate"]
        assert issued.document["credentialSubject"]["eid"].startswith("EVGI-")
    with pytest.raises(ExecutionError, match="fixed in genesis"):
        issue_entity_certificate(
            trust_anchor,
            Account.generate().address,
            EntityKind.TRUST_ANCHOR,
            {"legalName": "X", "governance": "Y"},
        )


def test_issue_rights(ledger: LocalLedger, oem: Submitter, trust_anchor: Submitter) -> None:
    vehicle = issue_entity_certificate(
        oem, Account.generate().address, EntityKind.VEHICLE, vehicle_claims(ledger, oem.address)
    )
    assert verify_entity_certificate(ledger, vehicle.document).valid
    with pytest.raises(ExecutionError, match="oem may not on-board a charger"):
        issue_entity_certificate(
            oem,
            Account.generate().address,
            EntityKind.CHARGER,
            {
                "evseIds": ["DE*VCH*E0001*1"],
                "cpo": did_for(1337, oem.address),
                "maxPowerW": 1,
                "connectors": 1,
                "country": "DE",
            },
        )
    stranger = Submitter(ledger, Account.generate())
    with pytest.raises(ExecutionError, match="not an on-boarded entity"):
        issue_entity_certificate(stranger, Account.generate().address, EntityKind.USER, {})
    with pytest.raises(ExecutionError, match="already on-boarded"):
        issue_entity_certificate(trust_anchor, oem.address, EntityKind.OEM, PROVIDER)


def test_bad_claims_are_refused(ledger: LocalLedger, oem: Submitter) -> None:
    with pytest.raises(ValidationError, match="VIN"):
        issue_entity_certificate(
            oem,
            Account.generate().address,
            EntityKind.VEHICLE,
            {**vehicle_claims(ledger, oem.address), "vin": "IOQ123"},
        )
    with pytest.raises(ValidationError, match="owner: Extra inputs"):
        issue_entity_certificate(
            oem,
            Account.generate().address,
            EntityKind.VEHICLE,
            {**vehicle_claims(ledger, oem.address), "owner": "Alice"},
        )


def test_altered_and_forged_certificates(ledger: LocalLedger, oem: Submitter) -> None:
    issued = issue_entity_certificate(
        oem, Account.generate().address, EntityKind.VEHICLE, vehicle_claims(ledger, oem.address)
    )
    altered = copy.deepcopy(issued.document)
    altered["credentialSubject"]["batteryCapacityWh"] = 100_000
    check = verify_entity_certificate(ledger, altered)
    assert not check.valid and "not anchored" in check.reason

    # The OEM anchors a certificate in its own name that another key signed.
    subject = Account.generate().address
    now = datetime.now(UTC)
    body = build_entity_certificate(
        did_for(ledger.chain_id, oem.address),
        did_for(ledger.chain_id, subject),
        EntityKind.VEHICLE,
        vehicle_claims(ledger, oem.address),
        now,
    )
    forged = sign_document(
        body, Account.generate(), did_for(ledger.chain_id, oem.address) + "#controller", now
    )
    oem.call("entity", "onboard", subject=subject, kind="vehicle", ec_hash=document_hash(forged))
    check = verify_entity_certificate(ledger, forged)
    assert not check.valid and "not authorized to sign" in check.reason

    for garbage in ({}, {"type": ["VerifiableCredential"]}, {"type": ["EntityCertificate"]}):
        assert not verify_entity_certificate(ledger, garbage).valid


def test_delegate_may_sign(ledger: LocalLedger, oem: Submitter) -> None:
    delegate = Account.generate()
    oem.call(
        "did",
        "add_delegate",
        identity=oem.address,
        delegate_type="veriKey",
        delegate=delegate.address,
        validity=3600,
    )
    subject = Account.generate().address
    now = datetime.now(UTC)
    oem_did = did_for(ledger.chain_id, oem.address)
    body = build_entity_certificate(
        oem_did,
        did_for(ledger.chain_id, subject),
        EntityKind.BATTERY,
        {"serialNumber": "B7", "oem": oem_did, "chemistry": "NMC", "capacityWh": 9},
        now,
    )
    signed = sign_document(body, delegate, oem_did + "#delegate-1", now)
    oem.call("entity", "onboard", subject=subject, kind="battery", ec_hash=document_hash(signed))
    assert verify_entity_certificate(ledger, signed).valid


def test_offboarding_from_that_block_on(
    ledger: LocalLedger, oem: Submitter, trust_anchor: Submitter
) -> None:
    vehicle = issue_entity_certificate(
        oem, Account.generate().address, EntityKind.VEHICLE, vehicle_claims(ledger, oem.address)
    )
    subject = vehicle.document["credentialSubject"]["id"].rsplit(":", 1)[1]
    receipt = offboard_entity(trust_anchor, subject, "vehicle scrapped")
    before = verify_entity_certificate(ledger, vehicle.document, at_block=receipt.block - 1)
    at = verify_entity_certificate(ledger, vehicle.document, at_block=receipt.block)
    assert before.valid
    assert not at.valid and f"off-boarded in block {receipt.block}" in at.reason
    with pytest.raises(ExecutionError, match="already off-boarded"):
        offboard_entity(trust_anchor, subject, "again")
    again = issue_entity_certificate(
        oem, subject, EntityKind.VEHICLE, vehicle_claims(ledger, oem.address)
    )
    assert verify_entity_certificate(ledger, again.document).valid
    assert not verify_entity_certificate(ledger, vehicle.document).valid


def test_offboarded_issuer_invalidates_what_it_certified(
    ledger: LocalLedger, oem: Submitter, trust_anchor: Submitter
) -> None:
    vehicle = issue_entity_certificate(
        oem, Account.generate().address, EntityKind.VEHICLE, vehicle_claims(ledger, oem.address)
    )
    with pytest.raises(ExecutionError, match="only a trust anchor or the issuer"):
        offboard_entity(Submitter(ledger, Account.generate()), oem.address, "hostile")
    offboard_entity(trust_anchor, oem.address, "left the network")
    check = verify_entity_certificate(ledger, vehicle.document)
    assert not check.valid and "issuer" in check.reason
    with pytest.raises(ExecutionError, match="not an on-boarded entity"):
        issue_entity_certificate(
            oem, Account.generate().address, EntityKind.VEHICLE, vehicle_claims(ledger, oem.address)
        )


def test_expiry(ledger: LocalLedger, trust_anchor: Submitter) -> None:
    clock = SimulatedClock(datetime.now(UTC))
    issued = issue_entity_certificate(
        trust_anchor,
        Account.generate().address,
        EntityKind.USER,
        {},
        clock,
        expires=clock.now() + timedelta(days=30),
    )
    assert verify_entity_certificate(ledger, issued.document, clock=clock).valid
    clock.advance(timedelta(days=31))
    check = verify_entity_certificate(ledger, issued.document, clock=clock)
    assert not check.valid and "expired" in check.reason
    with pytest.raises(ValidationError, match="expire after"):
        issue_entity_certificate(
            trust_anchor,
            Account.generate().address,
            EntityKind.USER,
            {},
            clock,
            expires=clock.now() - timedelta(days=1),
        )

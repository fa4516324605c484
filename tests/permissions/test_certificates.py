"""DBC, AC, RC and GPC documents: signed, anchored, checked by the host against the ledger; and
the ledger's own rules on who may anchor what."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from evgi.core import Account, EntityKind, ExecutionError
from evgi.data import DataHost
from evgi.identity import document_hash, issue_entity_certificate, sign_document
from evgi.permissions import (
    Reason,
    Refusal,
    Role,
    host_uri,
    issue_access_certificate,
    issue_bootstrap_certificate,
    issue_group_change,
    issue_revocation_certificate,
)
from tests.data.scene import Scene


def install_refusal(scene: Scene, document: object) -> Refusal:
    with pytest.raises(Refusal) as caught:
        scene.host.install(document)
    return caught.value


def test_access_certificate_document(scene: Scene) -> None:
    issued = issue_access_certificate(
        scene.as_(scene.driver),
        scene.oem.address,
        scene.bucket.id,
        scene.bucket.uri,
        Role.READER,
        scene.expires(),
        scene.clock,
    )
    document = issued.document
    assert document["type"] == ["VerifiableCredential", "AccessCertificate"]
    assert document["issuer"] == scene.did(scene.driver)
    assert document["credentialSubject"] == {
        "id": scene.did(scene.oem),
        "container": scene.bucket.id,
        "uri": scene.bucket.uri,
        "role": "reader",
    }
    assert issued.hash == document_hash(document)
    info = scene.host.install(document)
    assert (info.kind, info.issuer, info.subject) == ("ac", scene.driver.address, scene.oem.address)
    scene.host.install(document)  # delivering twice is harmless
    record = scene.platform.ledger.query("permissions", "certificate", hash=issued.hash)
    assert set(record) >= {"type", "issuer", "subject", "target", "role", "expires", "revoked"}

    altered = copy.deepcopy(document)
    altered["credentialSubject"]["role"] = "writer"
    assert install_refusal(scene, altered).reason is Reason.BAD_SIGNATURE
    unsigned = {k: v for k, v in document.items() if k != "proof"}
    assert install_refusal(scene, unsigned).reason is Reason.MISSING_SIGNATURE
    # Signed by a key that is not the owner's, though it names the owner as issuer.
    forged = sign_document(
        {k: v for k, v in document.items() if k != "proof"},
        Account.generate(),
        f"{scene.did(scene.driver)}#controller",
        scene.clock.now(),
    )
    assert install_refusal(scene, forged).reason is Reason.BAD_SIGNATURE
    # Properly signed by the owner but never anchored.
    never = sign_document(
        {**unsigned, "id": "urn:uuid:00000000-0000-0000-0000-000000000000"},
        scene.driver,
        f"{scene.did(scene.driver)}#controller",
        scene.clock.now(),
    )
    assert install_refusal(scene, never).reason is Reason.NOT_ANCHORED
    for garbage in ({}, [], {"type": ["VerifiableCredential"]}, "x"):
        assert install_refusal(scene, garbage).reason is Reason.MALFORMED

    rc = issue_revocation_certificate(scene.as_(scene.driver), issued.hash, scene.clock)
    assert scene.host.install(rc.document).kind == "rc"
    assert install_refusal(scene, document).reason is Reason.REVOKED


def test_expired_certificate_is_not_installed(scene: Scene) -> None:
    issued = issue_access_certificate(
        scene.as_(scene.driver),
        scene.oem.address,
        scene.bucket.id,
        scene.bucket.uri,
        Role.READER,
        scene.expires(days=1),
        scene.clock,
    )
    scene.clock.advance(timedelta(days=2))
    assert install_refusal(scene, issued.document).reason is Reason.EXPIRED


def test_dbc_for_another_host_or_data_type(scene: Scene) -> None:
    other = Account.generate()
    issue_entity_certificate(
        scene.anchor,
        other.address,
        EntityKind.DATA_HOST,
        {"legalName": "Other host", "dataTypes": ["x"]},
        scene.clock,
    )
    foreign = issue_bootstrap_certificate(
        scene.anchor, other.address, ["battery-health"], scene.expires(), scene.clock
    )
    refused = install_refusal(scene, foreign.document)
    assert refused.reason is Reason.OTHER_HOST and refused.status == 403

    # The trust anchor's DBC for this host covers the platform's data types, not "tyre-wear".
    with pytest.raises(Refusal) as refused_type:
        scene.host.create_container(scene.driver.address, "tyre-wear")
    assert refused_type.value.reason is Reason.DATA_TYPE
    dbc = scene.host.bootstrap(["tyre-wear"])
    assert dbc.document["credentialSubject"] == {
        "id": scene.host.did,
        "uri": host_uri(scene.host.did),
        "dataTypes": ["tyre-wear"],
    }
    bucket = scene.host.create_container(scene.driver.address, "tyre-wear")
    assert bucket.dbc == dbc.hash and bucket.uri.startswith(host_uri(scene.host.did) + "/")

    # Revoking the DBC stops the host from opening containers under it.
    issue_revocation_certificate(scene.anchor, dbc.hash, scene.clock)
    without_anchor = DataHost.open(scene.platform)  # gets no fresh DBC from the anchor
    try:
        with pytest.raises(Refusal) as caught:
            without_anchor.create_container(scene.driver.address, "tyre-wear")
        assert caught.value.reason is Reason.DATA_TYPE
    finally:
        without_anchor.close()


def test_ledger_rules_for_certificates(scene: Scene) -> None:
    owner, oem = scene.as_(scene.driver), scene.as_(scene.oem)
    bucket = scene.bucket.id
    expires = int(scene.expires().timestamp())
    hash_ = "0x" + "11" * 32
    with pytest.raises(ExecutionError, match="does not own"):
        oem.call(
            "permissions",
            "grant",
            hash=hash_,
            accessor=scene.insurer.address,
            container=bucket,
            role="reader",
            expires=expires,
        )
    with pytest.raises(ExecutionError, match="already expired"):
        owner.call(
            "permissions",
            "grant",
            hash=hash_,
            accessor=scene.oem.address,
            container=bucket,
            role="reader",
            expires=1,
        )
    ac = issue_access_certificate(
        owner,
        scene.oem.address,
        bucket,
        scene.bucket.uri,
        Role.READER,
        scene.expires(),
        scene.clock,
    )
    with pytest.raises(ExecutionError, match="only the issuer"):
        issue_revocation_certificate(oem, ac.hash, scene.clock)
    with pytest.raises(ExecutionError, match="only a trust anchor"):
        issue_bootstrap_certificate(owner, scene.host.address, ["xy"], scene.expires(), scene.clock)
    with pytest.raises(ExecutionError, match="not an on-boarded data host"):
        issue_bootstrap_certificate(
            scene.anchor, scene.oem.address, ["xy"], scene.expires(), scene.clock
        )
    with pytest.raises(ExecutionError, match="only the host"):
        owner.call("permissions", "register_data", hash=hash_, container=bucket, count=1)
    with pytest.raises(ExecutionError, match="issued to another host"):
        oem.call(
            "permissions",
            "register_container",
            id="b-999999999999",
            kind="bucket",
            uri=scene.bucket.uri + "x",
            owner=scene.driver.address,
            data_type="battery-health",
            schema="s",
            dbc=scene.bucket.dbc,
        )
    with pytest.raises(ExecutionError, match="does not own"):
        issue_group_change(oem, "g", grant=[(bucket, Role.READER)], clock=scene.clock)


def test_data_registration_anchors_no_data(scene: Scene) -> None:
    records = scene.host.store.records(scene.bucket.id)
    registration = records[0].registration
    anchored = scene.platform.ledger.query("permissions", "data", hash=registration)
    assert anchored == {
        "container": scene.bucket.id,
        "uri": scene.bucket.uri,
        "owner": scene.driver.address,
        "schema": scene.bucket.schema,
        "host": scene.host.address,
        "count": 3,
        "block": anchored["block"],
        "timestamp": anchored["timestamp"],
    }
    container = scene.platform.ledger.query("permissions", "container", id=scene.bucket.id)
    assert container["owner"] == scene.driver.address and container["kind"] == "bucket"
    # Nothing of the records' content is anywhere in the ledger's state.
    state = scene.platform.ledger.scan("")  # type: ignore[attr-defined]
    assert "stateOfHealth" not in str(state) and "99.5" not in str(state)

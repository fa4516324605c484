"""Access Session Setup at the module level: every bad unlock gets its specific refusal, and an
accepted one opens a session that is re-authorized against the ledger on every use."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from evgi.core import Account
from evgi.data import DataHost
from evgi.identity import offboard_entity
from evgi.permissions import (
    Reason,
    Refusal,
    Role,
    issue_access_certificate,
    issue_group_change,
    issue_revocation_certificate,
    sign_unlock_request,
)
from tests.data.scene import Scene


def refusal(call: object, *args: object) -> Refusal:
    with pytest.raises(Refusal) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def grant(scene: Scene, to: Account, role: Role = Role.READER, days: float = 30) -> str:
    issued = issue_access_certificate(
        scene.as_(scene.driver),
        to.address,
        scene.bucket.id,
        scene.bucket.uri,
        role,
        scene.expires(days),
        scene.clock,
    )
    return issued.hash


def test_granted_unlock_opens_a_session_for_reading(scene: Scene) -> None:
    ac = grant(scene, scene.oem)
    session, dbc = scene.host.unlock(scene.unlock_request(scene.oem))
    assert session.grant == ac and session.scope.container == scene.bucket.id
    assert session.scope.role == "reader" and dbc == scene.bucket.dbc
    assert session.expires <= scene.clock.now() + timedelta(minutes=15)
    page = scene.host.read(session.token, scene.bucket.id)
    assert [r.seq for r in page.records] == [1, 2, 3]
    assert page.records[0].body["stateOfHealthPercent"] == 99.5
    # The owner needs no certificate for its own data.
    owner, _ = scene.host.unlock(scene.unlock_request(scene.driver, Role.WRITER))
    assert owner.grant == "owner"


def test_no_grant_is_refused(scene: Scene) -> None:
    refused = refusal(scene.host.unlock, scene.unlock_request(scene.insurer))
    assert refused.reason is Reason.NOT_GRANTED and refused.status == 403


def test_forged_and_missing_signatures(scene: Scene) -> None:
    grant(scene, scene.oem)
    forged = sign_unlock_request(
        Account.generate(),
        scene.chain_id,
        scene.host.did,
        scene.bucket.id,
        Role.READER,
        scene.clock.now(),
    )
    forged["accessor"] = scene.did(scene.oem)  # claims to be the OEM, signed by another key
    assert refusal(scene.host.unlock, forged).reason is Reason.BAD_SIGNATURE

    tampered = scene.unlock_request(scene.oem)
    tampered["container"] = "b-000000000000"
    assert refusal(scene.host.unlock, tampered).reason is Reason.BAD_SIGNATURE

    unsigned = scene.unlock_request(scene.oem)
    del unsigned["proof"]
    refused = refusal(scene.host.unlock, unsigned)
    assert refused.reason is Reason.MISSING_SIGNATURE and refused.status == 401

    garbage = scene.unlock_request(scene.oem)
    garbage["proof"] = {**garbage["proof"], "proofValue": "0x1234"}  # type: ignore[dict-item]
    assert refusal(scene.host.unlock, garbage).reason is Reason.BAD_SIGNATURE


def test_replayed_stale_and_misaddressed_requests(scene: Scene) -> None:
    grant(scene, scene.oem)
    request = scene.unlock_request(scene.oem)
    scene.host.unlock(request)
    replayed = refusal(scene.host.unlock, copy.deepcopy(request))
    assert replayed.reason is Reason.REPLAYED and replayed.status == 409

    old = scene.unlock_request(scene.oem)
    scene.clock.advance(timedelta(minutes=3))
    assert refusal(scene.host.unlock, old).reason is Reason.STALE
    future = sign_unlock_request(
        scene.oem,
        scene.chain_id,
        scene.host.did,
        scene.bucket.id,
        Role.READER,
        scene.clock.now() + timedelta(minutes=5),
    )
    assert refusal(scene.host.unlock, future).reason is Reason.STALE

    elsewhere = sign_unlock_request(
        scene.oem,
        scene.chain_id,
        scene.did(Account.generate()),
        scene.bucket.id,
        Role.READER,
        scene.clock.now(),
    )
    assert refusal(scene.host.unlock, elsewhere).reason is Reason.WRONG_HOST
    for bad in ({}, [], {"type": "UnlockRequest"}, {**request, "role": "owner"}):
        assert refusal(scene.host.unlock, bad).reason is Reason.MALFORMED


def test_a_restarted_host_remembers_the_requests_it_accepted(scene: Scene) -> None:
    grant(scene, scene.oem)
    request = scene.unlock_request(scene.oem)
    scene.host.unlock(request)
    scene.host.close()
    restarted = DataHost.open(scene.platform)
    try:
        assert refusal(restarted.unlock, request).reason is Reason.REPLAYED
    finally:
        restarted.close()


def test_expired_access_certificate(scene: Scene) -> None:
    grant(scene, scene.oem, days=1)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    assert session.expires <= scene.clock.now() + timedelta(days=1)
    scene.clock.advance(timedelta(days=1, seconds=1))
    refused = refusal(scene.host.unlock, scene.unlock_request(scene.oem))
    assert refused.reason is Reason.EXPIRED and refused.status == 403
    assert refusal(scene.host.read, session.token, scene.bucket.id).reason in (
        Reason.SESSION_EXPIRED,
        Reason.EXPIRED,
    )


def test_revoked_access_certificate_ends_open_sessions_too(scene: Scene) -> None:
    ac = grant(scene, scene.oem)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    scene.host.read(session.token, scene.bucket.id)
    issue_revocation_certificate(scene.as_(scene.driver), ac, scene.clock)
    refused = refusal(scene.host.read, session.token, scene.bucket.id)
    assert refused.reason is Reason.REVOKED and ac in refused.message
    assert refusal(scene.host.unlock, scene.unlock_request(scene.oem)).reason is Reason.REVOKED
    # A new certificate after the revoked one works again.
    grant(scene, scene.oem)
    scene.host.unlock(scene.unlock_request(scene.oem))


def test_blocked_accessor_is_refused_whatever_it_holds(scene: Scene) -> None:
    grant(scene, scene.oem)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    scene.as_(scene.driver).call("permissions", "block", accessor=scene.oem.address)
    assert refusal(scene.host.unlock, scene.unlock_request(scene.oem)).reason is Reason.BLOCKED
    assert refusal(scene.host.read, session.token, scene.bucket.id).reason is Reason.BLOCKED
    scene.as_(scene.driver).call("permissions", "unblock", accessor=scene.oem.address)
    scene.host.unlock(scene.unlock_request(scene.oem))


def test_offboarded_and_unknown_accessors(scene: Scene) -> None:
    grant(scene, scene.oem)
    offboard_entity(scene.anchor, scene.oem.address, "membership ended")
    refused = refusal(scene.host.unlock, scene.unlock_request(scene.oem))
    assert refused.reason is Reason.OFFBOARDED and "off-boarded in block" in refused.message
    stranger = Account.generate()
    assert refusal(scene.host.unlock, scene.unlock_request(stranger)).reason is (
        Reason.NOT_ONBOARDED
    )


def test_unknown_container(scene: Scene) -> None:
    missing = scene.unlock_request(scene.oem, container="b-000000000000")
    refused = refusal(scene.host.unlock, missing)
    assert refused.reason is Reason.UNKNOWN_CONTAINER and refused.status == 404
    misnamed = scene.unlock_request(scene.oem, container="b-000000000000")
    misnamed["container"] = "../etc"
    assert refusal(scene.host.unlock, misnamed).reason is Reason.MALFORMED


def test_roles_and_session_scope(scene: Scene) -> None:
    grant(scene, scene.oem, Role.READER)
    assert (
        refusal(scene.host.unlock, scene.unlock_request(scene.oem, Role.WRITER)).reason
        is Reason.NOT_GRANTED
    )
    reader, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    assert refusal(scene.host.write, reader.token, scene.bucket.id, [{}]).reason is (
        Reason.OUT_OF_SCOPE
    )
    assert refusal(scene.host.audit, reader.token, scene.bucket.id).reason is Reason.OUT_OF_SCOPE
    payload, _, mac = reader.token.partition(".")
    assert refusal(scene.host.read, payload + "x." + mac, scene.bucket.id).reason is (
        Reason.BAD_TOKEN
    )
    assert refusal(scene.host.read, "nonsense", scene.bucket.id).reason is Reason.BAD_TOKEN
    scene.clock.advance(timedelta(minutes=16))
    assert refusal(scene.host.read, reader.token, scene.bucket.id).reason is (
        Reason.SESSION_EXPIRED
    )

    grant(scene, scene.insurer, Role.WRITER)
    writer, _ = scene.host.unlock(scene.unlock_request(scene.insurer, Role.WRITER))
    registration = scene.host.write(
        writer.token,
        scene.bucket.id,
        [
            {
                "battery": scene.did(scene.oem),
                "measuredAt": "2025-06-01T00:00:00Z",
                "stateOfHealthPercent": 97.0,
                "usableCapacityWh": 76_000,
                "equivalentFullCycles": 90,
            }
        ],
    )
    assert registration.receipt.ok
    invalid = refusal(scene.host.write, writer.token, scene.bucket.id, [{"soh": 1}])
    assert invalid.reason is Reason.INVALID_DATA and invalid.status == 422


def test_groups_follow_group_permission_changes(scene: Scene) -> None:
    owner = scene.as_(scene.driver)
    issue_group_change(
        owner,
        "fleet",
        add=[scene.did(scene.oem)],
        grant=[(scene.bucket.id, Role.READER)],
        clock=scene.clock,
    )
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    assert session.grant == "group:fleet"
    assert refusal(scene.host.unlock, scene.unlock_request(scene.insurer)).reason is (
        Reason.NOT_GRANTED
    )
    issue_group_change(owner, "fleet", remove=[scene.oem.address], clock=scene.clock)
    assert refusal(scene.host.read, session.token, scene.bucket.id).reason is Reason.NOT_GRANTED
    issue_group_change(owner, "fleet", add=[scene.oem.address], clock=scene.clock)
    scene.host.unlock(scene.unlock_request(scene.oem))
    issue_group_change(owner, "fleet", withdraw=[(scene.bucket.id, Role.READER)], clock=scene.clock)
    assert refusal(scene.host.unlock, scene.unlock_request(scene.oem)).reason is (
        Reason.NOT_GRANTED
    )


def test_a_revocation_by_another_process_is_seen_at_once(scene: Scene, db_url: str) -> None:
    """Two platforms on one database, as `evgi serve` and a CLI command are."""
    from evgi.app import open_platform
    from evgi.config import Settings

    ac = grant(scene, scene.oem)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    other = open_platform(
        Settings(data_dir=scene.platform.settings.data_dir, database_url=db_url), scene.clock
    )
    try:
        issue_revocation_certificate(other.submitter(scene.driver), ac, scene.clock)
    finally:
        other.close()
    assert refusal(scene.host.read, session.token, scene.bucket.id).reason is Reason.REVOKED


def test_refusals_leak_no_data(scene: Scene) -> None:
    grant(scene, scene.oem)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    for call, args in (
        (scene.host.unlock, (scene.unlock_request(scene.insurer),)),
        (scene.host.read, (session.token + "x", scene.bucket.id)),
        (scene.host.read, (session.token, "b-000000000000")),
    ):
        refused = refusal(call, *args)
        text = str(refused.to_json())
        assert "stateOfHealth" not in text and "99.5" not in text
        assert scene.driver.address not in text

"""Access decisions are worked out once per ledger head and kept: a new block (revocation, block,
off-boarding, group change), written by this process or another, is seen on the very next unlock
or read, and the passing of time ends a kept grant at its expiry."""

from __future__ import annotations

from datetime import timedelta

import pytest

from evgi.core.clock import unix_seconds
from evgi.identity import offboard_entity
from evgi.permissions import Reason, Refusal, Role, decide, issue_access_certificate
from tests.data.scene import Scene


def grant(scene: Scene, days: float) -> str:
    return issue_access_certificate(
        scene.as_(scene.driver),
        scene.oem.address,
        scene.bucket.id,
        scene.bucket.uri,
        Role.READER,
        scene.expires(days),
        scene.clock,
    ).hash


def refused(call: object, *args: object) -> Reason:
    with pytest.raises(Refusal) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.reason


def test_a_kept_grant_ends_at_its_expiry_and_an_older_certificate_takes_over(scene: Scene) -> None:
    lasting = grant(scene, days=30)
    short = grant(scene, days=1)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    assert session.grant == short
    head = scene.platform.ledger.head().height
    scene.clock.advance(timedelta(days=1, seconds=1))
    assert refused(scene.host.read, session.token, scene.bucket.id) is Reason.SESSION_EXPIRED
    again, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    assert scene.platform.ledger.head().height == head  # decided again at the same head
    assert again.grant == lasting
    scene.host.read(again.token, scene.bucket.id)


def test_a_kept_refusal_lasts_only_until_the_next_block(scene: Scene) -> None:
    request = scene.unlock_request
    assert refused(scene.host.unlock, request(scene.oem)) is Reason.NOT_GRANTED
    assert refused(scene.host.unlock, request(scene.oem)) is Reason.NOT_GRANTED
    ac = grant(scene, days=30)
    session, _ = scene.host.unlock(request(scene.oem))
    assert session.grant == ac


def test_offboarding_ends_a_kept_grant_on_the_next_unlock_and_read(scene: Scene) -> None:
    grant(scene, days=30)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    scene.host.read(session.token, scene.bucket.id)
    offboard_entity(scene.anchor, scene.oem.address, "membership ended")
    assert refused(scene.host.read, session.token, scene.bucket.id) is Reason.OFFBOARDED
    assert refused(scene.host.unlock, scene.unlock_request(scene.oem)) is Reason.OFFBOARDED


def test_a_block_by_another_process_ends_a_kept_grant(scene: Scene, db_url: str) -> None:
    """Two platforms on one database, as `evgi serve` and a CLI command are."""
    from evgi.app import open_platform
    from evgi.config import Settings

    grant(scene, days=30)
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    scene.host.read(session.token, scene.bucket.id)
    other = open_platform(
        Settings(data_dir=scene.platform.settings.data_dir, database_url=db_url), scene.clock
    )
    try:
        other.submitter(scene.driver).call("permissions", "block", accessor=scene.oem.address)
    finally:
        other.close()
    assert refused(scene.host.unlock, scene.unlock_request(scene.oem)) is Reason.BLOCKED
    assert refused(scene.host.read, session.token, scene.bucket.id) is Reason.BLOCKED


def test_a_clock_that_went_back_decides_again(scene: Scene) -> None:
    ac = grant(scene, days=1)
    view = scene.host.view
    view.refresh()
    container = view.query("permissions", "container", id=scene.bucket.id)
    now = unix_seconds(scene.clock.now())
    args = (view, scene.bucket.id, container, scene.oem.address, Role.READER)
    assert refused(decide, *args, now + 2 * 86_400) is Reason.EXPIRED
    assert decide(*args, now).via == ac
    assert refused(decide, *args, now + 2 * 86_400) is Reason.EXPIRED

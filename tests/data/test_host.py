"""The data host: buckets and streams, data registration, stream ageing, the publishing API, the
owners' access log and containers opened on an owner's signed request."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from evgi.core import Account, keccak256, verify_merkle_proof
from evgi.core.digest import from_hex, to_hex
from evgi.data import (
    DataHost,
    DataPublisher,
    DataType,
    MeterValue,
    V2GEvent,
    record_hash,
    registration_root,
)
from evgi.permissions import Reason, Refusal, Role, issue_access_certificate, sign_request
from tests.data.scene import Scene, reading


def test_bucket_records_and_their_registration(scene: Scene) -> None:
    records = scene.host.store.records(scene.bucket.id)
    assert [r.seq for r in records] == [1, 2, 3]
    assert all(r.hash == record_hash(scene.bucket.id, r.seq, r.at, r.body) for r in records)
    assert records[0].registration == registration_root([r.hash for r in records])
    battery = records[0].body["battery"]
    publisher = DataPublisher(scene.host)
    more = publisher.battery_health(
        scene.driver.address, [reading(battery, 3), reading(battery, 4)]
    )
    assert publisher.container(scene.driver.address, DataType.BATTERY_HEALTH) == scene.bucket
    proof = more.proof(1)
    assert verify_merkle_proof(proof, from_hex(more.hash))
    assert scene.platform.ledger.query("permissions", "data", hash=more.hash)["count"] == 2
    assert [r.seq for r in scene.host.store.records(scene.bucket.id, after=3)] == [4, 5]
    with pytest.raises(TypeError):
        publisher.publish(scene.driver.address, DataType.METER_VALUES, [reading(battery, 1)])


def test_reads_see_new_records_at_once(scene: Scene) -> None:
    issue_access_certificate(
        scene.as_(scene.driver),
        scene.oem.address,
        scene.bucket.id,
        scene.bucket.uri,
        Role.READER,
        scene.expires(),
        scene.clock,
    )
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    assert len(scene.host.read(session.token, scene.bucket.id).records) == 3
    battery = scene.host.store.records(scene.bucket.id)[0].body["battery"]
    DataPublisher(scene.host).battery_health(scene.driver.address, [reading(battery, 7)])
    page = scene.host.read(session.token, scene.bucket.id)
    assert [r.seq for r in page.records] == [1, 2, 3, 4]
    assert json.loads(page.to_json_text(0))["records"][3]["body"]["equivalentFullCycles"] == 140
    assert [r.seq for r in scene.host.read(session.token, scene.bucket.id, 2, 1).records] == [3]


def test_stream_ages_online_nearline_offline(scene: Scene) -> None:
    publisher = DataPublisher(scene.host)
    meter = scene.did(Account.generate())
    start = scene.clock.now()
    values = [
        MeterValue(
            meter=meter,
            measuredAt=start + timedelta(minutes=m),
            energyImportWh=1000 * m,
            powerW=6000,
        )
        for m in range(10)
    ]
    publisher.meter_values(scene.oem.address, values[:6])
    stream = publisher.container(scene.oem.address, DataType.METER_VALUES)
    assert stream.kind == "stream" and stream.retention_s == 86_400
    assert stream.nearline_s == 30 * 86_400
    scene.clock.advance(timedelta(hours=12))
    publisher.meter_values(scene.oem.address, values[6:])

    assert scene.host.age(scene.clock.now()).nearline_records == 0
    moved = scene.host.age(scene.clock.now() + timedelta(hours=13))
    assert moved.nearline_records == 6 and moved.offline_segments == 0
    assert [r.seq for r in scene.host.store.records(stream.id)] == [7, 8, 9, 10]
    (segment,) = scene.host.store.archives(stream.id)
    assert (segment.tier, segment.first_seq, segment.last_seq, segment.count) == (
        "nearline",
        1,
        6,
        6,
    )

    later = scene.host.age(scene.clock.now() + timedelta(days=32))
    assert later.nearline_records == 4 and later.offline_segments == 2
    archives = scene.host.store.archives(stream.id)
    assert [a.tier for a in archives] == ["offline", "offline"]
    assert scene.host.store.records(stream.id) == []
    blob = Path(archives[0].path or "").read_bytes()
    assert to_hex(keccak256(blob)) == archives[0].hash
    lines = [json.loads(line) for line in gzip.decompress(blob).decode().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5, 6]
    assert lines[0]["body"]["energyImportWh"] == 0
    # Numbering goes on after what was archived.
    publisher.meter_values(scene.oem.address, values[:1])
    assert [r.seq for r in scene.host.store.records(stream.id)] == [11]


def test_v2g_events_and_custom_streams(scene: Scene) -> None:
    event = V2GEvent(
        eventId="ev-1",
        program="peak-shave",
        startedAt=scene.clock.now(),
        endedAt=scene.clock.now() + timedelta(hours=1),
        energyWh=5_000,
        peakPowerW=10_000,
    )
    registration = DataPublisher(scene.host).v2g_events(scene.did(scene.driver), [event])
    assert registration.receipt.ok
    custom = scene.host.create_container(
        scene.driver.address, "battery-health", "stream", retention=timedelta(minutes=5)
    )
    assert custom.retention_s == 300 and custom.schema.endswith("BatteryHealth:1")
    with pytest.raises(Exception, match="schema"):
        scene.host.create_container(scene.driver.address, "battery-health", schema="other")


def test_invalid_records_are_refused_and_nothing_is_stored(scene: Scene) -> None:
    for bodies in ([], [{"stateOfHealthPercent": 101}], ["text"]):
        with pytest.raises(Refusal) as caught:
            scene.host.append(scene.bucket.id, bodies)  # type: ignore[arg-type]
        assert caught.value.reason is Reason.INVALID_DATA
    assert len(scene.host.store.records(scene.bucket.id)) == 3


def test_access_log_lists_who_did_what_and_when(scene: Scene) -> None:
    issue_access_certificate(
        scene.as_(scene.driver),
        scene.oem.address,
        scene.bucket.id,
        scene.bucket.uri,
        Role.READER,
        scene.expires(),
        scene.clock,
    )
    session, _ = scene.host.unlock(scene.unlock_request(scene.oem))
    scene.host.read(session.token, scene.bucket.id)
    with pytest.raises(Refusal):
        scene.host.unlock(scene.unlock_request(scene.insurer))
    forged = scene.unlock_request(scene.insurer)
    forged["role"] = "writer"
    with pytest.raises(Refusal):
        scene.host.unlock(forged)
    auditor, _ = scene.host.unlock(scene.unlock_request(scene.driver, Role.AUDITOR))
    entries = scene.host.audit(auditor.token, scene.bucket.id)
    seen = [(e.accessor, e.action, e.outcome, e.reason) for e in reversed(entries)]
    assert seen == [
        (scene.oem.address, "unlock", "granted", ""),
        (scene.oem.address, "read", "granted", ""),
        (scene.insurer.address, "unlock", "refused", "not_granted"),
        (scene.insurer.address, "unlock", "refused", "bad_signature"),
        (scene.driver.address, "unlock", "granted", ""),
        (scene.driver.address, "audit", "granted", ""),
    ]
    read = next(e for e in entries if e.action == "read")
    assert read.records == 3 and read.via.startswith("0x")
    assert all(e.at.tzinfo is not None for e in entries)
    assert scene.host.access_log(scene.driver.address) == entries
    assert scene.host.access_log(scene.oem.address) == []
    as_json = entries[0].to_json(scene.chain_id)
    assert as_json["accessor"] == scene.did(scene.driver) and "stateOfHealth" not in str(as_json)


def test_containers_opened_on_a_signed_request(scene: Scene) -> None:
    def request(account: Account, **body: object) -> dict[str, object]:
        return sign_request(
            account,
            scene.chain_id,
            {"type": "ContainerRequest", "owner": scene.did(account), **body},
            scene.host.did,
            scene.clock.now(),
        )

    opened = scene.host.open_container(request(scene.oem, dataType="v2g-events"))
    assert opened.kind == "stream" and opened.owner == scene.oem.address
    assert scene.host.containers(scene.oem.address) == [opened]
    bucket = scene.host.open_container(request(scene.oem, kind="bucket", dataType="v2g-events"))
    assert bucket.kind == "bucket"
    with pytest.raises(Refusal) as caught:
        scene.host.open_container(request(Account.generate(), dataType="v2g-events"))
    assert caught.value.reason is Reason.NOT_ONBOARDED
    with pytest.raises(Refusal) as caught:
        scene.host.open_container(request(scene.oem, dataType="tyre-wear"))
    assert caught.value.reason is Reason.DATA_TYPE
    replay = request(scene.oem, dataType="v2g-events")
    scene.host.open_container(replay)
    with pytest.raises(Refusal) as caught:
        scene.host.open_container(replay)
    assert caught.value.reason is Reason.REPLAYED


def test_a_second_host_process_serves_the_same_data(scene: Scene) -> None:
    """`evgi serve` and a CLI command open the same host (one key, one database)."""
    other = DataHost.open(scene.platform)
    try:
        assert other.did == scene.host.did
        assert other.container(scene.bucket.id) == scene.bucket
    finally:
        other.close()

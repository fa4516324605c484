"""The data host over real HTTP on loopback (`evgi serve`): each bad request gets its specific
4xx with a reason and no data; good ones open sessions, read, write and list the access log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from evgi.core import Account, EntityKind
from evgi.identity import issue_entity_certificate, offboard_entity
from evgi.permissions import (
    Role,
    issue_access_certificate,
    issue_bootstrap_certificate,
    issue_revocation_certificate,
    sign_request,
    sign_unlock_request,
)
from tests.data.scene import Scene, build_scene
from tests.service_runner import running_service


@dataclass
class Http:
    base: str
    scene: Scene

    def unlock(self, account: Account, role: Role = Role.READER, **changes: Any) -> httpx.Response:
        request = sign_unlock_request(
            account,
            self.scene.chain_id,
            self.scene.host.did,
            self.scene.bucket.id,
            role,
            datetime.now(UTC),
        )
        return httpx.post(f"{self.base}/data/unlock", json={**request, **changes})

    def read(self, token: str) -> httpx.Response:
        return httpx.get(
            f"{self.base}/data/containers/{self.scene.bucket.id}/records",
            headers={"Authorization": f"Bearer {token}"},
        )

    def grant(self, to: Account, seconds: float = 86_400, role: Role = Role.READER) -> str:
        issued = issue_access_certificate(
            self.scene.as_(self.scene.driver),
            to.address,
            self.scene.bucket.id,
            self.scene.bucket.uri,
            role,
            datetime.now(UTC) + timedelta(seconds=seconds),
        )
        return issued.hash


@pytest.fixture
def http(tmp_path: Path) -> Iterator[Http]:
    with running_service(tmp_path) as base:
        scene = build_scene(tmp_path / "evgi-data")
        try:
            yield Http(base, scene)
        finally:
            scene.host.close()
            scene.platform.close()


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The refusal's status and reason; it carries none of the data (no record, no reading)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    reason = body["reason"] if "reason" in body else body["detail"]
    assert reason["code"] == code, body
    assert "99.5" not in response.text and "98.5" not in response.text
    return body


def test_share_read_refuse_revoke(http: Http) -> None:
    scene = http.scene
    paths = httpx.get(f"{http.base}/openapi.json").json()["paths"]
    assert "/data/unlock" in paths and "/data/containers/{container_id}/records" in paths
    assert "requestBody" in paths["/data/unlock"]["post"]
    host = httpx.get(f"{http.base}/data/host").json()
    assert host["did"] == scene.host.did
    assert host["dbc"][0]["credentialSubject"]["id"] == host["did"]

    ac = http.grant(scene.oem)
    unlocked = http.unlock(scene.oem)
    assert unlocked.status_code == 200, unlocked.text
    answer = unlocked.json()
    assert answer["accepted"] is True and answer["session"]["grant"] == ac
    assert answer["session"]["scope"] == {
        "container": scene.bucket.id,
        "uri": scene.bucket.uri,
        "role": "reader",
    }
    assert answer["dbc"] == scene.bucket.dbc
    token = answer["session"]["token"]
    page = http.read(token)
    assert page.status_code == 200
    assert [r["body"]["stateOfHealthPercent"] for r in page.json()["records"]] == [99.5, 99, 98.5]
    assert http.read(token).json()["next"] == 3
    more = httpx.get(
        f"{http.base}/data/containers/{scene.bucket.id}/records",
        params={"after": 2},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert [r["seq"] for r in more.json()["records"]] == [3]

    body = refused(http.unlock(scene.insurer), 403, "not_granted")
    assert body["accepted"] is False and body["session"] is None

    issue_revocation_certificate(scene.as_(scene.driver), ac)
    refused(http.read(token), 403, "revoked")
    refused(http.unlock(scene.oem), 403, "revoked")

    auditor = http.unlock(scene.driver, Role.AUDITOR).json()["session"]["token"]
    log = httpx.get(
        f"{http.base}/data/containers/{scene.bucket.id}/access-log",
        headers={"Authorization": f"Bearer {auditor}"},
    )
    assert log.status_code == 200
    outcomes = [
        (e["accessor"], e["action"], e["outcome"], e["reason"])
        for e in reversed(log.json()["entries"])
    ]
    oem, insurer = scene.did(scene.oem), scene.did(scene.insurer)
    assert outcomes[:7] == [
        (oem, "unlock", "granted", ""),
        (oem, "read", "granted", ""),
        (oem, "read", "granted", ""),
        (oem, "read", "granted", ""),
        (insurer, "unlock", "refused", "not_granted"),
        (oem, "read", "refused", "revoked"),
        (oem, "unlock", "refused", "revoked"),
    ]
    refused(
        httpx.get(
            f"{http.base}/data/containers/{scene.bucket.id}/access-log",
            headers={"Authorization": f"Bearer {token}"},
        ),
        403,
        "out_of_scope",
    )


def test_bad_unlock_requests(http: Http) -> None:
    scene = http.scene
    http.grant(scene.oem)
    forged = sign_unlock_request(
        Account.generate(),
        scene.chain_id,
        scene.host.did,
        scene.bucket.id,
        Role.READER,
        datetime.now(UTC),
    )
    refused(http.unlock(scene.oem, proof=forged["proof"]), 401, "bad_signature")
    refused(http.unlock(scene.oem, container="b-000000000000"), 401, "bad_signature")
    refused(http.unlock(scene.oem, proof=None), 401, "missing_signature")

    request = sign_unlock_request(
        scene.oem, scene.chain_id, scene.host.did, scene.bucket.id, Role.READER, datetime.now(UTC)
    )
    assert httpx.post(f"{http.base}/data/unlock", json=request).status_code == 200
    body = refused(httpx.post(f"{http.base}/data/unlock", json=request), 409, "replayed")
    assert body["requestId"] == request["id"]

    stale = sign_unlock_request(
        scene.oem,
        scene.chain_id,
        scene.host.did,
        scene.bucket.id,
        Role.READER,
        datetime.now(UTC) - timedelta(minutes=10),
    )
    refused(httpx.post(f"{http.base}/data/unlock", json=stale), 401, "stale")
    elsewhere = sign_unlock_request(
        scene.oem,
        scene.chain_id,
        scene.did(Account.generate()),
        scene.bucket.id,
        Role.READER,
        datetime.now(UTC),
    )
    refused(httpx.post(f"{http.base}/data/unlock", json=elsewhere), 421, "wrong_host")
    refused(httpx.post(f"{http.base}/data/unlock", content=b"{not json"), 400, "malformed")
    refused(httpx.post(f"{http.base}/data/unlock", json=[1]), 400, "malformed")
    missing = sign_unlock_request(
        scene.oem, scene.chain_id, scene.host.did, "b-000000000000", Role.READER, datetime.now(UTC)
    )
    refused(httpx.post(f"{http.base}/data/unlock", json=missing), 404, "unknown_container")
    refused(http.unlock(Account.generate()), 403, "not_onboarded")
    padded = {**request, "padding": "x" * 20_000}
    body = refused(httpx.post(f"{http.base}/data/unlock", json=padded), 400, "malformed")
    assert "at most" in body["reason"]["message"]
    # Other methods and paths under /data go on to the router as before.
    assert httpx.get(f"{http.base}/data/unlock").status_code == 405
    assert httpx.get(f"{http.base}/data/containers//records").status_code == 404


def test_expired_blocked_and_offboarded_accessors(http: Http) -> None:
    scene = http.scene
    http.grant(scene.oem, seconds=2)
    assert http.unlock(scene.oem).status_code == 200
    http.grant(scene.insurer)
    assert http.unlock(scene.insurer).status_code == 200

    scene.as_(scene.driver).call("permissions", "block", accessor=scene.insurer.address)
    refused(http.unlock(scene.insurer), 403, "blocked")
    offboard_entity(scene.anchor, scene.insurer.address, "licence withdrawn")
    refused(http.unlock(scene.insurer), 403, "offboarded")

    time.sleep(max(0.0, 3.1 - (time.time() % 1)))  # past the AC's whole-second expiry
    refused(http.unlock(scene.oem), 403, "expired")


def test_sessions_tokens_and_writes(http: Http) -> None:
    scene = http.scene
    refused(http.read("nonsense"), 401, "bad_token")
    refused(httpx.get(f"{http.base}/data/containers/{scene.bucket.id}/records"), 401, "bad_token")
    http.grant(scene.oem)
    token = http.unlock(scene.oem).json()["session"]["token"]
    refused(
        httpx.get(
            f"{http.base}/data/containers/b-000000000000/records",
            headers={"Authorization": f"Bearer {token}"},
        ),
        403,
        "out_of_scope",
    )
    refused(
        httpx.get(
            f"{http.base}/data/containers/{scene.bucket.id}/records",
            params={"limit": "lots"},
            headers={"Authorization": f"Bearer {token}"},
        ),
        400,
        "malformed",
    )
    record = {
        "battery": scene.did(scene.oem),
        "measuredAt": "2025-06-01T00:00:00Z",
        "stateOfHealthPercent": 97.25,
        "usableCapacityWh": 76_000,
        "equivalentFullCycles": 90,
    }
    records_url = f"{http.base}/data/containers/{scene.bucket.id}/records"
    refused(
        httpx.post(records_url, json=[record], headers={"Authorization": f"Bearer {token}"}),
        403,
        "out_of_scope",
    )
    writer = http.unlock(scene.driver, Role.WRITER).json()["session"]["token"]
    written = httpx.post(records_url, json=[record], headers={"Authorization": f"Bearer {writer}"})
    assert written.status_code == 201, written.text
    registration = written.json()["registration"]
    assert scene.platform.ledger.query("permissions", "data", hash=registration)["count"] == 1
    assert http.read(token).json()["records"][-1]["body"]["stateOfHealthPercent"] == 97.25
    refused(
        httpx.post(records_url, json=[{"x": 1}], headers={"Authorization": f"Bearer {writer}"}),
        422,
        "invalid_data",
    )


def test_certificates_and_containers_over_http(http: Http) -> None:
    scene = http.scene
    issued = issue_access_certificate(
        scene.as_(scene.driver),
        scene.oem.address,
        scene.bucket.id,
        scene.bucket.uri,
        Role.READER,
        datetime.now(UTC) + timedelta(days=1),
    )
    delivered = httpx.post(f"{http.base}/data/certificates", json=issued.document)
    assert delivered.status_code == 201 and delivered.json()["type"] == "ac"
    unsigned = {k: v for k, v in issued.document.items() if k != "proof"}
    refused(httpx.post(f"{http.base}/data/certificates", json=unsigned), 401, "missing_signature")
    forged = {
        **issued.document,
        "credentialSubject": {**issued.document["credentialSubject"], "role": "auditor"},
    }
    refused(httpx.post(f"{http.base}/data/certificates", json=forged), 401, "bad_signature")

    other = Account.generate()
    issue_entity_certificate(
        scene.anchor,
        other.address,
        EntityKind.DATA_HOST,
        {"legalName": "Other host", "dataTypes": ["battery-health"]},
    )
    foreign = issue_bootstrap_certificate(
        scene.anchor, other.address, ["battery-health"], datetime.now(UTC) + timedelta(days=1)
    )
    refused(httpx.post(f"{http.base}/data/certificates", json=foreign.document), 403, "other_host")

    def container_request(account: Account, data_type: str) -> dict[str, object]:
        return sign_request(
            account,
            scene.chain_id,
            {"type": "ContainerRequest", "owner": scene.did(account), "dataType": data_type},
            scene.host.did,
            datetime.now(UTC),
        )

    opened = httpx.post(
        f"{http.base}/data/containers", json=container_request(scene.oem, "meter-values")
    )
    assert opened.status_code == 201, opened.text
    assert opened.json()["kind"] == "stream" and opened.json()["owner"] == scene.did(scene.oem)
    described = httpx.get(f"{http.base}/data/containers/{opened.json()['id']}")
    assert described.json()["uri"] == opened.json()["uri"]
    refused(
        httpx.post(f"{http.base}/data/containers", json=container_request(scene.oem, "tyre-wear")),
        403,
        "data_type",
    )
    refused(httpx.get(f"{http.base}/data/containers/b-000000000000"), 404, "unknown_container")

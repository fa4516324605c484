"""`evgi serve` over real HTTP on loopback: health, OpenAPI, ledger and DID resolution."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.service_runner import running_service


def test_service_answers_over_http(tmp_path: Path) -> None:
    with running_service(tmp_path) as base:
        health = httpx.get(f"{base}/api/health").json()
        assert health["status"] == "ok"
        assert httpx.get(f"{base}/docs").status_code == 200
        paths = httpx.get(f"{base}/openapi.json").json()["paths"]
        assert "/api/identity/1.0/identifiers/{did}" in paths

        key = json.loads((tmp_path / "evgi-data" / "keys" / "trust-anchor.json").read_text())
        did = f"did:ethr:0x539:0x{key['address'].lower()}"
        resolved = httpx.get(f"{base}/api/identity/1.0/identifiers/{did}")
        assert resolved.status_code == 200
        assert resolved.json()["didDocument"]["id"] == did
        assert httpx.get(f"{base}/api/identity/1.0/identifiers/did:web:x").status_code == 400
        other = httpx.get(f"{base}/api/identity/1.0/identifiers/did:ethr:0x1:0x{'0' * 40}")
        assert other.status_code == 404

        head = httpx.get(f"{base}/api/ledger/head").json()
        # The charging token settlement creates on first start may already be on the ledger.
        assert head["chainId"] == 1337 and head["block"]["height"] == health["ledger"]["height"]
        assert httpx.get(f"{base}/api/ledger/blocks/7").status_code == 404
        assert httpx.get(f"{base}/api/ledger/transactions/0x{'00' * 32}").status_code == 404
        check = httpx.post(f"{base}/api/identity/entity-certificates/verify", json={"a": 1})
        assert check.status_code == 200 and check.json()["valid"] is False

"""The README's data-sharing walk-through, run as a new user would: the real `evgi` command in a
fresh folder: create a bucket, grant, read, revoke, read refused, and the access log."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli_runner import run_evgi

READING = json.dumps(
    {
        "battery": "did:ethr:0x539:0x00000000000000000000000000000000000000b1",
        "measuredAt": "2025-06-01T08:00:00Z",
        "stateOfHealthPercent": 96.5,
        "usableCapacityWh": 74300,
        "equivalentFullCycles": 180,
    }
)


def test_create_grant_read_revoke_refused(tmp_path: Path) -> None:
    def evgi(*args: str, code: int = 0) -> str:
        result = run_evgi(tmp_path, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        return result.stdout + result.stderr

    evgi("identity", "create", "alice", "--kind", "user")
    evgi(
        "identity",
        "issue-ec",
        "--issuer",
        "trust-anchor",
        "--subject",
        "alice",
        "--kind",
        "user",
        "--out",
        "alice-ec.json",
    )
    evgi("identity", "create", "acme", "--kind", "oem")
    evgi(
        "identity",
        "issue-ec",
        "--issuer",
        "trust-anchor",
        "--subject",
        "acme",
        "--kind",
        "oem",
        "--claims",
        '{"legalName": "Acme Motors", "country": "DE"}',
        "--out",
        "acme-ec.json",
    )

    created = run_evgi(
        tmp_path, "data", "create-bucket", "--owner", "alice", "--type", "battery-health"
    )
    assert created.returncode == 0, created.stderr
    bucket = created.stdout.strip()
    assert re.fullmatch(r"b-[0-9a-f]{12}", bucket)
    assert "stored 1 record(s)" in evgi("data", "put", bucket, "--as", "alice", "--json", READING)
    evgi("data", "read", bucket, "--as", "acme", code=1)  # nothing granted yet

    granted = evgi("data", "grant", bucket, "--owner", "alice", "--to", "acme", "--days", "30")
    ac = re.search(r"access certificate (0x[0-9a-f]{64})", granted)
    assert ac is not None
    read = run_evgi(tmp_path, "data", "read", bucket, "--as", "acme")
    assert read.returncode == 0, read.stderr
    page = json.loads(read.stdout)
    assert [r["body"]["stateOfHealthPercent"] for r in page["records"]] == [96.5]

    assert f"revoked {ac.group(1)}" in evgi(
        "data", "revoke", bucket, "--owner", "alice", "--from", "acme"
    )
    refused = run_evgi(tmp_path, "data", "read", bucket, "--as", "acme")
    assert refused.returncode == 1 and "refused (revoked)" in refused.stderr
    assert "96.5" not in refused.stdout + refused.stderr

    log = evgi("data", "log", "--owner", "alice")
    rows = [line for line in log.splitlines() if bucket[:6] in line]
    assert any("acme" in r and "granted" in r and "read" in r for r in rows)
    assert any("acme" in r and "refused" in r and "revoked" in r for r in rows)
    assert "ok" in evgi("ledger", "verify")

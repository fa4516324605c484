"""The `evgi` command as a new user meets it: keys, certificates, resolution and the ledger."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.cli_runner import run_evgi


def test_identity_and_ledger_commands(tmp_path: Path) -> None:
    created = run_evgi(tmp_path, "identity", "create", "alice", "--kind", "user")
    assert created.returncode == 0, created.stderr
    alice = json.loads(created.stdout)
    assert alice["did"] == f"did:ethr:0x539:{alice['address']}"
    assert alice["eid"].startswith("EVGI-US-")
    assert (tmp_path / "evgi-data" / "keys" / "trust-anchor.json").exists()

    issued = run_evgi(
        tmp_path,
        "identity",
        "issue-ec",
        "--issuer",
        "trust-anchor",
        "--subject",
        "alice",
        "--kind",
        "user",
        "--claims",
        '{"role": "driver"}',
        "--out",
        "alice.json",
    )
    assert issued.returncode == 0, issued.stderr
    assert "anchored 0x" in issued.stderr
    verified = run_evgi(tmp_path, "identity", "verify-ec", "alice.json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["valid"] is True

    resolved = run_evgi(tmp_path, "identity", "resolve", "alice")
    assert json.loads(resolved.stdout)["didDocument"]["id"] == alice["did"]

    refused = run_evgi(
        tmp_path,
        "identity",
        "issue-ec",
        "--issuer",
        "alice",
        "--subject",
        "0x" + "12" * 20,
        "--kind",
        "charger",
        "--claims",
        "{}",
    )
    assert refused.returncode == 2
    assert "invalid charger claims" in refused.stderr

    off = run_evgi(tmp_path, "identity", "offboard", "alice", "--by", "trust-anchor")
    assert off.returncode == 0, off.stderr
    after = run_evgi(tmp_path, "identity", "verify-ec", "alice.json")
    assert after.returncode == 1
    assert "off-boarded" in json.loads(after.stdout)["reason"]

    shown = run_evgi(tmp_path, "ledger", "show")
    assert "chain 1337" in shown.stdout
    match = re.search(r"\(tx (0x[0-9a-f]{64})\)", issued.stderr)
    assert match, issued.stderr
    tx_hash = match.group(1)
    tx = run_evgi(tmp_path, "ledger", "tx", tx_hash)
    assert tx.returncode == 0, tx.stderr
    shown_tx = json.loads(tx.stdout)
    assert shown_tx["receipt"]["status"] == "ok"
    assert shown_tx["proof"]["merkle"]["item"] == tx_hash

    ok = run_evgi(tmp_path, "ledger", "verify")
    assert ok.returncode == 0 and "ledger ok" in ok.stdout

    # Edit one stored transaction: verification fails and names its block.
    block = shown_tx["receipt"]["block"]
    with sqlite3.connect(tmp_path / "evgi-data" / "evgi.db") as conn:
        conn.execute(
            "UPDATE ledger_transactions SET body = replace(body, 'user', 'oem') WHERE hash = ?",
            (tx_hash,),
        )
    broken = run_evgi(tmp_path, "ledger", "verify")
    assert broken.returncode == 1
    assert f"failed at block {block}" in broken.stderr


def test_configuration_errors_are_reported(tmp_path: Path) -> None:
    bad = run_evgi(tmp_path, "--db", "mysql://nope", "ledger", "show")
    assert bad.returncode == 2
    assert "sqlite:// or postgresql://" in bad.stderr
    missing = run_evgi(tmp_path, "ledger", "tx", "0x" + "00" * 32)
    assert missing.returncode == 2 and "no transaction" in missing.stderr

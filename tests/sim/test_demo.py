"""`evgi demo`, the main job: runs with no arguments and writes a report whose checks all pass."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_runner import run_evgi


def test_demo_runs_and_reports(tmp_path: Path) -> None:
    result = run_evgi(tmp_path, "demo")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "evgi-data" / "demo"
    assert str((folder / "report.html").resolve()) in result.stdout
    report = json.loads((folder / "report.json").read_text())
    assert report["ok"] is True and report["failures"] == []
    titles = [s["title"] for s in report["sections"]]
    assert titles[:3] == ["Entities and their certificates", "DID documents", "Off-boarding"]
    assert titles[-2:] == ["Data sharing", "Ledger"]
    sections = {s["title"]: s for s in report["sections"]}
    entities = report["sections"][0]["rows"]
    kinds = [row["kind"] for row in entities]
    for kind, count in {
        "cpo": 1,
        "emsp": 1,
        "oem": 1,
        "utility": 1,
        "user": 3,
        "vehicle": 3,
        "charger": 5,
        "meter": 5,
    }.items():
        assert kinds.count(kind) == count, kind
    assert all(row["verification"] == "valid" for row in entities)
    offboarding = report["sections"][2]["rows"]
    assert offboarding[0]["result"] == "valid"
    assert "off-boarded in block" in offboarding[1]["result"]
    assert "not anchored" in offboarding[2]["result"]
    ledger = sections["Ledger"]["data"]
    assert ledger["ok"] is True and ledger["transactions"] > 20
    sharing = sections["Data sharing"]
    log = [(r["accessor"], r["action"], r["outcome"], r["reason"]) for r in sharing["rows"]]
    ac = sharing["data"]["accessCertificate"]
    assert log[:5] == [
        ("aurora-motors", "unlock", "granted", ac),
        ("aurora-motors", "read", "granted", ac),
        ("lumen-insurance", "unlock", "refused", "not_granted"),
        ("aurora-motors", "read", "refused", "revoked"),
        ("aurora-motors", "unlock", "refused", "revoked"),
    ]
    assert [e["HTTP status"] for e in sharing["data"]["exchanges"]] == [
        201,
        200,
        200,
        403,
        201,
        403,
        403,
        200,
        200,
    ]
    charging = sections["Charging sessions (OCPP)"]
    sessions = charging["rows"]
    assert [(r["driver"], r["station"], r["version"]) for r in sessions] == [
        ("driver-1", "charger-1", "1.6"),
        ("driver-2", "charger-2", "2.0.1"),
        ("driver-3", "charger-3", "2.1"),
    ]
    assert all(r["energy Wh"] > 0 and r["token"] and r["start"] < r["stop"] for r in sessions)
    assert charging["data"]["schema_violations"] == 0 and charging["data"]["messages_checked"] > 50
    assert charging["plots"] == ["Energy per session"]
    v2g = sections["V2G and the feeder (IEEE 2030.5 / 1547)"]
    rows = {row["vehicle"]: row for row in v2g["rows"]}
    assert [row["OCPP"] for row in v2g["rows"]] == ["2.1"] * 5 + ["1.6"]
    paid = v2g["data"]["export_payments"]
    assert set(paid) == {"vehicle-1", "vehicle-3", "vehicle-4"}
    for vehicle, payment in paid.items():
        assert payment["amount_minor"] == payment["export_wh"] * 45 // 1000 > 0
        assert rows[vehicle]["exported kWh"] == round(payment["export_wh"] / 1000, 2)
        assert rows[vehicle]["DER alarms"] == 1
    assert v2g["data"]["der_control"] == {"station": "home-evse-1", "status": "Accepted"}
    html = (folder / "report.html").read_text()
    assert html.count("<table>") >= 4 and "data:image/png;base64," in html

    # A second run starts afresh and the ledger it leaves verifies from the command line.
    assert run_evgi(tmp_path, "demo").returncode == 0
    verify = run_evgi(tmp_path, "--data-dir", "evgi-data/demo/data", "ledger", "verify")
    assert verify.returncode == 0, verify.stderr

"""The settlement part of `evgi demo`: every session paid from escrow on its CDR, the CDRs anchored,
a proof a third party can check, and an invoice per session next to the report."""

from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest

from tests.cli_runner import run_evgi


@pytest.mark.slow
def test_demo_settles_every_session(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = run_evgi(tmp_path, "demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True, report["failures"]
    sections = {s["title"]: s for s in report["sections"]}

    sessions = sections["Settlement: sessions"]
    assert len(sessions["rows"]) == len(sections["Charging sessions (OCPP)"]["rows"]) == 3
    page = lxml.html.fromstring((out / "report.html").read_text())
    hrefs = [a.get("href") for a in page.iter("a")]
    for row, link in zip(sessions["rows"], sessions["links"], strict=True):
        assert link["href"] == row["invoice"] and link["href"] in hrefs
        invoice = (out / link["href"]).read_text()
        assert row["CDR digest"] in invoice and row["total incl. VAT"] in invoice

    balances = {row["account"]: row for row in sections["Settlement: balances"]["rows"]}
    assert set(balances) == {
        "driver-1",
        "driver-2",
        "driver-3",
        "volt-charge (CPO)",
        "roampay (eMSP)",
    }

    def change(name: str) -> int:
        amount = balances[name]["change"].removesuffix(" EUR").replace(".", "")
        return int(amount)

    assert all(change(f"driver-{i}") < 0 for i in (1, 2, 3))
    assert change("volt-charge (CPO)") > 0 and change("roampay (eMSP)") > 0
    assert sum(change(name) for name in balances) == 0

    proof = sections["Settlement: anchoring and proof"]["rows"]
    assert proof[0]["result"].startswith("valid") and proof[1]["result"].startswith("refused")
    # the proof written next to the report checks out from the command line, too
    verified = run_evgi(
        tmp_path,
        "--data-dir",
        str(out / "data"),
        "settlement",
        "verify-proof",
        str(out / "proof.json"),
    )
    assert verified.returncode == 0, verified.stderr
    assert "proof valid" in verified.stdout

"""`evgi grid` as an operator runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli_runner import run_evgi


@pytest.mark.slow
def test_operator_runs_programs_controls_and_devices(tmp_path: Path) -> None:
    def evgi(*args: str, code: int = 0) -> str:
        result = run_evgi(tmp_path, *args)
        assert result.returncode == code, result.stdout + result.stderr
        return result.stdout + result.stderr

    assert "grid CA" in evgi("grid", "ca-init")
    issued = evgi("grid", "issue-device", "evse-7", "--pin", "123455", "--out", str(tmp_path))
    lfdi = re.search(r"LFDI:\s+([0-9A-F]{40})", issued)
    assert lfdi is not None and (tmp_path / "evse-7.key.pem").exists()
    assert "already registered" in evgi("grid", "devices", "add", lfdi[1], "--pin", "1", code=2)

    evgi("grid", "program", "create", "utility", "--primacy", "1", "--default", "opModConnect=true")
    curve = evgi(
        "grid",
        "program",
        "curve",
        "utility",
        "opModVoltVar",
        "--point",
        "92,30",
        "--point",
        "108,-30",
        "--y-ref-type",
        "2",
    ).split()[-1]
    refused = evgi(
        "grid",
        "control",
        "create",
        "utility",
        "--set",
        "opModExpLimW=5000",
        "--duration",
        "60",
        code=2,
    )
    assert "not a DERControlBase field of IEEE 2030.5-2018" in refused
    wrong_curve = evgi(
        "grid",
        "control",
        "create",
        "utility",
        "--curve",
        f"opModVoltWatt={curve}",
        "--duration",
        "60",
        code=2,
    )
    assert "needs a curve of that type" in wrong_curve
    control = evgi(
        "grid",
        "control",
        "create",
        "utility",
        "--set",
        "opModMaxLimW=5000",
        "--set",
        "opModTargetW=100000",
        "--curve",
        f"opModVoltVar={curve}",
        "--duration",
        "600",
        "--randomize-start",
        "30",
    ).split()[-1]
    evgi("grid", "control", "cancel", control)
    listed = json.loads(evgi("grid", "control", "list", "utility", "--json"))
    assert [(c["mrid"], c["status"]) for c in listed] == [(control, 3)]
    assert listed[0]["setpoints"]["opModTargetW"] == {"multiplier": 1, "value": 10000}
    devices = json.loads(evgi("grid", "devices", "list", "--json"))
    assert [(d["lfdi"], d["pin"]) for d in devices] == [(lfdi[1], 123455)]

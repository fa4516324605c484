"""`evgi grid` as an operator runs it, and `evgi grid client` as an EVSE runs it."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from evgi.grid.client import RECEIVED, STARTED, UOM_W
from evgi.storage.grid import GridStore
from tests.cli_runner import run_evgi
from tests.grid.conftest import GridSite
from tests.service_runner import free_port


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


class _Lines:
    """The JSON lines a running `evgi grid client --json` prints, as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("{"):
                self._queue.put(json.loads(line))

    def wait_for(self, wanted: Any, timeout: float = 60) -> dict[str, Any]:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        while (left := (deadline - datetime.now(UTC)).total_seconds()) > 0:
            try:
                entry = self._queue.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(entry)
            if wanted(entry):
                return entry
        raise AssertionError(f"no such line; seen: {self.seen}")


@contextmanager
def _device(site: GridSite, *args: str) -> Iterator[_Lines]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVGI_")}
    url = str(site.settings.database_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "evgi", "--db", url, "grid", "client", *args, "--json"],
        cwd=site.folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield _Lines(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def _power_mirrored(store: GridStore, lfdi: str) -> int:
    """The newest active power the device mirrored, 0 before any."""
    for point in store.usage_points(lfdi):
        for row in store.latest_readings(point.id):
            if row.uom == UOM_W:
                return int(row.value)
    return 0


@pytest.mark.slow
def test_device_client_runs_against_evgi_serve(grid_site: GridSite) -> None:
    site, store = grid_site, GridStore(grid_site.db)
    db = ("--db", str(site.settings.database_url))
    missing = run_evgi(site.folder, *db, "grid", "client", "evse-9", "--duration", "1")
    assert missing.returncode == 2 and "evgi grid issue-device evse-9" in missing.stderr

    limit = site.programs.create_control(
        "utility", {"opModMaxLimW": 5000}, datetime.now(UTC) - timedelta(minutes=1), 3600
    )
    folder = str(site.folder)
    with _device(
        site,
        "evse-9",
        "--dir",
        folder,
        "--issue",
        "--pin",
        "123455",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--interval",
        "0.2",
        "--telemetry",
        "1",
        "--setpoint",
        "9000",
    ) as lines:
        first = lines.wait_for(lambda e: "device" in e)
        assert lines.wait_for(lambda e: "registered" in e)["pin_checked"] is True
        subscribed = lines.wait_for(lambda e: "subscriptions" in e)
        assert len(subscribed["subscriptions"]) == 3
        shown = lines.wait_for(lambda e: "control" in e)
        assert shown["reachable"] and shown["events"] == [limit]
        assert shown["control"]["max_w"] == 5_500
        # Within the server's 900 s poll rate, a notification brings the new control in.
        tighter = site.programs.create_control(
            "utility", {"opModMaxLimW": 2000, "rampTms": 300}, datetime.now(UTC), 600
        )
        changed = lines.wait_for(lambda e: e.get("events") == [tighter])
        assert changed["control"]["max_w"] == 2_200 and changed["control"]["ramp_s"] == 3.0
        lfdi = first["device"]
        deadline = time.monotonic() + 30
        while not ("ders" in store.documents(lfdi) and _power_mirrored(store, lfdi) > 0):
            assert time.monotonic() < deadline, "no telemetry and DERStatus posted"
            time.sleep(0.2)
        lines.process.send_signal(signal.SIGINT)
        assert lines.process.wait(timeout=30) == 0
    assert store.device(lfdi).pin == 123455
    for mrid in (limit, tighter):
        assert {RECEIVED, STARTED} <= {row.status for row in store.responses(subject=mrid)}
    assert 0 < _power_mirrored(store, lfdi) <= 5_500

    wrong = run_evgi(
        site.folder, *db, "grid", "client", "evse-9", "--pin", "999990", "--duration", "5"
    )
    assert wrong.returncode == 2 and "PIN does not match" in wrong.stderr
    # No server to reach: the 1547 defaults, never no limits at all.
    with _device(
        site, "evse-9", "--server", f"https://127.0.0.1:{free_port()}", "--duration", "1"
    ) as lines:
        assert "unreachable" in lines.wait_for(lambda e: "unreachable" in e)
        alone = lines.wait_for(lambda e: "control" in e)
        assert not alone["reachable"] and alone["control"]["energize"]
        assert lines.process.wait(timeout=30) == 0

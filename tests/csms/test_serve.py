"""A new user's path: register a station and a token with the CLI, run `evgi serve`, connect."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ocpp.v16 import call as c16

from tests.cli_runner import run_evgi
from tests.csms.clients import station
from tests.service_runner import free_port, running_service

PASSWORD = "station-password-1"


def test_station_charges_through_evgi_serve(tmp_path: Path) -> None:
    added = run_evgi(tmp_path, "csms", "add-station", "CS-1", "--password", PASSWORD)
    assert added.returncode == 0, added.stderr
    assert run_evgi(tmp_path, "csms", "tokens", "add", "RFID-1").returncode == 0

    ocpp_port = free_port()

    async def charge() -> None:
        url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
        async with station(url, "CS-1", "ocpp1.6", PASSWORD) as cp:
            boot = await cp.call(
                c16.BootNotification(charge_point_vendor="Acme", charge_point_model="AC22")
            )
            assert boot.status == "Accepted"
            started = await cp.call(
                c16.StartTransaction(
                    connector_id=1, id_tag="RFID-1", meter_start=0, timestamp="2025-01-01T10:00:00Z"
                )
            )
            assert started.id_tag_info["status"] == "Accepted"
            await cp.call(
                c16.StopTransaction(
                    meter_stop=7400,
                    timestamp="2025-01-01T11:00:00Z",
                    transaction_id=started.transaction_id,
                )
            )

    with running_service(tmp_path, ocpp_port=ocpp_port):
        asyncio.run(charge())
    listed = run_evgi(tmp_path, "csms", "stations")
    assert listed.returncode == 0, listed.stderr
    assert "CS-1" in listed.stdout and "Acme / AC22" in listed.stdout
    tokens = run_evgi(tmp_path, "csms", "tokens", "list")
    assert "RFID-1" in tokens.stdout and "Accepted" in tokens.stdout

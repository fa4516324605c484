"""The operator API of a real `evgi serve`, with `ocpp`-library stations over real WebSockets:
what stations report shows in the API, commands reach them and their answers come back, and
every refusal (unknown, offline, silent, CALLERROR, unsupported, invalid) has its own answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibraryStation16
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as LibraryStation201
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from websockets.exceptions import InvalidStatus

from tests.csms.clients import raw_socket, station
from tests.service_runner import free_port, running_service

PASSWORD = "station-password-16"
T0 = "2025-03-01T10:00:00Z"
T1 = "2025-03-01T10:30:00Z"
T2 = "2025-03-01T11:00:00Z"
SIGNED_2X = {
    "signedMeterData": "T0NNRnx7fQ==",
    "signingMethod": "ECDSA-secp256r1-SHA256",
    "encodingMethod": "OCMF",
    "publicKey": "MFkwEwYHKoZIzj0CAQ==",
}


@dataclass(frozen=True)
class Service:
    base: str
    ocpp: str
    http: httpx.Client  # one client, so each request does not pay for building its own


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One `evgi serve` for the module; each test uses its own stations and tokens. Stations
    get one second to answer a command, so a silent one times out quickly."""
    folder: Path = tmp_path_factory.mktemp("serve")
    (folder / "evgi.toml").write_text("ocpp_call_timeout = 1.0\n")
    ocpp_port = free_port()
    with running_service(folder, ocpp_port=ocpp_port) as base, httpx.Client(base_url=base) as http:
        yield Service(base, f"ws://127.0.0.1:{ocpp_port}/ocpp", http)


class Station16(LibraryStation16):
    """Accepts what the CSMS asks and remembers it; ClearCache is not implemented."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.received: list[tuple[str, dict[str, Any]]] = []

    @on("Reset")
    def on_reset(self, **request: Any) -> r16.Reset:
        self.received.append(("Reset", request))
        return r16.Reset(status="Accepted")

    @on("RemoteStartTransaction")
    def on_remote_start(self, **request: Any) -> r16.RemoteStartTransaction:
        self.received.append(("RemoteStartTransaction", request))
        return r16.RemoteStartTransaction(status="Accepted")

    @on("SetChargingProfile")
    def on_set_profile(self, **request: Any) -> r16.SetChargingProfile:
        self.received.append(("SetChargingProfile", request))
        return r16.SetChargingProfile(status="Accepted")

    @on("ClearChargingProfile")
    def on_clear_profile(self, **request: Any) -> r16.ClearChargingProfile:
        self.received.append(("ClearChargingProfile", request))
        return r16.ClearChargingProfile(status="Accepted")


class Station201(LibraryStation201):
    @on("RequestStartTransaction")
    def on_request_start(self, **_: Any) -> r201.RequestStartTransaction:
        return r201.RequestStartTransaction(status="Accepted", transaction_id="TX-201")

    @on("GetVariables")
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **_: Any
    ) -> r201.GetVariables:
        return r201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                    "attribute_value": "60",
                }
                for d in get_variable_data
            ]
        )


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5) -> None:
    """Wait for what the CSMS stores after answering (a connection closing, for one)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def connected(api: httpx.AsyncClient, station_id: str, state: bool) -> bool:
    found: bool = (await api.get(f"/api/stations/{station_id}")).json()["connected"]
    return found is state


def register(service: Service, station_id: str, **fields: Any) -> None:
    answer = service.http.post(
        "/api/stations", json={"id": station_id, "password": PASSWORD, **fields}
    )
    assert answer.status_code == 201, answer.text


def detail(answer: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = answer.json()["detail"]
    return body


def test_ocpp16_station_transaction_and_commands(service: Service) -> None:
    register(service, "API-16")
    assert (
        service.http.post("/api/tokens", json={"token": "TAG-16", "group_id": "FLEET"}).status_code
        == 201
    )
    commands = "/api/stations/API-16/commands"

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=service.base) as api:
            async with station(service.ocpp, "API-16", "ocpp1.6", PASSWORD, Station16) as cp:
                boot = await cp.call(
                    c16.BootNotification(
                        charge_point_vendor="Acme",
                        charge_point_model="AC22",
                        firmware_version="1.2",
                    )
                )
                assert boot.status == "Accepted"
                await cp.call(
                    c16.StatusNotification(connector_id=1, error_code="NoError", status="Charging")
                )
                assert (await cp.call(c16.Authorize(id_tag="TAG-16"))).id_tag_info[
                    "status"
                ] == "Accepted"
                started = await cp.call(
                    c16.StartTransaction(
                        connector_id=1, id_tag="TAG-16", meter_start=1000, timestamp=T0
                    )
                )
                await cp.call(
                    c16.MeterValues(
                        connector_id=1,
                        transaction_id=started.transaction_id,
                        meter_value=[
                            {
                                "timestamp": T1,
                                "sampled_value": [
                                    {"value": "5.5", "unit": "kWh", "context": "Sample.Periodic"},
                                    {
                                        "value": "16.1",
                                        "measurand": "Current.Import",
                                        "phase": "L1",
                                        "unit": "A",
                                    },
                                    {
                                        "value": "AB12CD",
                                        "format": "SignedData",
                                        "context": "Transaction.End",
                                    },
                                ],
                            }
                        ],
                    )
                )

                shown = (await api.get("/api/stations/API-16")).json()
                assert (
                    shown["connected"],
                    shown["ocpp_version"],
                    shown["vendor"],
                    shown["model"],
                    shown["boot_status"],
                ) == (True, "ocpp1.6", "Acme", "AC22", "Accepted")
                assert shown["last_seen"] is not None
                [evse] = shown["evses"]
                assert (evse["evse_id"], evse["operational_status"]) == (1, "Operative")
                assert [
                    (c["connector_id"], c["status"], c["error_code"]) for c in evse["connectors"]
                ] == [(1, "Charging", "NoError")]
                active = (
                    await api.get(
                        "/api/transactions", params={"station_id": "API-16", "state": "active"}
                    )
                ).json()
                assert [t["transaction_id"] for t in active["items"]] == [
                    str(started.transaction_id)
                ]

                await cp.call(
                    c16.StopTransaction(
                        meter_stop=12000,
                        timestamp=T2,
                        transaction_id=started.transaction_id,
                        reason="EVDisconnected",
                        id_tag="TAG-16",
                    )
                )
                for _ in range(2):  # two more, to page through
                    more = await cp.call(
                        c16.StartTransaction(
                            connector_id=1, id_tag="TAG-16", meter_start=0, timestamp=T2
                        )
                    )
                    await cp.call(
                        c16.StopTransaction(
                            meter_stop=10, timestamp=T2, transaction_id=more.transaction_id
                        )
                    )

                # the transaction with its meter values
                found = (
                    await api.get(f"/api/stations/API-16/transactions/{started.transaction_id}")
                ).json()
                assert (
                    found["state"],
                    found["id_token"],
                    found["group_id"],
                    found["meter_start_wh"],
                    found["meter_stop_wh"],
                    found["energy_wh"],
                    found["stop_reason"],
                ) == ("ended", "TAG-16", "FLEET", 1000, 12000, 11000, "EVDisconnected")
                assert [
                    (m["measurand"], m["phase"], m["unit"], m["context"], m["value"], m["signed"])
                    for m in found["meter_values"]
                ] == [
                    ("Energy.Active.Import.Register", None, "kWh", "Sample.Periodic", 5.5, None),
                    ("Current.Import", "L1", "A", "Sample.Periodic", 16.1, None),
                    (
                        "Energy.Active.Import.Register",
                        None,
                        "Wh",
                        "Transaction.End",
                        None,
                        "AB12CD",
                    ),
                ]
                by_number = (await api.get(f"/api/transactions/{found['number']}")).json()
                assert by_number == found

                # filters and pages
                async def numbers(**params: Any) -> tuple[list[int], int | None]:
                    page = (
                        await api.get(
                            "/api/transactions", params={"station_id": "API-16", **params}
                        )
                    ).json()
                    return [t["number"] for t in page["items"]], page["next_after"]

                every, last = await numbers()
                assert len(every) == 3 and last is None
                assert await numbers(limit=2) == (every[:2], every[1])
                assert await numbers(limit=2, after=every[1]) == (every[2:], None)
                assert (await numbers(id_token="TAG-16"))[0] == every
                assert (await numbers(id_token="TAG-other"))[0] == []
                assert (await numbers(state="active"))[0] == []
                assert (await numbers(since="2025-03-01T10:59:00Z", until="2025-03-01T10:01:00Z"))[
                    0
                ] == every[:1]
                assert (await numbers(until=T0))[0] == []
                assert (await numbers(since="2025-03-01T11:00:01Z"))[0] == []
                assert (await api.get("/api/transactions", params={"limit": 0})).status_code == 422
                assert (await api.get("/api/transactions/999999")).status_code == 404

                # commands reach the station, and its answer comes back
                reset = await api.post(f"{commands}/reset", json={"immediate": False})
                assert reset.status_code == 200, reset.text
                assert reset.json() == {"action": "Reset", "answer": {"status": "Accepted"}}
                start = await api.post(
                    f"{commands}/remote-start", json={"id_token": "TAG-16", "evse_id": 1}
                )
                assert start.json()["answer"] == {"status": "Accepted"}
                assert cp.received[:2] == [
                    ("Reset", {"type": "Soft"}),
                    ("RemoteStartTransaction", {"id_tag": "TAG-16", "connector_id": 1}),
                ]
                profile = {
                    "chargingProfileId": 7,
                    "stackLevel": 1,
                    "chargingProfilePurpose": "TxDefaultProfile",
                    "chargingProfileKind": "Absolute",
                    "chargingSchedule": {
                        "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                    },
                }
                profiles = "/api/stations/API-16/charging-profiles"
                put = await api.post(profiles, json={"evse_id": 1, "profile": profile})
                assert put.json()["answer"] == {"status": "Accepted"}
                [kept] = (await api.get(profiles)).json()
                assert (kept["profile_id"], kept["evse_id"], kept["purpose"], kept["body"]) == (
                    7,
                    1,
                    "TxDefaultProfile",
                    profile,
                )
                cleared = await api.delete(f"{profiles}/7")
                assert cleared.json()["answer"] == {"status": "Accepted"}
                assert cp.received[-1] == ("ClearChargingProfile", {"id": 7})
                assert (await api.get(profiles)).json() == []

                # refusals
                not_implemented = await api.post(f"{commands}/clear-cache")
                assert not_implemented.status_code == 502
                assert (detail(not_implemented)["code"], detail(not_implemented)["error_code"]) == (
                    "station_call_error",
                    "NotImplemented",
                )
                one_evse = await api.post(f"{commands}/reset", json={"evse_id": 1})
                assert (one_evse.status_code, detail(one_evse)["code"]) == (
                    400,
                    "unsupported_command",
                )
                not_16 = await api.post(f"{commands}/call", json={"action": "GetBaseReport"})
                assert (not_16.status_code, detail(not_16)["code"]) == (400, "unsupported_command")
                not_a_number = await api.post(
                    f"{commands}/remote-stop", json={"transaction_id": "TX-A"}
                )
                assert (not_a_number.status_code, detail(not_a_number)["code"]) == (400, "invalid")
                too_long = await api.post(f"{commands}/remote-start", json={"id_token": "X" * 21})
                assert too_long.status_code == 400
                assert "RemoteStartTransaction" in detail(too_long)["message"]
                assert (await api.post(f"{commands}/unlock", json={})).status_code == 422
                assert (await api.post("/api/stations/NOPE/commands/reset")).status_code == 404

                raw = await api.post(
                    f"{commands}/call", json={"action": "Reset", "payload": {"type": "Hard"}}
                )
                assert raw.json() == {"action": "Reset", "answer": {"status": "Accepted"}}
                assert cp.received[-1] == ("Reset", {"type": "Hard"})
                bad_raw = await api.post(
                    f"{commands}/call", json={"action": "Reset", "payload": {"kind": "Hard"}}
                )
                assert (bad_raw.status_code, detail(bad_raw)["code"]) == (400, "invalid")

            await eventually(lambda: connected(api, "API-16", False))
            offline = await api.post(f"{commands}/reset")
            assert (offline.status_code, detail(offline)["code"]) == (409, "station_offline")

            # a station that never answers: 504 after the call timeout, or the one asked for
            register(service, "API-MUTE")
            async with raw_socket(service.ocpp, "API-MUTE", ["ocpp1.6"], PASSWORD):
                await eventually(lambda: connected(api, "API-MUTE", True))
                silent = await api.post("/api/stations/API-MUTE/commands/reset")
                assert (silent.status_code, detail(silent)["code"]) == (504, "station_timeout")
                raw = await api.post(
                    "/api/stations/API-MUTE/commands/call",
                    json={"action": "ClearCache", "timeout": 0.2},
                )
                assert raw.status_code == 504

    asyncio.run(scenario())


def test_ocpp201_station_through_the_api(service: Service) -> None:
    register(service, "API-201")
    base = "/api/stations/API-201"

    async def scenario() -> None:
        async with (
            httpx.AsyncClient(base_url=service.base) as api,
            station(service.ocpp, "API-201", "ocpp2.0.1", PASSWORD, Station201) as cp,
        ):
            await cp.call(
                c201.BootNotification(
                    charging_station={"model": "DC50", "vendor_name": "Acme"}, reason="PowerUp"
                )
            )
            await cp.call(
                c201.StatusNotification(
                    timestamp=T0, connector_status="Occupied", evse_id=1, connector_id=1
                )
            )
            start = await api.post(
                f"{base}/commands/remote-start", json={"id_token": "APP-1", "evse_id": 1}
            )
            assert start.json() == {
                "action": "RequestStartTransaction",
                "answer": {"status": "Accepted", "transactionId": "TX-201"},
            }
            await cp.call(
                c201.TransactionEvent(
                    event_type="Started",
                    timestamp=T0,
                    trigger_reason="RemoteStart",
                    seq_no=0,
                    transaction_info={"transaction_id": "TX-201"},
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[
                        {
                            "timestamp": T0,
                            "sampled_value": [
                                {
                                    "value": 1000.0,
                                    "context": "Transaction.Begin",
                                    "unit_of_measure": {"unit": "Wh"},
                                    "signed_meter_value": {
                                        "signed_meter_data": "T0NNRnx7fQ==",
                                        "signing_method": "ECDSA-secp256r1-SHA256",
                                        "encoding_method": "OCMF",
                                        "public_key": "MFkwEwYHKoZIzj0CAQ==",
                                    },
                                }
                            ],
                        }
                    ],
                )
            )

            shown = (await api.get(base)).json()
            assert shown["ocpp_version"] == "ocpp2.0.1" and shown["boot_reason"] == "PowerUp"
            assert [c["status"] for c in shown["evses"][0]["connectors"]] == ["Occupied"]
            tx = (await api.get(f"{base}/transactions/TX-201")).json()
            assert (tx["state"], tx["evse_id"], tx["meter_start_wh"]) == ("active", 1, 1000)
            [sample] = tx["meter_values"]
            assert (sample["context"], sample["value"]) == ("Transaction.Begin", 1000.0)
            assert json.loads(sample["signed"]) == SIGNED_2X

            read = await api.post(
                f"{base}/commands/get-variables",
                json={
                    "variables": [{"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval"}]
                },
            )
            [result] = read.json()["answer"]["getVariableResult"]
            assert (result["attributeStatus"], result["attributeValue"]) == ("Accepted", "60")
            trigger = await api.post(f"{base}/commands/trigger", json={"message": "Bogus"})
            assert (trigger.status_code, detail(trigger)["code"]) == (400, "invalid")
            not_201 = await api.post(
                f"{base}/commands/call", json={"action": "RemoteStartTransaction"}
            )
            assert not_201.status_code == 400

    asyncio.run(scenario())


def test_registration_disable_and_removal(service: Service) -> None:
    http = service.http
    short = http.post("/api/stations", json={"id": "API-REG", "password": "short"})
    assert (short.status_code, detail(short)["code"]) == (400, "invalid")
    assert "16 to 40" in detail(short)["message"]
    no_password = http.post("/api/stations", json={"id": "API-REG", "security_profile": 2})
    assert no_password.status_code == 400 and "password" in detail(no_password)["message"]
    bad = http.post("/api/stations", json={"id": "a/b", "boot_status": "Maybe"})
    assert bad.status_code == 422
    assert {e["loc"][-1] for e in bad.json()["detail"]} == {"id", "boot_status"}
    register(service, "API-REG")
    again = http.post("/api/stations", json={"id": "API-REG", "password": PASSWORD})
    assert again.status_code == 409
    listed = {s["id"]: s for s in http.get("/api/stations").json()}
    assert listed["API-REG"]["security_profile"] == 1
    assert "password" not in listed["API-REG"] and "password_hash" not in listed["API-REG"]

    async def scenario() -> None:
        async with httpx.AsyncClient(base_url=service.base) as api:
            async with station(service.ocpp, "API-REG", "ocpp1.6", PASSWORD) as cp:
                boot = await cp.call(
                    c16.BootNotification(charge_point_vendor="V", charge_point_model="M")
                )
                assert boot.status == "Accepted"
                started = await cp.call(
                    c16.StartTransaction(connector_id=1, id_tag="ANY", meter_start=0, timestamp=T0)
                )
                await cp.call(
                    c16.StopTransaction(
                        meter_stop=0, timestamp=T0, transaction_id=started.transaction_id
                    )
                )
                kept = await api.delete("/api/stations/API-REG")
                assert (kept.status_code, detail(kept)["code"]) == (409, "has_transactions")
                disabled = await api.patch(
                    "/api/stations/API-REG", json={"boot_status": "Rejected"}
                )
                assert disabled.json()["boot_status"] == "Rejected"
                await eventually(lambda: connected(api, "API-REG", False))
            async with station(service.ocpp, "API-REG", "ocpp1.6", PASSWORD) as cp:
                boot = await cp.call(
                    c16.BootNotification(charge_point_vendor="V", charge_point_model="M")
                )
                assert boot.status == "Rejected"

            register(service, "API-GONE")
            assert (await api.delete("/api/stations/API-GONE")).status_code == 204
            assert (await api.get("/api/stations/API-GONE")).status_code == 404
            assert (await api.delete("/api/stations/API-GONE")).status_code == 404
        with pytest.raises(InvalidStatus) as refused:
            async with station(service.ocpp, "API-GONE", "ocpp1.6", PASSWORD):
                pass
        assert refused.value.response.status_code == 404

    asyncio.run(scenario())


def test_token_crud_and_validation(service: Service) -> None:
    http, tokens = service.http, "/api/tokens"
    created = http.post(
        tokens,
        json={
            "token": "CARD-1",
            "type": "ISO15693",
            "expires_at": "2030-01-01T00:00:00Z",
            "group_id": "FLEET-7",
        },
    )
    assert created.status_code == 201
    assert {k: v for k, v in created.json().items() if k != "created_at"} == {
        "token": "CARD-1",
        "type": "ISO15693",
        "status": "Accepted",
        "expires_at": "2030-01-01T00:00:00Z",
        "group_id": "FLEET-7",
    }
    assert http.post(tokens, json={"token": "CARD-1"}).status_code == 409
    assert http.get(f"{tokens}/CARD-1").json()["group_id"] == "FLEET-7"

    blocked = http.put(f"{tokens}/CARD-1", json={"status": "Blocked"})
    assert blocked.status_code == 200
    assert (blocked.json()["status"], blocked.json()["group_id"]) == ("Blocked", None)
    assert http.put(f"{tokens}/CARD-2", json={}).status_code == 201
    listed = [t["token"] for t in http.get(tokens).json()]
    assert {"CARD-1", "CARD-2"} <= set(listed)

    assert http.delete(f"{tokens}/CARD-2").status_code == 204
    gone = http.get(f"{tokens}/CARD-2")
    assert (gone.status_code, detail(gone)["code"]) == (404, "not_found")
    assert http.delete(f"{tokens}/CARD-2").status_code == 404

    cases: list[tuple[dict[str, Any], str]] = [
        ({"token": "X", "status": "Maybe"}, "status"),
        ({"token": "X", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),  # no time zone
        ({"token": ""}, "token"),
        ({"token": "X" * 256}, "token"),
        ({"token": "X", "type": "T" * 21}, "type"),
        ({"token": "X", "group_id": ""}, "group_id"),
        ({}, "token"),
    ]
    for body, field in cases:
        refused = http.post(tokens, json=body)
        assert refused.status_code == 422, body
        [error] = refused.json()["detail"]
        assert error["loc"][-1] == field and error["msg"], body
    assert (
        "Accepted"
        in http.post(tokens, json={"token": "X", "status": "Maybe"}).json()["detail"][0]["msg"]
    )

    spec = http.get("/openapi.json").json()["paths"]
    assert "/api/stations/{station_id}/commands/remote-start" in spec
    assert "/api/tokens/{token}" in spec

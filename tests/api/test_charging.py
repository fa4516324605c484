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

    @on("SetChargingProfile")
    def on_set_profile(self, **_: Any) -> r201.SetChargingProfile:
        return r201.SetChargingProfile(status="Accepted")

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


# -- composite schedules computed by the CSMS ------------------------------------------------

CT = "2025-03-01T12:00:00Z"  # the composite schedules' start in these tests


def periods(answer: httpx.Response) -> list[tuple[int, float | None, int | None]]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [(p["start_period"], p["limit"], p["number_phases"]) for p in body["periods"]]


def profile_16(
    profile_id: int,
    purpose: str,
    stack_level: int,
    schedule: list[tuple[int, float]],
    kind: str = "Absolute",
    **fields: Any,
) -> dict[str, Any]:
    """A 1.6 csChargingProfiles in A; `fields` go to the schedule, or to the profile when they
    are profile fields (validFrom, validTo, recurrencyKind, transactionId)."""
    top = {
        k: fields.pop(k)
        for k in ("validFrom", "validTo", "recurrencyKind", "transactionId")
        if k in fields
    }
    return {
        "chargingProfileId": profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        **top,
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in schedule],
            **fields,
        },
    }


def test_composite_schedule_of_an_ocpp16_station(service: Service) -> None:
    """Stacking and combining as OCPP 1.6 3.13 describes them, on profiles a 1.6 station accepted
    over its WebSocket: two TxDefaultProfiles at stack levels 0 and 1 (the higher one for its
    150 s, then the lower one shows again), capped by a ChargePointMaxProfile, a TxProfile
    relative to the transaction's start, an expired profile, a daily schedule across midnight."""
    register(service, "CMP-16")
    assert service.http.post("/api/tokens", json={"token": "TAG-CMP"}).status_code == 201
    profiles = "/api/stations/CMP-16/charging-profiles"
    composite = f"{profiles}/composite"

    async def scenario() -> None:
        async with (
            httpx.AsyncClient(base_url=service.base) as api,
            station(service.ocpp, "CMP-16", "ocpp1.6", PASSWORD, Station16) as cp,
        ):
            await cp.call(c16.BootNotification(charge_point_vendor="V", charge_point_model="M"))

            async def put(evse_id: int, profile: dict[str, Any]) -> None:
                answer = await api.post(profiles, json={"evse_id": evse_id, "profile": profile})
                assert answer.json()["answer"] == {"status": "Accepted"}, answer.text

            async def schedule(**query: Any) -> list[tuple[int, float | None, int | None]]:
                return periods(await api.get(composite, params={"start": CT, **query}))

            assert await schedule(duration=400) == [(0, None, None)]  # nothing set yet
            base = {"startSchedule": CT, "validFrom": "2025-03-01T11:55:00Z"}
            await put(
                1,
                profile_16(
                    1, "TxDefaultProfile", 0, [(0, 6), (100, 8), (200, 10)], duration=400, **base
                ),
            )
            await put(
                1, profile_16(2, "TxDefaultProfile", 1, [(0, 10), (100, 12)], duration=150, **base)
            )
            stacked = [(0, 10.0, None), (100, 12.0, None), (150, 8.0, None), (200, 10.0, None)]
            assert await schedule(duration=400, unit="A") == stacked
            assert await schedule(duration=400) == stacked  # every profile in A: A
            # 3 phases (OCPP's default) at 230 V.
            assert await schedule(duration=400, unit="W") == [
                (0, 6900.0, None),
                (100, 8280.0, None),
                (150, 5520.0, None),
                (200, 6900.0, None),
            ]
            # After 400 s no profile limits the EVSE any more.
            assert (await schedule(duration=600, unit="A"))[-1] == (400, None, None)

            # The station maximum caps the EVSE; an expired one at a higher level does not.
            await put(0, profile_16(3, "ChargePointMaxProfile", 0, [(0, 9)], startSchedule=CT))
            await put(
                0,
                profile_16(
                    4,
                    "ChargePointMaxProfile",
                    1,
                    [(0, 1)],
                    startSchedule=CT,
                    validTo="2025-03-01T11:00:00Z",
                ),
            )
            capped = [(0, 9.0, None), (150, 8.0, None), (200, 9.0, None)]
            assert await schedule(duration=400, unit="A") == capped
            # EVSE 0: the station as a whole, where only the maximum counts.
            assert await schedule(evse_id=0, duration=400) == [(0, 9.0, None)]

            # A transaction starts 50 s in; its TxProfile is relative to that start and
            # replaces the default profiles once it runs.
            started = await cp.call(
                c16.StartTransaction(
                    connector_id=1,
                    id_tag="TAG-CMP",
                    meter_start=0,
                    timestamp="2025-03-01T12:00:50Z",
                )
            )
            tx = started.transaction_id
            await put(
                1,
                profile_16(
                    5, "TxProfile", 0, [(0, 16), (60, 7)], kind="Relative", transactionId=tx
                ),
            )
            assert await schedule(duration=400, unit="A") == [(0, 9.0, None), (110, 7.0, None)]
            # Once the transaction has ended its TxProfile no longer counts.
            await cp.call(
                c16.StopTransaction(
                    meter_stop=10, timestamp="2025-03-01T12:10:00Z", transaction_id=tx
                )
            )
            assert await schedule(duration=400, unit="A") == capped

            # A daily schedule from 22:00 for 8 h, across midnight, on connector 2.
            await put(
                2,
                profile_16(
                    6,
                    "TxDefaultProfile",
                    0,
                    [(0, 10), (14400, 6)],
                    kind="Recurring",
                    recurrencyKind="Daily",
                    startSchedule="2025-01-01T22:00:00Z",
                    duration=8 * 3600,
                ),
            )
            night = await api.get(
                composite,
                params={"evse_id": 2, "start": "2025-03-01T20:00:00Z", "duration": 2 * 86400},
            )
            assert periods(night) == [
                (0, 9.0, None),  # 20:00, only the maximum
                (21600, 6.0, None),  # 02:00, the second period (22:00-02:00: 10 A, capped at 9)
                (36000, 9.0, None),  # 06:00, the daily schedule over
                (21600 + 86400, 6.0, None),  # the next night
                (36000 + 86400, 9.0, None),
            ]
            assert night.json()["schedule_start"] == "2025-03-01T20:00:00Z"

            # Bad requests are refused in HTTP's terms; the profiles stay.
            for query in (
                {"unit": "kW"},
                {"duration": 0},
                {"duration": 32 * 86400},
                {"evse_id": -1},
                {"start": "2025-03-01T12:00:00"},  # no time zone
            ):
                refused = await api.get(composite, params=query)
                assert refused.status_code == 422, query
            unknown = await api.get("/api/stations/NOBODY/charging-profiles/composite")
            assert (unknown.status_code, detail(unknown)["code"]) == (404, "not_found")
            assert len((await api.get(profiles)).json()) == 6
            paths = (await api.get("/openapi.json")).json()["paths"]
            documented = paths["/api/stations/{station_id}/charging-profiles/composite"]["get"]
            assert {p["name"] for p in documented["parameters"]} == {
                "station_id",
                "evse_id",
                "duration",
                "unit",
                "start",
            }

    asyncio.run(scenario())


def profile_2x(
    profile_id: int,
    purpose: str,
    unit: str,
    schedule: list[tuple[int, float, int | None]],
    start: str,
    duration: int | None = None,
    transaction_id: str | None = None,
) -> dict[str, Any]:
    """A 2.0.1 ChargingProfile at stack level 0, Absolute."""
    body: dict[str, Any] = {
        "id": profile_id,
        "stackLevel": 0,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [
            {
                "id": profile_id,
                "startSchedule": start,
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": [
                    {"startPeriod": s, "limit": v, **({} if n is None else {"numberPhases": n})}
                    for s, v, n in schedule
                ],
                **({} if duration is None else {"duration": duration}),
            }
        ],
    }
    if transaction_id is not None:
        body["transactionId"] = transaction_id
    return body


def test_composite_schedule_of_an_ocpp201_station(service: Service) -> None:
    """Combining purposes as OCPP 2.0.1 K08 describes it, on profiles a 2.0.1 station accepted:
    a ChargingStationMaxProfile in W, TxDefaultProfiles in A on EVSE 0 and on the EVSE itself
    (which wins at the same stack level), then the transaction's TxProfile; limits compared in
    the requested unit with each period's phases."""
    register(service, "CMP-201")
    profiles = "/api/stations/CMP-201/charging-profiles"

    async def scenario() -> None:
        async with (
            httpx.AsyncClient(base_url=service.base) as api,
            station(service.ocpp, "CMP-201", "ocpp2.0.1", PASSWORD, Station201) as cp,
        ):
            await cp.call(
                c201.BootNotification(
                    charging_station={"model": "DC50", "vendor_name": "Acme"}, reason="PowerUp"
                )
            )

            async def put(evse_id: int, profile: dict[str, Any]) -> None:
                answer = await api.post(profiles, json={"evse_id": evse_id, "profile": profile})
                assert answer.json()["answer"] == {"status": "Accepted"}, answer.text

            async def schedule(unit: str) -> list[tuple[int, float | None, int | None]]:
                query = {"evse_id": 1, "start": CT, "duration": 10800, "unit": unit}
                return periods(await api.get(f"{profiles}/composite", params=query))

            await put(0, profile_2x(1, "ChargingStationMaxProfile", "W", [(0, 11000, 3)], CT))
            await put(
                0,
                profile_2x(2, "TxDefaultProfile", "A", [(0, 16, None), (3600, 10, None)], CT, 7200),
            )
            await put(
                1, profile_2x(3, "TxDefaultProfile", "A", [(0, 8, 1)], "2025-03-01T12:30:00Z", 1800)
            )
            assert await schedule("W") == [
                (0, 11000.0, 3),  # 16 A x 3 x 230 V = 11,040 W, over the maximum
                (1800, 1840.0, 1),  # the EVSE's own default: 8 A on one phase
                (3600, 6900.0, None),  # EVSE 0's default again: 10 A
                (7200, 11000.0, 3),  # no default any more: the maximum
            ]
            assert await schedule("A") == [
                (0, 15.9, 3),  # 11,000 W / (3 x 230 V)
                (1800, 8.0, 1),
                (3600, 10.0, None),
                (7200, 15.9, 3),
            ]

            await cp.call(
                c201.TransactionEvent(
                    event_type="Started",
                    timestamp=CT,
                    trigger_reason="CablePluggedIn",
                    seq_no=0,
                    transaction_info={"transaction_id": "TX-K08"},
                    evse={"id": 1, "connector_id": 1},
                )
            )
            await put(
                1,
                profile_2x(
                    4, "TxProfile", "A", [(0, 20, None), (5400, 4, None)], CT, None, "TX-K08"
                ),
            )
            await put(1, profile_2x(5, "TxProfile", "A", [(0, 1, None)], CT, None, "ANOTHER-TX"))
            assert await schedule("W") == [(0, 11000.0, 3), (5400, 2760.0, None)]

    asyncio.run(scenario())
